//! One IMAP session: its state (not authenticated, authenticated, selected) and the reply to
//! each command.

use super::command::{self, Arg, Command};
use crate::auth::{AuthError, Credentials, Mechanism, Rights, converse};
use crate::listener::{Connection, ReadError};
use crate::server::ServerContext;
use crate::store::{Account, MailboxInfo, MessageMeta};

/// Longest command line, and longest command with its literals.
const MAX_LINE: usize = 64 * 1024;
const MAX_COMMAND: usize = 256 * 1024;

struct Selected {
    mailbox: MailboxInfo,
    messages: Vec<MessageMeta>,
    read_only: bool,
}

pub(super) struct Session<'a> {
    ctx: &'a ServerContext,
    conn: &'a mut Connection,
    user: Option<Account>,
    /// The device credential the user logged in with, re-checked before each command.
    device: Option<i64>,
    /// The user's rights on `user`'s mailboxes: all on their own, the delegated ones when
    /// the authorization identity named a mailbox delegated to them.
    rights: Rights,
    selected: Option<Selected>,
}

/// A FETCH data item this path serves.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Uid,
    Flags,
    InternalDate,
    Size,
    /// `BODY[section]<partial>` (and RFC822, RFC822.HEADER, RFC822.TEXT): (name in the
    /// response, section, sets \Seen, partial).
    Body(String, Section, bool, Option<(usize, usize)>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Section {
    Full,
    Header,
    Text,
}

impl<'a> Session<'a> {
    pub(super) fn new(ctx: &'a ServerContext, conn: &'a mut Connection) -> Session<'a> {
        Session {
            ctx,
            conn,
            user: None,
            device: None,
            rights: Rights::ALL,
            selected: None,
        }
    }

    async fn send(&mut self, text: &str) -> Result<(), ReadError> {
        self.conn.write(format!("{text}\r\n").as_bytes()).await
    }

    fn capabilities(&self) -> String {
        let mut caps = vec!["IMAP4rev1", "LITERAL+", "SASL-IR", "UNSELECT"];
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
            "* OK [CAPABILITY {}] mssante IMAP4rev1 ready",
            self.capabilities()
        );
        self.send(&greeting).await?;
        loop {
            let raw = match self.read_command().await {
                Ok(Some(raw)) => raw,
                Ok(None) => continue,
                Err(ReadError::Shutdown) => {
                    return self.send("* BYE [UNAVAILABLE] Server shutting down").await;
                }
                Err(ReadError::Timeout) => {
                    let _ = self.send("* BYE Autologout; idle for too long").await;
                    return Err(ReadError::Timeout);
                }
                Err(e) => return Err(e),
            };
            let command = match command::parse(&raw) {
                Ok(c) => c,
                Err((tag, why)) => {
                    let text = format!("{} BAD {why}", tag.as_deref().unwrap_or("*"));
                    self.send(&text).await?;
                    continue;
                }
            };
            if let Some(device) = self.device
                && !self.ctx.auth.device_usable(device).await
            {
                return self.send("* BYE This device's access was withdrawn").await;
            }
            if !self.handle(command).await? {
                return Ok(());
            }
        }
    }

    /// Reads one command with its literals. None: a bad line was already answered.
    async fn read_command(&mut self) -> Result<Option<Vec<u8>>, ReadError> {
        let mut buf = match self.conn.read_line(MAX_LINE).await {
            Ok(line) => line,
            Err(ReadError::LineTooLong) => {
                self.send("* BAD Command line too long").await?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let mut last_line = 0;
        while let Some((n, non_sync)) = command::trailing_literal(&buf[last_line..]) {
            if buf.len() + n > MAX_COMMAND {
                // Refused before any of it is read. A non-synchronising literal is coming
                // anyway: the connection cannot be resynchronised, so it ends.
                if non_sync {
                    self.send("* BYE [TOOBIG] Literal too large").await?;
                    return Err(ReadError::LineTooLong);
                }
                let tag = String::from_utf8_lossy(buf.split(|&b| b == b' ').next().unwrap_or(b"*"))
                    .into_owned();
                self.send(&format!("{tag} BAD [TOOBIG] Literal too large"))
                    .await?;
                return Ok(None);
            }
            if !non_sync {
                self.send("+ Ready for literal data").await?;
            }
            let data = self.conn.read_exact(n).await?;
            buf.extend_from_slice(&data);
            last_line = buf.len();
            match self.conn.read_line(MAX_LINE).await {
                Ok(line) => buf.extend_from_slice(&line),
                Err(ReadError::LineTooLong) => {
                    self.send("* BAD Command line too long").await?;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Some(buf))
    }

    /// Handles one command; false once the session should end.
    async fn handle(&mut self, c: Command) -> Result<bool, ReadError> {
        let tag = c.tag.clone();
        let authenticated = self.user.is_some();
        match (c.name.as_str(), authenticated) {
            ("CAPABILITY", _) => {
                let text = format!("* CAPABILITY {}", self.capabilities());
                self.send(&text).await?;
                self.send(&format!("{tag} OK CAPABILITY completed")).await?;
            }
            ("NOOP", _) => {
                self.refresh().await?;
                self.send(&format!("{tag} OK NOOP completed")).await?;
            }
            ("LOGOUT", _) => {
                self.send("* BYE mssante logging out").await?;
                self.send(&format!("{tag} OK LOGOUT completed")).await?;
                return Ok(false);
            }
            ("STARTTLS", false) => {
                if !self.conn.can_start_tls() {
                    self.send(&format!("{tag} BAD STARTTLS not available"))
                        .await?;
                } else {
                    self.send(&format!("{tag} OK Begin TLS negotiation now"))
                        .await?;
                    self.conn.start_tls().await?;
                }
            }
            ("LOGIN", false) => self.login(&tag, &c.args).await?,
            ("AUTHENTICATE", false) => self.authenticate(&tag, &c.args).await?,
            ("LIST" | "LSUB", true) => self.list(&tag, &c.name, &c.args).await?,
            ("STATUS", true) => self.status(&tag, &c.args).await?,
            ("SELECT" | "EXAMINE", true) => self.select(&tag, &c.args, c.name == "EXAMINE").await?,
            ("FETCH", true) => self.fetch(&tag, &c.args, false).await?,
            ("UID", true) => match c
                .args
                .first()
                .and_then(Arg::text)
                .map(|s| s.to_ascii_uppercase())
            {
                Some(sub) if sub == "FETCH" => self.fetch(&tag, &c.args[1..], true).await?,
                _ => {
                    self.send(&format!("{tag} BAD Only UID FETCH is available here"))
                        .await?
                }
            },
            ("CLOSE" | "UNSELECT", true) => {
                let was = self.selected.take().is_some();
                let text = if was {
                    format!("{tag} OK {} completed", c.name)
                } else {
                    format!("{tag} BAD No mailbox selected")
                };
                self.send(&text).await?;
            }
            (
                "STARTTLS" | "LOGIN" | "AUTHENTICATE" | "LIST" | "LSUB" | "STATUS" | "SELECT"
                | "EXAMINE" | "FETCH" | "UID" | "CLOSE" | "UNSELECT",
                _,
            ) => {
                self.send(&format!("{tag} BAD {} is not valid in this state", c.name))
                    .await?;
            }
            (name, _) => {
                self.send(&format!("{tag} BAD Unknown command {name}"))
                    .await?
            }
        }
        Ok(true)
    }

    async fn login(&mut self, tag: &str, args: &[Arg]) -> Result<(), ReadError> {
        if self.conn.tls().is_none() {
            return self
                .send(&format!("{tag} NO [PRIVACYREQUIRED] STARTTLS first"))
                .await;
        }
        let (Some(username), Some(password), 2) = (
            args.first().and_then(Arg::text),
            args.get(1).and_then(Arg::text),
            args.len(),
        ) else {
            return self
                .send(&format!("{tag} BAD LOGIN takes a user name and a password"))
                .await;
        };
        self.finish_auth(
            tag,
            Credentials::Password {
                authzid: None,
                username,
                password,
            },
        )
        .await
    }

    async fn authenticate(&mut self, tag: &str, args: &[Arg]) -> Result<(), ReadError> {
        if self.conn.tls().is_none() {
            return self
                .send(&format!("{tag} NO [PRIVACYREQUIRED] STARTTLS first"))
                .await;
        }
        let Some(mechanism) = args
            .first()
            .and_then(Arg::text)
            .and_then(|m| Mechanism::parse(&m))
        else {
            return self
                .send(&format!("{tag} NO Unsupported authentication mechanism"))
                .await;
        };
        let initial = args.get(1).and_then(Arg::text);
        let credentials =
            match converse(self.conn, mechanism, initial.as_deref(), "+ ", MAX_LINE).await? {
                Ok(credentials) => credentials,
                Err(e) => return self.send(&format!("{tag} BAD {e}")).await,
            };
        self.finish_auth(tag, credentials).await
    }

    async fn finish_auth(&mut self, tag: &str, credentials: Credentials) -> Result<(), ReadError> {
        let source = format!("imap {}", self.conn.peer);
        let bearer = matches!(credentials, Credentials::Bearer { .. });
        match self.ctx.auth.authenticate(credentials, &source).await {
            Ok(login) => {
                tracing::info!(user = %login.account.address, "authenticated");
                (self.user, self.rights) = match login.delegated {
                    Some((mailbox, rights)) => (Some(mailbox), rights),
                    None => (Some(login.account), Rights::ALL),
                };
                self.device = login.device.map(|(id, _)| id);
                let text = format!("{tag} OK [CAPABILITY {}] Logged in", self.capabilities());
                self.send(&text).await
            }
            Err(AuthError::Unavailable) => {
                self.send(&format!(
                    "{tag} NO [UNAVAILABLE] Temporary failure, try again"
                ))
                .await
            }
            Err(_) => {
                if bearer {
                    crate::auth::bearer_refused(self.conn, "+ ", MAX_LINE).await?;
                }
                self.send(&format!(
                    "{tag} NO [AUTHENTICATIONFAILED] Authentication failed"
                ))
                .await
            }
        }
    }

    /// The folder named by a client, if it exists (INBOX is case-insensitive).
    async fn mailbox(&self, name: &str) -> Result<Option<MailboxInfo>, String> {
        let Some(user) = &self.user else {
            return Ok(None);
        };
        let name = if name.eq_ignore_ascii_case("INBOX") {
            "INBOX"
        } else {
            name
        };
        self.ctx
            .store
            .db()
            .mailbox(user.id, name, false)
            .await
            .map_err(|e| e.to_string())
    }

    async fn list(&mut self, tag: &str, name: &str, args: &[Arg]) -> Result<(), ReadError> {
        let pattern = args.get(1).and_then(Arg::text).unwrap_or_default();
        if args.len() != 2 {
            return self
                .send(&format!("{tag} BAD {name} takes a reference and a pattern"))
                .await;
        }
        if pattern.is_empty() {
            self.send(&format!("* {name} (\\Noselect) \"/\" \"\""))
                .await?;
        } else if ["*", "%", "INBOX"]
            .iter()
            .any(|p| pattern.eq_ignore_ascii_case(p))
        {
            self.send(&format!("* {name} (\\HasNoChildren) \"/\" INBOX"))
                .await?;
        }
        self.send(&format!("{tag} OK {name} completed")).await
    }

    async fn status(&mut self, tag: &str, args: &[Arg]) -> Result<(), ReadError> {
        let (Some(name), Some(Arg::List(items))) = (args.first().and_then(Arg::text), args.get(1))
        else {
            return self
                .send(&format!(
                    "{tag} BAD STATUS takes a mailbox and a list of items"
                ))
                .await;
        };
        if !self.rights.allows("r") {
            return self
                .send(&format!("{tag} NO [NOPERM] You may not read this mailbox"))
                .await;
        }
        let mailbox = match self.mailbox(&name).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                return self
                    .send(&format!("{tag} NO [NONEXISTENT] No such mailbox"))
                    .await;
            }
            Err(e) => return self.send(&format!("{tag} NO [UNAVAILABLE] {e}")).await,
        };
        let messages = match self.ctx.store.db().list_messages(mailbox.id).await {
            Ok(m) => m,
            Err(e) => return self.send(&format!("{tag} NO [UNAVAILABLE] {e}")).await,
        };
        let mut out = Vec::new();
        for item in items.iter().filter_map(Arg::text) {
            let value = match item.to_ascii_uppercase().as_str() {
                "MESSAGES" => messages.len() as u64,
                "RECENT" => 0,
                "UIDNEXT" => u64::from(mailbox.uidnext),
                "UIDVALIDITY" => u64::from(mailbox.uidvalidity),
                "UNSEEN" => messages
                    .iter()
                    .filter(|m| !has_flag(&m.flags, "\\Seen"))
                    .count() as u64,
                other => {
                    return self
                        .send(&format!("{tag} BAD Unknown STATUS item {other}"))
                        .await;
                }
            };
            out.push(format!("{} {value}", item.to_ascii_uppercase()));
        }
        self.send(&format!("* STATUS {} ({})", mailbox.name, out.join(" ")))
            .await?;
        self.send(&format!("{tag} OK STATUS completed")).await
    }

    async fn select(&mut self, tag: &str, args: &[Arg], examine: bool) -> Result<(), ReadError> {
        self.selected = None;
        if !self.rights.allows("lr") {
            return self
                .send(&format!("{tag} NO [NOPERM] You may not read this mailbox"))
                .await;
        }
        // Without the right to keep the seen state, reading never changes the mailbox.
        let read_only = examine || !self.rights.allows("s");
        let Some(name) = args.first().and_then(Arg::text) else {
            return self
                .send(&format!("{tag} BAD SELECT takes a mailbox name"))
                .await;
        };
        let mailbox = match self.mailbox(&name).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                return self
                    .send(&format!("{tag} NO [NONEXISTENT] No such mailbox"))
                    .await;
            }
            Err(e) => return self.send(&format!("{tag} NO [UNAVAILABLE] {e}")).await,
        };
        let messages = match self.ctx.store.db().list_messages(mailbox.id).await {
            Ok(m) => m,
            Err(e) => return self.send(&format!("{tag} NO [UNAVAILABLE] {e}")).await,
        };
        let text = format!(
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)] Flags permitted\r\n\
             * {} EXISTS\r\n* 0 RECENT\r\n\
             * OK [UIDVALIDITY {}] UIDs valid\r\n* OK [UIDNEXT {}] Predicted next UID\r\n\
             {tag} OK [{}] {} completed",
            messages.len(),
            mailbox.uidvalidity,
            mailbox.uidnext,
            if read_only { "READ-ONLY" } else { "READ-WRITE" },
            if examine { "EXAMINE" } else { "SELECT" },
        );
        self.selected = Some(Selected {
            mailbox,
            messages,
            read_only,
        });
        self.send(&text).await
    }

    /// Reports messages removed (by another session, POP3 included) and arrived since the
    /// last look (NOOP).
    async fn refresh(&mut self) -> Result<(), ReadError> {
        let Some(selected) = &mut self.selected else {
            return Ok(());
        };
        let Ok(fresh) = self.ctx.store.db().list_messages(selected.mailbox.id).await else {
            return Ok(());
        };
        let present: std::collections::HashSet<u32> = fresh.iter().map(|m| m.uid).collect();
        let mut expunged = String::new();
        // From the highest number down, so each number is still right when it is read.
        for seq in (1..=selected.messages.len()).rev() {
            if !present.contains(&selected.messages[seq - 1].uid) {
                selected.messages.remove(seq - 1);
                expunged.push_str(&format!("* {seq} EXPUNGE\r\n"));
            }
        }
        if !expunged.is_empty() {
            self.conn.write(expunged.as_bytes()).await?;
        }
        let Some(selected) = &mut self.selected else {
            return Ok(());
        };
        let last_uid = selected.messages.last().map_or(0, |m| m.uid);
        let before = selected.messages.len();
        selected
            .messages
            .extend(fresh.into_iter().filter(|m| m.uid > last_uid));
        let now = selected.messages.len();
        if now != before {
            self.send(&format!("* {now} EXISTS")).await?;
        }
        Ok(())
    }

    async fn fetch(&mut self, tag: &str, args: &[Arg], by_uid: bool) -> Result<(), ReadError> {
        let Some(selected) = &self.selected else {
            return self.send(&format!("{tag} BAD No mailbox selected")).await;
        };
        let (Some(set), Some(items_arg), 2) =
            (args.first().and_then(Arg::text), args.get(1), args.len())
        else {
            return self
                .send(&format!("{tag} BAD FETCH takes a sequence set and items"))
                .await;
        };
        let mut items = match parse_items(items_arg) {
            Ok(items) => items,
            Err(e) => return self.send(&format!("{tag} BAD {e}")).await,
        };
        if by_uid && !items.contains(&Item::Uid) {
            items.insert(0, Item::Uid);
        }
        let largest = if by_uid {
            selected.messages.last().map_or(0, |m| m.uid)
        } else {
            selected.messages.len() as u32
        };
        let Some(ranges) = command::sequence_set(&set, largest) else {
            return self.send(&format!("{tag} BAD Invalid sequence set")).await;
        };
        let read_only = selected.read_only;
        let mailbox_id = selected.mailbox.id;
        let targets: Vec<(usize, MessageMeta)> = selected
            .messages
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                let n = if by_uid { m.uid } else { *i as u32 + 1 };
                ranges.iter().any(|&(a, b)| a <= n && n <= b)
            })
            .map(|(i, m)| (i + 1, m.clone()))
            .collect();
        let Some(user) = self.user.clone() else {
            return Ok(());
        };
        for (seq, meta) in targets {
            let needs_body = items.iter().any(|i| matches!(i, Item::Body(..)));
            let body = if needs_body {
                match self
                    .ctx
                    .store
                    .read_message(&user, mailbox_id, meta.uid)
                    .await
                {
                    Ok(b) => Some(b),
                    Err(e) => {
                        tracing::warn!(uid = meta.uid, error = %e, "message unreadable");
                        continue;
                    }
                }
            } else {
                None
            };
            let mut flags = meta.flags.clone();
            if !read_only
                && items.iter().any(|i| matches!(i, Item::Body(_, _, true, _)))
                && !has_flag(&flags, "\\Seen")
            {
                flags = if flags.is_empty() {
                    "\\Seen".into()
                } else {
                    format!("{flags} \\Seen")
                };
                if let Err(e) = self
                    .ctx
                    .store
                    .db()
                    .set_flags(mailbox_id, meta.uid, &flags)
                    .await
                {
                    return self.send(&format!("{tag} NO [UNAVAILABLE] {e}")).await;
                }
                if let Some(m) = self
                    .selected
                    .as_mut()
                    .and_then(|s| s.messages.get_mut(seq - 1))
                {
                    m.flags = flags.clone();
                }
                if !items.contains(&Item::Flags) {
                    items.push(Item::Flags);
                }
            }
            let mut out: Vec<u8> = format!("* {seq} FETCH (").into_bytes();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                match item {
                    Item::Uid => out.extend(format!("UID {}", meta.uid).bytes()),
                    Item::Flags => out.extend(format!("FLAGS ({flags})").bytes()),
                    Item::Size => out.extend(format!("RFC822.SIZE {}", meta.size).bytes()),
                    Item::InternalDate => {
                        let date = chrono::DateTime::from_timestamp(meta.internal_date, 0)
                            .unwrap_or_default();
                        out.extend(
                            format!("INTERNALDATE \"{}\"", date.format("%d-%b-%Y %H:%M:%S %z"))
                                .bytes(),
                        );
                    }
                    Item::Body(name, section, _, partial) => {
                        let whole = body.as_deref().map(Vec::as_slice).unwrap_or_default();
                        let part = section_bytes(whole, *section);
                        let (data, origin) = match partial {
                            Some((start, len)) => {
                                let s = (*start).min(part.len());
                                (&part[s..(s + len).min(part.len())], format!("<{start}>"))
                            }
                            None => (part, String::new()),
                        };
                        out.extend(format!("{name}{origin} {{{}}}\r\n", data.len()).bytes());
                        out.extend_from_slice(data);
                    }
                }
            }
            out.extend_from_slice(b")\r\n");
            self.conn.write(&out).await?;
        }
        self.send(&format!(
            "{tag} OK {}FETCH completed",
            if by_uid { "UID " } else { "" }
        ))
        .await
    }
}

