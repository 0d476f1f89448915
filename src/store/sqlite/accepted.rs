//! What accepting messages writes, on the message writer's own connection (see
//! `group_commit`): the local copies (each with the next UID and a new modseq of its
//! folder), the audit records chained to the last one, the queue entries with their
//! recipients. These run synchronously on the writer's thread through rusqlite: every sqlx
//! statement is a round trip to its connection's thread, and with one commit per message
//! those hand-offs cost more CPU than the writes themselves.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior, params};

use super::messages::RESERVE_UIDS;
use crate::store::{Accepted, AuditRecord, Committed, NewMessage, NewQueued, StoreError};

/// Opens the writer's connection to the database that `SqliteBackend::open` created,
/// migrated and put in WAL mode (which stays with the file), with the same durability
/// (`synchronous = FULL`) and the same wait for other writers.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
    connection
        .busy_timeout(Duration::from_secs(30))
        .map_err(sql_err)?;
    connection
        .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(sql_err)?;
    Ok(connection)
}

/// Commits `batch` in one transaction; returns each message's queue id and UIDs, in order.
pub fn commit(
    connection: &mut Connection,
    batch: &[&Accepted],
) -> Result<Vec<Committed>, StoreError> {
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let copies: Vec<&NewMessage> = batch.iter().flat_map(|a| &a.local).collect();
    let mut uids = insert_messages(&tx, &copies)?.into_iter();
    let records: Vec<&AuditRecord> = batch.iter().flat_map(|a| &a.audit).collect();
    append_audit(&tx, &records)?;
    let mut committed = Vec::with_capacity(batch.len());
    for accepted in batch {
        let queue_id = match &accepted.queued {
            Some(queued) => Some(enqueue(&tx, queued)?),
            None => None,
        };
        committed.push(Committed {
            queue_id,
            uids: uids.by_ref().take(accepted.local.len()).collect(),
        });
    }
    tx.commit().map_err(sql_err)?;
    Ok(committed)
}

/// Inserts `messages` in order, each with the next UID and a new modseq of its folder;
/// returns their UIDs. One UPDATE per folder reserves its numbers for the whole batch.
fn insert_messages(tx: &Transaction, messages: &[&NewMessage]) -> Result<Vec<u32>, StoreError> {
    let mut next: HashMap<i64, (i64, i64)> = HashMap::new();
    for m in messages {
        if let Entry::Vacant(slot) = next.entry(m.mailbox_id) {
            let count = messages
                .iter()
                .filter(|o| o.mailbox_id == m.mailbox_id)
                .count() as i64;
            let (uidnext, highest): (i64, i64) = tx
                .prepare_cached(RESERVE_UIDS)
                .and_then(|mut s| {
                    s.query_row(params![count, count, m.mailbox_id], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                })
                .map_err(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => {
                        StoreError::NotFound(format!("folder {} does not exist", m.mailbox_id))
                    }
                    e => sql_err(e),
                })?;
            slot.insert((uidnext - count, highest - count + 1));
        }
    }
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO messages (mailbox_id, uid, internal_date, size, flags, modseq, sealed, original)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .map_err(sql_err)?;
    let mut uids = Vec::with_capacity(messages.len());
    for m in messages {
        let slot = next
            .get_mut(&m.mailbox_id)
            .ok_or_else(|| StoreError::Backend("a folder without reserved UIDs".into()))?;
        let (uid, modseq) = *slot;
        *slot = (uid + 1, modseq + 1);
        insert
            .execute(params![
                m.mailbox_id,
                uid,
                m.internal_date,
                m.size as i64,
                m.flags,
                modseq,
                m.sealed,
                m.original
            ])
            .map_err(sql_err)?;
        uids.push(uid as u32);
    }
    Ok(uids)
}

/// Appends `records` in order, each chained to the one before, the first to the last record
/// in the log. The transaction holds the write lock (`BEGIN IMMEDIATE`), so two writers (the
/// server and the admin CLI) cannot chain to the same record.
fn append_audit(tx: &Transaction, records: &[&AuditRecord]) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let previous: Option<Vec<u8>> = tx
        .prepare_cached("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(sql_err(e)),
        })?;
    let mut hash = previous.unwrap_or_default();
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO audit_log (at, event, actor, source, outcome, detail, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .map_err(sql_err)?;
    for record in records {
        hash = record.chained(&hash);
        insert
            .execute(params![
                record.at,
                record.event,
                record.actor,
                record.source,
                record.outcome,
                record.detail,
                hash
            ])
            .map_err(sql_err)?;
    }
    Ok(())
}

/// Writes one queue entry with its recipients; returns its id.
fn enqueue(tx: &Transaction, q: &NewQueued) -> Result<i64, StoreError> {
    let e = &q.envelope;
    tx.prepare_cached(
        "INSERT INTO queue_messages (created_at, sender, envelope_id, ret_full, smtputf8, size, next_attempt, sealed)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .and_then(|mut s| {
        s.execute(params![
            q.now,
            e.sender,
            e.envelope_id,
            i64::from(e.ret_full),
            i64::from(e.smtputf8),
            q.size as i64,
            q.now,
            q.sealed
        ])
    })
    .map_err(sql_err)?;
    let message_id = tx.last_insert_rowid();
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO queue_recipients (message_id, address, notify, orcpt) VALUES (?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .map_err(sql_err)?;
    for r in &e.recipients {
        insert
            .execute(params![message_id, r.address, r.notify.bits(), r.orcpt])
            .map_err(sql_err)?;
    }
    Ok(message_id)
}

/// The writer's errors in the store's terms, as `db_err` does for sqlx's.
fn sql_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::ConstraintViolation;
    use rusqlite::ffi::{
        SQLITE_CONSTRAINT_FOREIGNKEY, SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE,
    };
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == ConstraintViolation => {
            match f.extended_code {
                SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY => {
                    StoreError::Conflict("already exists".into())
                }
                SQLITE_CONSTRAINT_FOREIGNKEY => {
                    StoreError::Conflict("still referenced by other records".into())
                }
                _ => StoreError::Backend(e.to_string()),
            }
        }
        _ => StoreError::Backend(e.to_string()),
    }
}
