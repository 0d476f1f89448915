//! Storage: one [`Backend`] trait, interchangeable implementations, and the [`Store`] that
//! every session and command uses.
//!
//! Backends keep rows and opaque bytes; they never see a readable message or key. The
//! [`Store`] seals bodies and secrets (see [`vault`]) before they reach a backend and opens
//! them on the way out, so a second backend (PostgreSQL, for multi-node operators) is one more
//! `impl Backend`, with the encryption shared.

mod audit_log;
mod backend;
mod devices;
mod directory;
mod folders;
mod keys;
mod otp;
mod queue;
mod sqlite;
mod trust;
pub mod vault;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use zeroize::Zeroizing;

pub use audit_log::AuditRecord;
pub use backend::{Backend, Folders};
pub use devices::Device;
pub use directory::{DirectoryProfile, PendingPublication};
pub use folders::{
    DEFAULT_FOLDERS, FolderChanges, Grant, MailboxChanges, MailboxDelta, MailboxInfo, MessageMeta,
    NewMessage,
};
pub use keys::{KeyState, KeyUse, NewKey, StoredKey};
pub use otp::OtpState;
pub use queue::{
    Accepted, AttemptRecord, Committed, Envelope, EnvelopeRecipient, NewQueued, Notify,
    QueuedMessage, QueuedRecipient, RecipientState,
};
pub use trust::{TrustDiff, TrustEntry};
pub use vault::{FileKek, Kek, VaultError};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with what is stored (duplicate, still in use).
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("database: {0}")]
    Backend(String),
    /// Keys or sealed data failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// The kinds of MSSanté mailbox (BAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// A professional's own mailbox, owned by their idNat.
    Per,
    /// A service or team of a structure.
    Org,
    /// Software (authenticates with a software certificate).
    App,
    /// Shared by a practice.
    Cab,
}

impl AccountKind {
    /// The directory code: PER, ORG, APP or CAB.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Per => "PER",
            AccountKind::Org => "ORG",
            AccountKind::App => "APP",
            AccountKind::Cab => "CAB",
        }
    }
}

impl FromStr for AccountKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "PER" => Ok(AccountKind::Per),
            "ORG" => Ok(AccountKind::Org),
            "APP" => Ok(AccountKind::App),
            "CAB" => Ok(AccountKind::Cab),
            _ => Err(format!(
                "unknown mailbox type {s:?}: expected PER, ORG, APP or CAB"
            )),
        }
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mailbox owner to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Full address, lower case.
    pub address: String,
    /// PER, ORG, APP or CAB.
    pub kind: AccountKind,
    /// National identifier of the owner (PER) or responsible person.
    pub idnat: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// argon2id PHC string; None for certificate-only accounts.
    pub password_hash: Option<String>,
}

/// A stored mailbox owner.
#[derive(Debug, Clone)]
pub struct Account {
    /// Row id.
    pub id: i64,
    /// Full address, lower case.
    pub address: String,
    /// The domain part.
    pub domain: String,
    /// PER, ORG, APP or CAB.
    pub kind: AccountKind,
    /// National identifier.
    pub idnat: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// argon2id PHC string.
    pub password_hash: Option<String>,
    /// A suspended account can neither log in nor receive.
    pub suspended: bool,
    /// Its own quota in bytes; None: the configured default.
    pub quota_bytes: Option<u64>,
    dek_wrapped: Vec<u8>,
}

/// A delegation between two mailboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// The mailbox acted for.
    pub mailbox: String,
    /// The mailbox that acts.
    pub delegate: String,
    /// The delegate may send as the mailbox (envelope sender and From:).
    pub send_as: bool,
    /// What the delegate may do in the mailbox: RFC 4314 letters.
    pub rights: String,
}

/// What one local mailbox receives of an accepted message.
#[derive(Debug, Clone)]
pub struct LocalCopy {
    /// The mailbox.
    pub account: Account,
    /// The message as its owner reads it, when it differs from the one received (decrypted,
    /// or annotated with a signature verdict).
    pub opened: Option<Vec<u8>>,
    /// Keep the message as received beside it (it was decrypted: the original is the proof).
    pub keep_original: bool,
    /// The audit record of the escrowed key that decrypted it, committed with the copy.
    pub key_use: Option<AuditRecord>,
}

/// The store every session and command uses: a backend plus the key-encryption key.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    kek: Arc<dyn Kek>,
    /// Seals queued messages (wrapped under the KEK in the settings).
    queue_key: Arc<vault::DataKey>,
    /// Rung after each change to a folder, for open IMAP sessions.
    changes: Arc<FolderChanges>,
}

const KEK_CHECK: &str = "kek.check";
const KEK_CHECK_VALUE: &[u8] = b"mssante key-encryption key check";
const QUEUE_KEY: &str = "queue.dek";

