//! Opening and closing a folder (SELECT, EXAMINE, CLOSE), catching up on demand (NOOP),
//! and IDLE: the session waits for the client's DONE while the folder's bell (or, for
//! changes made by another process, a slow poll) tells it what to report at once.

use imap_codec::imap_types::mailbox::Mailbox;

use super::input::MAX_LINE;
use super::session::{IDLE_POLL, Reply, SYSTEM_FLAGS, Session};
use super::view::View;
use crate::listener::ReadError;

impl Session<'_> {
    /// SELECT or EXAMINE.
    pub(super) async fn select(
        &mut self,
        name: &Mailbox<'_>,
        examine: bool,
    ) -> Result<Reply, ReadError> {
        // A failed SELECT leaves no folder selected (RFC 3501 6.3.1).
        self.view = None;
        if !self.rights.allows("r") {
            return Ok(Reply::no("[NOPERM] You may not read this mailbox"));
        }
        let mailbox = match self.folder(name).await {
            Ok(mailbox) => mailbox,
            Err(reply) => return Ok(reply),
        };
        // Without the right to keep the seen state, reading never changes the folder.
        let read_only = examine || !self.rights.allows("s");
        let view = match View::open(&self.ctx.store, mailbox, read_only).await {
            Ok(view) => view,
            Err(e) => return Ok(Reply::unavailable(e)),
        };
        let permanent = if read_only {
            String::new()
        } else {
            format!("{SYSTEM_FLAGS} \\*")
        };
        let mut lines = format!(
            "* FLAGS ({SYSTEM_FLAGS})\r\n\
             * OK [PERMANENTFLAGS ({permanent})] Flags permitted\r\n\
             * {} EXISTS\r\n* 0 RECENT\r\n",
            view.len()
        );
        if let Some(first) = view
            .messages()
            .iter()
            .position(|m| !super::fetch::has_flag(&m.flags, "\\Seen"))
        {
            lines.push_str(&format!("* OK [UNSEEN {}] First unseen\r\n", first + 1));
        }
        lines.push_str(&format!(
            "* OK [UIDVALIDITY {}] UIDs valid\r\n* OK [UIDNEXT {}] Predicted next UID\r\n",
            view.mailbox.uidvalidity,
            view.uidnext()
        ));
        self.push(lines.as_bytes()).await?;
        self.view = Some(view);
        Ok(Reply::ok(format!(
            "[{}] {} completed",
            if read_only { "READ-ONLY" } else { "READ-WRITE" },
            if examine { "EXAMINE" } else { "SELECT" },
        )))
    }

    /// CLOSE: removes the messages marked \Deleted (silently) unless read-only.
    pub(super) async fn close(&mut self) -> Result<Reply, ReadError> {
        let Some(view) = self.view.take() else {
            return Ok(Reply::bad("No mailbox selected"));
        };
        if !view.read_only && self.rights.allows("e") {
            let doomed: Vec<u32> = view
                .messages()
                .iter()
                .filter(|m| super::fetch::has_flag(&m.flags, "\\Deleted"))
                .map(|m| m.uid)
                .collect();
            if let Err(e) = self.ctx.store.expunge(view.mailbox.id, &doomed).await {
                return Ok(Reply::unavailable(e));
            }
        }
        Ok(Reply::ok(""))
    }

    /// Reports every change to the selected folder now (NOOP, CHECK, IDLE).
    pub(super) async fn catch_up_now(&mut self) -> Result<(), ReadError> {
        let Some(view) = &mut self.view else {
            return Ok(());
        };
        match view.catch_up(&self.ctx.store, true, true).await {
            Ok(untagged) => self.push(&untagged).await,
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
                Some(Err(ReadError::LineTooLong)) => return Ok(Reply::bad("Expected DONE")),
                Some(Err(e)) => return Err(e),
                None => {
                    self.catch_up_now().await?;
                    self.flush().await?;
                }
            }
        }
    }
}
