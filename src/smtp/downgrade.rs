//! 8-bit to 7-bit conversion for a next hop without 8BITMIME (RFC 6152 3: a relay either
//! converts the content or returns it). Pure byte work, no I/O.
//!
//! The MIME tree is walked as it is on the wire: headers are kept byte for byte, except the
//! Content-Transfer-Encoding of each leaf that carried 8-bit octets, which becomes
//! quoted-printable for text and base64 for everything else. Signed content
//! (multipart/signed) is never converted: that would break the signature the recipient
//! checks, so such a message is returned to its sender instead.

use base64::Engine as _;
use mssante_smime::mime::{field, fields, media_type, parameter, split_entity, split_multipart};

/// How deep message/rfc822 and multipart may nest before we give up.
const MAX_DEPTH: usize = 32;
/// Quoted-printable lines are at most 76 characters, the soft break "=" included.
const QP_LINE: usize = 76;

/// Why a message cannot be made 7-bit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DowngradeError {
    /// 8-bit octets in a header need SMTPUTF8, which no encoding here can replace.
    #[error("8-bit octets in a header section")]
    EightBitHeader,
    /// Converting would invalidate a signature.
    #[error("signed content cannot be converted without breaking its signature")]
    Signed,
    /// A multipart without a usable boundary.
    #[error("a multipart part has no boundary parameter")]
    NoBoundary,
    /// Parts nested deeper than [`MAX_DEPTH`].
    #[error("MIME parts nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// Whether `message` has any octet that a 7-bit path cannot carry.
pub fn needs_8bit(message: &[u8]) -> bool {
    message.iter().any(|b| *b >= 0x80)
}

/// The message with every 8-bit leaf re-encoded in 7 bits. A message that is already 7-bit
/// comes back unchanged.
pub fn to_7bit(message: &[u8]) -> Result<Vec<u8>, DowngradeError> {
    if !needs_8bit(message) {
        return Ok(message.to_vec());
    }
    let mut out = Vec::with_capacity(message.len() + message.len() / 3);
    entity(message, true, 0, &mut out)?;
    Ok(out)
}

/// Converts one MIME entity (header section, blank line, body) into `out`.
fn entity(raw: &[u8], top: bool, depth: usize, out: &mut Vec<u8>) -> Result<(), DowngradeError> {
    if depth > MAX_DEPTH {
        return Err(DowngradeError::TooDeep);
    }
    let (header, body) = split_entity(raw);
    if needs_8bit(header) {
        return Err(DowngradeError::EightBitHeader);
    }
    if !needs_8bit(body) {
        out.extend_from_slice(raw);
        return Ok(());
    }
    let content_type = field(header, "content-type").unwrap_or_default();
    let media = media_type(&content_type);
    if media == "multipart/signed" {
        return Err(DowngradeError::Signed);
    }
    if let Some(boundary) = media
        .starts_with("multipart/")
        .then(|| parameter(&content_type, "boundary"))
    {
        let boundary = boundary.ok_or(DowngradeError::NoBoundary)?;
        write_header(header, top, "7bit", out);
        return multipart(body, boundary.as_bytes(), depth, out);
    }
    if media == "message/rfc822" || media == "message/global" {
        // The enclosing entity only ever declares 7bit, 8bit or binary (RFC 2046 5.2.1).
        write_header(header, top, "7bit", out);
        return entity(body, false, depth + 1, out);
    }
    let text = media.is_empty() || media.starts_with("text/");
    write_header(
        header,
        top,
        if text { "quoted-printable" } else { "base64" },
        out,
    );
    if text {
        quoted_printable(body, out);
    } else {
        base64_lines(body, out);
    }
    Ok(())
}

/// The header section without its Content-Transfer-Encoding field, then the new one, the
/// MIME-Version a top-level entity needs for it to count, and the blank line.
fn write_header(header: &[u8], top: bool, encoding: &str, out: &mut Vec<u8>) {
    out.extend(fields(header, &["content-transfer-encoding"], false));
    if top && field(header, "mime-version").is_none() {
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    }
    out.extend_from_slice(format!("Content-Transfer-Encoding: {encoding}\r\n\r\n").as_bytes());
}

/// Walks a multipart body: preamble, parts, epilogue, split by the one multipart reader
/// (so a look-alike delimiter line is content, converted with its part). The preamble and
/// epilogue are for non-MIME readers only; if they hold 8-bit octets they are dropped.
fn multipart(
    body: &[u8],
    boundary: &[u8],
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), DowngradeError> {
    let split = split_multipart(body, boundary);
    if split.parts.is_empty() {
        // No part at all: nothing MIME-readable to convert, so treat it as text.
        quoted_printable(body, out);
        return Ok(());
    }
    keep_if_7bit(split.preamble, out);
    let last = split.parts.len() - 1;
    for (n, part) in split.parts.iter().enumerate() {
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary);
        out.extend_from_slice(b"\r\n");
        entity(part, false, depth + 1, out)?;
        // The CRLF before the next delimiter belongs to the delimiter (RFC 2046 5.1.1).
        if n < last || split.epilogue.is_some() {
            out.extend_from_slice(b"\r\n");
        }
    }
    if let Some(epilogue) = split.epilogue {
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary);
        out.extend_from_slice(b"--\r\n");
        keep_if_7bit(epilogue, out);
    }
    Ok(())
}

