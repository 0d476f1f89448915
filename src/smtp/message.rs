//! What submission checks and completes in a message's header section, without I/O: the
//! From: addresses (they must belong to the sender), and the Message-ID and Date a client
//! forgot. Every other header, the X-MSS-* of the MSSanté client referential included, is
//! left exactly as sent.

use mail_parser::{HeaderName, MessageParser};

/// What the header section says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    /// The addresses of From:, lower case.
    pub from: Vec<String>,
    /// The addresses of Sender:, lower case.
    pub sender: Vec<String>,
    /// Why the author cannot be told for sure: two From: (or Sender:) fields, or one that
    /// cannot be read. Readers then show one of them and checks might see another.
    pub ambiguous: Option<&'static str>,
    /// Whether Message-ID: is present.
    pub has_message_id: bool,
    /// Whether Date: is present.
    pub has_date: bool,
}

impl Headers {
    /// Every address that claims authorship, with its field: From: and Sender:.
    pub fn authors(&self) -> impl Iterator<Item = (&'static str, &String)> {
        let from = self.from.iter().map(|a| ("From:", a));
        from.chain(self.sender.iter().map(|a| ("Sender:", a)))
    }
}

/// Reads the header section of a message. Fields are counted by their name as any reader
/// would match it (`From :` included), not only as mail-parser files them.
pub fn headers(message: &[u8]) -> Headers {
    let (header, _) = mssante_smime::mime::split_entity(message);
    let count = |name: &str| {
        header
            .split_inclusive(|b| *b == b'\n')
            .filter(|line| mssante_smime::mime::is_field(line, name))
            .count()
    };
    let (from_fields, sender_fields) = (count("from"), count("sender"));
    let mut found = Headers {
        from: Vec::new(),
        sender: Vec::new(),
        ambiguous: None,
        has_message_id: false,
        has_date: false,
    };
    if from_fields > 1 {
        found.ambiguous = Some("more than one From: field");
    } else if sender_fields > 1 {
        found.ambiguous = Some("more than one Sender: field");
    }
    let Some(parsed) = MessageParser::default().parse_headers(message) else {
        if from_fields + sender_fields > 0 {
            found.ambiguous = found
                .ambiguous
                .or(Some("a header section that cannot be read"));
        }
        return found;
    };
    let addresses = |name: HeaderName<'static>| -> (usize, Vec<String>) {
        let mut fields = 0;
        let mut out = Vec::new();
        for value in parsed.header_values(name) {
            fields += 1;
            if let Some(list) = value.as_address() {
                out.extend(
                    list.iter()
                        .filter_map(|a| a.address())
                        .map(str::to_lowercase),
                );
            }
        }
        (fields, out)
    };
    let (parsed_from, from) = addresses(HeaderName::From);
    let (parsed_sender, sender) = addresses(HeaderName::Sender);
    if parsed_from != from_fields || (from_fields > 0 && from.is_empty()) {
        found.ambiguous = found
            .ambiguous
            .or(Some("a From: field that cannot be read"));
    }
    if parsed_sender != sender_fields || (sender_fields > 0 && sender.is_empty()) {
        found.ambiguous = found
            .ambiguous
            .or(Some("a Sender: field that cannot be read"));
    }
    found.from = from;
    found.sender = sender;
    found.has_message_id = parsed.message_id().is_some();
    found.has_date = parsed.date().is_some();
    found
}

/// Why a received message is refused as it stands, as an SMTP reply; None when it is fine.
///
/// Bare LF and NUL are refused rather than repaired: they are how SMTP smuggling and header
/// confusion start, and no conforming client sends them. 8-bit header octets need SMTPUTF8
/// (RFC 6532); without it the headers must be encoded (RFC 2047).
pub fn content_refusal(message: &[u8], smtputf8: bool) -> Option<&'static str> {
    if message.contains(&0) {
        return Some("554 5.6.0 The message contains NUL characters");
    }
    let bare_lf = message
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'\n' && (i == 0 || message[i - 1] != b'\r'));
    if bare_lf {
        return Some("554 5.6.0 Bare LF in the message: lines must end with CRLF (RFC 5321 2.3.8)");
    }
    // A CR not followed by LF: some MTAs take it for a line end (smuggling, `\r.\r`).
    let bare_cr = message
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'\r' && message.get(i + 1) != Some(&b'\n'));
    if bare_cr {
        return Some("554 5.6.0 Bare CR in the message: lines must end with CRLF (RFC 5321 2.3.8)");
    }
    let header_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(message.len());
    if !smtputf8 && message[..header_end].iter().any(|b| *b >= 0x80) {
        return Some(
            "554 5.6.7 8-bit characters in the headers need SMTPUTF8; encode them (RFC 2047) or use SMTPUTF8",
        );
    }
    None
}

