//! The selected mailbox as one session sees it: the UIDs of its messages in sequence-number
//! order (flags, sizes and dates stay in the store and are read per command, so an idle
//! session holds a few bytes per message), and the catching up with changes other sessions
//! and deliveries made, turned into the untagged EXPUNGE (or VANISHED), EXISTS and FETCH
//! FLAGS responses RFC 3501 allows at that moment.

use std::collections::HashSet;

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use super::access::Target;
use crate::auth::Rights;
use crate::store::{Account, MailboxChanges, MailboxInfo, MessageMeta, Store, StoreError};

/// A selected mailbox.
pub struct View {
    /// The folder.
    pub mailbox: MailboxInfo,
    /// The mailbox that owns it (the session's, or one shared with it).
    pub owner: Account,
    /// The session's rights on it, refreshed before each command.
    pub rights: Rights,
    /// EXAMINE, or no right to change the seen state.
    pub read_only: bool,
    /// UIDs in sequence order (message n is at index n - 1).
    uids: UidRuns,
    /// The modseq up to which this view has caught up.
    seen_modseq: u64,
    /// Modseqs of this session's own flag changes, already told to the client.
    own: HashSet<u64>,
    changes: MailboxChanges,
    /// Changes were seen but not reported (expunges during a FETCH): look again next time.
    behind: bool,
    /// CONDSTORE is on: FETCH responses carry MODSEQ.
    pub modseq: bool,
    /// QRESYNC is on: removals are told as VANISHED, not EXPUNGE.
    pub vanished: bool,
    /// The UIDs a `SEARCH RETURN (SAVE)` kept, what `$` stands for (RFC 5182).
    pub saved: Vec<u32>,
}

impl View {
    /// Opens a view of a folder (its UIDs: metadata is read when a command needs it).
    pub async fn open(store: &Store, target: Target, read_only: bool) -> Result<View, StoreError> {
        let Target {
            owner,
            folder: mailbox,
            rights,
            ..
        } = target;
        // Listen first, so a change between the listing and the listening is not missed.
        let mut changes = store.watch_folder(mailbox.id);
        changes.borrow_and_update();
        let (uids, highestmodseq) = store.db().folder_uids(mailbox.id).await?;
        Ok(View {
            seen_modseq: highestmodseq,
            uids: UidRuns::from_sorted(uids),
            own: HashSet::new(),
            mailbox,
            owner,
            rights,
            read_only,
            changes,
            behind: false,
            modseq: false,
            vanished: false,
            saved: Vec::new(),
        })
    }

    /// The highest modseq this view has caught up with.
    pub fn highestmodseq(&self) -> u64 {
        self.seen_modseq
    }

    /// Number of messages (EXISTS).
    pub fn len(&self) -> usize {
        self.uids.len()
    }

    /// The UID of the message at an index (sequence number - 1).
    pub fn uid(&self, index: usize) -> Option<u32> {
        self.uids.get(index)
    }

    /// The index of the message with this UID.
    pub fn index_of(&self, uid: u32) -> Option<usize> {
        self.uids.index_of(uid)
    }

    /// The largest UID in the view (what `*` stands for in a UID set), 0 when empty.
    pub fn last_uid(&self) -> u32 {
        self.uids.last().unwrap_or(0)
    }

    /// Lowest UID that a message could get next, as far as this view knows.
    pub fn uidnext(&self) -> u32 {
        self.uids
            .last()
            .map_or(self.mailbox.uidnext, |u| u.saturating_add(1))
            .max(self.mailbox.uidnext)
    }

    /// Indexes of the messages a sequence set names (by UID or sequence number), ascending.
    /// A set that names nothing is not an error (RFC 3501 allows `UID FETCH 5:*` on an empty
    /// folder to return nothing).
    pub fn resolve(&self, set: &SequenceSet, by_uid: bool) -> Vec<usize> {
        let largest = if by_uid {
            self.uids.last().unwrap_or(0)
        } else {
            self.uids.len() as u32
        };
        let expand = |v: &SeqOrUid| match v {
            SeqOrUid::Value(n) => n.get(),
            SeqOrUid::Asterisk => largest,
        };
        let ranges: Vec<(u32, u32)> = set
            .0
            .as_ref()
            .iter()
            .map(|s| match s {
                Sequence::Single(v) => (expand(v), expand(v)),
                Sequence::Range(a, b) => {
                    let (a, b) = (expand(a), expand(b));
                    (a.min(b), a.max(b))
                }
            })
            .collect();
        let inside = |n: u32| ranges.iter().any(|&(a, b)| a <= n && n <= b);
        if by_uid {
            self.uids
                .iter()
                .enumerate()
                .filter(|(_, uid)| inside(*uid))
                .map(|(i, _)| i)
                .collect()
        } else {
            (0..self.uids.len())
                .filter(|i| inside(*i as u32 + 1))
                .collect()
        }
    }

