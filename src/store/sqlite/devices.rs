//! The `devices` rows (see `store::devices`).

use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::db_err;
use crate::store::{Device, StoreError};

fn device(r: &SqliteRow) -> Result<Device, StoreError> {
    let at: Option<i64> = r.try_get("last_used_at").map_err(db_err)?;
    let from: Option<String> = r.try_get("last_used_from").map_err(db_err)?;
    let protocol: Option<String> = r.try_get("last_used_protocol").map_err(db_err)?;
    Ok(Device {
        id: r.try_get("id").map_err(db_err)?,
        name: r.try_get("name").map_err(db_err)?,
        created_at: r.try_get("created_at").map_err(db_err)?,
        blocked: r.try_get::<i64, _>("blocked").map_err(db_err)? != 0,
        last_used: at.map(|at| (at, from.unwrap_or_default(), protocol.unwrap_or_default())),
    })
}

/// Adds a device; a name the mailbox already uses is an error.
pub async fn add(
    pool: &SqlitePool,
    account_id: i64,
    name: &str,
    secret_hash: &[u8],
) -> Result<i64, StoreError> {
    let id = sqlx::query(
        "INSERT INTO devices (account_id, name, secret_hash, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(account_id)
    .bind(name)
    .bind(secret_hash)
    .bind(chrono::Utc::now().timestamp())
    .execute(pool)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict(format!("a device named {name:?} exists already"))
        }
        other => db_err(other),
    })?
    .last_insert_rowid();
    Ok(id)
}

/// The devices of `account_id`, by name.
pub async fn list(pool: &SqlitePool, account_id: i64) -> Result<Vec<Device>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, created_at, blocked, last_used_at, last_used_from, last_used_protocol
         FROM devices WHERE account_id = ? ORDER BY name",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(device).collect()
}

/// The device of `account_id` with this app-password hash.
pub async fn by_secret(
    pool: &SqlitePool,
    account_id: i64,
    secret_hash: &[u8],
) -> Result<Option<Device>, StoreError> {
    let row = sqlx::query(
        "SELECT id, name, created_at, blocked, last_used_at, last_used_from, last_used_protocol
         FROM devices WHERE account_id = ? AND secret_hash = ?",
    )
    .bind(account_id)
    .bind(secret_hash)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(device).transpose()
}

/// Whether device `id` may still be used (false when blocked or removed).
pub async fn usable(pool: &SqlitePool, id: i64) -> Result<bool, StoreError> {
    let blocked: Option<i64> = sqlx::query_scalar("SELECT blocked FROM devices WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    Ok(blocked == Some(0))
}

/// Blocks or unblocks a device by name; false when there is none.
pub async fn set_blocked(
    pool: &SqlitePool,
    account_id: i64,
    name: &str,
    blocked: bool,
) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE devices SET blocked = ? WHERE account_id = ? AND name = ?")
        .bind(i64::from(blocked))
        .bind(account_id)
        .bind(name)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

/// Removes a device by name; false when there is none.
pub async fn remove(pool: &SqlitePool, account_id: i64, name: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM devices WHERE account_id = ? AND name = ?")
        .bind(account_id)
        .bind(name)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

/// Records a login with device `id`.
pub async fn used(
    pool: &SqlitePool,
    id: i64,
    from: &str,
    protocol: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE devices SET last_used_at = ?, last_used_from = ?, last_used_protocol = ? WHERE id = ?",
    )
    .bind(chrono::Utc::now().timestamp())
    .bind(from)
    .bind(protocol)
    .bind(id)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}
