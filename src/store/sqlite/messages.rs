//! SQLite side of folders and stored messages: folders (created on first use, listed,
//! renamed with their children), appends (UIDs from the folder's counter, a new modseq each),
//! changes since a modseq (messages and expunged UIDs), flags, copy and move, deletion.

use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Row, Sqlite, Transaction};

use super::{db_err, packed};
use crate::store::{MailboxDelta, MailboxInfo, MessageMeta, StoreError};

// Column lists as macros: sqlx takes only static SQL, which `concat!` builds.
macro_rules! mailbox_columns {
    () => {
        "id, name, uidvalidity, uidnext, highestmodseq, special_use, subscribed"
    };
}

fn mailbox_from_row(r: &SqliteRow) -> Result<MailboxInfo, StoreError> {
    Ok(MailboxInfo {
        id: r.try_get("id").map_err(db_err)?,
        name: r.try_get("name").map_err(db_err)?,
        uidvalidity: r.try_get::<i64, _>("uidvalidity").map_err(db_err)? as u32,
        uidnext: r.try_get::<i64, _>("uidnext").map_err(db_err)? as u32,
        highestmodseq: r.try_get::<i64, _>("highestmodseq").map_err(db_err)? as u64,
        special_use: r.try_get("special_use").map_err(db_err)?,
        subscribed: r.try_get::<i64, _>("subscribed").map_err(db_err)? != 0,
    })
}

/// UIDVALIDITY of a new folder: the creation second, or one more than the last handed out if
/// that is higher (never the same twice, see migration 0017).
async fn new_uidvalidity(pool: &SqlitePool) -> Result<i64, StoreError> {
    let now = chrono::Utc::now().timestamp() & 0x7fff_ffff;
    sqlx::query_scalar(
        "UPDATE counters SET value = MAX(value + 1, ?) WHERE name = 'uidvalidity' RETURNING value",
    )
    .bind(now)
    .fetch_one(pool)
    .await
    .map_err(db_err)
}

pub async fn mailbox(
    pool: &SqlitePool,
    account_id: i64,
    name: &str,
    create: bool,
) -> Result<Option<MailboxInfo>, StoreError> {
    // Read first: creating is a write, and the folder nearly always exists.
    let sql = concat!(
        "SELECT ",
        mailbox_columns!(),
        " FROM mailboxes WHERE account_id = ? AND name = ?"
    );
    let found = sqlx::query(sql)
        .bind(account_id)
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    if let Some(row) = found {
        return mailbox_from_row(&row).map(Some);
    }
    if !create {
        return Ok(None);
    }
    {
        sqlx::query("INSERT INTO mailboxes (account_id, name, uidvalidity) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(account_id)
            .bind(name)
            .bind(new_uidvalidity(pool).await?)
            .execute(pool)
            .await
            .map_err(db_err)?;
    }
    let sql = concat!(
        "SELECT ",
        mailbox_columns!(),
        " FROM mailboxes WHERE account_id = ? AND name = ?"
    );
    let row = sqlx::query(sql)
        .bind(account_id)
        .bind(name)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.as_ref().map(mailbox_from_row).transpose()
}

pub async fn mailboxes(pool: &SqlitePool, account_id: i64) -> Result<Vec<MailboxInfo>, StoreError> {
    let sql = concat!(
        "SELECT ",
        mailbox_columns!(),
        " FROM mailboxes WHERE account_id = ? ORDER BY name"
    );
    let rows = sqlx::query(sql)
        .bind(account_id)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    rows.iter().map(mailbox_from_row).collect()
}

pub async fn create_mailbox(
    pool: &SqlitePool,
    account_id: i64,
    name: &str,
    special_use: Option<&str>,
) -> Result<MailboxInfo, StoreError> {
    let sql = concat!(
        "INSERT INTO mailboxes (account_id, name, uidvalidity, special_use) VALUES (?, ?, ?, ?)
         ON CONFLICT DO NOTHING RETURNING ",
        mailbox_columns!()
    );
    let row = sqlx::query(sql)
        .bind(account_id)
        .bind(name)
        .bind(new_uidvalidity(pool).await?)
        .bind(special_use)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    match row {
        Some(row) => mailbox_from_row(&row),
        None => Err(StoreError::Conflict(format!("folder {name} exists"))),
    }
}

pub async fn delete_mailbox(pool: &SqlitePool, mailbox_id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM mailboxes WHERE id = ?")
        .bind(mailbox_id)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub async fn rename_mailbox(
    pool: &SqlitePool,
    account_id: i64,
    from: &str,
    to: &str,
) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let taken: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM mailboxes WHERE account_id = ? AND (name = ? OR substr(name, 1, ?) = ?)",
    )
    .bind(account_id)
    .bind(to)
    .bind(to.len() as i64 + 1)
    .bind(format!("{to}/"))
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!("folder {to} exists")));
    }
    // The folder and everything under it; a new UIDVALIDITY is not needed: UIDs move along.
    let done = sqlx::query(
        "UPDATE mailboxes SET name = ? || substr(name, ?)
         WHERE account_id = ? AND (name = ? OR substr(name, 1, ?) = ?)",
    )
    .bind(to)
    .bind(from.len() as i64 + 1)
    .bind(account_id)
    .bind(from)
    .bind(from.len() as i64 + 1)
    .bind(format!("{from}/"))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("no folder {from}")));
    }
    tx.commit().await.map_err(db_err)
}

