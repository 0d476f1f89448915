//! What submission checks and completes in a message's header section, without I/O: the
//! From: addresses (they must belong to the sender), and the Message-ID and Date a client
//! forgot. Every other header, the X-MSS-* of the MSSanté client referential included, is
//! left exactly as sent.

use mail_parser::MessageParser;

/// What the header section says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    /// The addresses of From:, lower case.
    pub from: Vec<String>,
    /// Whether Message-ID: is present.
    pub has_message_id: bool,
    /// Whether Date: is present.
    pub has_date: bool,
}

/// Reads the header section of a message.
pub fn headers(message: &[u8]) -> Headers {
    let Some(parsed) = MessageParser::default().parse_headers(message) else {
        return Headers {
            from: Vec::new(),
            has_message_id: false,
            has_date: false,
        };
    };
    let from = parsed
        .from()
        .map(|a| {
            a.iter()
                .filter_map(|addr| addr.address())
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default();
    Headers {
        from,
        has_message_id: parsed.message_id().is_some(),
        has_date: parsed.date().is_some(),
    }
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
}