impl Store {
    /// Opens (creating if new) the embedded store in `data_dir`, with the KEK at `kek_file`
    /// (default: `data_dir/kek.key`). A new data dir gets a new KEK; an existing store whose
    /// KEK is missing or different is refused, never re-keyed.
    pub async fn open(data_dir: &Path, kek_file: Option<&Path>) -> Result<Store, StoreError> {
        create_private_dir(data_dir)?;
        let kek_path = kek_file.map_or_else(|| data_dir.join("kek.key"), Path::to_path_buf);
        let db_path = data_dir.join("mssante.db");
        let _init = InitLock::acquire(data_dir)?;
        let is_new = !db_path.exists();
        let kek: Arc<dyn Kek> = if kek_path.exists() {
            Arc::new(FileKek::load(&kek_path)?)
        } else if is_new {
            Arc::new(FileKek::create(&kek_path)?)
        } else {
            return Err(StoreError::Vault(VaultError::KekFile {
                path: kek_path,
                reason:
                    "missing, but the store in this data directory exists: restore the key file"
                        .into(),
            }));
        };
        let backend: Arc<dyn Backend> = Arc::new(sqlite::SqliteBackend::open(&db_path).await?);
        match backend.get_setting(KEK_CHECK).await? {
            Some(sealed) => {
                if kek.unwrap(KEK_CHECK, &sealed)?.as_slice() != KEK_CHECK_VALUE {
                    return Err(StoreError::Vault(VaultError::Unseal));
                }
            }
            None => {
                let sealed = kek.wrap(KEK_CHECK, KEK_CHECK_VALUE)?;
                backend.put_setting(KEK_CHECK, &sealed, true).await?;
            }
        }
        // Made once, under the init lock, so two processes never make two.
        let queue_key = match backend.get_setting(QUEUE_KEY).await? {
            Some(wrapped) => vault::open_data_key(kek.as_ref(), QUEUE_KEY, &wrapped)?,
            None => {
                let (wrapped, key) = vault::new_data_key(kek.as_ref(), QUEUE_KEY)?;
                backend.put_setting(QUEUE_KEY, &wrapped, true).await?;
                key
            }
        };
        Ok(Store {
            backend,
            kek,
            queue_key: Arc::new(queue_key),
            changes: Arc::default(),
        })
    }

    /// The metadata operations (domains, accounts, settings) that need no key.
    pub fn db(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Creates an account with a fresh data key and its INBOX.
    pub async fn create_account(&self, account: &NewAccount) -> Result<i64, StoreError> {
        let (wrapped, _) = vault::new_data_key(self.kek.as_ref(), &dek_context(&account.address))?;
        let id = self.backend.add_account(account, &wrapped).await?;
        self.backend.mailbox(id, "INBOX", true).await?;
        self.ensure_default_folders(id).await?;
        Ok(id)
    }

    /// Commits one accepted message: sealed into the INBOX of each local account and, when
    /// `outbound` is given, into the queue, in one transaction with `audit` and the copies'
    /// key uses. When this returns Ok, every copy is committed. Returns the queue id.
    pub async fn accept(
        &self,
        local: &[LocalCopy],
        outbound: Option<Envelope>,
        raw: &[u8],
        queued_message: Option<Vec<u8>>,
        mut audit: Vec<AuditRecord>,
    ) -> Result<Option<i64>, StoreError> {
        let now = chrono::Utc::now().timestamp();
        let mut targets = Vec::with_capacity(local.len());
        for LocalCopy {
            account,
            opened,
            keep_original,
            key_use,
        } in local
        {
            audit.extend(key_use.clone());
            let key = self.account_key(account)?;
            // Read first: creating is a write, and the INBOX nearly always exists.
            let mailbox = match self.backend.mailbox(account.id, "INBOX", false).await? {
                Some(mailbox) => mailbox,
                None => self
                    .backend
                    .mailbox(account.id, "INBOX", true)
                    .await?
                    .ok_or_else(|| {
                        StoreError::NotFound(format!("no INBOX for {}", account.address))
                    })?,
            };
            targets.push((
                key,
                account.address.clone(),
                mailbox.id,
                opened.clone(),
                *keep_original,
            ));
        }
        let queue_key = outbound
            .as_ref()
            .filter(|e| !e.recipients.is_empty())
            .map(|_| self.queue_key.clone());
        let queued_size = queued_message.as_ref().map_or(raw.len(), Vec::len) as u64;
        let raw = raw.to_vec();
        // Sealing a large message is CPU work: off the async executor.
        let (batch, queue_sealed) = blocking(raw.len(), move || {
            let mut batch = Vec::with_capacity(targets.len());
            for (key, address, mailbox_id, opened, keep_original) in targets {
                let context = message_context(&address);
                let body = opened.as_deref().unwrap_or(&raw);
                let original = keep_original
                    .then(|| key.seal(&original_context(&address), &raw))
                    .transpose()?;
                batch.push(NewMessage {
                    mailbox_id,
                    internal_date: now,
                    size: body.len() as u64,
                    flags: String::new(),
                    sealed: key.seal(&context, body)?,
                    original,
                });
            }
            let for_queue = queued_message.as_deref().unwrap_or(&raw);
            let queue_sealed = queue_key
                .map(|key| key.seal(QUEUE_CONTEXT, for_queue))
                .transpose()?;
            Ok((batch, queue_sealed))
        })
        .await?;
        let queued = match (outbound, queue_sealed) {
            (Some(envelope), Some(sealed)) => Some(NewQueued {
                envelope,
                size: queued_size,
                sealed,
                now,
            }),
            _ => None,
        };
        let folders: Vec<i64> = batch.iter().map(|m| m.mailbox_id).collect();
        let committed = self
            .backend
            .accept_message(Accepted {
                local: batch,
                queued,
                audit,
            })
            .await?;
        self.folders_changed(folders);
        Ok(committed.queue_id)
    }

    /// Opens the body of a queued message.
    pub async fn queued_body(&self, id: i64) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let sealed =
            self.backend.queue_sealed(id).await?.ok_or_else(|| {
                StoreError::NotFound(format!("queued message {id} does not exist"))
            })?;
        let key = self.queue_key.clone();
        blocking(sealed.len(), move || Ok(key.open(QUEUE_CONTEXT, &sealed)?)).await
    }

