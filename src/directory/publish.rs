//! Publishing the operator's mailboxes (`[directory]`): every mailbox change
//! queues its address in the store's outbox; the publisher writes, in order, what each
//! mailbox says at that moment (or removes the entry of a mailbox that is gone). When the
//! directory is down, mailbox operations still succeed: the outbox waits and `serve` retries
//! every `retry_secs`. `mssante directory sync` compares the directory with the store and
//! repairs drift.

use std::sync::Arc;
use std::time::Duration;

use mssante_directory::{DirectoryConfig, DirectoryError, DirectorySession, Entry};
use tokio::sync::Notify;

use super::{connection, mailbox_type};
use crate::audit::{Audit, Outcome};
use crate::config::Config;
use crate::store::{Account, KeyState, KeyUse, Store, StoreError};

/// Publications handled per connection.
const BATCH: u32 = 200;

/// Why the directory could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The directory failed (down, slow, refused).
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Publishes the operator's mailboxes.
#[derive(Clone)]
pub struct Publisher {
    store: Store,
    config: DirectoryConfig,
    retry: Duration,
    wakeup: Arc<Notify>,
}

/// What one run of the outbox did.
#[derive(Debug, Default)]
pub struct Drained {
    /// Entries written or removed.
    pub written: usize,
    /// Mailboxes whose entry the directory refuses for good, with its reason (audited as
    /// `directory.refused`; `directory sync` will report them again).
    pub refused: Vec<(String, String)>,
}

/// What `directory sync` found (and, unless a dry run, repaired).
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Mailboxes the directory did not have.
    pub missing: Vec<String>,
    /// Entries that did not say what their mailbox says.
    pub stale: Vec<String>,
    /// Entries of the operator's domains with no mailbox here.
    pub extra: Vec<String>,
}

impl Publisher {
    /// The publisher `[directory]` describes; None when there is none. Fails when the
    /// password file or the CA file cannot be read.
    pub fn from_config(config: &Config, store: Store) -> Result<Option<Publisher>, String> {
        let Some(settings) = &config.directory else {
            return Ok(None);
        };
        Ok(Some(Publisher {
            store,
            config: connection(settings)?,
            retry: Duration::from_secs(settings.retry_secs.max(1)),
            wakeup: Arc::new(Notify::new()),
        }))
    }

