//! Opening and closing a folder (SELECT, EXAMINE, CLOSE), catching up on demand (NOOP),
//! and IDLE: the session waits for the client's DONE while the folder's bell (or, for
//! changes made by another process, a slow poll) tells it what to report at once.

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::sequence::SequenceSet;

use super::input::MAX_LINE;
use super::session::{FOLDER_GONE, IDLE_POLL, Reply, SYSTEM_FLAGS, Session};
use super::view::View;
use crate::audit::Outcome;
use crate::listener::ReadError;
use crate::store::StoreError;

impl Session<'_> {
    /// SELECT or EXAMINE, with RFC 7162's CONDSTORE and QRESYNC parameters.
    pub(super) async fn select(
        &mut self,
        name: &Mailbox<'_>,
        examine: bool,
        parameters: &[SelectParameter],
    ) -> Result<Reply, ReadError> {
        // A failed SELECT leaves no folder selected (RFC 3501 6.3.1).
        self.view = None;
        let mut resync = None;
        for parameter in parameters {
            match parameter {
                SelectParameter::CondStore => self.enable_condstore(),
                SelectParameter::QResync { .. } if !self.qresync => {
                    return Ok(Reply::bad("QRESYNC must be enabled first"));
                }
                SelectParameter::QResync {
                    uid_validity,
                    mod_sequence_value,
                    known_uids,
                    ..
                } => resync = Some((uid_validity.get(), mod_sequence_value.get(), known_uids)),
            }
        }
        let target = match self.target(name).await {
            Ok(target) => target,
            Err(reply) => return Ok(reply),
        };
        if !target.rights.allows("r") {
            return Ok(Reply::no("[NOPERM] You may not read this mailbox"));
        }
        // Without any right to change the folder, it is opened read-only.
        let read_only = examine || !target.rights.any("swite");
        if self.user.as_ref().is_some_and(|u| u.id != target.owner.id) || self.person.is_some() {
            // Opening someone else's folder is an access to health data: traced, or refused
            // when it cannot be.
            if let Err(e) = self.audit_access(&target.display).await {
                tracing::error!(error = %e, "audit of a shared folder access failed: access refused");
                return Ok(Reply::no(
                    "[UNAVAILABLE] The access cannot be traced, try again",
                ));
            }
        }
        let mut view = match View::open(&self.ctx.store, target, read_only).await {
            Ok(opened) => opened,
            Err(e) => return Ok(Reply::unavailable(e)),
        };
        view.modseq = self.condstore;
        view.vanished = self.qresync;
        let permanent = if read_only {
            String::new()
        } else {
            format!("{SYSTEM_FLAGS} \\*")
        };
        let mut lines = format!(
            "* FLAGS ({SYSTEM_FLAGS})\r\n\
             * OK [PERMANENTFLAGS ({permanent})] Flags permitted\r\n\
             * {} EXISTS\r\n",
            view.len()
        );
        // IMAP4rev2 has neither \Recent nor the UNSEEN code (RFC 9051 appendix E).
        if !self.rev2 {
            lines.push_str("* 0 RECENT\r\n");
            let unseen = self
                .ctx
                .store
                .db()
                .uids_by_flags(view.mailbox.id, &[], &["\\Seen".to_string()])
                .await;
            match unseen.map(|uids| uids.first().and_then(|&uid| view.index_of(uid))) {
                Ok(Some(first)) => {
                    lines.push_str(&format!("* OK [UNSEEN {}] First unseen\r\n", first + 1))
                }
                Ok(None) => {}
                Err(e) => return Ok(Reply::unavailable(e)),
            }
        }
        lines.push_str(&format!(
            "* OK [UIDVALIDITY {}] UIDs valid\r\n* OK [UIDNEXT {}] Predicted next UID\r\n",
            view.mailbox.uidvalidity,
            view.uidnext()
        ));
        if self.condstore {
            lines.push_str(&format!(
                "* OK [HIGHESTMODSEQ {}] Highest\r\n",
                view.highestmodseq()
            ));
        }
        self.push(lines.as_bytes()).await?;
        if let Some((uidvalidity, since, known)) = resync
            && uidvalidity == view.mailbox.uidvalidity
        {
            match self.resync(&view, since, known.as_ref()).await {
                Ok(untagged) => self.push(&untagged).await?,
                Err(e) => return Ok(Reply::unavailable(e)),
            }
        }
        self.view = Some(view);
        Ok(Reply::ok(format!(
            "[{}] {} completed",
            if read_only { "READ-ONLY" } else { "READ-WRITE" },
            if examine { "EXAMINE" } else { "SELECT" },
        )))
    }

    /// What a QRESYNC client missed since `since`: the UIDs expunged (among `known`) as
    /// `VANISHED (EARLIER)`, then the flags of the messages changed.
    async fn resync(
        &self,
        view: &View,
        since: u64,
        known: Option<&SequenceSet>,
    ) -> Result<Vec<u8>, crate::store::StoreError> {
        let delta = self
            .ctx
            .store
            .db()
            .changes_since(view.mailbox.id, since)
            .await?;
        let gone: Vec<u32> = delta
            .expunged
            .into_iter()
            .filter(|&uid| known.is_none_or(|set| super::view::set_contains(set, uid, u32::MAX)))
            .collect();
        let mut out = Vec::new();
        if !gone.is_empty() {
            let line = format!("* VANISHED (EARLIER) {}\r\n", super::encode::uid_set(&gone));
            out.extend_from_slice(line.as_bytes());
        }
        for meta in delta.changed {
            if let Some(i) = view.index_of(meta.uid) {
                out.extend_from_slice(&view.flags_line(i, &meta, true));
            }
        }
        Ok(out)
    }

    /// CLOSE: removes the messages marked \Deleted (silently) unless read-only.
    pub(super) async fn close(&mut self) -> Result<Reply, ReadError> {
        let Some(view) = &self.view else {
            return Ok(Reply::bad("No mailbox selected"));
        };
        if !view.read_only && view.rights.allows("e") {
            let mailbox_id = view.mailbox.id;
            let all: Vec<usize> = (0..view.len()).collect();
            let doomed: Vec<u32> = match self.metas_of(&all).await {
                Ok(listed) => listed
                    .into_iter()
                    .filter(|(_, m)| super::fetch::has_flag(&m.flags, "\\Deleted"))
                    .map(|(_, m)| m.uid)
                    .collect(),
                Err(e) => return Ok(Reply::unavailable(e)),
            };
            if let Err(e) = self.ctx.store.expunge(mailbox_id, &doomed).await {
                return Ok(Reply::unavailable(e));
            }
            if let Some(view) = &self.view {
                self.forget_summaries(&view.mailbox, &doomed);
            }
        }
        self.view = None;
        Ok(Reply::ok(""))
    }

    /// Records that the session opened a folder shared with it.
    async fn audit_access(&self, folder: &str) -> Result<(), crate::store::StoreError> {
        let source = format!("imap {}", self.conn.peer);
        let detail = match &self.user {
            Some(user) if self.person.is_some() => format!("{folder} of {}", user.address),
            _ => folder.to_string(),
        };
        self.ctx
            .audit
            .record(
                "mailbox.access",
                &self.actor(),
                &source,
                Outcome::Ok,
                &detail,
            )
            .await
    }

    /// Reports every change to the selected folder now (NOOP, CHECK, IDLE).
    pub(super) async fn catch_up_now(&mut self) -> Result<(), ReadError> {
        let Some(view) = &mut self.view else {
            return Ok(());
        };
        match view.catch_up(&self.ctx.store, true, true).await {
            Ok(untagged) => self.push(&untagged).await,
            Err(StoreError::NotFound(_)) => {
                self.send_line(FOLDER_GONE).await?;
                // The session ends here, as if the client had left.
                Err(ReadError::Closed)
            }
            Err(e) => {
                tracing::warn!(error = %e, "catching up with the folder failed");
                Ok(())
            }
        }
    }

    /// IDLE (RFC 2177): changes are written as they happen until the client sends DONE.
    pub(super) async fn idle(&mut self, _tag: &str) -> Result<Reply, ReadError> {
        self.catch_up_now().await?;
        self.push(b"+ idling\r\n").await?;
        self.flush().await?;
        loop {
            let woke = {
                let conn = &mut *self.conn;
                let view = &mut self.view;
                let bell = async {
                    match view {
                        Some(view) => view.changed().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    line = conn.read_line(MAX_LINE) => Some(line),
                    () = bell => None,
                    () = tokio::time::sleep(IDLE_POLL) => None,
                }
            };
            match woke {
                Some(Ok(line)) => {
                    return Ok(if line.trim_ascii().eq_ignore_ascii_case(b"DONE") {
                        Reply::ok("IDLE terminated")
                    } else {
                        Reply::bad("Expected DONE")
                    });
                }
                Some(Err(ReadError::LineTooLong(_))) => return Ok(Reply::bad("Expected DONE")),
                Some(Err(e)) => return Err(e),
                None => {
                    self.catch_up_now().await?;
                    self.flush().await?;
                }
            }
        }
    }
}
