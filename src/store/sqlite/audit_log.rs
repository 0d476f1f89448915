//! SQLite side of the audit trail: reading it back in pages. Records are appended by the
//! message writer (`accepted`), alone or with the message whose key use they record.

use sqlx::Row;
use sqlx::sqlite::SqlitePool;

use super::db_err;
use crate::store::{AuditRecord, StoreError};

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
