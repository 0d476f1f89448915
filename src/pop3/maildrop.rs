//! The maildrop of a POP3 session: the INBOX as it was at login, the deletion marks kept
//! until QUIT, the rights of the user on it (all of them on their own mailbox, the delegated
//! ones on another's), and the lock that keeps a second POP3 session out while it lasts
//! (RFC 1939 8: [IN-USE], RFC 2449).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::auth::Rights;
use crate::store::{Account, MailboxInfo, MessageMeta};

/// The folders held by a POP3 session, shared by every POP3 listener of the server.
#[derive(Default)]
pub struct MaildropLocks {
    held: Arc<Mutex<HashSet<i64>>>,
}

/// A held maildrop; dropping it (the session ends, however) lets the next session in.
pub struct MaildropLock {
    held: Arc<Mutex<HashSet<i64>>>,
    mailbox_id: i64,
}

fn held(set: &Mutex<HashSet<i64>>) -> MutexGuard<'_, HashSet<i64>> {
    // The set stays consistent even if a holder panicked: take it back.
    set.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MaildropLocks {
    /// The lock of folder `mailbox_id`, unless another session holds it.
    pub fn try_lock(&self, mailbox_id: i64) -> Option<MaildropLock> {
        held(&self.held).insert(mailbox_id).then(|| MaildropLock {
            held: self.held.clone(),
            mailbox_id,
        })
    }
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        held(&self.held).remove(&self.mailbox_id);
    }
}

/// The INBOX of one POP3 session.
pub struct Maildrop {
    /// The mailbox owner (the user, or the mailbox delegated to them).
    pub account: Account,
    /// The folder.
    pub folder: MailboxInfo,
    /// What the user may do here.
    pub rights: Rights,
    messages: Vec<MessageMeta>,
    deleted: Vec<bool>,
    _lock: MaildropLock,
}

impl Maildrop {
    /// The maildrop of `folder`, with its messages as listed at login.
    pub fn new(
        account: Account,
        folder: MailboxInfo,
        rights: Rights,
        messages: Vec<MessageMeta>,
        lock: MaildropLock,
    ) -> Maildrop {
        Maildrop {
            account,
            folder,
            rights,
            deleted: vec![false; messages.len()],
            messages,
            _lock: lock,
        }
    }

    /// Messages not marked deleted, with their 1-based numbers.
    pub fn live(&self) -> impl Iterator<Item = (usize, &MessageMeta)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
            .map(|(i, m)| (i + 1, m))
    }

    /// Message `n` (1-based), unless it does not exist or is marked deleted.
    pub fn get(&self, n: usize) -> Result<&MessageMeta, String> {
        match self.messages.get(n.wrapping_sub(1)) {
            None => Err(format!("No message {n}")),
            Some(_) if self.deleted[n - 1] => Err(format!("Message {n} is deleted")),
            Some(m) => Ok(m),
        }
    }

    /// The unique id of a message (UIDL): the same in every session, never reused, since
    /// UIDs never are and UIDVALIDITY changes only if the folder is re-created.
    pub fn unique_id(&self, message: &MessageMeta) -> String {
        format!("{}.{}", self.folder.uidvalidity, message.uid)
    }

    /// Marks message `n` deleted.
    pub fn delete(&mut self, n: usize) -> Result<(), String> {
        self.get(n)?;
        self.deleted[n - 1] = true;
        Ok(())
    }

    /// Clears every deletion mark (RSET).
    pub fn reset(&mut self) {
        self.deleted.iter_mut().for_each(|d| *d = false);
    }

    /// The UIDs marked deleted, for the UPDATE state.
    pub fn doomed(&self) -> Vec<u32> {
        self.messages
            .iter()
            .zip(&self.deleted)
            .filter(|(_, d)| **d)
            .map(|(m, _)| m.uid)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maildrop_is_held_by_one_session_at_a_time() {
        let locks = MaildropLocks::default();
        let first = locks.try_lock(7);
        assert!(first.is_some());
        assert!(locks.try_lock(7).is_none());
        assert!(locks.try_lock(8).is_some());
        drop(first);
        assert!(locks.try_lock(7).is_some());
    }
}
