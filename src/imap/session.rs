//! One IMAP session: its state (not authenticated, authenticated, selected), the command
//! loop, and the commands that change the state (login, SELECT, IDLE, LOGOUT). Folder
//! commands live in `folders.rs`, message commands in `fetch.rs`, `search.rs` and
//! `messages.rs`, each an `impl Session` block; `dispatch.rs` routes each command to one.

use imap_codec::imap_types::command::{Command, CommandBody};

use super::extension::{self, Extended};
use super::input::{self, Input};
use super::searchres;
use super::view::View;
use crate::auth::Rights;
use crate::listener::{Connection, ReadError};
use crate::server::ServerContext;
use crate::store::{Account, StoreError};

/// A decoded command: imap-codec's, or one the `extension` parser knows.
enum Incoming {
    Codec(Command<'static>),
    Extended(String, Extended),
}

/// Untagged data is sent in pieces of about this size, so a large FETCH streams.
const FLUSH_AT: usize = 64 * 1024;

/// How often an IDLE session looks at its folder even without a bell (changes made by
/// another process, such as the admin CLI).
pub(super) const IDLE_POLL: std::time::Duration = std::time::Duration::from_secs(10);

/// Said before closing a session whose selected folder was deleted (by another session or
/// the CLI): IMAP has no other way to tell it, and its view cannot go on (as Dovecot does).
pub(super) const FOLDER_GONE: &str = "* BYE The selected folder was deleted, reconnect";

/// The flags this server keeps (any keyword is allowed too: `\*`).
pub const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// A command's outcome: the tagged status line's kind and text.
pub(super) enum Reply {
    Ok(String),
    No(String),
    Bad(String),
    /// The tagged reply went out already (STARTTLS answers before the handshake).
    Sent,
}

impl Reply {
    pub(super) fn ok(text: impl Into<String>) -> Reply {
        Reply::Ok(text.into())
    }
    pub(super) fn no(text: impl Into<String>) -> Reply {
        Reply::No(text.into())
    }
    pub(super) fn bad(text: impl Into<String>) -> Reply {
        Reply::Bad(text.into())
    }
    /// The store failed: a temporary failure the client may retry.
    pub(super) fn unavailable(e: impl std::fmt::Display) -> Reply {
        tracing::warn!(error = %e, "IMAP command failed in the store");
        Reply::No("[UNAVAILABLE] Temporary failure, try again".into())
    }
}

pub(super) struct Session<'a> {
    pub(super) ctx: &'a ServerContext,
    pub(super) conn: &'a mut Connection,
    /// The mailbox owner whose folders this session sees.
    pub(super) user: Option<Account>,
    /// The person logged in, when not `user` itself: a delegate acting for the mailbox.
    pub(super) person: Option<Account>,
    /// The device credential the user logged in with, re-checked before each command.
    pub(super) device: Option<i64>,
    /// The user's rights on `user`'s folders: all on their own, the delegated ones when the
    /// authorization identity named a mailbox delegated to them.
    pub(super) rights: Rights,
    pub(super) view: Option<View>,
    /// The client enabled UTF8=ACCEPT: folder names are UTF-8, not modified UTF-7.
    pub(super) utf8: bool,
    /// CONDSTORE is on (RFC 7162): FETCH responses carry MODSEQ.
    pub(super) condstore: bool,
    /// QRESYNC is on: removals are told as VANISHED.
    pub(super) qresync: bool,
    /// The client enabled IMAP4rev2 (RFC 9051): no RECENT, SEARCH answered by ESEARCH,
    /// folder names in UTF-8.
    pub(super) rev2: bool,
    /// Untagged responses not yet written.
    pub(super) out: Vec<u8>,
}

