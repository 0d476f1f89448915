//! SQLite side of the audit trail: appending inside a transaction (alone, or with the message
//! whose key use it records) and reading it back in pages.

use sqlx::sqlite::SqlitePool;
use sqlx::{Row, Sqlite, Transaction};

use super::db_err;
use crate::store::{AuditRecord, StoreError};

/// Appends `record` inside `tx`, chained to the last record; returns its sequence number.
/// The transaction must hold the write lock (`BEGIN IMMEDIATE`) so two writers cannot chain
/// to the same record.
pub async fn append(
    tx: &mut Transaction<'_, Sqlite>,
    record: &AuditRecord,
) -> Result<u64, StoreError> {
    let previous: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?;
    let hash = record.chained(previous.as_deref().unwrap_or(&[]));
    let done = sqlx::query(
        "INSERT INTO audit_log (at, event, actor, source, outcome, detail, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&record.at)
    .bind(&record.event)
    .bind(&record.actor)
    .bind(&record.source)
    .bind(&record.outcome)
    .bind(&record.detail)
    .bind(&hash)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    tracing::info!(
        target: "audit",
        event = record.event.as_str(),
        actor = record.actor.as_str(),
        source = record.source.as_str(),
        outcome = record.outcome.as_str(),
        detail = record.detail.as_str()
    );
    Ok(done.last_insert_rowid() as u64)
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
