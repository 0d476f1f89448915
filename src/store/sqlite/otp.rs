//! The one-time-code rows (`account_otp`): sealed secret, last step used, requirement.

use sqlx::Row;
use sqlx::sqlite::SqlitePool;

use super::db_err;
use crate::store::{OtpState, StoreError};

/// The row of `account_id`, if any.
pub async fn get(pool: &SqlitePool, account_id: i64) -> Result<Option<OtpState>, StoreError> {
    let row =
        sqlx::query("SELECT secret, last_step, required FROM account_otp WHERE account_id = ?")
            .bind(account_id)
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
    row.map(|r| {
        Ok(OtpState {
            sealed_secret: r.try_get("secret").map_err(db_err)?,
            last_step: r.try_get("last_step").map_err(db_err)?,
            required: r.try_get::<i64, _>("required").map_err(db_err)? != 0,
        })
    })
    .transpose()
}

/// Sets (or, None, removes) the sealed secret; a new secret starts with no step used.
pub async fn set_secret(
    pool: &SqlitePool,
    account_id: i64,
    sealed: Option<&[u8]>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO account_otp (account_id, secret, last_step, enrolled_at) VALUES (?, ?, 0, ?)
         ON CONFLICT (account_id) DO UPDATE SET secret = excluded.secret, last_step = 0,
         enrolled_at = excluded.enrolled_at",
    )
    .bind(account_id)
    .bind(sealed)
    .bind(sealed.map(|_| chrono::Utc::now().timestamp()))
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Sets whether a code is required.
pub async fn set_required(
    pool: &SqlitePool,
    account_id: i64,
    required: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO account_otp (account_id, required) VALUES (?, ?)
         ON CONFLICT (account_id) DO UPDATE SET required = excluded.required",
    )
    .bind(account_id)
    .bind(i64::from(required))
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Records `step` as used if it is later than the last one; false when it is not (the code
/// was used already, perhaps by a concurrent login).
pub async fn use_step(pool: &SqlitePool, account_id: i64, step: i64) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE account_otp SET last_step = ? WHERE account_id = ? AND last_step < ?")
            .bind(step)
            .bind(account_id)
            .bind(step)
            .execute(pool)
            .await
            .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}