impl<'a> Session<'a> {
    pub(super) fn new(ctx: &'a ServerContext, conn: &'a mut Connection) -> Session<'a> {
        Session {
            ctx,
            conn,
            user: None,
            person: None,
            device: None,
            rights: Rights::ALL,
            view: None,
            utf8: false,
            condstore: false,
            qresync: false,
            rev2: false,
            out: Vec::new(),
        }
    }

    /// Turns CONDSTORE on (ENABLE, or the first command that uses a modseq).
    pub(super) fn enable_condstore(&mut self) {
        self.condstore = true;
        if let Some(view) = &mut self.view {
            view.modseq = true;
        }
    }

    /// Turns QRESYNC (and so CONDSTORE) on.
    pub(super) fn enable_qresync(&mut self) {
        self.enable_condstore();
        self.qresync = true;
        if let Some(view) = &mut self.view {
            view.vanished = true;
        }
    }

    /// Queues untagged data; writes once enough is queued.
    pub(super) async fn push(&mut self, data: &[u8]) -> Result<(), ReadError> {
        self.out.extend_from_slice(data);
        if self.out.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes what is queued.
    pub(super) async fn flush(&mut self) -> Result<(), ReadError> {
        if !self.out.is_empty() {
            let out = std::mem::take(&mut self.out);
            self.conn.write(&out).await?;
        }
        Ok(())
    }

    pub(super) async fn send_line(&mut self, line: &str) -> Result<(), ReadError> {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.flush().await
    }

    pub(super) fn capabilities(&self) -> String {
        let mut caps = vec![
            "IMAP4rev1",
            "IMAP4rev2",
            "LITERAL+",
            "SASL-IR",
            "ID",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
            "UNSELECT",
            "UIDPLUS",
            "MOVE",
            "SPECIAL-USE",
            "CHILDREN",
            "UTF8=ACCEPT",
            "CONDSTORE",
            "QRESYNC",
            "ESEARCH",
            "SEARCHRES",
            "STATUS=SIZE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "ACL",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "SORT",
            "SORT=DISPLAY",
            "THREAD=REFERENCES",
            "THREAD=ORDEREDSUBJECT",
            "BINARY",
            "RIGHTS=texk",
        ];
        if self.conn.can_start_tls() {
            caps.push("STARTTLS");
        }
        if self.conn.tls().is_none() {
            caps.push("LOGINDISABLED");
        } else if self.user.is_none() {
            if self.conn.has_client_certificate() {
                caps.push("AUTH=EXTERNAL");
            }
            if self.ctx.auth.offers_bearer() {
                caps.extend(["AUTH=OAUTHBEARER", "AUTH=XOAUTH2"]);
            }
            caps.extend(["AUTH=PLAIN", "AUTH=LOGIN"]);
        }
        caps.join(" ")
    }

    pub(super) async fn run(mut self) -> Result<(), ReadError> {
        let greeting = format!(
            "* OK [CAPABILITY {}] mssante IMAP ready",
            self.capabilities()
        );
        self.send_line(&greeting).await?;
        loop {
            // Before login a command only carries credentials: a few KiB, not a message.
            let (max_line, max_literal) = if self.conn.is_authenticated() {
                (input::MAX_LINE, self.ctx.config.limits.max_message_size)
            } else {
                let literal = self.conn.limits().literal_before_login;
                (input::MAX_LINE_BEFORE_LOGIN, literal)
            };
            let raw = match input::read(self.conn, max_line, max_literal).await {
                Ok(Input::Command(raw)) => raw,
                Ok(Input::Refused { tag, text, fatal }) => {
                    if fatal {
                        return self.send_line(&format!("* BYE {text}")).await;
                    }
                    let tag = tag.as_deref().unwrap_or("*");
                    self.send_line(&format!("{tag} BAD {text}")).await?;
                    continue;
                }
                Err(ReadError::Shutdown) => {
                    return self
                        .send_line("* BYE [UNAVAILABLE] Server shutting down")
                        .await;
                }
                Err(e) if e.time_limit().is_some() => {
                    let why = e.time_limit().unwrap_or_default();
                    let _ = self.send_line(&format!("* BYE Autologout; {why}")).await;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            // `$` (SEARCHRES) is written out first: imap-codec's grammar has none.
            let raw = match self
                .view
                .as_ref()
                .map(|v| searchres::rewrite(&raw, &v.saved, |uid| v.index_of(uid)))
            {
                Some(searchres::Rewrite::Command(rewritten)) => rewritten,
                Some(searchres::Rewrite::Nothing) => {
                    let tag = input::tag_of(&raw);
                    let line = format!(
                        "{} OK Nothing done: no saved search result ($)",
                        tag.as_deref().unwrap_or("*")
                    );
                    self.send_line(&line).await?;
                    continue;
                }
                _ => raw,
            };
            // imap-codec first; the commands its grammar lacks are parsed in `extension`.
            let command = match input::decode(&raw) {
                Ok(command) => Incoming::Codec(command),
                Err(why) => match extension::parse(&raw) {
                    Some(Ok((tag, extended))) => Incoming::Extended(tag, extended),
                    other => {
                        let why = match other {
                            Some(Err(reason)) => reason,
                            _ => why,
                        };
                        let tag = input::tag_of(&raw);
                        let line = format!("{} BAD {why}", tag.as_deref().unwrap_or("*"));
                        self.send_line(&line).await?;
                        continue;
                    }
                },
            };
            if let Some(device) = self.device
                && !self.ctx.auth.device_usable(device).await
            {
                return self
                    .send_line("* BYE This device's access was withdrawn")
                    .await;
            }
            if !self.command(command).await? {
                return Ok(());
            }
        }
    }

    /// Runs one command and sends its tagged reply; false once the session should end.
    async fn command(&mut self, command: Incoming) -> Result<bool, ReadError> {
        if !self.refresh_delegation().await {
            self.send_line("* BYE [NOPERM] The delegation of this mailbox was withdrawn")
                .await?;
            return Ok(false);
        }
        self.refresh_rights().await;
        // Expunges may be told after any command but FETCH, STORE and SEARCH by sequence
        // number (RFC 3501 7.4.1).
        let by_number = |body: &CommandBody<'_>| {
            matches!(
                body,
                CommandBody::Fetch { uid: false, .. }
                    | CommandBody::Store { uid: false, .. }
                    | CommandBody::Search { uid: false, .. }
            )
        };
        let (tag, name, expunges_allowed, reply) = match command {
            Incoming::Codec(command) => {
                let tag = command.tag.as_ref().to_string();
                let allowed = !by_number(&command.body);
                let name = command.body.name();
                match self.dispatch(&tag, command.body).await? {
                    Some(reply) => (tag, name, allowed, reply),
                    None => return Ok(false),
                }
            }
            Incoming::Extended(tag, extended) => {
                let allowed = match &extended {
                    Extended::Search(search, _) => !by_number(&search.body),
                    _ => true,
                };
                let (name, reply) = self.extended(&tag, extended).await?;
                (tag, name, allowed, reply)
            }
        };
        let mut folder_gone = false;
        if let Some(view) = &mut self.view {
            match view
                .catch_up(&self.ctx.store, expunges_allowed, false)
                .await
            {
                Ok(untagged) => self.out.extend_from_slice(&untagged),
                Err(StoreError::NotFound(_)) => folder_gone = true,
                Err(e) => tracing::warn!(error = %e, "catching up with the folder failed"),
            }
        }
        let line = match reply {
            Reply::Ok(text) if text.is_empty() => format!("{tag} OK {name} completed"),
            Reply::Ok(text) => format!("{tag} OK {text}"),
            Reply::No(text) => format!("{tag} NO {text}"),
            Reply::Bad(text) => format!("{tag} BAD {text}"),
            Reply::Sent => return Ok(true),
        };
        self.send_line(&line).await?;
        if folder_gone {
            self.send_line(FOLDER_GONE).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Who acts, for the audit trail: the address, or for a delegate "person for mailbox".
    pub(super) fn actor(&self) -> String {
        match (&self.person, &self.user) {
            (Some(person), Some(user)) => format!("{} for {}", person.address, user.address),
            (None, Some(user)) => user.address.clone(),
            _ => "-".into(),
        }
    }

    /// A delegate's rights are read again before each command, so a narrowed or withdrawn
    /// delegation takes effect at once; false when it is withdrawn (the session ends).
    async fn refresh_delegation(&mut self) -> bool {
        let (Some(person), Some(user)) = (&self.person, &self.user) else {
            return true;
        };
        let rights = match self
            .ctx
            .store
            .db()
            .delegated_rights(person.id, &user.address)
            .await
        {
            Ok(Some(text)) => Rights::parse(&text).unwrap_or_default(),
            Ok(None) => Rights::default(),
            Err(e) => {
                // A failed lookup keeps no right at all: refusing is the safe side.
                tracing::warn!(error = %e, "delegation lookup failed");
                Rights::default()
            }
        };
        self.rights = rights;
        if let Some(view) = self.view.as_mut().filter(|v| v.owner.id == user.id) {
            view.rights = rights;
        }
        !rights.is_empty()
    }

    /// Rights on a folder shared with the session are read again before each command, so a
    /// withdrawn grant takes effect at once, not at the next SELECT.
    async fn refresh_rights(&mut self) {
        let Some((owner, folder)) = self
            .view
            .as_ref()
            .filter(|v| self.user.as_ref().is_some_and(|u| u.id != v.owner.id))
            .map(|v| (v.owner.clone(), v.mailbox.id))
        else {
            return;
        };
        let rights = self.rights_on(&owner, Some(folder)).await;
        if let Some(view) = &mut self.view {
            // A failed lookup keeps no right at all: refusing is the safe side.
            view.rights = rights.unwrap_or_default();
        }
    }
}