pub async fn set_subscribed(
    pool: &SqlitePool,
    mailbox_id: i64,
    subscribed: bool,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE mailboxes SET subscribed = ? WHERE id = ?")
        .bind(i64::from(subscribed))
        .bind(mailbox_id)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Takes `count` UIDs and as many new modseqs of a folder (count, count, folder id);
/// returns the new UIDNEXT and HIGHESTMODSEQ. Shared with the message writer.
pub const RESERVE_UIDS: &str =
    "UPDATE mailboxes SET uidnext = uidnext + ?, highestmodseq = highestmodseq + ?
     WHERE id = ? RETURNING uidnext, highestmodseq";

/// Takes `count` UIDs and as many new modseqs of the folder; returns the first of each.
async fn next_uids(
    tx: &mut Transaction<'_, Sqlite>,
    mailbox_id: i64,
    count: usize,
) -> Result<(i64, i64), StoreError> {
    let count = count as i64;
    let row = sqlx::query(RESERVE_UIDS)
        .bind(count)
        .bind(count)
        .bind(mailbox_id)
        .fetch_one(&mut **tx)
        .await
        .map_err(db_err)?;
    let uidnext: i64 = row.try_get("uidnext").map_err(db_err)?;
    let highest: i64 = row.try_get("highestmodseq").map_err(db_err)?;
    Ok((uidnext - count, highest - count + 1))
}

/// A new modseq of the folder.
async fn next_modseq(tx: &mut Transaction<'_, Sqlite>, mailbox_id: i64) -> Result<i64, StoreError> {
    sqlx::query_scalar(
        "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING highestmodseq",
    )
    .bind(mailbox_id)
    .fetch_one(&mut **tx)
    .await
    .map_err(db_err)
}

pub async fn list_messages(
    pool: &SqlitePool,
    mailbox_id: i64,
) -> Result<Vec<MessageMeta>, StoreError> {
    let packed = sqlx::query_scalar(concat!(packed::packed_metas!(), "WHERE mailbox_id = ?"))
        .bind(mailbox_id)
        .fetch_one(pool)
        .await
        .map_err(db_err)?;
    packed::metas(packed)
}

pub async fn messages_between(
    pool: &SqlitePool,
    mailbox_id: i64,
    first: u32,
    last: u32,
) -> Result<Vec<MessageMeta>, StoreError> {
    let sql = concat!(
        packed::packed_metas!(),
        "WHERE mailbox_id = ? AND uid BETWEEN ? AND ?"
    );
    packed::metas(packed::over_range(pool, sql, mailbox_id, first, last).await?)
}

/// A folder's highest modseq, read in `tx` (NotFound once the folder is deleted).
async fn highest_modseq(
    tx: &mut Transaction<'_, Sqlite>,
    mailbox_id: i64,
) -> Result<u64, StoreError> {
    let highest: i64 = sqlx::query_scalar("SELECT highestmodseq FROM mailboxes WHERE id = ?")
        .bind(mailbox_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::NotFound("the folder was deleted".into()))?;
    Ok(highest as u64)
}

pub async fn folder_uids(
    pool: &SqlitePool,
    mailbox_id: i64,
) -> Result<(Vec<u32>, u64), StoreError> {
    // One read transaction, so the list and the modseq agree.
    let mut tx = pool.begin().await.map_err(db_err)?;
    let highest = highest_modseq(&mut tx, mailbox_id).await?;
    let packed = sqlx::query_scalar("SELECT group_concat(uid) FROM messages WHERE mailbox_id = ?")
        .bind(mailbox_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok((packed::uids(packed)?, highest))
}

pub async fn uids_by_flags(
    pool: &SqlitePool,
    mailbox_id: i64,
    with: &[String],
    without: &[String],
) -> Result<Vec<u32>, StoreError> {
    // One condition per flag, on bound patterns: the SQL text holds no input. LIKE ignores
    // ASCII case as IMAP flags do, and costs less than splitting the list: first whether the
    // flag occurs anywhere (most rows stop there), then whether as a whole word.
    const HAS: &str = "(flags LIKE ? ESCAPE '^' AND (flags LIKE ? ESCAPE '^' \
        OR flags LIKE ? ESCAPE '^' OR flags LIKE ? ESCAPE '^' OR flags LIKE ? ESCAPE '^'))";
    let mut sql = String::from("SELECT group_concat(uid) FROM messages WHERE mailbox_id = ?");
    for _ in with {
        sql.push_str(" AND ");
        sql.push_str(HAS);
    }
    for _ in without {
        sql.push_str(" AND NOT ");
        sql.push_str(HAS);
    }
    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(mailbox_id);
    for flag in with.iter().chain(without) {
        let flag = like_literal(flag);
        for pattern in [
            format!("%{flag}%"),
            flag.clone(),
            format!("{flag} %"),
            format!("% {flag}"),
            format!("% {flag} %"),
        ] {
            query = query.bind(pattern);
        }
    }
    let packed: Option<String> = query.fetch_one(pool).await.map_err(db_err)?;
    packed::uids(packed)
}

/// `text` matched literally by LIKE ... ESCAPE '^'.
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '^') {
            out.push('^');
        }
        out.push(c);
    }
    out
}

