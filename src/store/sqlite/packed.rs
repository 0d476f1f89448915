//! Many rows read as one value. sqlx's SQLite driver hands every row from its worker thread
//! to the async side through a channel, with a copy of each value: for the thousands of rows
//! an IMAP `FETCH 1:*` or `SEARCH` reads, that cost several times the query itself. Here
//! SQLite packs the rows into one value with an aggregate, and Rust unpacks it.
//!
//! There is no ORDER BY inside the aggregates: SQLite would sort again what the index gives
//! in order. The unpackers sort by UID when (rarely) needed.

use sqlx::Sqlite;
use sqlx::sqlite::SqlitePool;

use super::db_err;
use crate::store::{MessageMeta, StoreError};

/// Runs a packing query over a UID range (its SQL ends with `mailbox_id = ? AND uid
/// BETWEEN ? AND ?`) and returns its one value (None when no row matched).
pub(super) async fn over_range<T>(
    pool: &SqlitePool,
    sql: &'static str,
    mailbox_id: i64,
    first: u32,
    last: u32,
) -> Result<Option<T>, StoreError>
where
    T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite> + Send + Unpin,
{
    sqlx::query_scalar::<Sqlite, Option<T>>(sql)
        .bind(mailbox_id)
        .bind(i64::from(first))
        .bind(i64::from(last))
        .fetch_one(pool)
        .await
        .map_err(db_err)
}

/// Selects the metadata of the messages a `WHERE` clause (to append) picks, one line per
/// message: "uid date size modseq flags" (flags last: they hold spaces). Read with [`metas`].
macro_rules! packed_metas {
    () => {
        "SELECT group_concat(uid || ' ' || internal_date || ' ' || size || ' ' || modseq \
         || ' ' || flags, char(10)) FROM messages "
    };
}
pub(super) use packed_metas;

/// Packs `(uid, blob)` rows into one blob of records "uid length bytes", the length -1 for
/// a NULL. The two arguments are SQL expressions; a `FROM ... WHERE ...` follows.
macro_rules! packed_blobs {
    ($uid:literal, $blob:literal) => {
        concat!(
            "SELECT CAST(group_concat(printf('%d %d ', ",
            $uid,
            ", coalesce(length(",
            $blob,
            "), -1)) || coalesce(",
            $blob,
            ", X''), '') AS BLOB) "
        )
    };
}
pub(super) use packed_blobs;

fn malformed(what: &str) -> StoreError {
    StoreError::Backend(format!("{what} read from the database does not parse"))
}

