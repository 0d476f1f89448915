//! SQLite side of the outbound queue: messages with their recipients, their attempts, retry
//! and removal. Entries are written by the message writer (`accepted`), in the same
//! transaction as the local copies of the same message.

use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::db_err;
use crate::store::{
    AttemptRecord, EnvelopeRecipient, Notify, QueuedMessage, QueuedRecipient, RecipientState,
    StoreError,
};

fn message_from_row(row: &SqliteRow) -> Result<QueuedMessage, StoreError> {
    Ok(QueuedMessage {
        id: row.try_get("id").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        sender: row.try_get("sender").map_err(db_err)?,
        envelope_id: row.try_get("envelope_id").map_err(db_err)?,
        ret_full: row.try_get::<i64, _>("ret_full").map_err(db_err)? != 0,
        smtputf8: row.try_get::<i64, _>("smtputf8").map_err(db_err)? != 0,
        size: row.try_get::<i64, _>("size").map_err(db_err)? as u64,
        attempts: row.try_get::<i64, _>("attempts").map_err(db_err)? as u32,
        next_attempt: row.try_get("next_attempt").map_err(db_err)?,
        delay_notified: row.try_get::<i64, _>("delay_notified").map_err(db_err)? != 0,
        recipients: Vec::new(),
    })
}

fn recipient_from_row(row: &SqliteRow) -> Result<QueuedRecipient, StoreError> {
    let state: String = row.try_get("state").map_err(db_err)?;
    Ok(QueuedRecipient {
        recipient: EnvelopeRecipient {
            address: row.try_get("address").map_err(db_err)?,
            notify: Notify::from_bits(row.try_get("notify").map_err(db_err)?),
            orcpt: row.try_get("orcpt").map_err(db_err)?,
        },
        state: state.parse().map_err(StoreError::Backend)?,
        last_reply: row.try_get("last_reply").map_err(db_err)?,
        remote_mta: row.try_get("remote_mta").map_err(db_err)?,
    })
}

/// The columns of `queue_messages` that `message_from_row` reads (a macro: static SQL).
macro_rules! message_columns {
    () => {
        "id, created_at, sender, envelope_id, ret_full, smtputf8, size, attempts, next_attempt, delay_notified"
    };
}

async fn with_recipients(
    pool: &SqlitePool,
    rows: Vec<SqliteRow>,
) -> Result<Vec<QueuedMessage>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut message = message_from_row(row)?;
        let recipients = sqlx::query(
            "SELECT address, notify, orcpt, state, last_reply, remote_mta FROM queue_recipients
             WHERE message_id = ? ORDER BY rowid",
        )
        .bind(message.id)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
        message.recipients = recipients
            .iter()
            .map(recipient_from_row)
            .collect::<Result<_, _>>()?;
        out.push(message);
    }
    Ok(out)
}

/// Due messages, oldest first.
pub async fn due(
    pool: &SqlitePool,
    now: i64,
    limit: u32,
) -> Result<Vec<QueuedMessage>, StoreError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        message_columns!(),
        " FROM queue_messages WHERE next_attempt <= ? ORDER BY next_attempt, id LIMIT ?"
    ))
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    with_recipients(pool, rows).await
}

/// The whole queue, oldest first.
pub async fn list(pool: &SqlitePool) -> Result<Vec<QueuedMessage>, StoreError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        message_columns!(),
        " FROM queue_messages ORDER BY id"
    ))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    with_recipients(pool, rows).await
}

/// One message.
pub async fn get(pool: &SqlitePool, id: i64) -> Result<Option<QueuedMessage>, StoreError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        message_columns!(),
        " FROM queue_messages WHERE id = ?"
    ))
    .bind(id)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    Ok(with_recipients(pool, rows).await?.pop())
}

/// The sealed body.
pub async fn sealed(pool: &SqlitePool, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
    sqlx::query_scalar("SELECT sealed FROM queue_messages WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(db_err)
}

/// Records an attempt; removes the message once nothing is pending.
pub async fn record(pool: &SqlitePool, id: i64, r: &AttemptRecord) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    for (address, state, reply, mta) in &r.recipients {
        sqlx::query(
            "UPDATE queue_recipients SET state = ?, last_reply = ?, remote_mta = ?
             WHERE message_id = ? AND address = ?",
        )
        .bind(state.as_str())
        .bind(reply)
        .bind(mta)
        .bind(id)
        .bind(address)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM queue_recipients WHERE message_id = ? AND state = ?",
    )
    .bind(id)
    .bind(RecipientState::Pending.as_str())
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    if pending == 0 {
        sqlx::query("DELETE FROM queue_messages WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    } else {
        sqlx::query(
            "UPDATE queue_messages SET attempts = ?, next_attempt = ?, delay_notified = ? WHERE id = ?",
        )
        .bind(i64::from(r.attempts))
        .bind(r.next_attempt)
        .bind(i64::from(r.delay_notified))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)
}

/// Makes one message, or all, due now.
pub async fn retry(pool: &SqlitePool, id: Option<i64>, now: i64) -> Result<u64, StoreError> {
    let done = match id {
        Some(id) => sqlx::query("UPDATE queue_messages SET next_attempt = ? WHERE id = ?")
            .bind(now)
            .bind(id),
        None => sqlx::query("UPDATE queue_messages SET next_attempt = ?").bind(now),
    }
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected())
}

/// Removes one message.
pub async fn delete(pool: &SqlitePool, id: i64) -> Result<(), StoreError> {
    let done = sqlx::query("DELETE FROM queue_messages WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await
        .map_err(db_err)?;
    super::changed_one(done.rows_affected(), &format!("queued message {id}"))
}
