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

/// Stores a pairing code (its hash) for a device of `account_id` named `name`.
pub async fn add_pairing(
    pool: &SqlitePool,
    account_id: i64,
    name: &str,
    code_hash: &[u8],
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO device_pairings (code_hash, account_id, name, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(code_hash)
    .bind(account_id)
    .bind(name)
    .bind(expires_at)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Uses a pairing code at `now`: the mailbox's address and the device name when it exists,
/// has not expired and was not used (it is used from now on); None otherwise.
pub async fn redeem_pairing(
    pool: &SqlitePool,
    code_hash: &[u8],
    now: i64,
) -> Result<Option<(String, String)>, StoreError> {
    let row = sqlx::query(
        "UPDATE device_pairings SET used = 1
         WHERE code_hash = ? AND used = 0 AND expires_at > ?
         RETURNING (SELECT address FROM accounts WHERE id = account_id) AS address, name",
    )
    .bind(code_hash)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.map(|r| {
        Ok((
            r.try_get("address").map_err(db_err)?,
            r.try_get("name").map_err(db_err)?,
        ))
    })
    .transpose()
}

/// Binds a certificate (SHA-256 fingerprint) to `account_id`; one already bound is moved.
pub async fn bind_certificate(
    pool: &SqlitePool,
    account_id: i64,
    fingerprint: &[u8],
    subject: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO bound_certificates (fingerprint, account_id, subject, bound_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (fingerprint) DO UPDATE SET account_id = excluded.account_id,
         subject = excluded.subject, bound_at = excluded.bound_at",
    )
    .bind(fingerprint)
    .bind(account_id)
    .bind(subject)
    .bind(chrono::Utc::now().timestamp())
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Unbinds every certificate of `account_id`; how many there were.
pub async fn unbind_certificates(pool: &SqlitePool, account_id: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM bound_certificates WHERE account_id = ?")
        .bind(account_id)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected())
}

/// The address of the mailbox a certificate fingerprint is bound to.
pub async fn bound_account(
    pool: &SqlitePool,
    fingerprint: &[u8],
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT a.address FROM bound_certificates b JOIN accounts a ON a.id = b.account_id
         WHERE b.fingerprint = ?",
    )
    .bind(fingerprint)
    .fetch_optional(pool)
    .await
    .map_err(db_err)
}

#[cfg(test)]
mod tests {
    use crate::store::{AccountKind, NewAccount, Store};

    #[tokio::test]
    async fn a_pairing_code_works_once_and_only_before_it_expires() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path(), None).await.expect("store");
        store.db().add_domain("h.test").await.expect("domain");
        let id = store
            .create_account(&NewAccount {
                address: "dr@h.test".into(),
                kind: AccountKind::Per,
                idnat: None,
                display_name: None,
                password_hash: None,
            })
            .await
            .expect("account");
        let db = store.db();
        db.add_pairing(id, "phone", b"code-1", 1000)
            .await
            .expect("pairing");
        db.add_pairing(id, "tablet", b"code-2", 1000)
            .await
            .expect("pairing");
        let paired = db.redeem_pairing(b"code-1", 999).await.expect("redeem");
        assert_eq!(paired, Some(("dr@h.test".into(), "phone".into())));
        assert_eq!(
            db.redeem_pairing(b"code-1", 999).await.expect("again"),
            None
        );
        assert_eq!(
            db.redeem_pairing(b"code-2", 1000).await.expect("late"),
            None
        );
        assert_eq!(
            db.redeem_pairing(b"nothing", 1).await.expect("unknown"),
            None
        );
    }
}
