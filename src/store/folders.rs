//! Folders and their messages as IMAP sees them: the types the backends return, the folders
//! every account has (SPECIAL-USE), and the change hub that tells open sessions a folder
//! changed (a delivery, another session's STORE or EXPUNGE) so IDLE answers within a second.
//!
//! Every write that changes a folder goes through a [`Store`] method here, which commits and
//! then rings the folder's bell; sessions then ask the backend what changed since the
//! modification sequence they last saw.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;
use zeroize::Zeroizing;

use super::{Account, Store, StoreError, blocking, message_context};

/// The folders every account has from its first login, with their RFC 6154 use.
pub const DEFAULT_FOLDERS: [(&str, &str); 5] = [
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

/// A folder of an account.
#[derive(Debug, Clone)]
pub struct MailboxInfo {
    /// Row id.
    pub id: i64,
    /// Name (INBOX, Sent, ...), `/` between levels.
    pub name: String,
    /// IMAP UIDVALIDITY: fixed at creation.
    pub uidvalidity: u32,
    /// The UID the next message will get.
    pub uidnext: u32,
    /// The highest modification sequence of the folder (CONDSTORE).
    pub highestmodseq: u64,
    /// RFC 6154 attribute (`\Sent`, ...), if any.
    pub special_use: Option<String>,
    /// In the user's subscription list.
    pub subscribed: bool,
}

/// What is known of a stored message without opening it.
#[derive(Debug, Clone)]
pub struct MessageMeta {
    /// IMAP UID, strictly ascending, never reused.
    pub uid: u32,
    /// Arrival time, seconds since the epoch.
    pub internal_date: i64,
    /// Size of the message in octets.
    pub size: u64,
    /// Space-separated IMAP flags.
    pub flags: String,
    /// Modification sequence of the last change (arrival or flags).
    pub modseq: u64,
}

/// A sealed message to append.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    /// Destination folder.
    pub mailbox_id: i64,
    /// Arrival time, seconds since the epoch.
    pub internal_date: i64,
    /// Size of the clear message.
    pub size: u64,
    /// Initial flags (APPEND), space-separated.
    pub flags: String,
    /// The body sealed under the account's data key.
    pub sealed: Vec<u8>,
    /// The original as received, sealed the same way, when the body is a transformed copy
    /// (an S/MIME message decrypted for its reader).
    pub original: Option<Vec<u8>>,
}

/// What changed in a folder since a modification sequence.
#[derive(Debug, Clone, Default)]
pub struct MailboxDelta {
    /// Messages added or whose flags changed, in UID order.
    pub changed: Vec<MessageMeta>,
    /// UIDs removed, ascending.
    pub expunged: Vec<u32>,
    /// The folder's highest modification sequence now.
    pub highestmodseq: u64,
}

/// The outcome of copying or moving messages: (source UID, new UID) pairs, in source order.
pub type CopiedUids = Vec<(u32, u32)>;

/// Access someone else granted an account (RFC 4314 letters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The mailbox (account) that granted it.
    pub owner: String,
    /// The folder, or None for a delegation of the whole mailbox.
    pub mailbox_id: Option<i64>,
    /// The rights.
    pub rights: String,
}

/// One bell per folder that has a listener: rung after each committed change.
#[derive(Default)]
pub struct FolderChanges {
    bells: Mutex<HashMap<i64, watch::Sender<u64>>>,
}

/// A session's ear on one folder: `changed().await` returns when the folder changed.
pub type MailboxChanges = watch::Receiver<u64>;

