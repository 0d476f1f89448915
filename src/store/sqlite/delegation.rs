//! SQLite side of delegations (who may act for which mailbox) and of per-folder grants
//! (RFC 4314 ACLs set with SETACL).

use sqlx::Row;
use sqlx::sqlite::SqlitePool;

use super::db_err;
use crate::store::{Delegation, Grant, StoreError};

/// Grants (or updates) a delegation, both mailboxes named by address.
pub async fn grant(
    pool: &SqlitePool,
    mailbox: &str,
    delegate: &str,
    send_as: bool,
    rights: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "INSERT INTO delegations (mailbox_id, delegate_id, send_as, rights)
         SELECT m.id, d.id, ?, ? FROM accounts m, accounts d WHERE m.address = ? AND d.address = ?
         ON CONFLICT (mailbox_id, delegate_id)
         DO UPDATE SET send_as = excluded.send_as, rights = excluded.rights",
    )
    .bind(i64::from(send_as))
    .bind(rights)
    .bind(mailbox)
    .bind(delegate)
    .execute(pool)
    .await
    .map_err(db_err)?;
    super::changed_one(
        done.rows_affected(),
        &format!("mailbox {mailbox} or mailbox {delegate}"),
    )
}

/// Withdraws a delegation.
pub async fn revoke(pool: &SqlitePool, mailbox: &str, delegate: &str) -> Result<(), StoreError> {
    let done = sqlx::query(
        "DELETE FROM delegations WHERE
         mailbox_id = (SELECT id FROM accounts WHERE address = ?) AND
         delegate_id = (SELECT id FROM accounts WHERE address = ?)",
    )
    .bind(mailbox)
    .bind(delegate)
    .execute(pool)
    .await
    .map_err(db_err)?;
    super::changed_one(
        done.rows_affected(),
        &format!("a delegation of {mailbox} to {delegate}"),
    )
}

/// Every delegation, by mailbox then delegate.
pub async fn list(pool: &SqlitePool) -> Result<Vec<Delegation>, StoreError> {
    let rows = sqlx::query(
        "SELECT m.address AS mailbox, d.address AS delegate, g.send_as AS send_as, g.rights AS rights
         FROM delegations g JOIN accounts m ON g.mailbox_id = m.id JOIN accounts d ON g.delegate_id = d.id
         ORDER BY m.address, d.address",
    )
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok(Delegation {
                mailbox: r.try_get("mailbox").map_err(db_err)?,
                delegate: r.try_get("delegate").map_err(db_err)?,
                send_as: r.try_get::<i64, _>("send_as").map_err(db_err)? != 0,
                rights: r.try_get("rights").map_err(db_err)?,
            })
        })
        .collect()
}

/// Whether the account `delegate_id` may send as `address`.
pub async fn may_send_as(
    pool: &SqlitePool,
    delegate_id: i64,
    address: &str,
) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM delegations g JOIN accounts m ON g.mailbox_id = m.id
         WHERE g.delegate_id = ? AND m.address = ? AND g.send_as = 1 AND m.suspended = 0",
    )
    .bind(delegate_id)
    .bind(address)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    Ok(found.is_some())
}

/// The rights (RFC 4314 letters) the account `delegate_id` holds on the mailbox `address`,
/// if it is delegated to them.
pub async fn rights(
    pool: &SqlitePool,
    delegate_id: i64,
    address: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT g.rights FROM delegations g JOIN accounts m ON g.mailbox_id = m.id
         WHERE g.delegate_id = ? AND m.address = ?",
    )
    .bind(delegate_id)
    .bind(address)
    .fetch_optional(pool)
    .await
    .map_err(db_err)
}

/// The per-folder grants of a folder, by grantee address.
pub async fn folder_acl(
    pool: &SqlitePool,
    mailbox_id: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT a.address, f.rights FROM folder_acl f JOIN accounts a ON f.account_id = a.id
         WHERE f.mailbox_id = ? ORDER BY a.address",
    )
    .bind(mailbox_id)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("address").map_err(db_err)?,
                r.try_get("rights").map_err(db_err)?,
            ))
        })
        .collect()
}

/// Sets (or, with None, removes) an account's grant on a folder.
pub async fn set_folder_acl(
    pool: &SqlitePool,
    mailbox_id: i64,
    account_id: i64,
    rights: Option<&str>,
) -> Result<(), StoreError> {
    match rights {
        Some(rights) => sqlx::query(
            "INSERT INTO folder_acl (mailbox_id, account_id, rights) VALUES (?, ?, ?)
             ON CONFLICT (mailbox_id, account_id) DO UPDATE SET rights = excluded.rights",
        )
        .bind(mailbox_id)
        .bind(account_id)
        .bind(rights),
        None => sqlx::query("DELETE FROM folder_acl WHERE mailbox_id = ? AND account_id = ?")
            .bind(mailbox_id)
            .bind(account_id),
    }
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Everything granted to an account: delegations of whole mailboxes, then folder grants.
pub async fn grants_to(pool: &SqlitePool, account_id: i64) -> Result<Vec<Grant>, StoreError> {
    let rows = sqlx::query(
        "SELECT m.address AS owner, NULL AS mailbox_id, g.rights FROM delegations g
           JOIN accounts m ON g.mailbox_id = m.id WHERE g.delegate_id = ?
         UNION ALL
         SELECT a.address, f.mailbox_id, f.rights FROM folder_acl f
           JOIN mailboxes b ON f.mailbox_id = b.id JOIN accounts a ON b.account_id = a.id
           WHERE f.account_id = ?
         ORDER BY owner",
    )
    .bind(account_id)
    .bind(account_id)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok(Grant {
                owner: r.try_get("owner").map_err(db_err)?,
                mailbox_id: r.try_get("mailbox_id").map_err(db_err)?,
                rights: r.try_get("rights").map_err(db_err)?,
            })
        })
        .collect()
}
