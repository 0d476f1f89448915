//! Where the cached parts of messages ([`Cached`]: header block, BODYSTRUCTURE, BODY) come
//! from: memory first, then the store (sealed), then the message itself (made once, kept).
//!
//! The memory part, [`SummaryCache`], is shared by every IMAP session of the server, so a
//! folder's second SEARCH on headers, SORT or header FETCH decrypts nothing, whoever sends
//! it. A message never changes and a UID is never reused under one UIDVALIDITY, so an entry
//! can never be stale: entries of expunged messages are dropped by the session that
//! expunges, or wait for eviction. It holds decrypted data in memory only (never on disk),
//! zeroized when an entry goes, and it is bounded in octets: when full, the folder used
//! longest ago is dropped whole.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::cache::Cached;
use super::fetch::{RUN, runs};
use super::session::Session;
use super::view::View;
use crate::store::StoreError;

/// One incarnation of a folder: its row id and UIDVALIDITY (a row id may come back for a
/// folder made after another was deleted; its UIDVALIDITY never does).
pub type FolderKey = (i64, u32);

/// Cached parts of a run of messages, by UID.
pub type Parts = HashMap<u32, Arc<Cached>>;

/// What one entry costs beyond its octets (map node, `Arc`, ranges): an estimate that keeps
/// the bound honest for small messages.
const ENTRY_OVERHEAD: usize = 96;

/// Cached parts in memory, shared by the sessions, bounded in octets.
pub struct SummaryCache {
    limit: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    folders: HashMap<FolderKey, Folder>,
    octets: usize,
    /// Ticks at each use, to find the folder used longest ago.
    clock: u64,
}

#[derive(Default)]
struct Folder {
    entries: BTreeMap<u32, Arc<Cached>>,
    octets: usize,
    used: u64,
}

fn cost(cached: &Cached) -> usize {
    cached.encoded().len() + ENTRY_OVERHEAD
}

impl SummaryCache {
    /// A cache holding at most `limit` octets (0: nothing is kept).
    pub fn new(limit: usize) -> SummaryCache {
        SummaryCache {
            limit,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counts at worst slightly off: keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The entries of `folder` whose UIDs lie in `first..=last`.
    pub fn range(&self, folder: FolderKey, first: u32, last: u32) -> Parts {
        let mut state = self.state();
        state.clock += 1;
        let clock = state.clock;
        let Some(entries) = state.folders.get_mut(&folder) else {
            return Parts::new();
        };
        entries.used = clock;
        entries
            .entries
            .range(first..=last)
            .map(|(&uid, cached)| (uid, cached.clone()))
            .collect()
    }

    /// Keeps entries of `folder`, dropping the folders used longest ago to stay within the
    /// limit. A folder never grows past the limit by itself: what does not fit is not kept.
    pub fn keep<'a>(
        &self,
        folder: FolderKey,
        entries: impl IntoIterator<Item = (&'a u32, &'a Arc<Cached>)>,
    ) {
        if self.limit == 0 {
            return;
        }
        let mut state = self.state();
        state.clock += 1;
        let clock = state.clock;
        let mut added = 0;
        let target = state.folders.entry(folder).or_default();
        target.used = clock;
        for (&uid, cached) in entries {
            let cost = cost(cached);
            if target.octets + cost > self.limit {
                break;
            }
            if target.entries.insert(uid, cached.clone()).is_none() {
                target.octets += cost;
                added += cost;
            }
        }
        state.octets += added;
        while state.octets > self.limit {
            let oldest = state
                .folders
                .iter()
                .filter(|(key, _)| **key != folder)
                .min_by_key(|(_, f)| f.used)
                .map(|(key, _)| *key);
            let Some(oldest) = oldest else { break };
            if let Some(dropped) = state.folders.remove(&oldest) {
                state.octets -= dropped.octets;
            }
        }
    }

    /// Drops the entries of expunged messages.
    pub fn forget(&self, folder: FolderKey, uids: &[u32]) {
        let mut state = self.state();
        let Some(target) = state.folders.get_mut(&folder) else {
            return;
        };
        let mut freed = 0;
        for uid in uids {
            if let Some(cached) = target.entries.remove(uid) {
                freed += cost(&cached);
            }
        }
        target.octets -= freed;
        state.octets -= freed;
    }
}

impl Session<'_> {
    /// Drops from memory the cached parts of messages this session expunged.
    pub(super) fn forget_summaries(&self, folder: &crate::store::MailboxInfo, uids: &[u32]) {
        self.ctx
            .imap_summaries
            .forget((folder.id, folder.uidvalidity), uids);
    }