impl FolderChanges {
    /// Listens to a folder.
    pub fn subscribe(&self, mailbox_id: i64) -> MailboxChanges {
        let mut bells = self.bells.lock().unwrap_or_else(|e| e.into_inner());
        // Forget folders nobody listens to any more, so the map stays small.
        bells.retain(|_, bell| bell.receiver_count() > 0);
        bells
            .entry(mailbox_id)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Tells the folder's listeners it changed.
    pub fn ring(&self, mailbox_id: i64) {
        let bells = self.bells.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bell) = bells.get(&mailbox_id) {
            bell.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

impl Store {
    /// Listens to changes of a folder.
    pub fn watch_folder(&self, mailbox_id: i64) -> MailboxChanges {
        self.changes.subscribe(mailbox_id)
    }

    /// Rings the folders' bells after a commit that touched them.
    pub(super) fn folders_changed(&self, mailbox_ids: impl IntoIterator<Item = i64>) {
        for id in mailbox_ids {
            self.changes.ring(id);
        }
    }

    /// Creates the special-use folders an account is missing (first login of an account made
    /// before they existed, or after a user deleted one).
    pub async fn ensure_default_folders(&self, account_id: i64) -> Result<(), StoreError> {
        let existing = self.backend.mailboxes(account_id).await?;
        for (name, usage) in DEFAULT_FOLDERS {
            if !existing.iter().any(|m| m.name == name) {
                self.backend
                    .create_mailbox(account_id, name, Some(usage))
                    .await?;
            }
        }
        Ok(())
    }

    /// Deletes a folder and its messages.
    pub async fn delete_folder(&self, mailbox_id: i64) -> Result<(), StoreError> {
        self.backend.delete_mailbox(mailbox_id).await?;
        self.folders_changed([mailbox_id]);
        Ok(())
    }

    /// Seals and appends a message to a folder of `account` (IMAP APPEND); returns its UID
    /// once committed.
    pub async fn append(
        &self,
        account: &Account,
        mailbox_id: i64,
        body: Vec<u8>,
        flags: String,
        internal_date: i64,
    ) -> Result<u32, StoreError> {
        let key = self.account_key(account)?;
        let context = message_context(&account.address);
        let size = body.len() as u64;
        let body = Zeroizing::new(body);
        let sealed = blocking(body.len(), move || Ok(key.seal(&context, &body)?)).await?;
        let message = NewMessage {
            mailbox_id,
            internal_date,
            size,
            flags,
            sealed,
            original: None,
        };
        let uids = self.backend.append_messages(&[message]).await?;
        self.folders_changed([mailbox_id]);
        uids.first()
            .copied()
            .ok_or_else(|| StoreError::Backend("append returned no UID".into()))
    }

    /// Replaces the flags of messages; returns each one's new modification sequence.
    pub async fn store_flags(
        &self,
        mailbox_id: i64,
        updates: &[(u32, String)],
    ) -> Result<Vec<(u32, u64)>, StoreError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let done = self.backend.store_flags(mailbox_id, updates).await?;
        self.folders_changed([mailbox_id]);
        Ok(done)
    }

    /// Removes messages for good (IMAP EXPUNGE, POP3 DELE at QUIT).
    pub async fn expunge(&self, mailbox_id: i64, uids: &[u32]) -> Result<(), StoreError> {
        if uids.is_empty() {
            return Ok(());
        }
        self.backend.delete_messages(mailbox_id, uids).await?;
        self.folders_changed([mailbox_id]);
        Ok(())
    }

    /// Copies (or, with `remove`, moves) messages between two folders of one account, in one
    /// transaction.
    pub async fn copy(
        &self,
        from: i64,
        uids: &[u32],
        to: i64,
        remove: bool,
    ) -> Result<CopiedUids, StoreError> {
        let done = self.backend.copy_messages(from, uids, to, remove).await?;
        self.folders_changed([from, to]);
        Ok(done)
    }

    /// Copies messages to a folder of another account: each is opened with the source's
    /// key and sealed again with the target's, one commit each; with `remove` the sources
    /// are expunged once every copy is committed (a crash in between leaves a duplicate,
    /// never a loss).
    pub async fn copy_between(
        &self,
        from: (&Account, i64),
        messages: &[MessageMeta],
        to: (&Account, i64),
        remove: bool,
    ) -> Result<CopiedUids, StoreError> {
        let mut pairs = Vec::with_capacity(messages.len());
        for meta in messages {
            let body = match self.read_message(from.0, from.1, meta.uid).await {
                Ok(body) => body,
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let uid = self
                .append(
                    to.0,
                    to.1,
                    body.to_vec(),
                    meta.flags.clone(),
                    meta.internal_date,
                )
                .await?;
            pairs.push((meta.uid, uid));
        }
        if remove {
            let moved: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            self.expunge(from.1, &moved).await?;
        }
        Ok(pairs)
    }

    /// Opens the messages of a folder whose UIDs are in `first..=last` (one query, one key
    /// unwrap): how IMAP reads many messages at once.
    pub async fn read_range(
        &self,
        account: &Account,
        mailbox_id: i64,
        first: u32,
        last: u32,
    ) -> Result<Vec<(u32, Zeroizing<Vec<u8>>)>, StoreError> {
        let sealed = self
            .backend
            .messages_sealed(mailbox_id, first, last)
            .await?;
        let context = message_context(&account.address);
        self.open_records(account, context, sealed).await
    }

    /// The summaries kept for the messages whose UIDs are in `first..=last` (messages
    /// without one yet are absent), opened.
    pub async fn read_summaries(
        &self,
        account: &Account,
        mailbox_id: i64,
        first: u32,
        last: u32,
    ) -> Result<Vec<(u32, Zeroizing<Vec<u8>>)>, StoreError> {
        let sealed = self
            .backend
            .summaries_sealed(mailbox_id, first, last)
            .await?;
        let context = summary_context(&account.address);
        self.open_records(account, context, sealed).await
    }

    /// Opens sealed records of `account` under `context`, off the async workers when they
    /// are large (a range of 2,048 summaries is about 1.5 MiB).
    async fn open_records(
        &self,
        account: &Account,
        context: String,
        sealed: Vec<(u32, Vec<u8>)>,
    ) -> Result<Vec<(u32, Zeroizing<Vec<u8>>)>, StoreError> {
        let key = self.account_key(account)?;
        let total: usize = sealed.iter().map(|(_, s)| s.len()).sum();
        blocking(total, move || {
            sealed
                .into_iter()
                .map(|(uid, s)| Ok((uid, key.open(&context, &s)?)))
                .collect()
        })
        .await
    }

    /// Seals and keeps summaries of messages.
    pub async fn keep_summaries(
        &self,
        account: &Account,
        mailbox_id: i64,
        summaries: &[(u32, &[u8])],
    ) -> Result<(), StoreError> {
        if summaries.is_empty() {
            return Ok(());
        }
        let key = self.account_key(account)?;
        let context = summary_context(&account.address);
        let total: usize = summaries.iter().map(|(_, s)| s.len()).sum();
        let clear: Vec<(u32, Zeroizing<Vec<u8>>)> = summaries
            .iter()
            .map(|&(uid, s)| (uid, Zeroizing::new(s.to_vec())))
            .collect();
        let sealed = blocking(total, move || {
            clear
                .iter()
                .map(|(uid, s)| Ok((*uid, key.seal(&context, s)?)))
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await?;
        self.backend.set_summaries(mailbox_id, &sealed).await
    }
}

fn summary_context(address: &str) -> String {
    format!("summary:{address}")
}
