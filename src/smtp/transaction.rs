//! The mail transaction of an SMTP session: MAIL, RCPT, then the message by DATA or BDAT,
//! committed through the delivery pipeline before the 250.
//!
//! Who may send what: on submission the envelope sender and From: are the authenticated
//! user's; on the MX the sender's domain must be in the trust space with the peer as its
//! operator, or be a relayed hospital domain with the peer as its MTA. Recipients are local
//! mailboxes, relayed domains, and (for users and relay hosts only) the rest of the trust
//! space.

use smtp_proto::request::receiver::{BdatReceiver, DataReceiver};
use smtp_proto::{
    MAIL_RET_FULL, MAIL_SMTPUTF8, MailFrom, RCPT_NOTIFY_DELAY, RCPT_NOTIFY_FAILURE,
    RCPT_NOTIFY_NEVER, RCPT_NOTIFY_SUCCESS, RcptTo,
};

use super::Role;
use super::session::Session;
use crate::auth::normalize_address;
use crate::delivery::{Protected, Quota, Recipient};
use crate::listener::ReadError;
use crate::store::{Account, Envelope, EnvelopeRecipient, Notify};
use crate::trust::MxPeer;

/// One mail transaction, from MAIL to the end of the message.
pub(super) struct Transaction {
    sender: String,
    envelope_id: Option<String>,
    ret_full: bool,
    smtputf8: bool,
    /// The SIZE the client announced (0: none).
    size_hint: usize,
    /// Set on the MX: what the peer may send to.
    mx_peer: Option<MxPeer>,
    local: Vec<Account>,
    /// Local recipients whose sender asked for a success report (NOTIFY=SUCCESS).
    notify_delivered: Vec<EnvelopeRecipient>,
    outbound: Vec<EnvelopeRecipient>,
    /// The message so far (BDAT chunks), our Received header first.
    body: Vec<u8>,
    header_len: usize,
    /// A BDAT chunk overflowed the size limit: the rest is read and dropped.
    too_big: bool,
}

impl Transaction {
    fn has_recipients(&self) -> bool {
        !self.local.is_empty() || !self.outbound.is_empty()
    }
}

fn notify_of(flags: u64) -> Notify {
    if flags & (RCPT_NOTIFY_SUCCESS | RCPT_NOTIFY_FAILURE | RCPT_NOTIFY_DELAY | RCPT_NOTIFY_NEVER)
        == 0
    {
        return Notify::DEFAULT;
    }
    Notify {
        success: flags & RCPT_NOTIFY_SUCCESS != 0,
        failure: flags & RCPT_NOTIFY_FAILURE != 0,
        delay: flags & RCPT_NOTIFY_DELAY != 0,
        never: flags & RCPT_NOTIFY_NEVER != 0,
    }
}

