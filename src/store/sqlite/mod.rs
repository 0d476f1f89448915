//! The embedded backend: one SQLite file in WAL mode with `synchronous = FULL`, so a commit
//! that returned survives a crash or a power cut. Several processes (the server and the admin
//! CLI) may open it at once; writers wait for each other (busy timeout).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use group_commit::GroupCommit;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

mod accepted;
mod accounts;
mod audit_log;
mod delegation;
mod devices;
mod directory;
mod folders;
mod group_commit;
mod keys;
mod messages;
mod otp;
mod packed;
mod queue;
mod trust;

use super::{
    Accepted, Account, AttemptRecord, AuditRecord, Backend, Committed, Delegation, Device,
    DirectoryProfile, NewAccount, NewKey, OtpState, PendingPublication, QueuedMessage, StoreError,
    StoredKey, TrustDiff, TrustEntry,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/sqlite");

/// The SQLite implementation of [`Backend`].
pub struct SqliteBackend {
    pool: SqlitePool,
    commits: GroupCommit,
}

fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict("already exists".into())
        }
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
            StoreError::Conflict("still referenced by other records".into())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

impl SqliteBackend {
    /// Opens (creating) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteBackend, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating {}: {e}", path.display())))?;
        Ok(SqliteBackend {
            pool,
            commits: GroupCommit::start(path)?,
        })
    }
}