/// The messages of a [`packed_metas`] answer, by UID (none when no row matched).
pub(super) fn metas(packed: Option<String>) -> Result<Vec<MessageMeta>, StoreError> {
    let Some(packed) = packed else {
        return Ok(Vec::new());
    };
    let bad = || malformed("a message's metadata");
    let mut metas = packed
        .split('\n')
        .map(|line| {
            let mut fields = line.splitn(5, ' ');
            let mut number = || {
                fields
                    .next()
                    .and_then(|f| f.parse::<i64>().ok())
                    .ok_or_else(bad)
            };
            let (uid, internal_date, size, modseq) = (number()?, number()?, number()?, number()?);
            Ok(MessageMeta {
                uid: uid as u32,
                internal_date,
                size: size as u64,
                modseq: modseq as u64,
                flags: fields.next().ok_or_else(bad)?.to_string(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    if !metas.is_sorted_by_key(|m| m.uid) {
        metas.sort_unstable_by_key(|m| m.uid);
    }
    Ok(metas)
}

/// The UIDs of a `group_concat(uid)`, ascending (none when no row matched).
pub(super) fn uids(packed: Option<String>) -> Result<Vec<u32>, StoreError> {
    let Some(packed) = packed else {
        return Ok(Vec::new());
    };
    let mut uids = packed
        .split(',')
        .map(|uid| uid.parse::<u32>().map_err(|_| malformed("a UID")))
        .collect::<Result<Vec<_>, _>>()?;
    if !uids.is_sorted() {
        uids.sort_unstable();
    }
    Ok(uids)
}

/// A UID and its blob (None for a NULL).
pub(super) type Record = (u32, Option<Vec<u8>>);

/// The records of a [`packed_blobs`] answer, by UID (none when no row matched).
pub(super) fn blobs(packed: Option<Vec<u8>>) -> Result<Vec<Record>, StoreError> {
    let Some(packed) = packed else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut rest = &packed[..];
    while !rest.is_empty() {
        let (uid, after) = number(rest).ok_or_else(|| malformed("a UID"))?;
        let (length, after) = number(after).ok_or_else(|| malformed("a length"))?;
        let Ok(length) = usize::try_from(length) else {
            out.push((uid as u32, None));
            rest = after;
            continue;
        };
        let bytes = after.get(..length).ok_or_else(|| malformed("a record"))?;
        out.push((uid as u32, Some(bytes.to_vec())));
        rest = &after[length..];
    }
    if !out.is_sorted_by_key(|(uid, _)| *uid) {
        out.sort_unstable_by_key(|(uid, _)| *uid);
    }
    Ok(out)
}

/// The records of a NOT NULL column: each with its bytes.
pub(super) fn present(records: Vec<Record>) -> Vec<(u32, Vec<u8>)> {
    records
        .into_iter()
        .filter_map(|(uid, bytes)| Some((uid, bytes?)))
        .collect()
}

/// A decimal number followed by a space, and what follows.
fn number(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let end = bytes.iter().position(|&b| b == b' ')?;
    let n = std::str::from_utf8(&bytes[..end]).ok()?.parse().ok()?;
    Some((n, &bytes[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqlitePoolOptions;

    #[tokio::test]
    async fn rows_come_back_as_they_went_in() {
        let pool = SqlitePoolOptions::new()
            .connect("sqlite::memory:")
            .await
            .expect("memory database");
        sqlx::query("CREATE TABLE t (uid INTEGER, b BLOB)")
            .execute(&pool)
            .await
            .expect("table");
        // Bytes that text handling would break: NUL, newline, invalid UTF-8, the separator.
        let rows: [(i64, Option<Vec<u8>>); 4] = [
            (7, Some(b"a\0b\n\xff 3 ".to_vec())),
            (2, None),
            (9, Some(Vec::new())),
            (4, Some(vec![0xC3, 0x28, b' ', b'-', b'1'])),
        ];
        for (uid, b) in &rows {
            sqlx::query("INSERT INTO t VALUES (?, ?)")
                .bind(uid)
                .bind(b)
                .execute(&pool)
                .await
                .expect("insert");
        }
        let packed: Option<Vec<u8>> =
            sqlx::query_scalar(concat!(packed_blobs!("uid", "b"), "FROM t"))
                .fetch_one(&pool)
                .await
                .expect("select");
        let mut expected: Vec<(u32, Option<Vec<u8>>)> =
            rows.iter().map(|(u, b)| (*u as u32, b.clone())).collect();
        expected.sort_by_key(|(u, _)| *u);
        assert_eq!(blobs(packed).expect("unpack"), expected);

        let none: Option<Vec<u8>> =
            sqlx::query_scalar(concat!(packed_blobs!("uid", "b"), "FROM t WHERE uid > 100"))
                .fetch_one(&pool)
                .await
                .expect("select");
        assert_eq!(blobs(none).expect("unpack"), Vec::new());
    }

    #[test]
    fn damaged_packs_are_errors_not_panics() {
        for bad in [&b"1 5 abc"[..], b"x 1 a", b"1 ", b"12"] {
            assert!(blobs(Some(bad.to_vec())).is_err(), "{bad:?}");
        }
        assert!(metas(Some("1 2 3".into())).is_err());
        let one = metas(Some("3 100 20 5 \\Seen $Label1".into())).expect("parses");
        assert_eq!((one[0].uid, one[0].flags.as_str()), (3, "\\Seen $Label1"));
    }

    #[test]
    fn fuzz_packed_rows() {
        mssante_fuzzing::fuzz(
            "store packed",
            &[
                b"7 9 a\0b\n\xff 3 2 -1 9 0 4 5 \xc3( -1",
                b"3 100 20 5 \\Seen $Label1\n4 101 21 6 \n1 99 10 2 \\Deleted",
                b"1,5,3,99999",
            ],
            |input| {
                let _ = blobs(Some(input.to_vec()));
                let text = String::from_utf8_lossy(input).into_owned();
                let _ = metas(Some(text.clone()));
                let _ = uids(Some(text));
            },
        );
    }
}
