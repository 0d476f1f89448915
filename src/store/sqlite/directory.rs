//! SQLite side of the directory: mailbox profiles and the publication outbox.

use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::db_err;
use crate::store::{DirectoryProfile, PendingPublication, StoreError};

fn profile_of(r: &SqliteRow) -> Result<DirectoryProfile, StoreError> {
    Ok(DirectoryProfile {
        surname: r.try_get("surname").map_err(db_err)?,
        given_name: r.try_get("given_name").map_err(db_err)?,
        structure_id: r.try_get("structure_id").map_err(db_err)?,
        profession_code: r.try_get("profession_code").map_err(db_err)?,
        service: r.try_get("service").map_err(db_err)?,
        description: r.try_get("description").map_err(db_err)?,
        phone: r.try_get("phone").map_err(db_err)?,
        responsible: r.try_get("responsible").map_err(db_err)?,
        dematerialisation: r.try_get::<i64, _>("dematerialisation").map_err(db_err)? != 0,
        red_list: r.try_get::<i64, _>("red_list").map_err(db_err)? != 0,
    })
}

/// The profile of `account_id`, if it has one.
pub async fn profile(
    pool: &SqlitePool,
    account_id: i64,
) -> Result<Option<DirectoryProfile>, StoreError> {
    sqlx::query("SELECT * FROM directory_profiles WHERE account_id = ?")
        .bind(account_id)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?
        .as_ref()
        .map(profile_of)
        .transpose()
}

/// Replaces the profile of `account_id`.
pub async fn set_profile(
    pool: &SqlitePool,
    account_id: i64,
    p: &DirectoryProfile,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT OR REPLACE INTO directory_profiles (account_id, surname, given_name, structure_id,
         profession_code, service, description, phone, responsible, dematerialisation, red_list)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(account_id)
    .bind(&p.surname)
    .bind(&p.given_name)
    .bind(&p.structure_id)
    .bind(&p.profession_code)
    .bind(&p.service)
    .bind(&p.description)
    .bind(&p.phone)
    .bind(&p.responsible)
    .bind(i64::from(p.dematerialisation))
    .bind(i64::from(p.red_list))
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Queues `address` for publication.
pub async fn enqueue(pool: &SqlitePool, address: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO directory_outbox (address, queued_at) VALUES (?, ?)")
        .bind(address)
        .bind(now)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// The oldest `limit` pending publications, in order.
pub async fn pending(pool: &SqlitePool, limit: u32) -> Result<Vec<PendingPublication>, StoreError> {
    let rows = sqlx::query("SELECT * FROM directory_outbox ORDER BY seq LIMIT ?")
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok(PendingPublication {
                seq: r.try_get("seq").map_err(db_err)?,
                address: r.try_get("address").map_err(db_err)?,
                queued_at: r.try_get("queued_at").map_err(db_err)?,
                attempts: r.try_get("attempts").map_err(db_err)?,
                last_error: r.try_get("last_error").map_err(db_err)?,
            })
        })
        .collect()
}

/// Removes a publication that is done, with the older rows of the same address (the entry
/// now says what the mailbox says).
pub async fn done(pool: &SqlitePool, seq: i64, address: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM directory_outbox WHERE seq <= ? AND address = ?")
        .bind(seq)
        .bind(address)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Records a failed attempt.
pub async fn failed(pool: &SqlitePool, seq: i64, error: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE directory_outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
    )
    .bind(error)
    .bind(seq)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}