fn keep_if_7bit(text: &[u8], out: &mut Vec<u8>) {
    if !needs_8bit(text) {
        out.extend_from_slice(text);
    }
}

/// RFC 2045 6.7 quoted-printable, lines ending in CRLF, at most 76 characters each.
fn quoted_printable(body: &[u8], out: &mut Vec<u8>) {
    let mut lines = body.split(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if last && line.is_empty() {
            break;
        }
        let mut width = 0;
        for (i, &b) in line.iter().enumerate() {
            let at_end = i + 1 == line.len();
            let literal =
                ((b == b' ' || b == b'\t') && !at_end) || ((33..=126).contains(&b) && b != b'=');
            let piece: Vec<u8> = if literal {
                vec![b]
            } else {
                format!("={b:02X}").into_bytes()
            };
            // Keep room for the soft break "=" on a line that continues.
            let room = if at_end { QP_LINE } else { QP_LINE - 1 };
            if width + piece.len() > room {
                out.extend_from_slice(b"=\r\n");
                width = 0;
            }
            width += piece.len();
            out.extend_from_slice(&piece);
        }
        if !last {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Base64 in 76-character lines.
fn base64_lines(body: &[u8], out: &mut Vec<u8>) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    for chunk in encoded.as_bytes().chunks(QP_LINE) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).expect("ASCII output")
    }

    #[test]
    fn seven_bit_messages_are_untouched() {
        let m = b"Subject: a\r\n\r\nplain\r\n";
        assert_eq!(to_7bit(m).expect("converts"), m);
    }

    #[test]
    fn a_single_text_part_becomes_quoted_printable() {
        let m = "Subject: a\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Transfer-Encoding: 8bit\r\n\r\nRésultats = prêts \r\n";
        let out = s(&to_7bit(m.as_bytes()).expect("converts"));
        assert_eq!(
            out,
            "Subject: a\r\nContent-Type: text/plain; charset=utf-8\r\nMIME-Version: 1.0\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\n\
             R=C3=A9sultats =3D pr=C3=AAts=20\r\n"
        );
    }

    #[test]
    fn long_lines_get_soft_breaks_under_77_characters() {
        let body = "é".repeat(100);
        let m = format!("Subject: a\r\n\r\n{body}\r\n");
        let out = s(&to_7bit(m.as_bytes()).expect("converts"));
        let (_, encoded) = out.split_once("\r\n\r\n").expect("a body");
        assert!(encoded.lines().all(|l| l.len() <= 76), "{encoded}");
        let joined = encoded.replace("=\r\n", "");
        assert_eq!(joined.trim_end(), "=C3=A9".repeat(100));
    }

    #[test]
    fn multipart_leaves_are_converted_one_by_one() {
        let m = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
                 preamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nété\r\n\
                 --b1\r\nContent-Type: text/plain\r\n\r\nascii\r\n\
                 --b1\r\nContent-Type: application/octet-stream\r\n\
                 Content-Transfer-Encoding: binary\r\n\r\n\u{ff}\u{fe}\r\n--b1--\r\nepilogue\r\n";
        let out = s(&to_7bit(m.as_bytes()).expect("converts"));
        assert!(!needs_8bit(out.as_bytes()));
        assert!(out.starts_with(
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\
             Content-Transfer-Encoding: 7bit\r\n\r\npreamble\r\n"
        ));
        assert!(out.contains("preamble\r\n--b1\r\nContent-Type: text/plain\r\n"));
        assert!(out.contains("quoted-printable\r\n\r\n=C3=A9t=C3=A9\r\n--b1\r\n"));
        assert!(out.contains("\r\n\r\nascii\r\n--b1\r\n"));
        assert!(out.contains("Content-Transfer-Encoding: base64\r\n\r\nw7/Dvg==\r\n\r\n--b1--"));
        assert!(!out.contains("binary"));
        assert!(out.ends_with("--b1--\r\nepilogue\r\n"));
    }

    #[test]
    fn signed_content_and_8bit_headers_are_refused() {
        let signed = "Content-Type: multipart/signed; boundary=x\r\n\r\n--x\r\n\r\né\r\n--x--\r\n";
        assert_eq!(to_7bit(signed.as_bytes()), Err(DowngradeError::Signed));
        let header = "Subject: é\r\n\r\né\r\n";
        assert_eq!(
            to_7bit(header.as_bytes()),
            Err(DowngradeError::EightBitHeader)
        );
        let no_boundary = "Content-Type: multipart/mixed\r\n\r\né\r\n";
        assert_eq!(
            to_7bit(no_boundary.as_bytes()),
            Err(DowngradeError::NoBoundary)
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let mut m = "Subject: x\r\n\r\né\r\n".to_string();
        for _ in 0..40 {
            m = format!("Content-Type: message/rfc822\r\n\r\n{m}");
        }
        assert_eq!(to_7bit(m.as_bytes()), Err(DowngradeError::TooDeep));
    }

    #[test]
    fn fuzz_downgrade() {
        mssante_fuzzing::fuzz(
            "smtp downgrade",
            mssante_fuzzing::corpus::MESSAGES,
            |input| {
                let _ = needs_8bit(input);
                if let Ok(out) = to_7bit(input) {
                    assert!(out.is_ascii(), "the 7-bit form has 8-bit octets");
                }
            },
        );
    }
}
