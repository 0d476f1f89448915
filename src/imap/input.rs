//! Reading one IMAP command from the connection, literals included, and decoding it with
//! imap-codec. Literals over the limit are refused before any of their bytes are read; a
//! line over the limit is skipped and answered BAD. Parsing never allocates beyond what
//! was read, and imap-codec bounds nesting (deep SEARCH) itself.

use imap_codec::CommandCodec;
use imap_codec::decode::{CommandDecodeError, Decoder};
use imap_codec::imap_types::command::Command;

use crate::listener::{Connection, ReadError};

/// Longest command line (between literals); Dovecot uses 64 KiB too.
pub const MAX_LINE: usize = 64 * 1024;

/// Longest command line before login: a credential (a Pro Santé Connect token in base64
/// included) fits, and an unauthenticated client cannot make the server hold 64 KiB.
pub const MAX_LINE_BEFORE_LOGIN: usize = 8 * 1024;

/// What came in.
pub enum Input {
    /// A complete command's bytes, literals included.
    Command(Vec<u8>),
    /// Something to answer with BAD (or BYE, when `fatal`), already consumed.
    Refused {
        /// Tag of the command, when known.
        tag: Option<String>,
        /// Response text (with its response code).
        text: &'static str,
        /// The connection cannot be resynchronised (a non-synchronising literal too large).
        fatal: bool,
    },
}

/// Reads a command whose lines are at most `max_line` octets and whose literals total at
/// most `max_literal`. `+ ` continuation requests are sent for synchronising literals.
pub async fn read(
    conn: &mut Connection,
    max_line: usize,
    max_literal: usize,
) -> Result<Input, ReadError> {
    let mut buf = match conn.read_line(max_line).await {
        Ok(line) => line,
        Err(ReadError::LineTooLong(head)) => return Ok(too_long(tag_of(&head))),
        Err(e) => return Err(e),
    };
    let mut literals = 0usize;
    let mut last_line = 0;
    while let Some((n, non_sync)) = trailing_literal(&buf[last_line..]) {
        literals = literals.saturating_add(n);
        if literals > max_literal {
            let tag = tag_of(&buf);
            if non_sync {
                // Its bytes are coming anyway and could be read as commands: end the session.
                return Ok(Input::Refused {
                    tag: None,
                    text: "[TOOBIG] Literal too large",
                    fatal: true,
                });
            }
            return Ok(Input::Refused {
                tag,
                text: "[TOOBIG] Literal too large",
                fatal: false,
            });
        }
        if !non_sync {
            conn.write(b"+ Ready for literal data\r\n").await?;
        }
        let data = conn.read_exact(n).await?;
        buf.extend_from_slice(&data);
        last_line = buf.len();
        match conn.read_line(max_line).await {
            Ok(line) => buf.extend_from_slice(&line),
            Err(ReadError::LineTooLong(_)) => return Ok(too_long(tag_of(&buf))),
            Err(e) => return Err(e),
        }
    }
    Ok(Input::Command(buf))
}

fn too_long(tag: Option<String>) -> Input {
    Input::Refused {
        tag,
        text: "[TOOBIG] Command line too long",
        fatal: false,
    }
}

/// The tag at the start of a command, if it looks like one.
pub fn tag_of(raw: &[u8]) -> Option<String> {
    let end = raw
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(raw.len());
    let tag = &raw[..end];
    let valid = !tag.is_empty()
        && tag.len() <= 64
        && tag
            .iter()
            .all(|&b| b.is_ascii_graphic() && !b"(){%*\"\\+".contains(&b));
    valid.then(|| String::from_utf8_lossy(tag).into_owned())
}

/// Where a command line ends in a literal announcement: `{n}` or `{n+}` (or `~{n}`) before
/// CRLF. Returns (n, non-synchronising).
pub fn trailing_literal(line: &[u8]) -> Option<(usize, bool)> {
    let line = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let spec = &inner[open + 1..];
    let (digits, plus) = match spec.strip_suffix(b"+") {
        Some(d) => (d, true),
        None => (spec, false),
    };
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits)
        .ok()?
        .parse()
        .ok()
        .map(|n| (n, plus))
}

/// Decodes a complete command; Err names why it is not one (for BAD).
pub fn decode(raw: &[u8]) -> Result<Command<'static>, &'static str> {
    // imap-codec wants CRLF; a bare LF line end is accepted from lax clients.
    let fixed;
    let raw = if raw.ends_with(b"\r\n") || !raw.ends_with(b"\n") {
        raw
    } else {
        fixed = [&raw[..raw.len() - 1], b"\r\n"].concat();
        &fixed
    };
    match CommandCodec::default().decode_static(raw) {
        Ok((b"", command)) => Ok(command),
        Ok(_) => Err("Unexpected data after the command"),
        Err(CommandDecodeError::Incomplete | CommandDecodeError::LiteralFound { .. }) => {
            Err("Incomplete command")
        }
        Err(CommandDecodeError::Failed) => Err("Unknown command or invalid arguments"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_literals_and_tags() {
        assert_eq!(
            trailing_literal(b"a APPEND INBOX {12}\r\n"),
            Some((12, false))
        );
        assert_eq!(
            trailing_literal(b"a APPEND INBOX ~{12+}\r\n"),
            Some((12, true))
        );
        assert_eq!(trailing_literal(b"a LOGIN {x}\r\n"), None);
        assert_eq!(tag_of(b"a1 NOOP\r\n").as_deref(), Some("a1"));
        assert_eq!(tag_of(b"* NOOP\r\n"), None);
    }

    #[test]
    fn decodes_with_imap_codec() {
        assert!(decode(b"a1 NOOP\r\n").is_ok());
        assert!(decode(b"a1 NOOP\n").is_ok());
        assert!(decode(b"a1 FROB\r\n").is_err());
        assert!(decode(b"a1 APPEND INBOX {3}\r\nabc\r\n").is_ok());
        // Deep SEARCH nesting is refused by the codec, not recursed into without bound.
        let deep = format!("a SEARCH {}ALL{}\r\n", "(".repeat(5000), ")".repeat(5000));
        assert!(decode(deep.as_bytes()).is_err());
    }

    #[test]
    fn fuzz_command_framing_and_decoding() {
        mssante_fuzzing::fuzz("imap input", crate::imap::corpus::COMMANDS, |input| {
            let _ = tag_of(input);
            if let Some((n, _)) = trailing_literal(input) {
                assert!(n <= 9_999_999_999, "at most ten digits are read");
            }
            let _ = decode(input);
        });
    }
}
