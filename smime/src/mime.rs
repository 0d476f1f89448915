//! The MIME the crate reads and writes, byte for byte: an entity's header section and body,
//! unfolded header fields and their parameters, base64 bodies in 76-column lines, multipart
//! bodies split at their delimiters, and the two parts of a multipart/signed (RFC 1847,
//! RFC 8551 3.5), the first kept exactly as signed.
//!
//! [`split_multipart`] is the one reader of multipart delimiters in mssante (IMAP's
//! structure, SMTP's 7-bit downgrade and the signature check all use it), so that what a
//! signature verdict is about is exactly what a reader is shown. It follows RFC 2046 5.1.1
//! to the letter: a delimiter is `--boundary` followed only by white space (or by `--` and
//! white space for the close delimiter); a line that merely starts with it (`--bX` for
//! boundary `b`) is content.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The header section (with its last CRLF) and the body after the blank line.
pub fn split_entity(raw: &[u8]) -> (&[u8], &[u8]) {
    if let Some(body) = raw.strip_prefix(b"\r\n") {
        return (&[], body);
    }
    match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&raw[..i + 2], &raw[i + 4..]),
        None => (raw, &[]),
    }
}

/// Whether a header line is the field `name` (case-insensitive).
pub fn is_field(line: &[u8], name: &str) -> bool {
    line.len() > name.len()
        && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        && line[name.len()..]
            .iter()
            .find(|b| **b != b' ' && **b != b'\t')
            .is_some_and(|b| *b == b':')
}

/// The lines of a header section whose field is one of `names` (`keep`), or all the others
/// (`!keep`); continuation lines go with their field.
pub fn fields(header: &[u8], names: &[&str], keep: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len());
    let mut named = false;
    for line in header.split_inclusive(|b| *b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            named = names.iter().any(|name| is_field(line, name));
        }
        if named == keep {
            out.extend_from_slice(line);
        }
    }
    out
}

/// The unfolded value of the first field `name` of a header section, if present.
pub fn field(header: &[u8], name: &str) -> Option<String> {
    let mut value: Option<String> = None;
    for line in header.split_inclusive(|b| *b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        match (&mut value, continuation) {
            (Some(v), true) => v.push_str(String::from_utf8_lossy(line).trim_end()),
            (Some(_), false) => break,
            (None, false) if is_field(line, name) => {
                let colon = line.iter().position(|b| *b == b':').unwrap_or(0);
                value = Some(
                    String::from_utf8_lossy(&line[colon + 1..])
                        .trim()
                        .to_string(),
                );
            }
            (None, _) => {}
        }
    }
    value
}

/// The media type of a structured field value (`text/plain; charset=...` gives
/// `text/plain`), lower case.
pub fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A parameter of a structured field value (`boundary` of a Content-Type), unquoted. None
/// when it is missing, empty or given twice: readers disagree on which of two to take.
pub fn parameter(value: &str, name: &str) -> Option<String> {
    let mut found: Option<String> = None;
    let mut rest = value;
    while let Some(semi) = rest.find(';') {
        rest = rest[semi + 1..].trim_start();
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let (val, next) = if let Some(quoted) = after.strip_prefix('"') {
            let close = quoted.find('"')?;
            (&quoted[..close], &quoted[close + 1..])
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        if key.eq_ignore_ascii_case(name) {
            if found.is_some() || val.is_empty() {
                return None;
            }
            found = Some(val.to_string());
        }
        rest = next;
    }
    found
}

/// A multipart body split at the delimiters of its boundary (RFC 2046 5.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart<'a> {
    /// Everything before the first delimiter line (its line end included); empty when the
    /// body has no delimiter at all.
    pub preamble: &'a [u8],
    /// The body parts, each without the line end before the next delimiter (it belongs to
    /// the delimiter).
    pub parts: Vec<&'a [u8]>,
    /// What follows the close delimiter's line; None when there is no close delimiter (the
    /// last part then runs to the end of the body).
    pub epilogue: Option<&'a [u8]>,
}

/// What a line of a multipart body is, for a boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    /// `--boundary`: a part follows.
    Part,
    /// `--boundary--`: the last part has ended.
    Close,
}

/// Whether `line` (its line end included or not) is a delimiter of `boundary`: exactly
/// `--boundary`, then `--` for the close delimiter, then nothing but white space.
pub fn delimiter(line: &[u8], boundary: &[u8]) -> Option<Delimiter> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let (kind, rest) = match rest.strip_prefix(b"--") {
        Some(after) => (Delimiter::Close, after),
        None => (Delimiter::Part, rest),
    };
    rest.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .then_some(kind)
}

/// Splits a multipart body at the delimiters of `boundary` (an empty boundary has none).
pub fn split_multipart<'a>(body: &'a [u8], boundary: &[u8]) -> Multipart<'a> {
    let mut preamble_end = None;
    let mut parts = Vec::new();
    let mut part_start: Option<usize> = None;
    let mut at = 0;
    for line in body.split_inclusive(|b| *b == b'\n') {
        let line_start = at;
        at += line.len();
        let Some(kind) = (!boundary.is_empty())
            .then(|| delimiter(line, boundary))
            .flatten()
        else {
            continue;
        };
        match part_start {
            Some(start) => {
                // The line end before the delimiter belongs to the delimiter.
                let part = &body[start..line_start];
                let part = part.strip_suffix(b"\n").unwrap_or(part);
                parts.push(part.strip_suffix(b"\r").unwrap_or(part));
            }
            None => preamble_end = Some(line_start),
        }
        if kind == Delimiter::Close {
            return Multipart {
                preamble: &body[..preamble_end.unwrap_or(0)],
                parts,
                epilogue: Some(&body[at..]),
            };
        }
        part_start = Some(at);
    }
    if let Some(start) = part_start {
        parts.push(&body[start..]);
    }
    Multipart {
        preamble: &body[..preamble_end.unwrap_or(0)],
        parts,
        epilogue: None,
    }
}

