//! SQLite side of the trust space: the whole list replaced in one transaction.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::db_err;
use crate::store::{StoreError, TrustDiff, TrustEntry};

fn entry_from_row(row: &SqliteRow) -> Result<TrustEntry, StoreError> {
    Ok(TrustEntry {
        domain: row.try_get("domain").map_err(db_err)?,
        operator_dn: row.try_get("operator_dn").map_err(db_err)?,
        operator_key: row.try_get("operator_key").map_err(db_err)?,
        description: row.try_get("description").map_err(db_err)?,
        support_contact: row.try_get("support_contact").map_err(db_err)?,
        updated: row.try_get("updated").map_err(db_err)?,
    })
}

/// The columns, in the order `entry_from_row` and the INSERT use (a macro: sqlx takes only
/// static SQL text).
macro_rules! columns {
    () => {
        "domain, operator_dn, operator_key, description, support_contact, updated"
    };
}

/// Replaces the list; readers see the old one or the new one, never a mix.
pub async fn replace(pool: &SqlitePool, entries: &[TrustEntry]) -> Result<TrustDiff, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let old: HashMap<String, String> =
        sqlx::query("SELECT domain, operator_key FROM trust_domains")
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("domain").map_err(db_err)?,
                    r.try_get("operator_key").map_err(db_err)?,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
    sqlx::query("DELETE FROM trust_domains")
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    let mut diff = TrustDiff {
        total: entries.len(),
        ..TrustDiff::default()
    };
    for e in entries {
        sqlx::query(concat!(
            "INSERT INTO trust_domains (",
            columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?)"
        ))
        .bind(&e.domain)
        .bind(&e.operator_dn)
        .bind(&e.operator_key)
        .bind(&e.description)
        .bind(&e.support_contact)
        .bind(&e.updated)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        match old.get(&e.domain) {
            None => diff.added.push(e.domain.clone()),
            Some(key) if *key != e.operator_key => diff.changed.push(e.domain.clone()),
            Some(_) => {}
        }
    }
    let new: std::collections::HashSet<&str> = entries.iter().map(|e| e.domain.as_str()).collect();
    diff.removed = old
        .into_keys()
        .filter(|d| !new.contains(d.as_str()))
        .collect();
    diff.removed.sort();
    tx.commit().await.map_err(db_err)?;
    Ok(diff)
}

/// One domain's entry.
pub async fn get(pool: &SqlitePool, domain: &str) -> Result<Option<TrustEntry>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM trust_domains WHERE domain = ?"
    ))
    .bind(domain)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?
    .as_ref()
    .map(entry_from_row)
    .transpose()
}

/// Every entry, by domain.
pub async fn list(pool: &SqlitePool) -> Result<Vec<TrustEntry>, StoreError> {
    sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM trust_domains ORDER BY domain"
    ))
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(entry_from_row)
    .collect()
}

/// Whether some domain of the list has this operator (normalised DN).
pub async fn has_operator(pool: &SqlitePool, operator_key: &str) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trust_domains WHERE operator_key = ?")
        .bind(operator_key)
        .fetch_one(pool)
        .await
        .map_err(db_err)?;
    Ok(n > 0)
}
