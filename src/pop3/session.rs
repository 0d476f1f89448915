//! One POP3 session: AUTHORIZATION (STLS, USER/PASS, AUTH), then TRANSACTION on a locked
//! maildrop, then UPDATE at QUIT, where the marked messages are removed before `+OK`.

use crate::auth::{AuthError, Credentials, Mechanism, converse};
use crate::listener::{Connection, ReadError};
use crate::server::ServerContext;

use super::command::{self, Command, ParseError};
use super::maildrop::Maildrop;
use crate::wire::dot_stuffed;

/// Longest command line (RFC 2449 4 says 255 octets; SASL responses need more).
const MAX_LINE: usize = 4096;

pub struct Session<'a> {
    ctx: &'a ServerContext,
    conn: &'a mut Connection,
    user_name: Option<String>,
    maildrop: Option<Maildrop>,
    /// The device credential the user logged in with, re-checked before each command.
    device: Option<i64>,
}

impl<'a> Session<'a> {
    pub fn new(ctx: &'a ServerContext, conn: &'a mut Connection) -> Session<'a> {
        Session {
            ctx,
            conn,
            user_name: None,
            maildrop: None,
            device: None,
        }
    }

    async fn send(&mut self, text: &str) -> Result<(), ReadError> {
        self.conn.write(format!("{text}\r\n").as_bytes()).await
    }

    pub async fn run(mut self) -> Result<(), ReadError> {
        self.send("+OK mssante POP3 ready").await?;
        loop {
            let line = match self.conn.read_line(MAX_LINE).await {
                Ok(line) => line,
                Err(ReadError::LineTooLong(_)) => {
                    self.send("-ERR Line too long").await?;
                    continue;
                }
                Err(ReadError::Shutdown) => {
                    return self.send("-ERR [SYS/TEMP] Server shutting down").await;
                }
                Err(e) if e.time_limit().is_some() => {
                    let why = e.time_limit().unwrap_or_default();
                    let mut text = format!("-ERR {why}, closing");
                    text[5..6].make_ascii_uppercase();
                    let _ = self.send(&text).await;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            let command = match command::parse(&line) {
                Ok(c) => c,
                Err(e @ (ParseError::Unknown(_) | ParseError::Syntax(_))) => {
                    self.send(&format!("-ERR {e}")).await?;
                    continue;
                }
            };
            if let Some(device) = self.device
                && !self.ctx.auth.device_usable(device).await
            {
                // Deletions marked in this session are not applied.
                return self
                    .send("-ERR [AUTH] This device's access was withdrawn")
                    .await;
            }
            if command == Command::Quit {
                return self.quit().await;
            }
            self.handle(command).await?;
        }
    }

    fn capabilities(&self) -> Vec<String> {
        let mut caps: Vec<String> = [
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "EXPIRE NEVER",
            "IMPLEMENTATION mssante",
        ]
        .map(String::from)
        .to_vec();
        if self.conn.can_start_tls() {
            caps.push("STLS".into());
        }
        if self.conn.tls().is_some() && self.maildrop.is_none() {
            caps.push("USER".into());
            caps.push(format!("SASL {}", self.mechanisms().join(" ")));
        }
        caps
    }

    /// The SASL mechanisms this connection is offered.
    fn mechanisms(&self) -> Vec<&'static str> {
        let card = self.conn.has_client_certificate();
        Mechanism::offered(card, self.ctx.auth.offers_bearer())
            .iter()
            .map(|m| m.name())
            .collect()
    }

    async fn handle(&mut self, command: Command) -> Result<(), ReadError> {
        let name = command.name();
        if self.maildrop.is_none() {
            return match command {
                Command::Capa => self.capa().await,
                Command::Stls => self.stls().await,
                Command::User(name) => self.user(name).await,
                Command::Pass(password) => self.pass(password).await,
                Command::Auth { mechanism, initial } => self.auth(mechanism, initial).await,
                _ => self.send(&format!("-ERR {name} needs a login first")).await,
            };
        }
        match command {
            Command::Capa => self.capa().await,
            Command::Noop => self.send("+OK").await,
            Command::Stat => {
                let text = self.maildrop.as_ref().map_or(String::new(), |d| {
                    let (count, size) = d.live().fold((0, 0), |(c, s), (_, m)| (c + 1, s + m.size));
                    format!("+OK {count} {size}")
                });
                self.send(&text).await
            }
            Command::List(n) => self.listing(n, false).await,
            Command::Uidl(n) => self.listing(n, true).await,
            Command::Retr(n) => self.retrieve(n, None).await,
            Command::Top(n, lines) => self.retrieve(n, Some(lines)).await,
            Command::Dele(n) => self.dele(n).await,
            Command::Rset => {
                if let Some(d) = self.maildrop.as_mut() {
                    d.reset();
                }
                self.send("+OK All deletion marks cleared").await
            }
            _ => {
                self.send(&format!("-ERR {name} is not allowed after login"))
                    .await
            }
        }
    }

    async fn capa(&mut self) -> Result<(), ReadError> {
        let mut text = "+OK Capability list follows\r\n".to_string();
        for c in self.capabilities() {
            text.push_str(&c);
            text.push_str("\r\n");
        }
        text.push('.');
        self.send(&text).await
    }

    async fn stls(&mut self) -> Result<(), ReadError> {
        if !self.conn.can_start_tls() {
            return self
                .send("-ERR TLS already active or not offered here")
                .await;
        }
        self.send("+OK Begin TLS negotiation").await?;
        self.conn.start_tls().await?;
        // Nothing said before TLS counts after it (RFC 2595 4).
        self.user_name = None;
        Ok(())
    }

    async fn user(&mut self, name: String) -> Result<(), ReadError> {
        if self.conn.tls().is_none() {
            return self.send("-ERR [AUTH] Use STLS first").await;
        }
        self.user_name = Some(name);
        self.send("+OK Send PASS").await
    }

    async fn pass(&mut self, password: String) -> Result<(), ReadError> {
        let Some(name) = self.user_name.take() else {
            return self.send("-ERR USER first").await;
        };
        // `user*mailbox`: the user logs in with their own password to a delegated mailbox.
        let (username, mailbox) = match name.split_once('*') {
            Some((user, mailbox)) => (user.to_string(), Some(mailbox.to_string())),
            None => (name, None),
        };
        self.login(
            Credentials::Password {
                authzid: None,
                username,
                password,
            },
            mailbox,
        )
        .await
    }

    async fn auth(
        &mut self,
        mechanism: Option<String>,
        initial: Option<String>,
    ) -> Result<(), ReadError> {
        if self.conn.tls().is_none() {
            return self.send("-ERR [AUTH] Use STLS first").await;
        }
        let Some(mechanism) = mechanism else {
            let names = self.mechanisms();
            return self
                .send(&format!("+OK\r\n{}\r\n.", names.join("\r\n")))
                .await;
        };
        let Some(mechanism) = Mechanism::parse(&mechanism) else {
            return self.send("-ERR Unsupported mechanism").await;
        };
        let credentials =
            match converse(self.conn, mechanism, initial.as_deref(), "+ ", MAX_LINE).await? {
                Ok(credentials) => credentials,
                Err(e) => return self.send(&format!("-ERR {e}")).await,
            };
        // The SASL authorization identity names the mailbox to open (RFC 5034 4): the
        // authenticator resolves it, to one of the user's own or one delegated to them.
        self.login(credentials, None).await
    }

    /// Checks the credentials, then opens the mailbox their authorization identity or
    /// `mailbox` (`USER user*mailbox`) names, the user's own otherwise, if the user may read
    /// it and no other POP3 session holds it.
    async fn login(
        &mut self,
        credentials: Credentials,
        mailbox: Option<String>,
    ) -> Result<(), ReadError> {
        let source = format!("pop3 {}", self.conn.peer);
        let bearer = matches!(credentials, Credentials::Bearer { .. });
        let auth = &self.ctx.auth;
        let opened = match auth.authenticate(credentials, &source).await {
            Ok(login) => {
                self.device = login.device.map(|(id, _)| id);
                match (login.delegated, mailbox) {
                    (Some(delegated), _) => Ok(delegated),
                    (None, Some(target)) => auth.delegated(&login.account, &target, &source).await,
                    (None, None) => Ok((login.account, crate::auth::Rights::ALL)),
                }
            }
            Err(e) => Err(e),
        };
        let (account, rights) = match opened {
            Ok(pair) if pair.1.allows("r") => pair,
            Ok(_) | Err(AuthError::NotAuthorized(_)) => {
                return self.send("-ERR [AUTH] You may not read this mailbox").await;
            }
            Err(AuthError::Unavailable) => {
                return self
                    .send("-ERR [SYS/TEMP] Temporary failure, try again")
                    .await;
            }
            Err(_) => {
                if bearer {
                    crate::auth::bearer_refused(self.conn, "+ ", MAX_LINE).await?;
                }
                return self.send("-ERR [AUTH] Authentication failed").await;
            }
        };
        let store = self.ctx.store.db();
        let folder = match store.mailbox(account.id, "INBOX", true).await {
            Ok(Some(folder)) => folder,
            Ok(None) => return self.send("-ERR [SYS/TEMP] No INBOX").await,
            Err(e) => {
                tracing::error!(error = %e, "maildrop lookup failed");
                return self.send("-ERR [SYS/TEMP] Maildrop unavailable").await;
            }
        };
        let Some(lock) = self.ctx.maildrop_locks.try_lock(folder.id) else {
            return self
                .send("-ERR [IN-USE] Another POP3 session has this maildrop open")
                .await;
        };
        let messages = match store.list_messages(folder.id).await {
            Ok(messages) => messages,
            Err(e) => {
                tracing::error!(error = %e, "maildrop load failed");
                return self.send("-ERR [SYS/TEMP] Maildrop unavailable").await;
            }
        };
        self.conn.authenticated();
        tracing::info!(mailbox = %account.address, %rights, "POP3 maildrop opened");
        let count = messages.len();
        self.maildrop = Some(Maildrop::new(account, folder, rights, messages, lock));
        self.send(&format!("+OK Maildrop has {count} messages"))
            .await
    }

    async fn listing(&mut self, n: Option<usize>, uidl: bool) -> Result<(), ReadError> {
        let Some(d) = &self.maildrop else {
            return Ok(());
        };
        let value = |m: &crate::store::MessageMeta| {
            if uidl {
                d.unique_id(m)
            } else {
                m.size.to_string()
            }
        };
        let text = match n {
            Some(n) => match d.get(n) {
                Ok(m) => format!("+OK {n} {}", value(m)),
                Err(e) => format!("-ERR {e}"),
            },
            None => {
                let mut text = "+OK\r\n".to_string();
                for (n, m) in d.live() {
                    text.push_str(&format!("{n} {}\r\n", value(m)));
                }
                text.push('.');
                text
            }
        };
        self.send(&text).await
    }

    async fn dele(&mut self, n: usize) -> Result<(), ReadError> {
        let Some(d) = self.maildrop.as_mut() else {
            return Ok(());
        };
        if !d.rights.allows("te") {
            return self
                .send("-ERR Deleting is not among your rights on this mailbox")
                .await;
        }
        let text = match d.delete(n) {
            Ok(()) => format!("+OK Message {n} deleted"),
            Err(e) => format!("-ERR {e}"),
        };
        self.send(&text).await
    }

    async fn retrieve(&mut self, n: usize, lines: Option<usize>) -> Result<(), ReadError> {
        let Some(d) = &self.maildrop else {
            return Ok(());
        };
        let meta = match d.get(n) {
            Ok(m) => m,
            Err(e) => return self.send(&format!("-ERR {e}")).await,
        };
        let body = match self
            .ctx
            .store
            .read_message(&d.account, d.folder.id, meta.uid)
            .await
        {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(uid = meta.uid, error = %e, "message unreadable");
                return self.send("-ERR [SYS/TEMP] Message unavailable").await;
            }
        };
        let mut out = format!("+OK {} octets\r\n", meta.size).into_bytes();
        let sent = match lines {
            Some(n) => top(&body, n),
            None => &body,
        };
        out.extend_from_slice(&dot_stuffed(sent));
        self.conn.write(&out).await
    }

    /// QUIT: in the TRANSACTION state, the UPDATE state removes the marked messages, then
    /// `+OK`; if that fails nothing is promised removed (RFC 1939 6).
    async fn quit(&mut self) -> Result<(), ReadError> {
        let Some(d) = self.maildrop.take() else {
            return self.send("+OK Bye").await;
        };
        let doomed = d.doomed();
        if doomed.is_empty() {
            return self.send("+OK Bye").await;
        }
        match self.ctx.store.expunge(d.folder.id, &doomed).await {
            Ok(()) => {
                self.send(&format!("+OK Bye, {} messages deleted", doomed.len()))
                    .await
            }
            Err(e) => {
                tracing::error!(error = %e, "POP3 update failed");
                self.send("-ERR [SYS/TEMP] Marked messages were not removed")
                    .await
            }
        }
    }
}

/// What TOP sends of a message: the header section, the blank line, then at most `lines`
/// lines of the body.
fn top(message: &[u8], lines: usize) -> &[u8] {
    let mut end = 0;
    let mut in_body = false;
    let mut body_lines = 0;
    for line in message.split_inclusive(|&b| b == b'\n') {
        if in_body {
            if body_lines == lines {
                break;
            }
            body_lines += 1;
        }
        end += line.len();
        if line == b"\r\n" || line == b"\n" {
            in_body = true;
        }
    }
    &message[..end]
}

#[cfg(test)]
mod tests {
    use super::top;

    #[test]
    fn top_keeps_the_headers_and_n_body_lines() {
        let m = b"Subject: x\r\n\r\none\r\n.two\r\nthree\r\n";
        assert_eq!(top(m, 0), b"Subject: x\r\n\r\n");
        assert_eq!(top(m, 2), b"Subject: x\r\n\r\none\r\n.two\r\n");
        assert_eq!(top(m, 9), m);
        assert_eq!(top(b"Subject: no body", 3), b"Subject: no body");
    }
}
