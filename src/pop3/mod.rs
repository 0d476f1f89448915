//! POP3 (RFC 1939, CAPA RFC 2449, STLS RFC 2595, SASL RFC 5034) on the INBOX.
//!
//! Deletions are only marked during the session and applied at QUIT (the UPDATE state), after
//! which `+OK` is sent; a dropped connection deletes nothing. The POP3 issue adds the
//! single-session lock and delegated mailboxes.

use std::sync::Arc;

use async_trait::async_trait;

use crate::auth::sasl::{self, Credentials, Exchange, Step};
use crate::auth::{AuthError, Mechanism};
use crate::listener::{Connection, ReadError, Service};
use crate::server::ServerContext;
use crate::store::{Account, MessageMeta};

const MAX_LINE: usize = 1024;

/// The POP3 protocol for the listener framework.
pub struct Pop3Service {
    ctx: Arc<ServerContext>,
}

impl Pop3Service {
    /// A POP3 service on this context.
    pub fn new(ctx: Arc<ServerContext>) -> Pop3Service {
        Pop3Service { ctx }
    }
}

#[async_trait]
impl Service for Pop3Service {
    fn name(&self) -> &'static str {
        "pop3"
    }

    fn busy_reply(&self) -> &'static [u8] {
        b"-ERR [SYS/TEMP] Too many connections, try again later\r\n"
    }

    async fn serve(&self, conn: &mut Connection) -> Result<(), ReadError> {
        Session {
            ctx: &self.ctx,
            conn,
            user_name: None,
            drop: None,
        }
        .run()
        .await
    }
}

/// The maildrop once logged in.
struct Maildrop {
    account: Account,
    mailbox_id: i64,
    uidvalidity: u32,
    messages: Vec<MessageMeta>,
    deleted: Vec<bool>,
}

struct Session<'a> {
    ctx: &'a ServerContext,
    conn: &'a mut Connection,
    user_name: Option<String>,
    drop: Option<Maildrop>,
}