    /// Queues `address` for publication and wakes the publisher.
    pub async fn changed(&self, address: &str) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp();
        self.store.db().directory_enqueue(address, now).await?;
        self.wakeup.notify_one();
        Ok(())
    }

    /// The entry the directory should hold for `account`: its profile and its current
    /// encryption certificate.
    pub async fn entry_for(&self, account: &Account) -> Result<Entry, StoreError> {
        let profile = self
            .store
            .db()
            .directory_profile(account.id)
            .await?
            .unwrap_or_default();
        let certificate = self
            .store
            .keys(account)
            .await?
            .into_iter()
            .find(|k| k.usage == KeyUse::Encryption && k.state == KeyState::Current)
            .and_then(|k| k.certificate);
        Ok(Entry {
            owner_idnat: account.idnat.clone(),
            display_name: account.display_name.clone(),
            surname: profile.surname,
            given_name: profile.given_name,
            structure_id: profile.structure_id,
            profession_code: profile.profession_code,
            service: profile.service,
            description: profile.description,
            phone: profile.phone,
            responsible: profile.responsible,
            dematerialisation: profile.dematerialisation,
            red_list: profile.red_list,
            certificate,
            ..Entry::new(&account.address, mailbox_type(account.kind))
        })
    }

    /// Writes the pending publications in order; stops at the first failure that may pass
    /// (recorded on its row, the rest wait behind it).
    pub async fn publish_pending(&self) -> Result<Drained, PublishError> {
        let mut drained = Drained::default();
        loop {
            let pending = self.store.db().directory_pending(BATCH).await?;
            if pending.is_empty() {
                return Ok(drained);
            }
            let mut session = match DirectorySession::open(&self.config).await {
                Ok(session) => session,
                Err(e) => {
                    if let Some(first) = pending.first() {
                        self.store
                            .db()
                            .directory_failed(first.seq, &e.to_string())
                            .await?;
                    }
                    return Err(e.into());
                }
            };
            for publication in pending {
                match self.write(&mut session, &publication.address).await {
                    Ok(()) => {
                        self.store
                            .db()
                            .directory_done(publication.seq, &publication.address)
                            .await?;
                        drained.written += 1;
                    }
                    // The directory will never take this entry: said, audited, and out of
                    // the way of the ones behind it.
                    Err(PublishError::Directory(e)) if e.is_permanent() => {
                        tracing::error!(mailbox = %publication.address, error = %e, "the directory refuses this entry");
                        Audit::new(self.store.clone())
                            .record(
                                "directory.refused",
                                &publication.address,
                                "directory",
                                Outcome::Refused,
                                &e.to_string(),
                            )
                            .await?;
                        self.store
                            .db()
                            .directory_done(publication.seq, &publication.address)
                            .await?;
                        drained
                            .refused
                            .push((publication.address.clone(), e.to_string()));
                    }
                    Err(e) => {
                        let text = e.to_string();
                        self.store
                            .db()
                            .directory_failed(publication.seq, &text)
                            .await?;
                        return Err(e);
                    }
                }
            }
            session.close().await;
        }
    }

    /// Brings `address`'s entry in line with its mailbox (or removes it).
    async fn write(
        &self,
        session: &mut DirectorySession,
        address: &str,
    ) -> Result<(), PublishError> {
        match self.store.db().find_account(address).await? {
            Some(account) => {
                let entry = self.entry_for(&account).await?;
                let published = session.publish(&entry).await?;
                tracing::info!(mailbox = %address, ?published, "directory entry written");
            }
            None => {
                let removed = session.remove(address).await?;
                tracing::info!(mailbox = %address, removed, "directory entry removed");
            }
        }
        Ok(())
    }

    /// Runs in `serve`: publishes what is pending at once when woken (a change made by this
    /// process), and looks at the outbox every `retry_secs` (changes the CLI could not
    /// publish, a directory that failed).
    pub async fn run(self) {
        loop {
            match self.publish_pending().await {
                Ok(drained) if drained.written > 0 => {
                    tracing::info!(published = drained.written, "directory up to date");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, retry_secs = self.retry.as_secs(), "directory publication failed; the changes wait in the outbox");
                }
            }
            let _ = tokio::time::timeout(self.retry, self.wakeup.notified()).await;
        }
    }

    /// Compares the directory's entries of the served domains with the mailboxes; unless
    /// `dry_run`, repairs: missing and stale entries written, extra ones removed (audited).
    pub async fn sync(&self, dry_run: bool) -> Result<SyncReport, PublishError> {
        let domains = self.store.db().list_domains().await?;
        let mut session = DirectorySession::open(&self.config).await?;
        let mut published: std::collections::HashMap<String, Entry> = session
            .entries_of(&domains)
            .await?
            .into_iter()
            .map(|e| (e.address.clone(), e))
            .collect();
        let mut report = SyncReport::default();
        for account in self.store.db().list_accounts().await? {
            let wanted = self.entry_for(&account).await?;
            match published.remove(&account.address) {
                None => report.missing.push(account.address.clone()),
                Some(found) if found != wanted => report.stale.push(account.address.clone()),
                Some(_) => continue,
            }
            if !dry_run {
                session.publish(&wanted).await?;
            }
        }
        report.extra = published.into_keys().collect();
        report.extra.sort();
        if !dry_run {
            for address in &report.extra {
                session.remove(address).await?;
            }
            let detail = format!(
                "{} missing, {} stale, {} extra",
                report.missing.len(),
                report.stale.len(),
                report.extra.len()
            );
            Audit::new(self.store.clone())
                .record("directory.sync", "admin", "cli", Outcome::Ok, &detail)
                .await?;
        }
        session.close().await;
        Ok(report)
    }
}

/// One line per finding: `missing|stale|extra ADDRESS`.
impl std::fmt::Display for SyncReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (what, list) in [
            ("missing", &self.missing),
            ("stale", &self.stale),
            ("extra", &self.extra),
        ] {
            for address in list.iter() {
                writeln!(f, "{what:<8} {address}")?;
            }
        }
        Ok(())
    }
}