fn has_flag(flags: &str, flag: &str) -> bool {
    flags
        .split_whitespace()
        .any(|f| f.eq_ignore_ascii_case(flag))
}

fn section_bytes(message: &[u8], section: Section) -> &[u8] {
    let split = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4);
    match (section, split) {
        (Section::Full, _) => message,
        (Section::Header, Some(p)) => &message[..p],
        (Section::Header, None) => message,
        (Section::Text, Some(p)) => &message[p..],
        (Section::Text, None) => &[],
    }
}

fn parse_items(arg: &Arg) -> Result<Vec<Item>, String> {
    let names: Vec<String> = match arg {
        Arg::Atom(a) => match a.to_ascii_uppercase().as_str() {
            "ALL" | "FAST" | "FULL" => {
                vec!["FLAGS".into(), "INTERNALDATE".into(), "RFC822.SIZE".into()]
            }
            _ => vec![a.clone()],
        },
        Arg::List(list) => list.iter().filter_map(Arg::text).collect(),
        Arg::Str(_) => return Err("FETCH items must be atoms".into()),
    };
    names.iter().map(|n| parse_item(n)).collect()
}

fn parse_item(name: &str) -> Result<Item, String> {
    let upper = name.to_ascii_uppercase();
    let simple = match upper.as_str() {
        "UID" => Some(Item::Uid),
        "FLAGS" => Some(Item::Flags),
        "INTERNALDATE" => Some(Item::InternalDate),
        "RFC822.SIZE" => Some(Item::Size),
        "RFC822" => Some(Item::Body("RFC822".into(), Section::Full, true, None)),
        "RFC822.HEADER" => Some(Item::Body(
            "RFC822.HEADER".into(),
            Section::Header,
            false,
            None,
        )),
        "RFC822.TEXT" => Some(Item::Body("RFC822.TEXT".into(), Section::Text, true, None)),
        _ => None,
    };
    if let Some(item) = simple {
        return Ok(item);
    }
    let (peek, rest) = match (
        upper.strip_prefix("BODY.PEEK["),
        upper.strip_prefix("BODY["),
    ) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => return Err(format!("FETCH item {name} is not available yet")),
    };
    let (section, tail) = rest.split_once(']').ok_or("unclosed section")?;
    let section = match section {
        "" => Section::Full,
        "HEADER" => Section::Header,
        "TEXT" => Section::Text,
        other => return Err(format!("section [{other}] is not available yet")),
    };
    let partial = match tail {
        "" => None,
        _ => {
            let inner = tail
                .strip_prefix('<')
                .and_then(|t| t.strip_suffix('>'))
                .ok_or("bad partial")?;
            let (start, len) = inner.split_once('.').ok_or("bad partial")?;
            Some((
                start.parse().map_err(|_| "bad partial")?,
                len.parse().map_err(|_| "bad partial")?,
            ))
        }
    };
    let label = match section {
        Section::Full => "BODY[]",
        Section::Header => "BODY[HEADER]",
        Section::Text => "BODY[TEXT]",
    };
    Ok(Item::Body(label.into(), section, !peek, partial))
}