    /// The cached parts of the messages at a run of view indices: from memory, else from the
    /// store, else made from the message (and kept in both).
    pub(super) async fn cached(&self, run: &[usize]) -> Result<Parts, StoreError> {
        let Some((view, first, last)) = self.run_bounds(run) else {
            return Ok(Parts::new());
        };
        let folder = (view.mailbox.id, view.mailbox.uidvalidity);
        let memory = &self.ctx.imap_summaries;
        let mut out = memory.range(folder, first, last);
        let absent = lacking(run, view, &out);
        let (Some(&from), Some(&to)) = (absent.first(), absent.last()) else {
            return Ok(out);
        };
        let (from, to) = (
            view.uid(from).unwrap_or(first),
            view.uid(to).unwrap_or(last),
        );
        let store = &self.ctx.store;
        let mut read = Parts::new();
        for (uid, bytes) in store
            .read_summaries(&view.owner, view.mailbox.id, from, to)
            .await?
        {
            // Another version or damaged: made again below.
            if let Some(cached) = Cached::decode(bytes) {
                read.entry(uid).or_insert_with(|| Arc::new(cached));
            }
        }
        // Only the messages without a summary are opened, RUN at a time (memory), and
        // parsed off the async workers: a first sync parses a whole folder, and the other
        // sessions sharing the worker would wait meanwhile.
        let mut made = Parts::new();
        for part in runs(&lacking(&absent, view, &read), RUN) {
            let opened = self.open_run(part).await?;
            let octets = opened.values().map(|raw| raw.len()).sum();
            let parsed = crate::blocking::run_sized(octets, move || {
                Ok::<_, StoreError>(
                    opened
                        .iter()
                        .map(|(&uid, raw)| (uid, Arc::new(Cached::of(raw))))
                        .collect::<Vec<_>>(),
                )
            })
            .await?;
            for (uid, cached) in parsed {
                made.entry(uid).or_insert(cached);
            }
        }
        if !made.is_empty() {
            let encoded: Vec<(u32, &[u8])> = made
                .iter()
                .map(|(&uid, cached)| (uid, cached.encoded()))
                .collect();
            if let Err(e) = store
                .keep_summaries(&view.owner, view.mailbox.id, &encoded)
                .await
            {
                // The answer does not depend on it: the next FETCH makes them again.
                tracing::warn!(error = %e, "could not keep message summaries");
            }
        }
        memory.keep(folder, read.iter().chain(made.iter()));
        out.extend(read);
        out.extend(made);
        Ok(out)
    }
}

/// The view indices of `run` whose messages `have` lacks.
fn lacking(run: &[usize], view: &View, have: &Parts) -> Vec<usize> {
    run.iter()
        .copied()
        .filter(|&i| view.uid(i).is_some_and(|uid| !have.contains_key(&uid)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(subject: &str) -> Arc<Cached> {
        Arc::new(Cached::of(
            format!("Subject: {subject}\r\n\r\nbody\r\n").as_bytes(),
        ))
    }

    #[test]
    fn keeps_ranges_and_forgets_expunged() {
        let cache = SummaryCache::new(1 << 20);
        let entries: Vec<(u32, Arc<Cached>)> = (1..=5).map(|uid| (uid, part("x"))).collect();
        cache.keep((1, 7), entries.iter().map(|(u, c)| (u, c)));
        assert_eq!(cache.range((1, 7), 2, 4).len(), 3);
        // Another incarnation of the same row id sees nothing.
        assert!(cache.range((1, 8), 1, 5).is_empty());
        cache.forget((1, 7), &[3]);
        let left = cache.range((1, 7), 1, 5);
        assert_eq!(left.len(), 4);
        assert!(!left.contains_key(&3));
    }

    #[test]
    fn drops_the_folder_used_longest_ago() {
        let one = part("a");
        let limit = 3 * cost(&one);
        let cache = SummaryCache::new(limit);
        cache.keep((1, 1), [(&1, &one), (&2, &one)]);
        cache.keep((2, 1), [(&1, &one)]);
        cache.range((1, 1), 1, 2); // folder 1 is now the more recent
        cache.keep((3, 1), [(&1, &one)]);
        assert_eq!(cache.range((1, 1), 1, 2).len(), 2);
        assert!(cache.range((2, 1), 1, 1).is_empty());
        assert_eq!(cache.range((3, 1), 1, 1).len(), 1);
        // One folder never holds more than the limit.
        let many: Vec<(u32, Arc<Cached>)> = (1..=10).map(|uid| (uid, one.clone())).collect();
        cache.keep((4, 1), many.iter().map(|(u, c)| (u, c)));
        assert_eq!(cache.range((4, 1), 1, 10).len(), 3);
        assert!(cache.state().octets <= limit);
    }

    #[test]
    fn a_zero_limit_keeps_nothing() {
        let cache = SummaryCache::new(0);
        let one = part("a");
        cache.keep((1, 1), [(&1, &one)]);
        assert!(cache.range((1, 1), 1, 1).is_empty());
    }
}
