//! SQLite side of key escrow: rows of `mailbox_keys`, private keys only ever sealed.

use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::db_err;
use crate::store::{KeyState, NewKey, StoreError, StoredKey};

/// Adds a key; a current one retires the previous current key of its use.
pub async fn add(pool: &SqlitePool, account_id: i64, key: &NewKey) -> Result<i64, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    if key.state == KeyState::Current {
        retire(&mut tx, account_id, key.usage.as_str()).await?;
    }
    let done = sqlx::query(
        "INSERT INTO mailbox_keys (account_id, usage, state, sealed_key, public_key, certificate, chain, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(account_id)
    .bind(key.usage.as_str())
    .bind(key.state.as_str())
    .bind(&key.sealed_key)
    .bind(&key.public_key)
    .bind(&key.certificate)
    .bind(&key.chain)
    .bind(chrono::Utc::now().timestamp())
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(done.last_insert_rowid())
}

async fn retire(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    account_id: i64,
    usage: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE mailbox_keys SET state = 'past' WHERE account_id = ? AND usage = ? AND state = 'current'",
    )
    .bind(account_id)
    .bind(usage)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The keys of an account, newest first.
pub async fn list(pool: &SqlitePool, account_id: i64) -> Result<Vec<StoredKey>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, usage, state, public_key, certificate, chain, created_at FROM mailbox_keys
         WHERE account_id = ? ORDER BY id DESC",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(from_row).collect()
}

fn from_row(row: &SqliteRow) -> Result<StoredKey, StoreError> {
    let usage: String = row.try_get("usage").map_err(db_err)?;
    let state: String = row.try_get("state").map_err(db_err)?;
    Ok(StoredKey {
        id: row.try_get("id").map_err(db_err)?,
        usage: usage.parse().map_err(StoreError::Backend)?,
        state: state.parse().map_err(StoreError::Backend)?,
        public_key: row.try_get("public_key").map_err(db_err)?,
        certificate: row.try_get("certificate").map_err(db_err)?,
        chain: row.try_get("chain").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

/// The sealed private key of one key.
pub async fn sealed(
    pool: &SqlitePool,
    account_id: i64,
    key_id: i64,
) -> Result<Option<Vec<u8>>, StoreError> {
    sqlx::query_scalar("SELECT sealed_key FROM mailbox_keys WHERE account_id = ? AND id = ?")
        .bind(account_id)
        .bind(key_id)
        .fetch_optional(pool)
        .await
        .map_err(db_err)
}

/// Installs the certificate of a pending key and makes it current.
pub async fn install(
    pool: &SqlitePool,
    account_id: i64,
    key_id: i64,
    certificate: &[u8],
    chain: &[u8],
) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let usage: Option<String> = sqlx::query_scalar(
        "SELECT usage FROM mailbox_keys WHERE account_id = ? AND id = ? AND state = 'pending'",
    )
    .bind(account_id)
    .bind(key_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    let usage = usage.ok_or_else(|| StoreError::NotFound(format!("no pending key {key_id}")))?;
    retire(&mut tx, account_id, &usage).await?;
    sqlx::query(
        "UPDATE mailbox_keys SET state = 'current', certificate = ?, chain = ? WHERE id = ?",
    )
    .bind(certificate)
    .bind(chain)
    .bind(key_id)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)
}

/// Sets a correspondent's certificate.
pub async fn put_correspondent(
    pool: &SqlitePool,
    address: &str,
    certificate: &[u8],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO correspondent_certificates (address, certificate, added_at) VALUES (?, ?, ?)
         ON CONFLICT (address) DO UPDATE SET certificate = excluded.certificate, added_at = excluded.added_at",
    )
    .bind(address)
    .bind(certificate)
    .bind(chrono::Utc::now().timestamp())
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// A correspondent's certificate.
pub async fn correspondent(
    pool: &SqlitePool,
    address: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    sqlx::query_scalar("SELECT certificate FROM correspondent_certificates WHERE address = ?")
        .bind(address)
        .fetch_optional(pool)
        .await
        .map_err(db_err)
}

/// Every correspondent certificate.
pub async fn correspondents(pool: &SqlitePool) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let rows =
        sqlx::query("SELECT address, certificate FROM correspondent_certificates ORDER BY address")
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("address").map_err(db_err)?,
                r.try_get("certificate").map_err(db_err)?,
            ))
        })
        .collect()
}

/// Forgets a correspondent's certificate.
pub async fn remove_correspondent(pool: &SqlitePool, address: &str) -> Result<(), StoreError> {
    let done = sqlx::query("DELETE FROM correspondent_certificates WHERE address = ?")
        .bind(address)
        .execute(pool)
        .await
        .map_err(db_err)?;
    super::changed_one(
        done.rows_affected(),
        &format!("a certificate for {address}"),
    )
}