/// The header fields to add in front of the message for what `headers` found missing.
pub fn missing_fields(found: &Headers, host: &str) -> String {
    let mut out = String::new();
    if !found.has_message_id {
        let mut random = [0u8; 12];
        // On failure the time alone still makes a usable id.
        let _ = aws_lc_rs::rand::fill(&mut random);
        out += &format!(
            "Message-ID: <{}.{}@{host}>\r\n",
            chrono::Utc::now().format("%Y%m%d%H%M%S"),
            hex::encode(random)
        );
    }
    if !found.has_date {
        out += &format!("Date: {}\r\n", chrono::Utc::now().to_rfc2822());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_from_and_notes_what_is_missing() {
        let h = headers(
            b"From: \"Dr Martin\" <Alice.Martin@Hopital.test>\r\nX-MSS-NIL: LPS/1.0\r\nSubject: x\r\n\r\nbody\r\n",
        );
        assert_eq!(h.from, ["alice.martin@hopital.test"]);
        assert!(!h.has_message_id && !h.has_date);
        let added = missing_fields(&h, "mail.hopital.test");
        assert!(added.starts_with("Message-ID: <"), "{added}");
        assert!(added.contains("@mail.hopital.test>\r\nDate: "), "{added}");
    }

    #[test]
    fn bad_content_is_named() {
        assert_eq!(content_refusal(b"Subject: ok\r\n\r\nbody\r\n", false), None);
        let nul = content_refusal(b"Subject: x\r\n\r\na\0b\r\n", false);
        assert!(nul.is_some_and(|r| r.starts_with("554 5.6.0") && r.contains("NUL")));
        let lf = content_refusal(b"Subject: x\r\n\r\nline\n.\nmore\r\n", false);
        assert!(lf.is_some_and(|r| r.contains("Bare LF")));
        let cr = content_refusal(b"Subject: x\r\n\r\nline\r.\rmore\r\n", false);
        assert!(cr.is_some_and(|r| r.contains("Bare CR")));
        let last = content_refusal(b"Subject: x\r\n\r\nends in CR\r", false);
        assert!(last.is_some_and(|r| r.contains("Bare CR")));
        let utf8 = "Subject: réunion\r\n\r\nbody\r\n".as_bytes();
        assert!(content_refusal(utf8, false).is_some_and(|r| r.starts_with("554 5.6.7")));
        assert_eq!(content_refusal(utf8, true), None);
        let body_only = "Subject: x\r\n\r\nété\r\n".as_bytes();
        assert_eq!(content_refusal(body_only, false), None);
    }

    #[test]
    fn several_from_addresses_and_a_complete_message() {
        let h = headers(
            b"From: a@x.test, B <b@y.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\nMessage-ID: <1@x.test>\r\n\r\n",
        );
        assert_eq!(h.from, ["a@x.test", "b@y.test"]);
        assert_eq!(missing_fields(&h, "h"), "");
        assert!(headers(b"Subject: no from\r\n\r\n").from.is_empty());
    }

    #[test]
    fn fuzz_header_checks() {
        mssante_fuzzing::fuzz("smtp message", mssante_fuzzing::corpus::MESSAGES, |input| {
            let _ = headers(input);
            let _ = content_refusal(input, true);
            let _ = content_refusal(input, false);
        });
    }

    #[test]
    fn fuzz_smtp_requests_and_data() {
        use smtp_proto::request::receiver::{BdatReceiver, DataReceiver};
        mssante_fuzzing::fuzz(
            "smtp request",
            &[
                b"EHLO client.test\r\n",
                b"MAIL FROM:<jean@x.fr> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ314159\r\n",
                b"RCPT TO:<\"x@outside.example\"@opa.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b.fr\r\n",
                b"RCPT TO:<@a,@b:c@d.fr>\r\n",
                b"MAIL FROM:<>\r\n",
                b"BDAT 18446744073709551615 LAST\r\n",
                b"AUTH PLAIN AGpAZQBwYXNz\r\n",
                b"DATA\r\nSubject: x\r\n\r\n..dot\r\n.\r\n",
            ],
            |input| {
                let _ = smtp_proto::Request::parse(&mut input.iter());
                let mut body = Vec::new();
                let mut iter = input.iter();
                let _ = DataReceiver::new().ingest(&mut iter, &mut body);
                assert!(body.len() <= input.len(), "DATA made octets up");
                let mut chunk = Vec::new();
                let _ = BdatReceiver::new(input.len() / 2, true).ingest(&mut input.iter(), &mut chunk);
                assert!(chunk.len() <= input.len() / 2, "BDAT read past its size");
            },
        );
    }

    #[test]
    fn a_second_from_or_a_spaced_name_is_ambiguous() {
        let two = headers(b"From: eve@x.test\r\nFrom: alice@hopital.test\r\n\r\n");
        assert_eq!(two.ambiguous, Some("more than one From: field"));
        let spaced = headers(b"From : eve@x.test\r\nFrom: alice@hopital.test\r\n\r\n");
        assert_eq!(spaced.ambiguous, Some("more than one From: field"));
        let senders = headers(b"From: a@x.test\r\nSender: b@x.test\r\nSender: c@x.test\r\n\r\n");
        assert_eq!(senders.ambiguous, Some("more than one Sender: field"));
        let unreadable = headers(b"From: not an address\r\n\r\n");
        assert!(unreadable.ambiguous.is_some(), "{unreadable:?}");
        let fine = headers(b"From: A <a@x.test>\r\nSender: S <s@y.test>\r\n\r\n");
        assert_eq!(fine.ambiguous, None);
        let authors: Vec<_> = fine.authors().collect();
        assert_eq!(
            authors,
            [
                ("From:", &"a@x.test".to_string()),
                ("Sender:", &"s@y.test".to_string())
            ]
        );
    }
}
