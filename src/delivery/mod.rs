//! The delivery pipeline: where accepted mail goes. Every message travels the same road: the
//! copies for local mailboxes and the queue entry for other operators and relayed hospitals
//! are committed together, before the SMTP reply; then the queue is woken.
//! S/MIME in and out joins here (S/MIME issue).

use std::sync::Arc;

use mssante_directory::whitelist;
use tokio::sync::Notify;

use crate::config::Config;
use crate::directory::DirectoryLookup;
use crate::store::{Account, Envelope, EnvelopeRecipient, Store, StoreError};
use crate::tls::SmimeTrust;

mod protect;
mod smime;
mod verdicts;

pub use protect::{Protected, SmimeOutbound};
pub use smime::SmimeInbound;
pub use verdicts::without_verdicts;

/// What a recipient address is to this server.
#[derive(Debug)]
pub enum Recipient {
    /// A local mailbox that can receive.
    Local(Account),
    /// A local mailbox that is suspended.
    Suspended,
    /// In a served domain, but no such mailbox.
    UnknownMailbox,
    /// A hospital domain this operator relays for.
    Relay,
    /// A domain of another operator of the trust space.
    Remote,
    /// Not served, not relayed, not in the trust space.
    Outside,
}

/// Whether a local mailbox can take a message of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// There is room.
    Room,
    /// The mailbox is full already (452 4.2.2: it may empty).
    Full,
    /// This message alone would overflow it (552 5.2.2).
    TooBig,
}

/// Decides where mail goes and puts it there.
#[derive(Clone)]
pub struct Delivery {
    store: Store,
    config: Arc<Config>,
    queue_wakeup: Arc<Notify>,
    smime: SmimeInbound,
    outbound_smime: SmimeOutbound,
    /// Other operators' recipients in the national directory.
    directory: Option<Arc<DirectoryLookup>>,
}

impl Delivery {
    /// The pipeline on this store; S/MIME signatures are checked against `trust`.
    pub fn new(store: Store, config: Config, trust: Option<Arc<SmimeTrust>>) -> Delivery {
        let smime = SmimeInbound::new(store.clone(), trust, config.limits.max_message_size);
        let directory = config.directory.as_ref().and_then(|settings| {
            crate::directory::connection(settings)
                .map_err(|e| tracing::error!(error = %e, "directory lookups off"))
                .ok()
                .map(|c| Arc::new(DirectoryLookup::new(c)))
        });
        let outbound_smime = SmimeOutbound::new(store.clone(), &config.smime, directory.clone());
        Delivery {
            directory,
            outbound_smime,
            store,
            config: Arc::new(config),
            queue_wakeup: Arc::new(Notify::new()),
            smime,
        }
    }

    /// Notified each time something is queued.
    pub fn queue_wakeup(&self) -> Arc<Notify> {
        self.queue_wakeup.clone()
    }

    /// Classifies a recipient address (already lower-cased).
    pub async fn recipient(&self, address: &str) -> Result<Recipient, StoreError> {
        // RFC 5321 4.5.1: a bare <Postmaster> is the first postmaster@ mailbox of the served
        // domains (in name order).
        if address == "postmaster" {
            for domain in self.store.db().list_domains().await? {
                let candidate = format!("postmaster@{domain}");
                if self.store.db().find_account(&candidate).await?.is_some() {
                    return Box::pin(self.recipient(&candidate)).await;
                }
            }
            return Ok(Recipient::UnknownMailbox);
        }
        if let Some(account) = self.store.db().find_account(address).await? {
            return Ok(if account.suspended {
                Recipient::Suspended
            } else {
                Recipient::Local(account)
            });
        }
        let Some(domain) = address
            .rsplit_once('@')
            .and_then(|(_, d)| whitelist::a_label(d).ok())
        else {
            return Ok(Recipient::Outside);
        };
        let db = self.store.db();
        if db.list_domains().await?.contains(&domain) {
            return Ok(Recipient::UnknownMailbox);
        }
        if self.config.relay_domain(&domain).is_some() {
            return Ok(Recipient::Relay);
        }
        Ok(if db.trust_entry(&domain).await?.is_some() {
            Recipient::Remote
        } else {
            Recipient::Outside
        })
    }