    /// Whether every sequence number of a set exists: a number past the end is a client
    /// error (BAD), unlike a UID that is gone. A range up to `*` is clipped instead, so
    /// `1:*` on an empty folder answers nothing rather than BAD (as clients expect).
    pub fn valid_numbers(&self, set: &SequenceSet) -> bool {
        let len = self.uids.len() as u32;
        let ok = |v: &SeqOrUid| match v {
            SeqOrUid::Value(n) => n.get() <= len,
            SeqOrUid::Asterisk => len > 0,
        };
        set.0.as_ref().iter().all(|s| match s {
            Sequence::Single(v) => ok(v),
            Sequence::Range(_, SeqOrUid::Asterisk) | Sequence::Range(SeqOrUid::Asterisk, _) => true,
            Sequence::Range(a, b) => ok(a) && ok(b),
        })
    }

    /// Records a flag change this session made and told, so catching up does not tell it
    /// again.
    pub fn note_own(&mut self, modseq: u64) {
        self.own.insert(modseq);
    }

    /// Removes messages and returns how the client is told: `* VANISHED uids` with QRESYNC,
    /// else one `* n EXPUNGE` per message, highest number first (each line stays right as
    /// the client applies it).
    pub fn expunge_report(&mut self, uids: &[u32]) -> Vec<u8> {
        let mut present: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|&uid| self.index_of(uid).is_some())
            .collect();
        present.sort_unstable();
        present.dedup();
        let seqs = self.remove(&present);
        if present.is_empty() {
            return Vec::new();
        }
        if self.vanished {
            return format!("* VANISHED {}\r\n", super::encode::uid_set(&present)).into_bytes();
        }
        seqs.iter()
            .flat_map(|seq| format!("* {seq} EXPUNGE\r\n").into_bytes())
            .collect()
    }

    /// The untagged FETCH that tells a message's flags (and MODSEQ under CONDSTORE).
    pub fn flags_line(&self, index: usize, meta: &MessageMeta, uid: bool) -> Vec<u8> {
        let uid = if uid {
            format!("UID {} ", meta.uid)
        } else {
            String::new()
        };
        let modseq = if self.modseq {
            format!(" MODSEQ ({})", meta.modseq)
        } else {
            String::new()
        };
        format!(
            "* {} FETCH ({uid}FLAGS ({}){modseq})\r\n",
            index + 1,
            meta.flags
        )
        .into_bytes()
    }

    /// Removes messages; returns their sequence numbers, highest first.
    fn remove(&mut self, uids: &[u32]) -> Vec<usize> {
        let mut seqs: Vec<usize> = uids
            .iter()
            .filter_map(|&uid| self.index_of(uid))
            .map(|i| i + 1)
            .collect();
        seqs.sort_unstable_by(|a, b| b.cmp(a));
        seqs.dedup();
        let gone: HashSet<u32> = uids.iter().copied().collect();
        self.uids.retain(|uid| !gone.contains(&uid));
        seqs
    }

    /// Waits until the folder changes (a delivery, another session).
    pub async fn changed(&mut self) {
        if self.changes.changed().await.is_err() {
            // The store is gone (shutdown): never wake again for this reason.
            std::future::pending::<()>().await;
        }
    }

    /// Catches up with the store; returns the untagged responses to send. Expunges are
    /// reported only when `expunges` (never during FETCH, STORE or SEARCH by sequence
    /// number); then nothing is caught up, so nothing is lost. Unless `force` (NOOP, IDLE),
    /// the store is asked only when this server rang the folder's bell since the last look.
    pub async fn catch_up(
        &mut self,
        store: &Store,
        expunges: bool,
        force: bool,
    ) -> Result<Vec<u8>, StoreError> {
        if !force && !self.behind && !self.changes.has_changed().unwrap_or(false) {
            return Ok(Vec::new());
        }
        self.changes.borrow_and_update();
        self.behind = false;
        let delta = store
            .db()
            .changes_since(self.mailbox.id, self.seen_modseq)
            .await?;
        if delta.highestmodseq == self.seen_modseq {
            return Ok(Vec::new());
        }
        let expunged: Vec<u32> = delta
            .expunged
            .iter()
            .copied()
            .filter(|&uid| self.index_of(uid).is_some())
            .collect();
        if !expunges && !expunged.is_empty() {
            self.behind = true;
            return Ok(Vec::new());
        }
        let mut out = self.expunge_report(&expunged);
        let before = self.uids.len();
        let last_uid = self.uids.last().unwrap_or(0);
        let mut flag_changes = Vec::new();
        for meta in delta.changed {
            if meta.uid > last_uid {
                self.uids.push(meta.uid);
            } else if let Some(i) = self.index_of(meta.uid) {
                // This session's own changes were told when made.
                if !self.own.remove(&meta.modseq) {
                    flag_changes.push((i, meta));
                }
            }
        }
        if self.uids.len() != before {
            out.extend_from_slice(format!("* {} EXISTS\r\n", self.uids.len()).as_bytes());
        }
        for (i, meta) in flag_changes {
            out.extend_from_slice(&self.flags_line(i, &meta, true));
        }
        self.own.clear();
        self.seen_modseq = delta.highestmodseq;
        Ok(out)
    }
}

