//! Group commit: messages accepted by concurrent sessions share one SQLite transaction, so
//! one hold of the write lock and one fsync acknowledge several of them. A caller still gets
//! its answer only after the COMMIT that holds its message. When a shared transaction fails,
//! its messages are committed again one by one, so one bad message never takes its
//! neighbours down with it.
//!
//! The writer is one thread with a connection of its own (`accepted`), started with the
//! store: its page cache stays warm between commits, and a batch's statements run without a
//! hand-off each.

use std::path::Path;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::accepted;
use crate::store::{Accepted, Committed, StoreError};

/// Most messages in one transaction: bounds how long the write lock is held.
const MAX_BATCH: usize = 64;
/// Messages waiting for the writer before callers wait to hand theirs over.
const BACKLOG: usize = 256;

type Answer = Result<Committed, StoreError>;

/// One accepted message on its way to the writer.
struct Request {
    accepted: Accepted,
    reply: oneshot::Sender<Answer>,
}

/// The single writer of accepted messages and audit records; its thread stops when this is
/// dropped.
pub struct GroupCommit {
    writer: mpsc::Sender<Request>,
}

impl GroupCommit {
    /// Opens the writer's connection to the database at `path` (already created and
    /// migrated) and starts its thread.
    pub fn start(path: &Path) -> Result<GroupCommit, StoreError> {
        let connection = accepted::open(path)?;
        let (writer, receiver) = mpsc::channel(BACKLOG);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || write_batches(connection, receiver))
            .map_err(|e| StoreError::Backend(format!("cannot start the message writer: {e}")))?;
        Ok(GroupCommit { writer })
    }

    /// Commits one accepted message (local copies, queue entry, audit records) and returns
    /// its queue id and UIDs. The audit records are logged here, after the commit, in the
    /// caller's span.
    pub async fn accept(&self, accepted: Accepted) -> Answer {
        let stopped = || StoreError::Backend("the message writer has stopped".into());
        let audit = accepted.audit.clone();
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Request { accepted, reply })
            .await
            .map_err(|_| stopped())?;
        let committed = answer.await.map_err(|_| stopped())??;
        for record in &audit {
            record.trace();
        }
        Ok(committed)
    }
}

/// Takes whatever has arrived (up to [`MAX_BATCH`]) and commits it together, until every
/// sender is gone.
fn write_batches(mut connection: Connection, mut receiver: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        if batch.len() > 1 {
            let accepted: Vec<&Accepted> = batch.iter().map(|r| &r.accepted).collect();
            if let Ok(ids) = accepted::commit(&mut connection, &accepted) {
                for (request, id) in batch.drain(..).zip(ids) {
                    // A caller that went away (connection lost) no longer needs its answer.
                    let _ = request.reply.send(Ok(id));
                }
                continue;
            }
        }
        for request in batch.drain(..) {
            let answer =
                accepted::commit(&mut connection, &[&request.accepted]).and_then(|mut ids| {
                    ids.pop()
                        .ok_or_else(|| StoreError::Backend("a commit without its message".into()))
                });
            let _ = request.reply.send(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::SqliteBackend;
    use crate::store::{Accepted, AccountKind, Backend, Folders, NewAccount, NewMessage};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_messages_share_commits_and_a_bad_one_fails_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Arc::new(
            SqliteBackend::open(&dir.path().join("store.db"))
                .await
                .expect("open"),
        );
        db.add_domain("hopital.test").await.expect("domain");
        let account = NewAccount {
            address: "alice@hopital.test".into(),
            kind: AccountKind::Per,
            idnat: None,
            display_name: None,
            password_hash: None,
        };
        let id = db.add_account(&account, b"wrapped").await.expect("account");
        let inbox = db
            .mailbox(id, "INBOX", true)
            .await
            .expect("inbox")
            .expect("created")
            .id;
        let tasks: Vec<_> = (0..40)
            .map(|n| {
                let db = db.clone();
                // Message 17 names a folder that does not exist.
                let mailbox_id = if n == 17 { inbox + 1000 } else { inbox };
                tokio::spawn(async move {
                    let message = NewMessage {
                        mailbox_id,
                        internal_date: 0,
                        size: 1,
                        sealed: vec![n],
                        original: None,
                        ..NewMessage::default()
                    };
                    db.accept_message(Accepted {
                        local: vec![message],
                        ..Accepted::default()
                    })
                    .await
                })
            })
            .collect();
        let mut failed = Vec::new();
        for (n, task) in tasks.into_iter().enumerate() {
            if task.await.expect("task").is_err() {
                failed.push(n);
            }
        }
        assert_eq!(failed, vec![17]);
        let stored = db.list_messages(inbox).await.expect("list");
        let mut uids: Vec<u32> = stored.iter().map(|m| m.uid).collect();
        assert_eq!(uids.len(), 39);
        uids.dedup();
        assert_eq!(uids.len(), 39, "every message has its own UID");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_batch_numbers_each_folder_apart_and_chains_every_audit_record() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = SqliteBackend::open(&dir.path().join("store.db"))
            .await
            .expect("open");
        pool.add_domain("hopital.test").await.expect("domain");
        let account = NewAccount {
            address: "bob@hopital.test".into(),
            kind: AccountKind::Per,
            idnat: None,
            display_name: None,
            password_hash: None,
        };
        let id = pool
            .add_account(&account, b"wrapped")
            .await
            .expect("account");
        let inbox = pool.mailbox(id, "INBOX", true).await.expect("inbox");
        let other = pool.mailbox(id, "Archives", true).await.expect("other");
        let (inbox, other) = (inbox.expect("inbox").id, other.expect("other").id);
        let message = |mailbox_id, n: u8| NewMessage {
            mailbox_id,
            sealed: vec![n],
            ..NewMessage::default()
        };
        let record = |n: u8| {
            crate::audit::entry(
                "key.decrypt",
                "bob",
                "test",
                crate::audit::Outcome::Ok,
                &n.to_string(),
            )
        };
        let batch = [
            Accepted {
                local: vec![message(inbox, 1), message(other, 2)],
                audit: vec![record(1), record(2)],
                ..Accepted::default()
            },
            Accepted {
                local: vec![message(inbox, 3)],
                audit: vec![record(3)],
                ..Accepted::default()
            },
        ];
        let mut connection = super::accepted::open(&dir.path().join("store.db")).expect("writer");
        let refs: Vec<&Accepted> = batch.iter().collect();
        let committed = super::accepted::commit(&mut connection, &refs).expect("commit");
        assert_eq!(committed[0].uids, vec![1, 1]);
        assert_eq!(committed[1].uids, vec![2]);
        let stored = pool.list_messages(inbox).await.expect("list");
        let modseqs: Vec<u64> = stored.iter().map(|m| m.modseq).collect();
        assert_eq!(stored.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![1, 2]);
        assert!(
            modseqs[0] < modseqs[1],
            "each message its own modseq: {modseqs:?}"
        );
        let folder = pool
            .mailbox(id, "INBOX", false)
            .await
            .expect("again")
            .expect("inbox");
        assert_eq!(folder.uidnext, 3);
        assert_eq!(folder.highestmodseq, modseqs[1]);
        let records = pool.audit_records(0, 10).await.expect("audit");
        assert_eq!(records.len(), 3);
        let mut previous = Vec::new();
        for (n, (_, record, hash)) in records.iter().enumerate() {
            assert_eq!(record.detail, (n + 1).to_string());
            assert_eq!(&record.chained(&previous), hash, "record {n} chained");
            previous = hash.clone();
        }
    }
}
