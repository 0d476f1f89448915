//! Delivery status notifications (RFC 3464): the multipart/report a sender receives when a
//! message failed or is late. Built here without I/O; the queue decides when to send one,
//! and never for a message whose sender is null (that is how report loops are avoided).

use chrono::{DateTime, Utc};

/// What happened to a recipient (RFC 3464 2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Delivery failed for good.
    Failed,
    /// Not delivered yet; still trying.
    Delayed,
    /// Put in the recipient's mailbox (NOTIFY=SUCCESS).
    Delivered,
    /// Handed to a next hop that does not report on delivery itself (NOTIFY=SUCCESS).
    Relayed,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
        }
    }
}

/// One recipient in a report.
#[derive(Debug, Clone)]
pub struct ReportLine<'a> {
    /// The recipient address.
    pub address: &'a str,
    /// ORCPT as the sender gave it (`rfc822;addr`).
    pub orcpt: Option<&'a str>,
    /// Enhanced status code, e.g. `5.1.1`.
    pub status: String,
    /// The reply or error that decided it.
    pub diagnostic: &'a str,
    /// The MTA that gave that reply, if any.
    pub remote_mta: &'a str,
}

/// A report to build.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// Our host name.
    pub reporting_mta: &'a str,
    /// A mail domain this server serves, that the report comes from (`MAILER-DAEMON@` it):
    /// another operator's MX takes a From: only in a domain the sending operator serves.
    pub from_domain: &'a str,
    /// Failed or delayed (one kind per report).
    pub action: Action,
    /// The original sender, who receives the report.
    pub to: &'a str,
    /// RFC 3461 ENVID of the original.
    pub envelope_id: Option<&'a str>,
    /// When the original was accepted (seconds since the epoch).
    pub arrival: i64,
    /// For a delay: until when we keep trying.
    pub retry_until: Option<i64>,
    /// The recipients reported on.
    pub recipients: Vec<ReportLine<'a>>,
    /// The original message.
    pub original: &'a [u8],
    /// RET=FULL: return the whole original, else its headers only.
    pub ret_full: bool,
}

fn date(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc2822()
}

/// The header section of a message (up to the empty line), CRLF-terminated.
fn header_section(message: &[u8]) -> &[u8] {
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => &message[..end + 2],
        None => message,
    }
}

/// Replaces what could break a header line (CR, LF) in text we did not write.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