pub async fn changes_since(
    pool: &SqlitePool,
    mailbox_id: i64,
    since: u64,
) -> Result<MailboxDelta, StoreError> {
    // One read transaction, so the three answers agree.
    let mut tx = pool.begin().await.map_err(db_err)?;
    let highest = highest_modseq(&mut tx, mailbox_id).await?;
    let packed = sqlx::query_scalar(concat!(
        packed::packed_metas!(),
        "WHERE mailbox_id = ? AND modseq > ?"
    ))
    .bind(mailbox_id)
    .bind(since as i64)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    let expunged: Vec<i64> = sqlx::query_scalar(
        "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
    )
    .bind(mailbox_id)
    .bind(since as i64)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(MailboxDelta {
        changed: packed::metas(packed)?,
        expunged: expunged.into_iter().map(|u| u as u32).collect(),
        highestmodseq: highest,
    })
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

pub async fn messages_sealed(
    pool: &SqlitePool,
    mailbox_id: i64,
    first: u32,
    last: u32,
) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
    let sql = concat!(
        packed::packed_blobs!("uid", "sealed"),
        "FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ?"
    );
    let packed = packed::over_range(pool, sql, mailbox_id, first, last).await?;
    Ok(packed::present(packed::blobs(packed)?))
}

pub async fn summaries_sealed(
    pool: &SqlitePool,
    mailbox_id: i64,
    first: u32,
    last: u32,
) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
    let sql = concat!(
        packed::packed_blobs!("uid", "summary"),
        "FROM message_summaries WHERE mailbox_id = ? AND uid BETWEEN ? AND ?"
    );
    let packed = packed::over_range(pool, sql, mailbox_id, first, last).await?;
    Ok(packed::present(packed::blobs(packed)?))
}