    /// Whether a submitted message may go to `address` at another operator: false only when
    /// `[directory] check_remote_recipients` is on and the directory answers that it does
    /// not know the address (a directory that fails never stops mail).
    pub async fn known_remote(&self, address: &str) -> bool {
        let wanted = self
            .config
            .directory
            .as_ref()
            .is_some_and(|d| d.check_remote_recipients);
        let Some(directory) = self.directory.as_deref().filter(|_| wanted) else {
            return true;
        };
        match directory.exists(address).await {
            Ok(known) => known,
            Err(e) => {
                tracing::warn!(recipient = %address, error = %e, "directory check skipped");
                true
            }
        }
    }

    /// Whether `account` has room for `incoming` more octets.
    pub async fn quota(&self, account: &Account, incoming: u64) -> Result<Quota, StoreError> {
        let limit = account
            .quota_bytes
            .unwrap_or(self.config.limits.mailbox_quota);
        if limit == 0 {
            return Ok(Quota::Room);
        }
        let used = self.store.db().account_usage(account.id).await?;
        Ok(if used >= limit {
            Quota::Full
        } else if used.saturating_add(incoming) > limit {
            Quota::TooBig
        } else {
            Quota::Room
        })
    }

    /// Commits one message for its local recipients and, through the queue, for the others
    /// (`protected`: what [`Delivery::protect`] made of it for them). Ok means every copy is
    /// committed, with the audit records of the escrowed keys used on it. Returns the queue
    /// id when something was queued.
    pub async fn accept(
        &self,
        local: &[Account],
        outbound: Option<Envelope>,
        message: &[u8],
        protected: Protected,
    ) -> Result<Option<i64>, StoreError> {
        let copies = self.smime.open(local, message).await;
        let audit = protected.key_use.into_iter().collect();
        let queued = self
            .store
            .accept(&copies, outbound, message, protected.message, audit)
            .await?;
        if queued.is_some() {
            self.queue_wakeup.notify_one();
        }
        Ok(queued)
    }

    /// Signs and encrypts, per `[smime] outbound`, what `user` submits from `sender` (their
    /// own address or a mailbox delegated to them, whose key signs) for the remote
    /// `recipients`.
    pub async fn protect(
        &self,
        user: &Account,
        sender: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Protected {
        let signer = match self.store.db().find_account(sender).await {
            Ok(Some(mailbox)) => mailbox,
            _ => user.clone(),
        };
        self.outbound_smime
            .protect(&signer, recipients, message)
            .await
    }

    /// Sends a delivery report (null sender) to `to`: into its mailbox when it is local,
    /// through the queue otherwise. Returns false when `to` cannot receive one.
    pub async fn send_report(&self, to: &str, report: &[u8]) -> Result<bool, StoreError> {
        match self.recipient(to).await? {
            Recipient::Local(account) => {
                self.accept(&[account], None, report, Protected::default())
                    .await?;
                Ok(true)
            }
            Recipient::Relay | Recipient::Remote => {
                let envelope = Envelope {
                    sender: String::new(),
                    envelope_id: None,
                    ret_full: false,
                    smtputf8: false,
                    recipients: vec![EnvelopeRecipient {
                        address: to.to_string(),
                        notify: crate::store::Notify::DEFAULT,
                        orcpt: None,
                    }],
                };
                self.accept(&[], Some(envelope), report, Protected::default())
                    .await?;
                Ok(true)
            }
            Recipient::Suspended | Recipient::UnknownMailbox | Recipient::Outside => Ok(false),
        }
    }
}
