//! SQLite side of folders and stored messages: folders created on first use, appends
//! (UIDs from the folder's counter), listing, sealed bodies and originals, flags, deletion.

use sqlx::Row;
use sqlx::sqlite::SqlitePool;

use super::{db_err, queue};
use crate::store::{MailboxInfo, MessageMeta, NewMessage, StoreError};

pub async fn mailbox(
    pool: &SqlitePool,
    account_id: i64,
    name: &str,
    create: bool,
) -> Result<Option<MailboxInfo>, StoreError> {
    if create {
        // UIDVALIDITY: creation time in seconds, so a re-created folder gets a new one.
        sqlx::query("INSERT INTO mailboxes (account_id, name, uidvalidity) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(account_id)
            .bind(name)
            .bind(chrono::Utc::now().timestamp() & 0xffff_ffff)
            .execute(pool)
            .await
            .map_err(db_err)?;
    }
    let row = sqlx::query(
        "SELECT id, name, uidvalidity, uidnext FROM mailboxes WHERE account_id = ? AND name = ?",
    )
    .bind(account_id)
    .bind(name)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.map(|r| {
        Ok(MailboxInfo {
            id: r.try_get("id").map_err(db_err)?,
            name: r.try_get("name").map_err(db_err)?,
            uidvalidity: r.try_get::<i64, _>("uidvalidity").map_err(db_err)? as u32,
            uidnext: r.try_get::<i64, _>("uidnext").map_err(db_err)? as u32,
        })
    })
    .transpose()
}

pub async fn append_messages(
    pool: &SqlitePool,
    messages: &[NewMessage],
) -> Result<Vec<u32>, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let uids = queue::insert_messages(&mut tx, messages).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(uids)
}

pub async fn list_messages(
    pool: &SqlitePool,
    mailbox_id: i64,
) -> Result<Vec<MessageMeta>, StoreError> {
    let rows = sqlx::query(
        "SELECT uid, internal_date, size, flags FROM messages WHERE mailbox_id = ? ORDER BY uid",
    )
    .bind(mailbox_id)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok(MessageMeta {
                uid: r.try_get::<i64, _>("uid").map_err(db_err)? as u32,
                internal_date: r.try_get("internal_date").map_err(db_err)?,
                size: r.try_get::<i64, _>("size").map_err(db_err)? as u64,
                flags: r.try_get("flags").map_err(db_err)?,
            })
        })
        .collect()
}

pub async fn message_sealed(
    pool: &SqlitePool,
    mailbox_id: i64,
    uid: u32,
) -> Result<Option<Vec<u8>>, StoreError> {
    sqlx::query_scalar("SELECT sealed FROM messages WHERE mailbox_id = ? AND uid = ?")
        .bind(mailbox_id)
        .bind(i64::from(uid))
        .fetch_optional(pool)
        .await
        .map_err(db_err)
}

pub async fn message_original(
    pool: &SqlitePool,
    mailbox_id: i64,
    uid: u32,
) -> Result<Option<Vec<u8>>, StoreError> {
    let original: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT original FROM messages WHERE mailbox_id = ? AND uid = ?")
            .bind(mailbox_id)
            .bind(i64::from(uid))
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
    Ok(original.flatten())
}

pub async fn set_flags(
    pool: &SqlitePool,
    mailbox_id: i64,
    uid: u32,
    flags: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE messages SET flags = ? WHERE mailbox_id = ? AND uid = ?")
        .bind(flags)
        .bind(mailbox_id)
        .bind(i64::from(uid))
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub async fn delete_messages(
    pool: &SqlitePool,
    mailbox_id: i64,
    uids: &[u32],
) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    for uid in uids {
        sqlx::query("DELETE FROM messages WHERE mailbox_id = ? AND uid = ?")
            .bind(mailbox_id)
            .bind(i64::from(*uid))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)
}