    /// The data key an account's messages are sealed under.
    fn account_key(&self, account: &Account) -> Result<vault::DataKey, StoreError> {
        Ok(vault::open_data_key(
            self.kek.as_ref(),
            &dek_context(&account.address),
            &account.dek_wrapped,
        )?)
    }

    /// Opens one stored message of `account`.
    pub async fn read_message(
        &self,
        account: &Account,
        mailbox_id: i64,
        uid: u32,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let sealed = self
            .backend
            .message_sealed(mailbox_id, uid)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no message with UID {uid}")))?;
        let key = self.account_key(account)?;
        let context = message_context(&account.address);
        blocking(sealed.len(), move || Ok(key.open(&context, &sealed)?)).await
    }

    /// Opens the original, as received, of a message the server transformed for its reader
    /// (decrypted S/MIME); None when the message was stored as received.
    pub async fn read_original(
        &self,
        account: &Account,
        mailbox_id: i64,
        uid: u32,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let Some(sealed) = self.backend.message_original(mailbox_id, uid).await? else {
            return Ok(None);
        };
        let key = self.account_key(account)?;
        let context = original_context(&account.address);
        blocking(sealed.len(), move || Ok(key.open(&context, &sealed)?))
            .await
            .map(Some)
    }

    /// Seals and stores a secret (a private key) under the KEK.
    pub async fn put_secret(&self, name: &str, secret: &[u8]) -> Result<(), StoreError> {
        let sealed = self.kek.wrap(&secret_context(name), secret)?;
        self.backend.put_secret(name, &sealed).await
    }

    /// Opens a stored secret.
    pub async fn get_secret(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        match self.backend.get_secret(name).await? {
            Some(sealed) => Ok(Some(self.kek.unwrap(&secret_context(name), &sealed)?)),
            None => Ok(None),
        }
    }
}

const QUEUE_CONTEXT: &str = "queue:msg";

/// [`crate::blocking::run_sized`] for work over `bytes` that fails with a [`StoreError`].
async fn blocking<T: Send + 'static>(
    bytes: usize,
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    crate::blocking::run_sized(bytes, work).await
}

impl From<crate::blocking::TaskFailed> for StoreError {
    fn from(e: crate::blocking::TaskFailed) -> Self {
        StoreError::Backend(e.to_string())
    }
}

fn dek_context(address: &str) -> String {
    format!("dek:{address}")
}
fn message_context(address: &str) -> String {
    format!("msg:{address}")
}
fn original_context(address: &str) -> String {
    format!("original:{address}")
}
fn secret_context(name: &str) -> String {
    format!("secret:{name}")
}

/// Creates a directory only its owner can enter (the data directory).
pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            StoreError::Backend(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })
}

/// Serialises the initialisation of a data dir between processes (the CLI and `serve`).
struct InitLock(std::fs::File);

impl InitLock {
    fn acquire(data_dir: &Path) -> Result<InitLock, StoreError> {
        let path: PathBuf = data_dir.join(".init.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
        file.lock()
            .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
        Ok(InitLock(file))
    }
}

impl Drop for InitLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}
