//! SQLite side of the mailboxes (`accounts`): creation, lookup by address or idNat,
//! password, suspension, quota and usage, removal.

use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::{changed_one, db_err};
use crate::store::{Account, AccountKind, NewAccount, StoreError};

pub(super) fn account_from_row(row: &SqliteRow) -> Result<Account, StoreError> {
    let kind: String = row.try_get("kind").map_err(db_err)?;
    Ok(Account {
        id: row.try_get("id").map_err(db_err)?,
        address: row.try_get("address").map_err(db_err)?,
        domain: row.try_get("domain").map_err(db_err)?,
        kind: kind.parse::<AccountKind>().map_err(StoreError::Backend)?,
        idnat: row.try_get("idnat").map_err(db_err)?,
        display_name: row.try_get("display_name").map_err(db_err)?,
        password_hash: row.try_get("password_hash").map_err(db_err)?,
        suspended: row.try_get::<i64, _>("suspended").map_err(db_err)? != 0,
        quota_bytes: row
            .try_get::<Option<i64>, _>("quota_bytes")
            .map_err(db_err)?
            .map(|q| q.max(0) as u64),
        dek_wrapped: row.try_get("dek_wrapped").map_err(db_err)?,
    })
}

pub async fn add_account(
    pool: &SqlitePool,
    account: &NewAccount,
    dek_wrapped: &[u8],
) -> Result<i64, StoreError> {
    let domain = account.address.rsplit_once('@').map_or("", |(_, d)| d);
    let done = sqlx::query(
        "INSERT INTO accounts (address, domain, kind, idnat, display_name, password_hash, dek_wrapped, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&account.address)
    .bind(domain)
    .bind(account.kind.as_str())
    .bind(&account.idnat)
    .bind(&account.display_name)
    .bind(&account.password_hash)
    .bind(dek_wrapped)
    .bind(chrono::Utc::now().timestamp())
    .execute(pool)
    .await
    .map_err(|e| match db_err(e) {
        StoreError::Conflict(m) if m.contains("referenced") => {
            StoreError::NotFound(format!("domain {domain} is not served here: run `mssante domain add {domain}` first"))
        }
        StoreError::Conflict(_) => StoreError::Conflict(format!("mailbox {} already exists", account.address)),
        other => other,
    })?;
    Ok(done.last_insert_rowid())
}

pub async fn find_account(pool: &SqlitePool, address: &str) -> Result<Option<Account>, StoreError> {
    let row = sqlx::query("SELECT * FROM accounts WHERE address = ?")
        .bind(address)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.as_ref().map(account_from_row).transpose()
}

pub async fn accounts_by_idnat(pool: &SqlitePool, idnat: &str) -> Result<Vec<Account>, StoreError> {
    let rows = sqlx::query("SELECT * FROM accounts WHERE idnat = ? ORDER BY address")
        .bind(idnat)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    rows.iter().map(account_from_row).collect()
}

pub async fn list_accounts(pool: &SqlitePool) -> Result<Vec<Account>, StoreError> {
    let rows = sqlx::query("SELECT * FROM accounts ORDER BY address")
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    rows.iter().map(account_from_row).collect()
}

pub async fn set_password_hash(
    pool: &SqlitePool,
    address: &str,
    hash: Option<&str>,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE accounts SET password_hash = ? WHERE address = ?")
        .bind(hash)
        .bind(address)
        .execute(pool)
        .await
        .map_err(db_err)?;
    changed_one(done.rows_affected(), &format!("mailbox {address}"))
}

pub async fn set_suspended(
    pool: &SqlitePool,
    address: &str,
    suspended: bool,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE accounts SET suspended = ? WHERE address = ?")
        .bind(i64::from(suspended))
        .bind(address)
        .execute(pool)
        .await
        .map_err(db_err)?;
    changed_one(done.rows_affected(), &format!("mailbox {address}"))
}

pub async fn remove_account(pool: &SqlitePool, address: &str) -> Result<(), StoreError> {
    let done = sqlx::query("DELETE FROM accounts WHERE address = ?")
        .bind(address)
        .execute(pool)
        .await
        .map_err(db_err)?;
    changed_one(done.rows_affected(), &format!("mailbox {address}"))
}

pub async fn set_quota(
    pool: &SqlitePool,
    address: &str,
    bytes: Option<u64>,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE accounts SET quota_bytes = ? WHERE address = ?")
        .bind(bytes.map(|b| b.min(i64::MAX as u64) as i64))
        .bind(address)
        .execute(pool)
        .await
        .map_err(db_err)?;
    changed_one(done.rows_affected(), &format!("mailbox {address}"))
}

pub async fn account_usage(pool: &SqlitePool, account_id: i64) -> Result<u64, StoreError> {
    let used: i64 = sqlx::query_scalar("SELECT used_bytes FROM accounts WHERE id = ?")
        .bind(account_id)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?
        .unwrap_or(0);
    Ok(used.max(0) as u64)
}
