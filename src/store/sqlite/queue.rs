//! SQLite side of the outbound queue: messages with their recipients, and the one
//! writes of an accepted message, for local mailboxes and the queue together.

use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Row, Sqlite, Transaction};

use super::db_err;
use crate::store::{
    Accepted, AttemptRecord, AuditRecord, Committed, EnvelopeRecipient, NewMessage, NewQueued,
    Notify, QueuedMessage, QueuedRecipient, RecipientState, StoreError,
};

/// Writes accepted messages' local copies, audit records and queue entries inside `tx`;
/// returns each one's queue id and UIDs, in order. The caller commits (see
/// `group_commit`). The copies of the whole batch go in a few statements.
pub async fn write_accepted(
    tx: &mut Transaction<'_, Sqlite>,
    batch: &[&Accepted],
) -> Result<Vec<Committed>, StoreError> {
    let copies: Vec<&NewMessage> = batch.iter().flat_map(|a| &a.local).collect();
    let mut uids = super::messages::insert_messages(tx, &copies)
        .await?
        .into_iter();
    let records: Vec<&AuditRecord> = batch.iter().flat_map(|a| &a.audit).collect();
    super::audit_log::append_all(tx, &records).await?;
    let mut committed = Vec::with_capacity(batch.len());
    for accepted in batch {
        let queue_id = match &accepted.queued {
            Some(queued) => Some(enqueue(tx, queued).await?),
            None => None,
        };
        committed.push(Committed {
            queue_id,
            uids: uids.by_ref().take(accepted.local.len()).collect(),
        });
    }
    Ok(committed)
}

/// Writes one queue entry with its recipients; returns its id.
async fn enqueue(tx: &mut Transaction<'_, Sqlite>, q: &NewQueued) -> Result<i64, StoreError> {
    let e = &q.envelope;
    let done = sqlx::query(
        "INSERT INTO queue_messages (created_at, sender, envelope_id, ret_full, smtputf8, size, next_attempt, sealed)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(q.now)
    .bind(&e.sender)
    .bind(&e.envelope_id)
    .bind(i64::from(e.ret_full))
    .bind(i64::from(e.smtputf8))
    .bind(q.size as i64)
    .bind(q.now)
    .bind(&q.sealed)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    let message_id = done.last_insert_rowid();
    for r in &e.recipients {
        sqlx::query(
            "INSERT INTO queue_recipients (message_id, address, notify, orcpt) VALUES (?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(message_id)
        .bind(&r.address)
        .bind(r.notify.bits())
        .bind(&r.orcpt)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
    Ok(message_id)
}

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