fn changed_one(rows: u64, what: &str) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::NotFound(format!("{what} does not exist")))
    } else {
        Ok(())
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    async fn get_setting(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn put_setting(
        &self,
        key: &str,
        value: &[u8],
        only_if_absent: bool,
    ) -> Result<bool, StoreError> {
        let sql = if only_if_absent {
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"
        } else {
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        };
        let done = sqlx::query(sql)
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn settings_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        // substr() rather than LIKE: prefixes may hold `_` or `%`.
        let rows = sqlx::query(
            "SELECT key, value FROM settings WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("key").map_err(db_err)?,
                    r.try_get("value").map_err(db_err)?,
                ))
            })
            .collect()
    }

    async fn get_secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT sealed FROM secrets WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn put_secret(&self, name: &str, sealed: &[u8]) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO secrets (name, sealed) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed")
            .bind(name)
            .bind(sealed)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn add_domain(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO domains (name, created_at) VALUES (?, ?)")
            .bind(name)
            .bind(chrono::Utc::now().timestamp())
            .execute(&self.pool)
            .await
            .map_err(|e| match db_err(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("domain {name} is already served"))
                }
                other => other,
            })?;
        Ok(())
    }

    async fn list_domains(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT name FROM domains ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn remove_domain(&self, name: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM domains WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(|e| match db_err(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!(
                    "domain {name} still has mailboxes: remove them first"
                )),
                other => other,
            })?;
        changed_one(done.rows_affected(), &format!("domain {name}"))
    }

    async fn add_account(
        &self,
        account: &NewAccount,
        dek_wrapped: &[u8],
    ) -> Result<i64, StoreError> {
        accounts::add_account(&self.pool, account, dek_wrapped).await
    }

    async fn find_account(&self, address: &str) -> Result<Option<Account>, StoreError> {
        accounts::find_account(&self.pool, address).await
    }

    async fn accounts_by_idnat(&self, idnat: &str) -> Result<Vec<Account>, StoreError> {
        accounts::accounts_by_idnat(&self.pool, idnat).await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        accounts::list_accounts(&self.pool).await
    }

    async fn set_password_hash(&self, address: &str, hash: Option<&str>) -> Result<(), StoreError> {
        accounts::set_password_hash(&self.pool, address, hash).await
    }

    async fn set_suspended(&self, address: &str, suspended: bool) -> Result<(), StoreError> {
        accounts::set_suspended(&self.pool, address, suspended).await
    }

    async fn remove_account(&self, address: &str) -> Result<(), StoreError> {
        accounts::remove_account(&self.pool, address).await
    }

    async fn set_quota(&self, address: &str, bytes: Option<u64>) -> Result<(), StoreError> {
        accounts::set_quota(&self.pool, address, bytes).await
    }

    async fn account_usage(&self, account_id: i64) -> Result<u64, StoreError> {
        accounts::account_usage(&self.pool, account_id).await
    }

    async fn grant_delegation(
        &self,
        mailbox: &str,
        delegate: &str,
        send_as: bool,
        rights: &str,
    ) -> Result<(), StoreError> {
        delegation::grant(&self.pool, mailbox, delegate, send_as, rights).await
    }

    async fn revoke_delegation(&self, mailbox: &str, delegate: &str) -> Result<(), StoreError> {
        delegation::revoke(&self.pool, mailbox, delegate).await
    }

    async fn delegations(&self) -> Result<Vec<Delegation>, StoreError> {
        delegation::list(&self.pool).await
    }

    async fn may_send_as(&self, delegate_id: i64, address: &str) -> Result<bool, StoreError> {
        delegation::may_send_as(&self.pool, delegate_id, address).await
    }

    async fn delegated_rights(
        &self,
        delegate_id: i64,
        address: &str,
    ) -> Result<Option<String>, StoreError> {
        delegation::rights(&self.pool, delegate_id, address).await
    }

    async fn accept_message(&self, accepted: Accepted) -> Result<Committed, StoreError> {
        self.commits.accept(accepted).await
    }

    async fn queue_due(&self, now: i64, limit: u32) -> Result<Vec<QueuedMessage>, StoreError> {
        queue::due(&self.pool, now, limit).await
    }

    async fn queue_list(&self) -> Result<Vec<QueuedMessage>, StoreError> {
        queue::list(&self.pool).await
    }

    async fn queue_message(&self, id: i64) -> Result<Option<QueuedMessage>, StoreError> {
        queue::get(&self.pool, id).await
    }

    async fn queue_sealed(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        queue::sealed(&self.pool, id).await
    }

    async fn queue_record(&self, id: i64, record: &AttemptRecord) -> Result<(), StoreError> {
        queue::record(&self.pool, id, record).await
    }

    async fn queue_retry(&self, id: Option<i64>, now: i64) -> Result<u64, StoreError> {
        queue::retry(&self.pool, id, now).await
    }

    async fn queue_delete(&self, id: i64) -> Result<(), StoreError> {
        queue::delete(&self.pool, id).await
    }

    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let accepted = Accepted {
            audit: vec![record.clone()],
            ..Accepted::default()
        };
        self.commits.accept(accepted).await.map(drop)
    }

    async fn audit_records(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(u64, AuditRecord, Vec<u8>)>, StoreError> {
        audit_log::records(&self.pool, after, limit).await
    }

    async fn replace_trust_list(&self, entries: &[TrustEntry]) -> Result<TrustDiff, StoreError> {
        trust::replace(&self.pool, entries).await
    }

    async fn trust_entry(&self, domain: &str) -> Result<Option<TrustEntry>, StoreError> {
        trust::get(&self.pool, domain).await
    }

    async fn trust_entries(&self) -> Result<Vec<TrustEntry>, StoreError> {
        trust::list(&self.pool).await
    }

    async fn trusted_operator(&self, operator_key: &str) -> Result<bool, StoreError> {
        trust::has_operator(&self.pool, operator_key).await
    }

    async fn add_mailbox_key(&self, account_id: i64, key: &NewKey) -> Result<i64, StoreError> {
        keys::add(&self.pool, account_id, key).await
    }

    async fn mailbox_keys(&self, account_id: i64) -> Result<Vec<StoredKey>, StoreError> {
        keys::list(&self.pool, account_id).await
    }

    async fn mailbox_key_sealed(
        &self,
        account_id: i64,
        key_id: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        keys::sealed(&self.pool, account_id, key_id).await
    }

    async fn install_key_certificate(
        &self,
        account_id: i64,
        key_id: i64,
        certificate: &[u8],
        chain: &[u8],
    ) -> Result<(), StoreError> {
        keys::install(&self.pool, account_id, key_id, certificate, chain).await
    }

    async fn otp(&self, account_id: i64) -> Result<Option<OtpState>, StoreError> {
        otp::get(&self.pool, account_id).await
    }

    async fn set_otp_secret(
        &self,
        account_id: i64,
        sealed: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        otp::set_secret(&self.pool, account_id, sealed).await
    }

    async fn set_otp_required(&self, account_id: i64, required: bool) -> Result<(), StoreError> {
        otp::set_required(&self.pool, account_id, required).await
    }

    async fn use_otp_step(&self, account_id: i64, step: i64) -> Result<bool, StoreError> {
        otp::use_step(&self.pool, account_id, step).await
    }

    async fn add_device(
        &self,
        account_id: i64,
        name: &str,
        secret_hash: &[u8],
    ) -> Result<i64, StoreError> {
        devices::add(&self.pool, account_id, name, secret_hash).await
    }

    async fn devices(&self, account_id: i64) -> Result<Vec<Device>, StoreError> {
        devices::list(&self.pool, account_id).await
    }

    async fn device_by_secret(
        &self,
        account_id: i64,
        secret_hash: &[u8],
    ) -> Result<Option<Device>, StoreError> {
        devices::by_secret(&self.pool, account_id, secret_hash).await
    }

    async fn device_usable(&self, id: i64) -> Result<bool, StoreError> {
        devices::usable(&self.pool, id).await
    }

    async fn set_device_blocked(
        &self,
        account_id: i64,
        name: &str,
        blocked: bool,
    ) -> Result<bool, StoreError> {
        devices::set_blocked(&self.pool, account_id, name, blocked).await
    }

    async fn remove_device(&self, account_id: i64, name: &str) -> Result<bool, StoreError> {
        devices::remove(&self.pool, account_id, name).await
    }

    async fn device_used(&self, id: i64, from: &str, protocol: &str) -> Result<(), StoreError> {
        devices::used(&self.pool, id, from, protocol).await
    }

    async fn bind_certificate(
        &self,
        account_id: i64,
        fingerprint: &[u8],
        subject: &str,
    ) -> Result<(), StoreError> {
        devices::bind_certificate(&self.pool, account_id, fingerprint, subject).await
    }

    async fn unbind_certificates(&self, account_id: i64) -> Result<u64, StoreError> {
        devices::unbind_certificates(&self.pool, account_id).await
    }

    async fn bound_account(&self, fingerprint: &[u8]) -> Result<Option<String>, StoreError> {
        devices::bound_account(&self.pool, fingerprint).await
    }

    async fn add_pairing(
        &self,
        account_id: i64,
        name: &str,
        code_hash: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        devices::add_pairing(&self.pool, account_id, name, code_hash, expires_at).await
    }

    async fn redeem_pairing(
        &self,
        code_hash: &[u8],
        now: i64,
    ) -> Result<Option<(String, String)>, StoreError> {
        devices::redeem_pairing(&self.pool, code_hash, now).await
    }

    async fn put_correspondent(&self, address: &str, certificate: &[u8]) -> Result<(), StoreError> {
        keys::put_correspondent(&self.pool, address, certificate).await
    }

    async fn correspondent(&self, address: &str) -> Result<Option<Vec<u8>>, StoreError> {
        keys::correspondent(&self.pool, address).await
    }

    async fn correspondents(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        keys::correspondents(&self.pool).await
    }

    async fn remove_correspondent(&self, address: &str) -> Result<(), StoreError> {
        keys::remove_correspondent(&self.pool, address).await
    }

    async fn directory_profile(
        &self,
        account_id: i64,
    ) -> Result<Option<DirectoryProfile>, StoreError> {
        directory::profile(&self.pool, account_id).await
    }

    async fn set_directory_profile(
        &self,
        account_id: i64,
        profile: &DirectoryProfile,
    ) -> Result<(), StoreError> {
        directory::set_profile(&self.pool, account_id, profile).await
    }

    async fn directory_enqueue(&self, address: &str, now: i64) -> Result<(), StoreError> {
        directory::enqueue(&self.pool, address, now).await
    }

    async fn directory_pending(&self, limit: u32) -> Result<Vec<PendingPublication>, StoreError> {
        directory::pending(&self.pool, limit).await
    }

    async fn directory_done(&self, seq: i64, address: &str) -> Result<(), StoreError> {
        directory::done(&self.pool, seq, address).await
    }

    async fn directory_failed(&self, seq: i64, error: &str) -> Result<(), StoreError> {
        directory::failed(&self.pool, seq, error).await
    }
}