/// UIDs in ascending order, kept as runs of consecutive values: a folder whose messages were
/// never expunged is one run however large it is, so an idle session stays small.
#[derive(Debug, Default, Clone)]
struct UidRuns {
    /// (index of the run's first message, its first UID, its length), ascending.
    runs: Vec<(u32, u32, u32)>,
    len: usize,
}

impl UidRuns {
    fn from_sorted(uids: impl IntoIterator<Item = u32>) -> UidRuns {
        let mut runs = UidRuns::default();
        for uid in uids {
            runs.push(uid);
        }
        runs
    }

    /// Appends a UID greater than every other.
    fn push(&mut self, uid: u32) {
        match self.runs.last_mut() {
            Some(last) if last.1.saturating_add(last.2) == uid => last.2 += 1,
            _ => self.runs.push((self.len as u32, uid, 1)),
        }
        self.len += 1;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn last(&self) -> Option<u32> {
        self.runs.last().map(|r| r.1 + (r.2 - 1))
    }

    fn get(&self, index: usize) -> Option<u32> {
        if index >= self.len {
            return None;
        }
        let run = self.runs.partition_point(|r| r.0 as usize <= index);
        let (start, first, _) = *self.runs.get(run.checked_sub(1)?)?;
        Some(first + (index - start as usize) as u32)
    }

    fn index_of(&self, uid: u32) -> Option<usize> {
        let run = self.runs.partition_point(|r| r.1 <= uid);
        let (start, first, len) = *self.runs.get(run.checked_sub(1)?)?;
        (uid - first < len).then(|| start as usize + (uid - first) as usize)
    }

    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.runs.iter().flat_map(|r| r.1..r.1.saturating_add(r.2))
    }

    fn retain(&mut self, keep: impl Fn(u32) -> bool) {
        let kept: Vec<u32> = self.iter().filter(|&uid| keep(uid)).collect();
        *self = UidRuns::from_sorted(kept);
    }
}

/// Whether a set names `n`, `*` standing for `largest` (the last UID or message number;
/// `u32::MAX` when `n:*` should name everything from n on).
pub fn set_contains(set: &SequenceSet, n: u32, largest: u32) -> bool {
    let value = |v: &SeqOrUid| match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(v) => value(v) == n,
        Sequence::Range(a, b) => {
            let (a, b) = (value(a), value(b));
            a.min(b) <= n && n <= a.max(b)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_runs_map_indices_and_uids() {
        let mut runs = UidRuns::from_sorted([1, 2, 3, 7, 8, 20]);
        assert_eq!(runs.runs.len(), 3);
        assert_eq!((runs.len(), runs.last()), (6, Some(20)));
        assert_eq!(
            (0..7).map(|i| runs.get(i)).collect::<Vec<_>>(),
            vec![Some(1), Some(2), Some(3), Some(7), Some(8), Some(20), None]
        );
        assert_eq!(runs.index_of(7), Some(3));
        assert_eq!(runs.index_of(4), None);
        assert_eq!(runs.index_of(0), None);
        assert_eq!(runs.index_of(21), None);
        runs.push(21);
        assert_eq!(runs.runs.len(), 3);
        runs.retain(|uid| uid != 2 && uid != 20);
        assert_eq!(runs.iter().collect::<Vec<_>>(), vec![1, 3, 7, 8, 21]);
        assert_eq!(runs.index_of(21), Some(4));
    }
}
