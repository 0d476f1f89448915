//! The MIME the crate reads and writes, byte for byte: an entity's header section and body,
//! unfolded header fields and their parameters, base64 bodies in 76-column lines, and the two
//! parts of a multipart/signed (RFC 1847, RFC 8551 3.5), the first kept exactly as signed.

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

/// A parameter of a structured field value (`boundary` of a Content-Type), unquoted.
pub fn parameter(value: &str, name: &str) -> Option<String> {
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
            return (!val.is_empty()).then(|| val.to_string());
        }
        rest = next;
    }
    None
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
pub fn signed_parts<'a>(body: &'a [u8], boundary: &str) -> Option<(&'a [u8], &'a [u8])> {
    let delimiter = format!("--{boundary}");
    let mut starts = Vec::new();
    let mut at = 0;
    for line in body.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(delimiter.as_bytes()) {
            starts.push((at, at + line.len()));
        }
        at += line.len();
    }
    let [
        (_, first_end),
        (second_start, second_end),
        (third_start, _),
        ..,
    ] = starts.as_slice()
    else {
        return None;
    };
    let signed = body[*first_end..*second_start].strip_suffix(b"\r\n")?;
    let signature = &body[*second_end..*third_start];
    Some((signed, signature.strip_suffix(b"\r\n").unwrap_or(signature)))
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
}