impl Report<'_> {
    /// The report as a complete message, ready for delivery with a null sender.
    pub fn build(&self) -> Vec<u8> {
        let mut random = [0u8; 12];
        let _ = aws_lc_rs::rand::fill(&mut random);
        let token = hex::encode(random);
        let boundary = format!("=_mssante_report_{token}");
        let now = Utc::now();
        let (subject, human) = match self.action {
            Action::Failed => (
                "Message non remis / Undelivered Mail Returned to Sender",
                "Votre message n'a pas pu être remis aux destinataires ci-dessous.\r\n\
                 Your message could not be delivered to the recipients below.",
            ),
            Action::Delayed => (
                "Message retardé / Delayed Mail (still being retried)",
                "Votre message n'a pas encore pu être remis aux destinataires ci-dessous ;\r\n\
                 nous continuons d'essayer, rien n'est à faire pour l'instant.\r\n\
                 Your message has not been delivered yet to the recipients below; we are\r\n\
                 still trying and nothing needs to be done for now.",
            ),
            Action::Delivered => (
                "Message remis / Delivery Status Notification (Success)",
                "Votre message a été remis aux destinataires ci-dessous.\r\n\
                 Your message was delivered to the recipients below.",
            ),
            Action::Relayed => (
                "Message transmis / Delivery Status Notification (Relayed)",
                "Votre message a été transmis au serveur des destinataires ci-dessous, qui ne\r\n\
                 confirme pas la remise.\r\n\
                 Your message was handed to the recipients' server, which does not confirm\r\n\
                 delivery.",
            ),
        };
        let mut out = String::new();
        out += &format!(
            "From: Mail Delivery System <MAILER-DAEMON@{from_domain}>\r\n\
             To: <{to}>\r\n\
             Subject: {subject}\r\n\
             Date: {date}\r\n\
             Message-ID: <{stamp}.{token}@{host}>\r\n\
             Auto-Submitted: auto-replied\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\
             \r\n\
             This is a MIME-encapsulated delivery status notification.\r\n\
             \r\n--{boundary}\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: 8bit\r\n\
             \r\n{human}\r\n\r\n",
            host = self.reporting_mta,
            from_domain = one_line(self.from_domain),
            to = one_line(self.to),
            date = now.to_rfc2822(),
            stamp = now.format("%Y%m%d%H%M%S"),
        );
        for r in &self.recipients {
            out += &format!("<{}>: {}\r\n", one_line(r.address), one_line(r.diagnostic));
        }
        out += &format!(
            "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; {}\r\n",
            self.reporting_mta
        );
        if let Some(id) = self.envelope_id {
            out += &format!("Original-Envelope-Id: {}\r\n", one_line(id));
        }
        out += &format!("Arrival-Date: {}\r\n", date(self.arrival));
        for r in &self.recipients {
            out += "\r\n";
            if let Some(o) = r.orcpt {
                out += &format!("Original-Recipient: {}\r\n", one_line(o));
            }
            out += &format!(
                "Final-Recipient: rfc822; {}\r\nAction: {}\r\nStatus: {}\r\n",
                one_line(r.address),
                self.action.as_str(),
                r.status
            );
            if !r.remote_mta.is_empty() {
                out += &format!("Remote-MTA: dns; {}\r\n", one_line(r.remote_mta));
            }
            if !r.diagnostic.is_empty() {
                out += &format!("Diagnostic-Code: smtp; {}\r\n", one_line(r.diagnostic));
            }
            out += &format!("Last-Attempt-Date: {}\r\n", now.to_rfc2822());
            if let Some(until) = self.retry_until {
                out += &format!("Will-Retry-Until: {}\r\n", date(until));
            }
        }
        let (kind, original) = if self.ret_full {
            ("message/rfc822", self.original)
        } else {
            ("text/rfc822-headers", header_section(self.original))
        };
        out += &format!("\r\n--{boundary}\r\nContent-Type: {kind}\r\n\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(original);
        if !bytes.ends_with(b"\r\n") {
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(action: Action, ret_full: bool) -> Vec<u8> {
        Report {
            reporting_mta: "mx.a.test",
            from_domain: "a.test",
            action,
            to: "alice@a.test",
            envelope_id: Some("QQ314159"),
            arrival: 1_795_000_000,
            retry_until: (action == Action::Delayed).then_some(1_795_400_000),
            recipients: vec![ReportLine {
                address: "bob@b.test",
                orcpt: Some("rfc822;Bob@b.test"),
                status: "5.1.1".into(),
                diagnostic: "550 5.1.1 no such mailbox\r\nInjected: header",
                remote_mta: "mx.b.test",
            }],
            original: b"From: alice@a.test\r\nSubject: hello\r\n\r\nsecret body\r\n",
            ret_full,
        }
        .build()
    }

    #[test]
    fn a_failure_report_parses_and_carries_the_original_headers_only() {
        let bytes = report(Action::Failed, false);
        let text = String::from_utf8_lossy(&bytes);
        let parsed = mail_parser::MessageParser::default()
            .parse(&bytes)
            .expect("a MIME message");
        assert_eq!(parsed.parts.len(), 4, "{text}");
        assert!(text.contains("report-type=delivery-status"), "{text}");
        assert!(
            text.contains(
                "Final-Recipient: rfc822; bob@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("Original-Recipient: rfc822;Bob@b.test"),
            "{text}"
        );
        assert!(text.contains("Original-Envelope-Id: QQ314159"), "{text}");
        assert!(
            text.contains(
                "Content-Type: text/rfc822-headers\r\n\r\nFrom: alice@a.test\r\nSubject: hello\r\n"
            ),
            "{text}"
        );
        assert!(!text.contains("secret body"), "{text}");
        assert!(
            !text.contains("\r\nInjected: header"),
            "a reply cannot add header lines: {text}"
        );
    }

    #[test]
    fn a_delay_report_says_until_when_and_ret_full_returns_everything() {
        let text = String::from_utf8_lossy(&report(Action::Delayed, true)).to_string();
        assert!(text.contains("Action: delayed"), "{text}");
        assert!(text.contains("Will-Retry-Until: "), "{text}");
        assert!(text.contains("Content-Type: message/rfc822"), "{text}");
        assert!(text.contains("secret body"), "{text}");
    }
}