/// Base64 in 76-character CRLF lines.
pub fn base64_lines(data: &[u8]) -> Vec<u8> {
    let encoded = STANDARD.encode(data);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for chunk in encoded.as_bytes().chunks(76) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Decodes a base64 body, ignoring line breaks and spaces.
pub fn base64_body(body: &[u8]) -> Option<Vec<u8>> {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    STANDARD.decode(compact).ok()
}

/// The two parts of a multipart/signed body: the signed entity, exactly as signed (the
/// CRLF before the next delimiter belongs to the delimiter), and the signature entity.
///
/// None for any other shape, so that the verdict is about what a reader is shown: not
/// exactly two parts, no close delimiter, or a preamble or epilogue holding a line that
/// starts with `--` (where a look-alike delimiter would show other parts to a lenient
/// reader). A plain-text preamble, as Thunderbird and Outlook write, is fine.
pub fn signed_parts<'a>(body: &'a [u8], boundary: &str) -> Option<(&'a [u8], &'a [u8])> {
    let multipart = split_multipart(body, boundary.as_bytes());
    let epilogue = multipart.epilogue?;
    let dashes = |text: &[u8]| {
        text.split(|b| *b == b'\n')
            .any(|line| line.trim_ascii_start().starts_with(b"--"))
    };
    if dashes(multipart.preamble) || dashes(epilogue) {
        return None;
    }
    match multipart.parts.as_slice() {
        [signed, signature] => Some((signed, signature)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_read_quoted_or_not() {
        assert_eq!(
            parameter("multipart/mixed; charset=x; boundary=\"a;b\"", "boundary").as_deref(),
            Some("a;b")
        );
        assert_eq!(
            parameter("multipart/mixed;BOUNDARY=abc ; x=y", "boundary").as_deref(),
            Some("abc")
        );
        assert_eq!(parameter("multipart/mixed", "boundary"), None);
    }

    #[test]
    fn folded_fields_unfold_and_signed_parts_split() {
        let header = b"Subject: a\r\nContent-Type: multipart/signed;\r\n\tboundary=b1\r\n";
        let value = field(header, "content-type").expect("present");
        assert_eq!(media_type(&value), "multipart/signed");
        assert_eq!(parameter(&value, "boundary").as_deref(), Some("b1"));
        let body = b"preamble\r\n--b1\r\nA\r\n\r\nB\r\n--b1\r\nSIG\r\n--b1--\r\n";
        let (signed, sig) = signed_parts(body, "b1").expect("parts");
        assert_eq!(signed, b"A\r\n\r\nB");
        assert_eq!(sig, b"SIG");
    }

    #[test]
    fn fuzz_entity_reading() {
        mssante_fuzzing::fuzz("smime mime", mssante_fuzzing::corpus::MESSAGES, |input| {
            let (header, body) = split_entity(input);
            let _ = fields(header, &["content-type", "from"], true);
            if let Some(value) = field(header, "content-type") {
                let _ = media_type(&value);
                if let Some(boundary) = parameter(&value, "boundary") {
                    let _ = signed_parts(body, &boundary);
                }
            }
            let _ = base64_body(body);
        });
    }

    #[test]
    fn only_exact_delimiters_split_a_multipart() {
        let body = b"pre\r\n--bX\r\nnot a part\r\n--b \t\r\nA\r\n--b--x\r\nstill A\r\n--b\r\nB\r\n--b--  \r\nepi\r\n";
        let m = split_multipart(body, b"b");
        assert_eq!(m.preamble, b"pre\r\n--bX\r\nnot a part\r\n");
        assert_eq!(m.parts, vec![&b"A\r\n--b--x\r\nstill A"[..], b"B"]);
        assert_eq!(m.epilogue, Some(&b"epi\r\n"[..]));
        let open = split_multipart(b"--b\r\nA\r\n--b\r\nB\r\n", b"b");
        assert_eq!(open.parts, vec![&b"A"[..], b"B\r\n"]);
        assert_eq!(open.epilogue, None);
        assert_eq!(split_multipart(b"--\r\nA\r\n----\r\n", b"").parts.len(), 0);
        assert_eq!(delimiter(b"--b", b"b"), Some(Delimiter::Part));
        assert_eq!(delimiter(b"--b--\n", b"b"), Some(Delimiter::Close));
        assert_eq!(delimiter(b"--bb\r\n", b"b"), None);
    }

    #[test]
    fn a_signed_body_of_any_other_shape_has_no_signed_parts() {
        let genuine = b"This is a cryptographically signed message in MIME format.\r\n\r\n--b\r\nA\r\n--b\r\nSIG\r\n--b--\r\n";
        assert_eq!(signed_parts(genuine, "b"), Some((&b"A"[..], &b"SIG"[..])));
        // The forgery: the attacker's parts between look-alike lines around a genuine pair.
        let forged = b"--bX\r\nContent-Type: text/plain\r\n\r\nattacker\r\n--b\r\nA\r\n--b\r\nSIG\r\n--b--\r\n--bX--\r\n";
        assert_eq!(signed_parts(forged, "b"), None);
        let third = b"--b\r\nA\r\n--b\r\nSIG\r\n--b\r\nmore\r\n--b--\r\n";
        assert_eq!(signed_parts(third, "b"), None);
        let unclosed = b"--b\r\nA\r\n--b\r\nSIG\r\n";
        assert_eq!(signed_parts(unclosed, "b"), None);
        assert_eq!(
            parameter("multipart/signed; boundary=a; boundary=b", "boundary"),
            None,
            "two boundaries: readers disagree on which"
        );
    }
}
