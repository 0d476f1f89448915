//! SQLite side of the audit trail: appending inside a transaction (alone, or with the message
//! whose key use it records) and reading it back in pages.

use sqlx::sqlite::SqlitePool;
use sqlx::{Row, Sqlite, Transaction};

use super::{ROWS_PER_INSERT, db_err, multi_insert};
use crate::store::{AuditRecord, StoreError};

/// Appends `record` inside `tx`, chained to the last record; returns its sequence number.
/// The transaction must hold the write lock (`BEGIN IMMEDIATE`) so two writers cannot chain
/// to the same record.
pub async fn append(
    tx: &mut Transaction<'_, Sqlite>,
    record: &AuditRecord,
) -> Result<u64, StoreError> {
    append_all(tx, &[record]).await
}

/// Appends `records` in order inside `tx`, each chained to the one before; returns the last
/// sequence number (0 when there are none). Same lock requirement as [`append`].
pub async fn append_all(
    tx: &mut Transaction<'_, Sqlite>,
    records: &[&AuditRecord],
) -> Result<u64, StoreError> {
    if records.is_empty() {
        return Ok(0);
    }
    let previous: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?;
    let mut hash = previous.unwrap_or_default();
    let mut chained = Vec::with_capacity(records.len());
    for record in records {
        hash = record.chained(&hash);
        chained.push((*record, hash.clone()));
    }
    let mut last = 0;
    for rows in chained.chunks(ROWS_PER_INSERT) {
        let mut query = sqlx::query(multi_insert(
            "INSERT INTO audit_log (at, event, actor, source, outcome, detail, hash)",
            rows.len(),
        ));
        for (record, hash) in rows {
            query = query
                .bind(&record.at)
                .bind(&record.event)
                .bind(&record.actor)
                .bind(&record.source)
                .bind(&record.outcome)
                .bind(&record.detail)
                .bind(hash);
        }
        let done = query.execute(&mut **tx).await.map_err(db_err)?;
        last = done.last_insert_rowid() as u64;
    }
    for record in records {
        tracing::info!(
            target: "audit",
            event = record.event.as_str(),
            actor = record.actor.as_str(),
            source = record.source.as_str(),
            outcome = record.outcome.as_str(),
            detail = record.detail.as_str()
        );
    }
    Ok(last)
}

/// Records with sequence numbers after `after`, oldest first, with their hashes.
pub async fn records(
    pool: &SqlitePool,
    after: u64,
    limit: u32,
) -> Result<Vec<(u64, AuditRecord, Vec<u8>)>, StoreError> {
    let rows = sqlx::query("SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?")
        .bind(after as i64)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            let record = AuditRecord {
                at: r.try_get("at").map_err(db_err)?,
                event: r.try_get("event").map_err(db_err)?,
                actor: r.try_get("actor").map_err(db_err)?,
                source: r.try_get("source").map_err(db_err)?,
                outcome: r.try_get("outcome").map_err(db_err)?,
                detail: r.try_get("detail").map_err(db_err)?,
            };
            Ok((
                r.try_get::<i64, _>("seq").map_err(db_err)? as u64,
                record,
                r.try_get("hash").map_err(db_err)?,
            ))
        })
        .collect()
}