impl Session<'_> {
    pub(super) async fn mail(&mut self, from: MailFrom<String>) -> Result<(), ReadError> {
        if self.helo.is_none() {
            return self.reply("503 5.5.1 Send EHLO first").await;
        }
        if self.conn.tls().is_none() {
            return self
                .reply("530 5.7.0 Must issue a STARTTLS command first")
                .await;
        }
        if self.transaction.is_some() {
            return self
                .reply("503 5.5.1 Sender already given; RSET to start over")
                .await;
        }
        let smtputf8 = from.flags & MAIL_SMTPUTF8 != 0;
        let sender = normalize_address(&from.address);
        if !smtputf8 && !sender.is_ascii() {
            return self
                .reply("553 5.6.7 A non-ASCII address needs the SMTPUTF8 parameter")
                .await;
        }
        let mut mx_peer = None;
        match self.role {
            Role::Submission => {
                let Some(user) = &self.user else {
                    return self.reply("530 5.7.0 Authentication required").await;
                };
                match self.may_send_as(&sender).await {
                    Ok(true) => {}
                    Ok(false) => {
                        let text = format!(
                            "550 5.7.1 Sender <{sender}> is not an address of {} nor delegated to it",
                            user.address
                        );
                        return self.reply(&text).await;
                    }
                    Err(text) => return self.reply(&text).await,
                }
            }
            Role::Mx => match self.mx_sender(&sender).await {
                Ok(peer) => mx_peer = Some(peer),
                Err(refusal) => return self.reply(&refusal).await,
            },
        }
        if from.size > self.ctx.config.limits.max_message_size {
            return self
                .reply("552 5.3.4 Message size exceeds the fixed limit")
                .await;
        }
        self.transaction = Some(Transaction {
            sender,
            envelope_id: from.env_id,
            ret_full: from.flags & MAIL_RET_FULL != 0,
            smtputf8,
            size_hint: from.size,
            mx_peer,
            local: Vec::new(),
            notify_delivered: Vec::new(),
            outbound: Vec::new(),
            body: Vec::new(),
            header_len: 0,
            too_big: false,
        });
        self.reply("250 2.1.0 Sender OK").await
    }

    /// On the MX: the peer must show a certificate, and the sender's domain must be in the
    /// trust space with that certificate as its operator (or be a relayed domain with the
    /// peer as its MTA). Refusals are audited.
    async fn mx_sender(&self, from: &str) -> Result<MxPeer, String> {
        let Some(leaf) = self.conn.tls().and_then(|t| t.peer_certificates.first()) else {
            return Err(
                "530 5.7.1 A client certificate of the MSSanté trust space is required".into(),
            );
        };
        let Ok(peer) = crate::identity::subject_dn(leaf) else {
            return Err("550 5.7.1 The client certificate cannot be read".into());
        };
        let ctx = self.ctx;
        match crate::trust::check_mx_sender(&ctx.store, &ctx.config, from, &peer).await {
            Ok(Ok(kind)) => Ok(kind),
            Ok(Err(refusal)) => {
                let detail = format!("<{from}>: {refusal}");
                let outcome = crate::audit::Outcome::Refused;
                let actor = peer.to_string();
                if let Err(e) = ctx
                    .audit
                    .record("mx.refused", &actor, &self.source(), outcome, &detail)
                    .await
                {
                    tracing::error!(error = %e, "audit write failed");
                    return Err("451 4.3.0 Temporary failure, try again later".into());
                }
                tracing::info!(%refusal, sender = from, "sender refused");
                Err(format!("550 5.7.1 {refusal}"))
            }
            Err(e) => {
                tracing::error!(error = %e, "trust space lookup failed");
                Err("451 4.3.0 Temporary failure, try again later".into())
            }
        }
    }

    pub(super) async fn rcpt(&mut self, to: RcptTo<String>) -> Result<(), ReadError> {
        let Some(tx) = &self.transaction else {
            return self.reply("503 5.5.1 Need MAIL before RCPT").await;
        };
        if tx.local.len() + tx.outbound.len() >= self.ctx.config.limits.max_recipients {
            return self.reply("452 4.5.3 Too many recipients").await;
        }
        // smtp-proto reads `<Postmaster>` (RFC 5321 4.5.1: always accepted) as "".
        let address = match normalize_address(&to.address) {
            a if a.is_empty() => "postmaster".to_string(),
            a => a,
        };
        if !tx.smtputf8 && !address.is_ascii() {
            return self
                .reply("553 5.6.7 A non-ASCII address needs the SMTPUTF8 parameter")
                .await;
        }
        let (size_hint, relay_host) = (tx.size_hint as u64, tx.mx_peer == Some(MxPeer::RelayHost));
        let outbound = EnvelopeRecipient {
            address: address.clone(),
            notify: notify_of(to.flags),
            orcpt: to.orcpt,
        };
        let text = match self.ctx.delivery.recipient(&address).await {
            Ok(Recipient::Local(account)) => {
                match self.ctx.delivery.quota(&account, size_hint).await {
                    Ok(Quota::Room) => {
                        if let Some(tx) = &mut self.transaction
                            && !tx.local.iter().any(|a| a.id == account.id)
                        {
                            tx.local.push(account);
                            if outbound.notify.success {
                                tx.notify_delivered.push(outbound);
                            }
                        }
                        "250 2.1.5 Recipient OK".to_string()
                    }
                    Ok(Quota::Full) => format!("452 4.2.2 Mailbox <{address}> is full"),
                    Ok(Quota::TooBig) => {
                        format!("552 5.2.2 This message would exceed the quota of <{address}>")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "quota lookup failed");
                        "451 4.3.0 Temporary failure, try again later".to_string()
                    }
                }
            }
            Ok(Recipient::Remote) if self.role == Role::Mx && !relay_host => {
                format!("550 5.7.1 Relaying denied: <{address}> is not served by this operator")
            }
            Ok(Recipient::Remote)
                if self.role == Role::Submission
                    && !self.ctx.delivery.known_remote(&address).await =>
            {
                format!("550 5.1.1 <{address}> is not in the national MSSanté directory")
            }
            Ok(Recipient::Relay | Recipient::Remote) => {
                if let Some(tx) = &mut self.transaction
                    && !tx.outbound.iter().any(|r| r.address == address)
                {
                    tx.outbound.push(outbound);
                }
                "250 2.1.5 Recipient OK".to_string()
            }
            Ok(Recipient::Suspended) => format!("550 5.2.1 Mailbox <{address}> is disabled"),
            Ok(Recipient::UnknownMailbox) => {
                format!("550 5.1.1 Mailbox <{address}> does not exist")
            }
            Ok(Recipient::Outside) => {
                format!("550 5.7.1 <{address}> is not in the MSSanté trust space")
            }
            Err(e) => {
                tracing::error!(error = %e, "recipient lookup failed");
                "451 4.3.0 Temporary failure, try again later".to_string()
            }
        };
        self.reply(&text).await
    }

    pub(super) async fn data(&mut self) -> Result<(), ReadError> {
        match &self.transaction {
            None => return self.reply("503 5.5.1 Need MAIL before DATA").await,
            Some(tx) if !tx.has_recipients() => {
                return self.reply("554 5.5.1 No valid recipients").await;
            }
            Some(tx) if !tx.body.is_empty() => {
                return self.reply("503 5.5.1 DATA cannot follow BDAT").await;
            }
            Some(_) => {}
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
        let Some(mut tx) = self.transaction.take() else {
            return Ok(());
        };
        tx.body = body;
        tx.header_len = header_len;
        tx.too_big = too_big;
        self.finish(tx).await
    }

    /// RFC 3030: a chunk of `size` octets follows the command at once; the last one ends the
    /// message. Chunks are always read in full, even when refused, to stay in step.
    pub(super) async fn bdat(&mut self, size: usize, last: bool) -> Result<(), ReadError> {
        let limit = self.ctx.config.limits.max_message_size;
        // The trace header goes in front of the first chunk.
        let header = match &self.transaction {
            Some(tx) if tx.body.is_empty() => Some(self.received_header()),
            _ => None,
        };
        let refusal = match &mut self.transaction {
            None => Some("503 5.5.1 Need MAIL before BDAT"),
            Some(tx) if !tx.has_recipients() => Some("554 5.5.1 No valid recipients"),
            Some(tx) => {
                if let Some(header) = header {
                    tx.body = header.into_bytes();
                    tx.header_len = tx.body.len();
                }
                // Saturating: `BDAT 18446744073709551615` must not wrap to a small size.
                let total = (tx.body.len() - tx.header_len).saturating_add(size);
                if tx.too_big || total > limit {
                    tx.too_big = true;
                    tx.body.truncate(tx.header_len);
                }
                None
            }
        };
        let keep = refusal.is_none() && self.transaction.as_ref().is_some_and(|t| !t.too_big);
        let mut chunk = Vec::new();
        if size > 0 {
            let mut receiver = BdatReceiver::new(size, last);
            let mut left = size;
            self.conn
                .read_until(|bytes| {
                    if keep {
                        let mut iter = bytes.iter();
                        let done = receiver.ingest(&mut iter, &mut chunk);
                        (bytes.len() - iter.as_slice().len(), done)
                    } else {
                        let used = bytes.len().min(left);
                        left -= used;
                        (used, left == 0)
                    }
                })
                .await?;
        }
        if let Some(refusal) = refusal {
            return self.reply(refusal).await;
        }
        let Some(tx) = &mut self.transaction else {
            return Ok(());
        };
        tx.body.extend_from_slice(&chunk);
        if !last {
            let text = format!("250 2.0.0 {size} octets received");
            return self.reply(&text).await;
        }
        let Some(tx) = self.transaction.take() else {
            return Ok(());
        };
        self.finish(tx).await
    }

    /// The end of a message: checks, then one commit for every recipient, then the reply.
    async fn finish(&mut self, mut tx: Transaction) -> Result<(), ReadError> {
        if tx.too_big {
            return self
                .reply("552 5.3.4 Message size exceeds the fixed limit")
                .await;
        }
        if let Some(refusal) =
            super::message::content_refusal(&tx.body[tx.header_len..], tx.smtputf8)
        {
            return self.reply(refusal).await;
        }
        if let Some(refusal) = self.complete_submission(&mut tx.body, tx.header_len).await {
            return self.reply(&refusal).await;
        }
        if let Some(refusal) = self.check_mx_authors(&tx.body[tx.header_len..]).await {
            return self.reply(&refusal).await;
        }
        // S/MIME on the professional's behalf for what goes to other operators; recipients
        // the policy refuses leave the envelope and are reported to the sender.
        let mut protected = Protected::default();
        let mut refused = Vec::new();
        if let (Role::Submission, Some(user)) = (self.role, &self.user)
            && !tx.outbound.is_empty()
        {
            let addresses: Vec<String> = tx.outbound.iter().map(|r| r.address.clone()).collect();
            protected = self
                .ctx
                .delivery
                .protect(user, &tx.sender, &addresses, &tx.body)
                .await;
            for (address, reason) in std::mem::take(&mut protected.refused) {
                if let Some(i) = tx.outbound.iter().position(|r| r.address == address) {
                    refused.push((tx.outbound.remove(i), reason));
                }
            }
        }
        let outbound = (!tx.outbound.is_empty()).then(|| Envelope {
            sender: tx.sender.clone(),
            envelope_id: tx.envelope_id.clone(),
            ret_full: tx.ret_full,
            smtputf8: tx.smtputf8,
            recipients: std::mem::take(&mut tx.outbound),
        });
        // The 250 comes only after every copy is committed.
        match self
            .ctx
            .delivery
            .accept(&tx.local, outbound, &tx.body, protected)
            .await
        {
            Ok(queued) => {
                tracing::info!(
                    local = tx.local.len(),
                    queued = ?queued,
                    size = tx.body.len(),
                    "message accepted"
                );
                self.report_delivered(&tx).await;
                self.report_refused(&tx, &refused).await;
                let text = match queued {
                    Some(id) => format!("250 2.0.0 Message accepted for delivery, queued as {id}"),
                    None => "250 2.0.0 Message accepted for delivery".to_string(),
                };
                self.reply(&text).await
            }
            Err(e) => {
                tracing::error!(error = %e, "delivery failed");
                self.reply("451 4.3.0 Temporary failure, try again later")
                    .await
            }
        }
    }

    /// RFC 3461: a success report for the local recipients that asked for one. The message
    /// is committed already, so a report that cannot be sent is only logged.
    async fn report_delivered(&self, tx: &Transaction) {
        let lines: Vec<_> = tx
            .notify_delivered
            .iter()
            .map(|r| (r, "2.0.0", ""))
            .collect();
        self.report(tx, super::dsn::Action::Delivered, &lines).await;
    }

    /// A failure report for the recipients the S/MIME policy did not send to.
    async fn report_refused(&self, tx: &Transaction, refused: &[(EnvelopeRecipient, String)]) {
        let lines: Vec<_> = refused
            .iter()
            .filter(|(r, _)| r.notify.failure)
            .map(|(r, reason)| (r, "5.7.1", reason.as_str()))
            .collect();
        self.report(tx, super::dsn::Action::Failed, &lines).await;
    }

    /// Sends `action` reports on `lines` (recipient, status, diagnostic) to the sender.
    async fn report(
        &self,
        tx: &Transaction,
        action: super::dsn::Action,
        lines: &[(&EnvelopeRecipient, &str, &str)],
    ) {
        if tx.sender.is_empty() || lines.is_empty() {
            return;
        }
        // The recipients reported on are local: the report comes from their domain.
        let from_domain = lines
            .first()
            .and_then(|(r, _, _)| r.address.rsplit_once('@'))
            .map_or(self.host(), |(_, domain)| domain);
        let report = super::dsn::Report {
            reporting_mta: self.host(),
            from_domain,
            action,
            to: &tx.sender,
            envelope_id: tx.envelope_id.as_deref(),
            arrival: chrono::Utc::now().timestamp(),
            retry_until: None,
            recipients: lines
                .iter()
                .map(|(r, status, diagnostic)| super::dsn::ReportLine {
                    address: &r.address,
                    orcpt: r.orcpt.as_deref(),
                    status: status.to_string(),
                    diagnostic,
                    remote_mta: "",
                })
                .collect(),
            original: &tx.body[tx.header_len..],
            ret_full: tx.ret_full,
        };
        match self
            .ctx
            .delivery
            .send_report(&tx.sender, &report.build())
            .await
        {
            Ok(true) => tracing::info!(to = %tx.sender, ?action, "report sent"),
            Ok(false) => tracing::warn!(to = %tx.sender, "sender cannot receive a report"),
            Err(e) => tracing::error!(error = %e, "report could not be sent"),
        }
    }

    /// Whether the authenticated user may send as `address`: their own, or a mailbox
    /// delegated to them with the right to send. Err is the reply for a store failure.
    async fn may_send_as(&self, address: &str) -> Result<bool, String> {
        let Some(user) = &self.user else {
            return Ok(false);
        };
        if address == user.address {
            return Ok(true);
        }
        self.ctx
            .store
            .db()
            .may_send_as(user.id, address)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "delegation lookup failed");
                "451 4.3.0 Temporary failure, try again later".to_string()
            })
    }

    /// On the MX: every address of From: and Sender: must be one the peer may send as, by
    /// the rule of the envelope sender (a domain it operates in the trust space, or the
    /// hospital domain it relays), or in a subdomain of one (an MTA's `MAILER-DAEMON@host`):
    /// an operator cannot put another operator's name, or ours, on its mail. A null sender
    /// gets no exception. Refusals are audited by [`Self::mx_sender`].
    async fn check_mx_authors(&self, message: &[u8]) -> Option<String> {
        if self.role != Role::Mx {
            return None;
        }
        let found = super::message::headers(message);
        if let Some(why) = found.ambiguous {
            return Some(format!("550 5.6.0 The message has {why} (RFC 5322 3.6)"));
        }
        if found.from.is_empty() {
            return Some("550 5.6.0 The message has no From: header".into());
        }
        for (field, author) in found.authors() {
            let Some((local, domain)) = author.rsplit_once('@') else {
                return Some(format!("550 5.7.1 {field} <{author}> is not an address"));
            };
            // The domain itself, then its parents down to two labels.
            let mut candidates = vec![domain];
            let mut rest = domain;
            while let Some((_, parent)) = rest.split_once('.')
                && parent.contains('.')
            {
                candidates.push(parent);
                rest = parent;
            }
            let mut last_refusal = String::new();
            let mut allowed = false;
            for candidate in candidates {
                match self.mx_sender_quiet(&format!("{local}@{candidate}")).await {
                    Ok(true) => {
                        allowed = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(reply) => return Some(reply),
                }
                last_refusal = candidate.to_string();
            }
            if !allowed {
                // Judged again at the domain itself, to audit the refusal in its words.
                let reply = match self.mx_sender(author).await {
                    Err(reply) => reply,
                    Ok(_) => format!("550 5.7.1 not a domain of this operator: {last_refusal}"),
                };
                let reason = reply
                    .strip_prefix("550 5.7.1 ")
                    .unwrap_or(&reply)
                    .to_string();
                if reply.starts_with("451") {
                    return Some(reply);
                }
                return Some(format!("550 5.7.1 {field} <{author}>: {reason}"));
            }
        }
        None
    }

    /// Whether the peer may send as `address` (no audit record): Err is a temporary failure.
    async fn mx_sender_quiet(&self, address: &str) -> Result<bool, String> {
        let Some(leaf) = self.conn.tls().and_then(|t| t.peer_certificates.first()) else {
            return Ok(false);
        };
        let Ok(peer) = crate::identity::subject_dn(leaf) else {
            return Ok(false);
        };
        let ctx = self.ctx;
        match crate::trust::check_mx_sender(&ctx.store, &ctx.config, address, &peer).await {
            Ok(verdict) => Ok(verdict.is_ok()),
            Err(e) => {
                tracing::error!(error = %e, "trust space lookup failed");
                Err("451 4.3.0 Temporary failure, try again later".into())
            }
        }
    }

    /// On submission: From: must name the authenticated user or a mailbox they may send as,
    /// and a missing Message-ID or Date is added after our Received header. Returns the
    /// refusal to send, if any.
    async fn complete_submission(&self, body: &mut Vec<u8>, header_len: usize) -> Option<String> {
        let user = self
            .user
            .as_ref()
            .filter(|_| self.role == Role::Submission)?;
        let found = super::message::headers(&body[header_len..]);
        if let Some(why) = found.ambiguous {
            // Readers show one of two From: fields, checks might see the other.
            return Some(format!("550 5.6.0 The message has {why} (RFC 5322 3.6)"));
        }
        if found.from.is_empty() {
            return Some("550 5.6.0 The message has no From: header".into());
        }
        for (field, author) in found.authors() {
            match self.may_send_as(author).await {
                Ok(true) => {}
                Ok(false) => {
                    return Some(format!(
                        "550 5.7.1 {field} <{author}> is not an address of {} nor delegated to it",
                        user.address
                    ));
                }
                Err(text) => return Some(text),
            }
        }
        let missing = super::message::missing_fields(&found, self.host());
        body.splice(header_len..header_len, missing.into_bytes());
        None
    }

    /// RFC 5321 4.4 trace header, with RFC 3848 protocol names and the TLS parameters.
    fn received_header(&self) -> String {
        let utf8 = self.transaction.as_ref().is_some_and(|t| t.smtputf8);
        let with = match (utf8, self.conn.tls().is_some(), self.user.is_some()) {
            (true, true, true) => "UTF8SMTPSA",
            (true, true, false) => "UTF8SMTPS",
            (false, true, true) => "ESMTPSA",
            (false, true, false) => "ESMTPS",
            (_, false, _) => "ESMTP",
        };
        let tls = self
            .conn
            .tls()
            .map(|t| format!(" (version={} cipher={})", t.version, t.cipher))
            .unwrap_or_default();
        // The verified certificate names the peer; the EHLO name is only what it says.
        let verified = self
            .conn
            .tls()
            .and_then(|t| t.peer_certificates.first())
            .and_then(|leaf| crate::identity::subject_dn(leaf).ok())
            .map(|dn| {
                format!(
                    " (certificate {})",
                    dn.to_string().replace(['\r', '\n', ';'], " ")
                )
            })
            .unwrap_or_default();
        format!(
            "Received: from {} ({}){verified}\r\n\tby {} (mssante) with {with}{tls} id {};\r\n\t{}\r\n",
            self.helo.as_deref().unwrap_or("unknown"),
            self.conn.peer.ip(),
            self.host(),
            self.conn.id,
            chrono::Utc::now().to_rfc2822(),
        )
    }
}
