//! One SMTP session: the state between commands and the reply to each.

use smtp_proto::request::receiver::DataReceiver;
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, Error as ParseError, Request};

use super::Role;
use crate::auth::sasl::{self, Exchange, Step};
use crate::auth::{AuthError, Mechanism, normalize_address};
use crate::delivery::Recipient;
use crate::listener::{Connection, ReadError};
use crate::server::ServerContext;
use crate::store::Account;

/// Command lines longer than this are refused (RFC 5321 allows 512; extensions need more).
const MAX_COMMAND_LINE: usize = 4096;

pub(super) struct Session<'a> {
    ctx: &'a ServerContext,
    role: Role,
    conn: &'a mut Connection,
    helo: Option<String>,
    user: Option<Account>,
    mail_from: Option<String>,
    recipients: Vec<Account>,
}

impl<'a> Session<'a> {
    pub(super) fn new(ctx: &'a ServerContext, role: Role, conn: &'a mut Connection) -> Session<'a> {
        Session {
            ctx,
            role,
            conn,
            helo: None,
            user: None,
            mail_from: None,
            recipients: Vec::new(),
        }
    }

    fn host(&self) -> &str {
        &self.ctx.config.hostname
    }

    fn source(&self) -> String {
        let role = if self.role == Role::Mx {
            "mx"
        } else {
            "submission"
        };
        format!("{role} {}", self.conn.peer)
    }

    async fn reply(&mut self, text: &str) -> Result<(), ReadError> {
        self.conn.write(format!("{text}\r\n").as_bytes()).await
    }

    fn reset_transaction(&mut self) {
        self.mail_from = None;
        self.recipients.clear();
    }

    pub(super) async fn run(mut self) -> Result<(), ReadError> {
        let greeting = format!("220 {} ESMTP mssante", self.host());
        self.reply(&greeting).await?;
        loop {
            let line = match self.conn.read_line(MAX_COMMAND_LINE).await {
                Ok(line) => line,
                Err(ReadError::LineTooLong) => {
                    self.reply("500 5.5.2 Line too long").await?;
                    continue;
                }
                Err(ReadError::Shutdown) => {
                    let bye = format!("421 4.3.2 {} shutting down, try again later", self.host());
                    return self.reply(&bye).await;
                }
                Err(ReadError::Timeout) => {
                    let bye = format!("421 4.4.2 {} idle for too long, closing", self.host());
                    let _ = self.reply(&bye).await;
                    return Err(ReadError::Timeout);
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
            Request::Mail { from } => self.mail(from.address, from.size).await?,
            Request::Rcpt { to } => self.rcpt(to.address).await?,
            Request::Data => self.data().await?,
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
        lines.push("ENHANCEDSTATUSCODES".into());
        lines.push(format!("SIZE {}", self.ctx.config.limits.max_message_size));
        if self.conn.can_start_tls() {
            lines.push("STARTTLS".into());
        }
        if self.role == Role::Submission && self.conn.tls().is_some() && self.user.is_none() {
            let names: Vec<&str> = Mechanism::OFFERED.iter().map(|m| m.name()).collect();
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
        // RFC 3207: forget everything learnt before TLS.
        self.helo = None;
        self.user = None;
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
        if self.mail_from.is_some() {
            return self
                .reply("503 5.5.1 AUTH is not allowed during a mail transaction")
                .await;
        }
        let mechanism = match mechanism {
            AUTH_PLAIN => Mechanism::Plain,
            AUTH_LOGIN => Mechanism::Login,
            _ => {
                return self
                    .reply("504 5.5.4 Unrecognized authentication mechanism")
                    .await;
            }
        };
        let initial = match initial.as_str() {
            "" => None,
            data => match sasl::decode_response(data.as_bytes()) {
                Ok(bytes) => Some(bytes),
                Err(e) => return self.reply(&sasl_error_reply(&e)).await,
            },
        };
        let mut step = Exchange::start(mechanism, initial);
        let credentials = loop {
            let (mut exchange, next) = match step {
                Ok(pair) => pair,
                Err(e) => return self.reply(&sasl_error_reply(&e)).await,
            };
            match next {
                Step::Done(credentials) => break credentials,
                Step::Challenge(challenge) => {
                    let text = format!("334 {}", sasl::encode_challenge(&challenge));
                    self.reply(&text).await?;
                    let line = self.conn.read_line(MAX_COMMAND_LINE).await?;
                    step = sasl::decode_response(&line)
                        .and_then(|data| exchange.respond(&data))
                        .map(|next| (exchange, next));
                }
            }
        };
        let source = self.source();
        match self.ctx.auth.authenticate(credentials, &source).await {
            Ok(account) => {
                tracing::info!(user = %account.address, "authenticated");
                self.user = Some(account);
                self.reply("235 2.7.0 Authentication successful").await
            }
            Err(AuthError::Unavailable) => {
                self.reply("454 4.7.0 Temporary authentication failure")
                    .await
            }
            Err(_) => {
                self.reply("535 5.7.8 Authentication credentials invalid")
                    .await
            }
        }
    }

    async fn mail(&mut self, from: String, size: usize) -> Result<(), ReadError> {
        if self.helo.is_none() {
            return self.reply("503 5.5.1 Send EHLO first").await;
        }
        if self.conn.tls().is_none() {
            return self
                .reply("530 5.7.0 Must issue a STARTTLS command first")
                .await;
        }
        if self.mail_from.is_some() {
            return self
                .reply("503 5.5.1 Sender already given; RSET to start over")
                .await;
        }
        let from = normalize_address(&from);
        match self.role {
            Role::Submission => {
                let Some(user) = &self.user else {
                    return self.reply("530 5.7.0 Authentication required").await;
                };
                if from != user.address {
                    let text = format!(
                        "550 5.7.1 Sender <{from}> is not an address of {}",
                        user.address
                    );
                    return self.reply(&text).await;
                }
            }
            Role::Mx => {
                if let Some(refusal) = self.mx_sender_refusal(&from).await {
                    return self.reply(&refusal).await;
                }
            }
        }
        if size > self.ctx.config.limits.max_message_size {
            return self
                .reply("552 5.3.4 Message size exceeds the fixed limit")
                .await;
        }
        self.mail_from = Some(from);
        self.reply("250 2.1.0 Sender OK").await
    }

    /// On the MX: the peer must show a certificate, and the sender's domain must be in the
    /// trust space with that certificate as its operator. Returns the refusal to send.
    async fn mx_sender_refusal(&self, from: &str) -> Option<String> {
        let Some(leaf) = self.conn.tls().and_then(|t| t.peer_certificates.first()) else {
            return Some(
                "530 5.7.1 A client certificate of the MSSanté trust space is required".into(),
            );
        };
        let Ok(peer) = crate::identity::subject_dn(leaf) else {
            return Some("550 5.7.1 The client certificate cannot be read".into());
        };
        let ctx = self.ctx;
        match crate::trust::check_mx_sender(&ctx.store, &ctx.config.trust, from, &peer).await {
            Ok(Ok(())) => None,
            Ok(Err(refusal)) => {
                let source = format!("mx {}", self.conn.peer);
                let detail = format!("<{from}>: {refusal}");
                let outcome = crate::audit::Outcome::Refused;
                let actor = peer.to_string();
                if let Err(e) = ctx
                    .audit
                    .record("mx.refused", &actor, &source, outcome, &detail)
                    .await
                {
                    tracing::error!(error = %e, "audit write failed");
                    return Some("451 4.3.0 Temporary failure, try again later".into());
                }
                tracing::info!(%refusal, sender = from, "sender refused");
                Some(format!("550 5.7.1 {refusal}"))
            }
            Err(e) => {
                tracing::error!(error = %e, "trust space lookup failed");
                Some("451 4.3.0 Temporary failure, try again later".into())
            }
        }
    }

    async fn rcpt(&mut self, to: String) -> Result<(), ReadError> {
        if self.mail_from.is_none() {
            return self.reply("503 5.5.1 Need MAIL before RCPT").await;
        }
        if self.recipients.len() >= self.ctx.config.limits.max_recipients {
            return self.reply("452 4.5.3 Too many recipients").await;
        }
        let to = normalize_address(&to);
        let text = match self.ctx.delivery.recipient(&to).await {
            Ok(Recipient::Local(account)) => {
                if !self.recipients.iter().any(|r| r.id == account.id) {
                    self.recipients.push(account);
                }
                "250 2.1.5 Recipient OK".to_string()
            }
            Ok(Recipient::Suspended) => format!("550 5.2.1 Mailbox <{to}> is disabled"),
            Ok(Recipient::UnknownMailbox) => format!("550 5.1.1 Mailbox <{to}> does not exist"),
            Ok(Recipient::NotLocal) => {
                format!("550 5.7.1 <{to}> is not in the MSSanté trust space")
            }
            Err(e) => {
                tracing::error!(error = %e, "recipient lookup failed");
                "451 4.3.0 Temporary failure, try again later".to_string()
            }
        };
        self.reply(&text).await
    }

    async fn data(&mut self) -> Result<(), ReadError> {
        if self.mail_from.is_none() {
            return self.reply("503 5.5.1 Need MAIL before DATA").await;
        }
        if self.recipients.is_empty() {
            return self.reply("554 5.5.1 No valid recipients").await;
        }
        self.reply("354 Start mail input; end with <CRLF>.<CRLF>")
            .await?;
        let limit = self.ctx.config.limits.max_message_size;
        let mut receiver = DataReceiver::new();
        let mut body = self.received_header().into_bytes();
        let header_len = body.len();
        let mut too_big = false;
        self.conn
            .read_until(|bytes| {
                let mut iter = bytes.iter();
                let done = receiver.ingest(&mut iter, &mut body);
                if body.len() - header_len > limit {
                    // Keep reading to the final dot, but keep nothing.
                    too_big = true;
                    body.truncate(header_len);
                }
                (bytes.len() - iter.as_slice().len(), done)
            })
            .await?;
        let recipients = std::mem::take(&mut self.recipients);
        self.mail_from = None;
        if too_big {
            return self
                .reply("552 5.3.4 Message size exceeds the fixed limit")
                .await;
        }
        if let Some(refusal) = self.complete_submission(&mut body, header_len) {
            return self.reply(&refusal).await;
        }
        // The 250 comes only after every copy is committed.
        match self.ctx.delivery.deliver_local(&recipients, &body).await {
            Ok(()) => {
                tracing::info!(
                    recipients = recipients.len(),
                    size = body.len(),
                    "message delivered"
                );
                self.reply("250 2.0.0 Message accepted for delivery").await
            }
            Err(e) => {
                tracing::error!(error = %e, "delivery failed");
                self.reply("451 4.3.0 Temporary failure, try again later")
                    .await
            }
        }
    }

    /// On submission: From: must name the authenticated user, and a missing Message-ID or
    /// Date is added after our Received header. Returns the refusal to send, if any.
    fn complete_submission(&self, body: &mut Vec<u8>, header_len: usize) -> Option<String> {
        let user = self
            .user
            .as_ref()
            .filter(|_| self.role == Role::Submission)?;
        let found = super::message::headers(&body[header_len..]);
        if found.from.is_empty() {
            return Some("550 5.6.0 The message has no From: header".into());
        }
        if let Some(other) = found.from.iter().find(|a| **a != user.address) {
            return Some(format!(
                "550 5.7.1 From: <{other}> is not an address of {}",
                user.address
            ));
        }
        let missing = super::message::missing_fields(&found, self.host());
        body.splice(header_len..header_len, missing.into_bytes());
        None
    }

    /// RFC 5321 4.4 trace header, with RFC 3848 protocol names and the TLS parameters.
    fn received_header(&self) -> String {
        let with = match (self.conn.tls().is_some(), self.user.is_some()) {
            (true, true) => "ESMTPSA",
            (true, false) => "ESMTPS",
            (false, _) => "ESMTP",
        };
        let tls = self
            .conn
            .tls()
            .map(|t| format!(" (version={} cipher={})", t.version, t.cipher))
            .unwrap_or_default();
        format!(
            "Received: from {} ({})\r\n\tby {} (mssante) with {with}{tls} id {};\r\n\t{}\r\n",
            self.helo.as_deref().unwrap_or("unknown"),
            self.conn.peer.ip(),
            self.host(),
            self.conn.id,
            chrono::Utc::now().to_rfc2822(),
        )
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

fn sasl_error_reply(e: &sasl::SaslError) -> String {
    match e {
        sasl::SaslError::Cancelled => "501 5.0.0 Authentication cancelled".into(),
        sasl::SaslError::Malformed => "501 5.5.2 Malformed authentication data".into(),
    }
}