pub async fn set_summaries(
    pool: &SqlitePool,
    mailbox_id: i64,
    summaries: &[(u32, Vec<u8>)],
) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    for (uid, sealed) in summaries {
        // A message expunged meanwhile has no row to attach to: skipped.
        sqlx::query(
            "INSERT OR REPLACE INTO message_summaries (mailbox_id, uid, summary)
             SELECT mailbox_id, uid, ? FROM messages WHERE mailbox_id = ? AND uid = ?",
        )
        .bind(sealed)
        .bind(mailbox_id)
        .bind(i64::from(*uid))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)
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

pub async fn store_flags(
    pool: &SqlitePool,
    mailbox_id: i64,
    updates: &[(u32, String)],
) -> Result<Vec<(u32, u64)>, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let mut done = Vec::with_capacity(updates.len());
    for (uid, flags) in updates {
        let modseq = next_modseq(&mut tx, mailbox_id).await?;
        let changed = sqlx::query(
            "UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?",
        )
        .bind(flags)
        .bind(modseq)
        .bind(mailbox_id)
        .bind(i64::from(*uid))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if changed.rows_affected() > 0 {
            done.push((*uid, modseq as u64));
        }
    }
    tx.commit().await.map_err(db_err)?;
    Ok(done)
}

/// Deletes messages inside `tx`, recording them as expunged under one new modseq.
async fn remove(
    tx: &mut Transaction<'_, Sqlite>,
    mailbox_id: i64,
    uids: &[u32],
) -> Result<(), StoreError> {
    let modseq = next_modseq(tx, mailbox_id).await?;
    for uid in uids {
        let gone = sqlx::query("DELETE FROM messages WHERE mailbox_id = ? AND uid = ?")
            .bind(mailbox_id)
            .bind(i64::from(*uid))
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        if gone.rows_affected() > 0 {
            sqlx::query(
                "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
            )
            .bind(mailbox_id)
            .bind(i64::from(*uid))
            .bind(modseq)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        }
    }
    Ok(())
}

pub async fn delete_messages(
    pool: &SqlitePool,
    mailbox_id: i64,
    uids: &[u32],
) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    remove(&mut tx, mailbox_id, uids).await?;
    tx.commit().await.map_err(db_err)
}

pub async fn copy_messages(
    pool: &SqlitePool,
    from: i64,
    uids: &[u32],
    to: i64,
    remove_source: bool,
) -> Result<Vec<(u32, u32)>, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    // Both folders must belong to one account: the bodies are sealed under its key.
    let same: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM mailboxes a JOIN mailboxes b ON a.account_id = b.account_id
         WHERE a.id = ? AND b.id = ?",
    )
    .bind(from)
    .bind(to)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    if same.is_none() {
        return Err(StoreError::NotFound(
            "both folders must exist in one account".into(),
        ));
    }
    let mut pairs = Vec::with_capacity(uids.len());
    for uid in uids {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM messages WHERE mailbox_id = ? AND uid = ?")
                .bind(from)
                .bind(i64::from(*uid))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        if exists.is_none() {
            continue;
        }
        let (new_uid, modseq) = next_uids(&mut tx, to, 1).await?;
        sqlx::query(
            "INSERT INTO messages (mailbox_id, uid, internal_date, size, flags, modseq, sealed, original)
             SELECT ?, ?, internal_date, size, flags, ?, sealed, original
             FROM messages WHERE mailbox_id = ? AND uid = ?",
        )
        .bind(to)
        .bind(new_uid)
        .bind(modseq)
        .bind(from)
        .bind(i64::from(*uid))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        // The summary is sealed under the same account's key: it comes along.
        sqlx::query(
            "INSERT INTO message_summaries (mailbox_id, uid, summary)
             SELECT ?, ?, summary FROM message_summaries WHERE mailbox_id = ? AND uid = ?",
        )
        .bind(to)
        .bind(new_uid)
        .bind(from)
        .bind(i64::from(*uid))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        pairs.push((*uid, new_uid as u32));
    }
    if remove_source {
        let moved: Vec<u32> = pairs.iter().map(|(uid, _)| *uid).collect();
        remove(&mut tx, from, &moved).await?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(pairs)
}
