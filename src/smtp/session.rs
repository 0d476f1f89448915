//! One SMTP session: the state between commands and the reply to each.

//!
//! The mail transaction itself (MAIL, RCPT, DATA, BDAT) is in `transaction.rs`.

use smtp_proto::{
    AUTH_EXTERNAL, AUTH_LOGIN, AUTH_OAUTHBEARER, AUTH_PLAIN, AUTH_XOAUTH2, Error as ParseError,
    Request,
};

use super::Role;
use super::transaction::Transaction;
use crate::auth::sasl::SaslError;
use crate::auth::{AuthError, Mechanism, converse};
use crate::listener::{Connection, ReadError};
use crate::server::ServerContext;
use crate::store::Account;

/// Command lines longer than this are refused (RFC 5321 allows 512; extensions need more).
pub(super) const MAX_COMMAND_LINE: usize = 4096;

pub(super) struct Session<'a> {
    pub(super) ctx: &'a ServerContext,
    pub(super) role: Role,
    pub(super) conn: &'a mut Connection,
    pub(super) helo: Option<String>,
    pub(super) user: Option<Account>,
    /// The device credential the user logged in with, re-checked before each command.
    pub(super) device: Option<i64>,
    pub(super) transaction: Option<Transaction>,
}

impl<'a> Session<'a> {
    pub(super) fn new(ctx: &'a ServerContext, role: Role, conn: &'a mut Connection) -> Session<'a> {
        Session {
            ctx,
            role,
            conn,
            helo: None,
            user: None,
            device: None,
            transaction: None,
        }
    }

    pub(super) fn host(&self) -> &str {
        &self.ctx.config.hostname
    }

    pub(super) fn source(&self) -> String {
        let role = if self.role == Role::Mx {
            "mx"
        } else {
            "submission"
        };
        format!("{role} {}", self.conn.peer)
    }

    pub(super) async fn reply(&mut self, text: &str) -> Result<(), ReadError> {
        self.conn.write(format!("{text}\r\n").as_bytes()).await
    }

    pub(super) fn reset_transaction(&mut self) {
        self.transaction = None;
    }

    /// On the MX, an operator (or a hospital relay) whose certificate the handshake verified
    /// is known: the login deadline and the unauthenticated count no longer apply to it.
    fn note_verified_peer(&mut self) {
        if self.role == Role::Mx && self.conn.has_client_certificate() {
            self.conn.authenticated();
        }
    }

    pub(super) async fn run(mut self) -> Result<(), ReadError> {
        self.note_verified_peer();
        let greeting = format!("220 {} ESMTP mssante", self.host());
        self.reply(&greeting).await?;
        loop {
            let line = match self.conn.read_line(MAX_COMMAND_LINE).await {
                Ok(line) => line,
                Err(ReadError::LineTooLong(_)) => {
                    self.reply("500 5.5.2 Line too long").await?;
                    continue;
                }
                Err(ReadError::Shutdown) => {
                    let bye = format!("421 4.3.2 {} shutting down, try again later", self.host());
                    return self.reply(&bye).await;
                }
                Err(e) if e.time_limit().is_some() => {
                    let why = e.time_limit().unwrap_or_default();
                    let bye = format!("421 4.4.2 {} {why}, closing", self.host());
                    let _ = self.reply(&bye).await;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            let request = match Request::parse(&mut line.iter()) {
                Ok(request) => request.into_owned(),
                Err(e) => {
                    self.reply(parse_error_reply(&e).as_str()).await?;
                    continue;
                }
            };
            if let Some(device) = self.device
                && !self.ctx.auth.device_usable(device).await
            {
                return self
                    .reply("421 4.7.0 This device's access was withdrawn, closing")
                    .await;
            }
            if !self.handle(request).await? {
                return Ok(());
            }
        }
    }

    /// Handles one command; false once the session should end.
    async fn handle(&mut self, request: Request<String>) -> Result<bool, ReadError> {
        match request {
            Request::Ehlo { host } => self.ehlo(host).await?,
            Request::Helo { host } => {
                self.reset_transaction();
                self.helo = Some(host);
                let text = format!("250 {}", self.host());
                self.reply(&text).await?;
            }
            Request::StartTls => self.starttls().await?,
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response).await?,
            Request::Mail { from } => self.mail(from).await?,
            Request::Rcpt { to } => self.rcpt(to).await?,
            Request::Data => self.data().await?,
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat(chunk_size, is_last).await?,
            Request::Rset => {
                self.reset_transaction();
                self.reply("250 2.0.0 Reset").await?;
            }
            Request::Noop { .. } => self.reply("250 2.0.0 OK").await?,
            Request::Vrfy { .. } => {
                self.reply("252 2.5.2 Cannot VRFY; send the message and it will be tried")
                    .await?
            }
            Request::Help { .. } => self.reply("214 2.0.0 mssante: see RFC 5321").await?,
            Request::Quit => {
                self.reply("221 2.0.0 Bye").await?;
                return Ok(false);
            }
            other => {
                let text = format!("502 5.5.1 {} is not implemented", other.name());
                self.reply(&text).await?;
            }
        }
        Ok(true)
    }

    async fn ehlo(&mut self, host: String) -> Result<(), ReadError> {
        self.reset_transaction();
        let mut lines = vec![format!("{} greets {host}", self.host())];
        lines.push("PIPELINING".into());
        lines.push("8BITMIME".into());
        lines.push("SMTPUTF8".into());
        lines.push("CHUNKING".into());
        lines.push("DSN".into());
        lines.push("ENHANCEDSTATUSCODES".into());
        lines.push(format!("SIZE {}", self.ctx.config.limits.max_message_size));
        if self.conn.can_start_tls() {
            lines.push("STARTTLS".into());
        }
        if self.role == Role::Submission && self.conn.tls().is_some() && self.user.is_none() {
            let card = self.conn.has_client_certificate();
            let names: Vec<&str> = Mechanism::offered(card, self.ctx.auth.offers_bearer())
                .iter()
                .map(|m| m.name())
                .collect();
            lines.push(format!("AUTH {}", names.join(" ")));
        }
        self.helo = Some(host);
        let last = lines.len() - 1;
        let text: String = lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
            .collect();
        self.conn.write(text.as_bytes()).await
    }

    async fn starttls(&mut self) -> Result<(), ReadError> {
        if self.conn.tls().is_some() {
            return self.reply("503 5.5.1 TLS is already active").await;
        }
        if !self.conn.can_start_tls() {
            return self.reply("454 4.7.0 TLS not available").await;
        }
        self.reply("220 2.0.0 Ready to start TLS").await?;
        self.conn.start_tls().await?;
        self.note_verified_peer();
        // RFC 3207: forget everything learnt before TLS.
        self.helo = None;
        self.user = None;
        self.device = None;
        self.reset_transaction();
        Ok(())
    }

    async fn auth(&mut self, mechanism: u64, initial: String) -> Result<(), ReadError> {
        if self.role == Role::Mx {
            return self
                .reply("503 5.5.1 AUTH is not offered on the MX; use the submission port")
                .await;
        }
        if self.conn.tls().is_none() {
            return self
                .reply("538 5.7.11 Encryption required: STARTTLS first")
                .await;
        }
        if self.user.is_some() {
            return self.reply("503 5.5.1 Already authenticated").await;
        }
        if self.transaction.is_some() {
            return self
                .reply("503 5.5.1 AUTH is not allowed during a mail transaction")
                .await;
        }
        let mechanism = match mechanism {
            AUTH_PLAIN => Mechanism::Plain,
            AUTH_LOGIN => Mechanism::Login,
            AUTH_EXTERNAL => Mechanism::External,
            AUTH_XOAUTH2 => Mechanism::XOAuth2,
            AUTH_OAUTHBEARER => Mechanism::OAuthBearer,
            _ => {
                return self
                    .reply("504 5.5.4 Unrecognized authentication mechanism")
                    .await;
            }
        };
        let initial = (!initial.is_empty()).then_some(initial.as_str());
        let credentials =
            match converse(self.conn, mechanism, initial, "334 ", MAX_COMMAND_LINE).await? {
                Ok(credentials) => credentials,
                Err(e) => return self.reply(&sasl_error_reply(&e)).await,
            };
        let source = self.source();
        let bearer = matches!(credentials, crate::auth::Credentials::Bearer { .. });
        match self.ctx.auth.authenticate(credentials, &source).await {
            Ok(login) => {
                tracing::info!(user = %login.account.address, "authenticated");
                self.conn.authenticated();
                self.user = Some(login.account);
                self.device = login.device.map(|(id, _)| id);
                self.reply("235 2.7.0 Authentication successful").await
            }
            Err(AuthError::Unavailable) => {
                self.reply("454 4.7.0 Temporary authentication failure")
                    .await
            }
            Err(_) => {
                if bearer {
                    crate::auth::bearer_refused(self.conn, "334 ", MAX_COMMAND_LINE).await?;
                }
                self.reply("535 5.7.8 Authentication credentials invalid")
                    .await
            }
        }
    }
}

fn parse_error_reply(e: &ParseError) -> String {
    match e {
        ParseError::UnknownCommand => "500 5.5.1 Unknown command".into(),
        ParseError::InvalidSenderAddress => "501 5.1.7 Invalid sender address".into(),
        ParseError::InvalidRecipientAddress => "501 5.1.3 Invalid recipient address".into(),
        ParseError::SyntaxError { syntax } => format!("501 5.5.4 Syntax: {syntax}"),
        ParseError::InvalidParameter { param } => format!("501 5.5.4 Invalid parameter {param}"),
        ParseError::UnsupportedParameter { param } => {
            format!("555 5.5.4 Unsupported parameter {param}")
        }
        _ => "500 5.5.2 Syntax error".into(),
    }
}

fn sasl_error_reply(e: &SaslError) -> String {
    match e {
        SaslError::Cancelled => "501 5.0.0 Authentication cancelled".into(),
        SaslError::Malformed => "501 5.5.2 Malformed authentication data".into(),
        SaslError::NoCertificate => {
            "535 5.7.8 EXTERNAL needs a TLS client certificate (a CPS card)".into()
        }
    }
}
