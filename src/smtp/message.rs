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
    fn several_from_addresses_and_a_complete_message() {
        let h = headers(
            b"From: a@x.test, B <b@y.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\nMessage-ID: <1@x.test>\r\n\r\n",
        );
        assert_eq!(h.from, ["a@x.test", "b@y.test"]);
        assert_eq!(missing_fields(&h, "h"), "");
        assert!(headers(b"Subject: no from\r\n\r\n").from.is_empty());
    }
}