impl Session<'_> {
    async fn send(&mut self, text: &str) -> Result<(), ReadError> {
        self.conn.write(format!("{text}\r\n").as_bytes()).await
    }

    async fn run(mut self) -> Result<(), ReadError> {
        self.send("+OK mssante POP3 ready").await?;
        loop {
            let line = match self.conn.read_line(MAX_LINE).await {
                Ok(line) => line,
                Err(ReadError::LineTooLong) => {
                    self.send("-ERR Line too long").await?;
                    continue;
                }
                Err(ReadError::Shutdown) => {
                    return self.send("-ERR [SYS/TEMP] Server shutting down").await;
                }
                Err(ReadError::Timeout) => {
                    let _ = self.send("-ERR Idle for too long, closing").await;
                    return Err(ReadError::Timeout);
                }
                Err(e) => return Err(e),
            };
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            let mut words = text.split(' ');
            let command = words.next().unwrap_or_default().to_ascii_uppercase();
            let args: Vec<&str> = words.collect();
            if !self.handle(&command, &args).await? {
                return Ok(());
            }
        }
    }

    fn capabilities(&self) -> Vec<&'static str> {
        let mut caps = vec![
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "IMPLEMENTATION mssante",
        ];
        if self.conn.can_start_tls() {
            caps.push("STLS");
        }
        if self.conn.tls().is_some() && self.drop.is_none() {
            caps.extend(["USER", "SASL PLAIN LOGIN"]);
        }
        caps
    }

    async fn handle(&mut self, command: &str, args: &[&str]) -> Result<bool, ReadError> {
        let logged_in = self.drop.is_some();
        match (command, logged_in) {
            ("CAPA", _) => {
                let mut text = "+OK Capability list follows\r\n".to_string();
                for c in self.capabilities() {
                    text.push_str(c);
                    text.push_str("\r\n");
                }
                text.push('.');
                self.send(&text).await?;
            }
            ("QUIT", _) => {
                self.quit().await?;
                return Ok(false);
            }
            ("NOOP", true) => self.send("+OK").await?,
            ("STLS", false) => {
                if !self.conn.can_start_tls() {
                    self.send("-ERR TLS not available").await?;
                } else {
                    self.send("+OK Begin TLS negotiation").await?;
                    self.conn.start_tls().await?;
                    self.user_name = None;
                }
            }
            ("USER", false) if self.conn.tls().is_none() => {
                self.send("-ERR [AUTH] Use STLS first").await?
            }
            ("USER", false) => match args {
                [name] => {
                    self.user_name = Some((*name).to_string());
                    self.send("+OK Send PASS").await?;
                }
                _ => self.send("-ERR USER takes one name").await?,
            },
            ("PASS", false) => {
                let Some(username) = self.user_name.take() else {
                    self.send("-ERR USER first").await?;
                    return Ok(true);
                };
                // The password is the rest of the line: it may contain spaces.
                let password = args.join(" ");
                self.login(Credentials::Password {
                    authzid: None,
                    username,
                    password,
                })
                .await?;
            }
            ("AUTH", false) => self.auth(args).await?,
            ("STAT", true) => {
                let (count, size) = self
                    .live()
                    .fold((0, 0), |(c, s), (_, m)| (c + 1, s + m.size));
                self.send(&format!("+OK {count} {size}")).await?;
            }
            ("LIST" | "UIDL", true) => self.listing(command, args).await?,
            ("RETR", true) => self.retrieve(args, None).await?,
            ("TOP", true) => match args {
                [_, lines] => match lines.parse::<usize>() {
                    Ok(n) => self.retrieve(&args[..1], Some(n)).await?,
                    Err(_) => {
                        self.send("-ERR TOP takes a message number and a line count")
                            .await?
                    }
                },
                _ => {
                    self.send("-ERR TOP takes a message number and a line count")
                        .await?
                }
            },
            ("DELE", true) => match self.message_index(args) {
                Ok(i) => {
                    if let Some(d) = self.drop.as_mut() {
                        d.deleted[i] = true;
                    }
                    self.send(&format!("+OK Message {} deleted", i + 1)).await?;
                }
                Err(e) => self.send(&e).await?,
            },
            ("RSET", true) => {
                if let Some(d) = self.drop.as_mut() {
                    d.deleted.iter_mut().for_each(|x| *x = false);
                }
                self.send("+OK").await?;
            }
            ("STLS" | "USER" | "PASS" | "AUTH", true) => {
                self.send("-ERR Already authenticated").await?
            }
            ("NOOP" | "STAT" | "LIST" | "UIDL" | "RETR" | "TOP" | "DELE" | "RSET", false) => {
                self.send("-ERR Not authenticated").await?;
            }
            _ => self.send("-ERR Unknown command").await?,
        }
        Ok(true)
    }

    async fn auth(&mut self, args: &[&str]) -> Result<(), ReadError> {
        if self.conn.tls().is_none() {
            return self.send("-ERR [AUTH] Use STLS first").await;
        }
        let Some(mechanism) = args.first().and_then(|m| Mechanism::parse(m)) else {
            return self.send("-ERR Unsupported mechanism").await;
        };
        let initial = match args.get(1) {
            Some(ir) => match sasl::decode_response(ir.as_bytes()) {
                Ok(d) => Some(d),
                Err(e) => return self.send(&format!("-ERR {e}")).await,
            },
            None => None,
        };
        let mut step = Exchange::start(mechanism, initial);
        let credentials = loop {
            let (mut exchange, next) = match step {
                Ok(pair) => pair,
                Err(e) => return self.send(&format!("-ERR {e}")).await,
            };
            match next {
                Step::Done(c) => break c,
                Step::Challenge(ch) => {
                    self.send(&format!("+ {}", sasl::encode_challenge(&ch)))
                        .await?;
                    let line = self.conn.read_line(MAX_LINE).await?;
                    step = sasl::decode_response(&line)
                        .and_then(|d| exchange.respond(&d))
                        .map(|n| (exchange, n));
                }
            }
        };
        self.login(credentials).await
    }

    async fn login(&mut self, credentials: Credentials) -> Result<(), ReadError> {
        let source = format!("pop3 {}", self.conn.peer);
        let account = match self.ctx.auth.authenticate(credentials, &source).await {
            Ok(a) => a,
            Err(AuthError::Unavailable) => {
                return self
                    .send("-ERR [SYS/TEMP] Temporary failure, try again")
                    .await;
            }
            Err(_) => return self.send("-ERR [AUTH] Authentication failed").await,
        };
        let store = self.ctx.store.db();
        let loaded = match store.mailbox(account.id, "INBOX", true).await {
            Ok(Some(mailbox)) => store.list_messages(mailbox.id).await.map(|m| (mailbox, m)),
            Ok(None) => return self.send("-ERR [SYS/TEMP] No INBOX").await,
            Err(e) => Err(e),
        };
        let (mailbox, messages) = match loaded {
            Ok(pair) => pair,
            Err(e) => {
                tracing::error!(error = %e, "maildrop load failed");
                return self.send("-ERR [SYS/TEMP] Maildrop unavailable").await;
            }
        };
        tracing::info!(user = %account.address, "authenticated");
        let count = messages.len();
        self.drop = Some(Maildrop {
            account,
            mailbox_id: mailbox.id,
            uidvalidity: mailbox.uidvalidity,
            deleted: vec![false; count],
            messages,
        });
        self.send(&format!("+OK Maildrop has {count} messages"))
            .await
    }

    /// Messages not marked deleted, with their 0-based index.
    fn live(&self) -> impl Iterator<Item = (usize, &MessageMeta)> {
        self.drop.iter().flat_map(|d| {
            d.messages
                .iter()
                .enumerate()
                .filter(|(i, _)| !d.deleted[*i])
        })
    }

    fn message_index(&self, args: &[&str]) -> Result<usize, String> {
        let Some(d) = &self.drop else {
            return Err("-ERR Not authenticated".into());
        };
        let [number] = args else {
            return Err("-ERR Give one message number".into());
        };
        let n: usize = number
            .parse()
            .map_err(|_| "-ERR Not a message number".to_string())?;
        if n == 0 || n > d.messages.len() {
            return Err(format!("-ERR No message {n}"));
        }
        if d.deleted[n - 1] {
            return Err(format!("-ERR Message {n} is deleted"));
        }
        Ok(n - 1)
    }

    async fn listing(&mut self, command: &str, args: &[&str]) -> Result<(), ReadError> {
        let Some(d) = &self.drop else { return Ok(()) };
        let value = |m: &MessageMeta| {
            if command == "LIST" {
                m.size.to_string()
            } else {
                format!("{}.{}", d.uidvalidity, m.uid)
            }
        };
        if !args.is_empty() {
            let text = match self.message_index(args) {
                Ok(i) => format!("+OK {} {}", i + 1, value(&d.messages[i])),
                Err(e) => e,
            };
            return self.send(&text).await;
        }
        let mut text = "+OK\r\n".to_string();
        for (i, m) in self.live() {
            text.push_str(&format!("{} {}\r\n", i + 1, value(m)));
        }
        text.push('.');
        self.send(&text).await
    }

    async fn retrieve(&mut self, args: &[&str], top: Option<usize>) -> Result<(), ReadError> {
        let i = match self.message_index(args) {
            Ok(i) => i,
            Err(e) => return self.send(&e).await,
        };
        let Some(d) = &self.drop else { return Ok(()) };
        let meta = &d.messages[i];
        let body = match self
            .ctx
            .store
            .read_message(&d.account, d.mailbox_id, meta.uid)
            .await
        {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(uid = meta.uid, error = %e, "message unreadable");
                return self.send("-ERR [SYS/TEMP] Message unavailable").await;
            }
        };
        let mut out = format!("+OK {} octets\r\n", meta.size).into_bytes();
        let mut in_body = false;
        let mut body_lines = 0;
        for line in body.split_inclusive(|&b| b == b'\n') {
            if let Some(limit) = top
                && in_body
            {
                if body_lines == limit {
                    break;
                }
                body_lines += 1;
            }
            if line.starts_with(b".") {
                out.push(b'.');
            }
            out.extend_from_slice(line);
            if line == b"\r\n" || line == b"\n" {
                in_body = true;
            }
        }
        if !out.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.conn.write(&out).await
    }

    /// QUIT: in the transaction state, the UPDATE state applies deletions, then +OK.
    async fn quit(&mut self) -> Result<(), ReadError> {
        let Some(d) = &self.drop else {
            return self.send("+OK Bye").await;
        };
        let doomed: Vec<u32> = d
            .messages
            .iter()
            .zip(&d.deleted)
            .filter(|(_, del)| **del)
            .map(|(m, _)| m.uid)
            .collect();
        if doomed.is_empty() {
            return self.send("+OK Bye").await;
        }
        match self
            .ctx
            .store
            .db()
            .delete_messages(d.mailbox_id, &doomed)
            .await
        {
            Ok(()) => {
                self.send(&format!("+OK Bye, {} messages deleted", doomed.len()))
                    .await
            }
            Err(e) => {
                tracing::error!(error = %e, "POP3 update failed");
                self.send("-ERR [SYS/TEMP] Some deleted messages not removed")
                    .await
            }
        }
    }
}
