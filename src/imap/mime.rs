//! A message's MIME structure as IMAP shows it: the tree of parts (byte ranges into the
//! message, never copies), BODYSTRUCTURE and ENVELOPE with header values as they are in the
//! message (not decoded), and the bytes of a section (`1.2.MIME`, `HEADER.FIELDS`, ...).
//!
//! Written for IMAP's needs rather than on a decoding MIME library: IMAP wants raw parameter
//! values, exact sizes and line counts, which a decoder throws away.

use super::encode::{nstring, string};

/// Nesting beyond this is shown as an opaque part (and never recursed into).
const MAX_DEPTH: usize = 32;

/// One MIME part: its header and body within the message.
#[derive(Debug)]
pub struct Part<'a> {
    /// The header block, without the blank line that ends it.
    pub header: &'a [u8],
    /// The body (after the blank line).
    pub body: &'a [u8],
    /// Sub-parts of a multipart, or the message inside a message/rfc822 (one element).
    pub children: Vec<Part<'a>>,
    content_type: ContentType,
}

#[derive(Debug, Clone)]
struct ContentType {
    kind: String,
    subtype: String,
    params: Vec<(String, String)>,
}

impl ContentType {
    fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

impl<'a> Part<'a> {
    /// Parses a whole message.
    pub fn parse(message: &'a [u8]) -> Part<'a> {
        Part::parse_at(message, 0, false)
    }

    fn parse_at(raw: &'a [u8], depth: usize, digest: bool) -> Part<'a> {
        let (header, body) = split_header(raw);
        let default = if digest {
            ("message", "rfc822")
        } else {
            ("text", "plain")
        };
        let content_type = header_value(header, "Content-Type")
            .and_then(|v| parse_content_type(&v))
            .unwrap_or_else(|| ContentType {
                kind: default.0.into(),
                subtype: default.1.into(),
                params: if digest {
                    Vec::new()
                } else {
                    vec![("charset".into(), "us-ascii".into())]
                },
            });
        let mut children = Vec::new();
        if depth < MAX_DEPTH {
            if content_type.kind.eq_ignore_ascii_case("multipart") {
                let is_digest = content_type.subtype.eq_ignore_ascii_case("digest");
                if let Some(boundary) = param(&content_type.params, "boundary") {
                    // The one multipart reader, shared with the signature check.
                    children = mssante_smime::mime::split_multipart(body, boundary.as_bytes())
                        .parts
                        .into_iter()
                        .map(|p| Part::parse_at(p, depth + 1, is_digest))
                        .collect();
                }
            } else if content_type.is("message", "rfc822") {
                children.push(Part::parse_at(body, depth + 1, false));
            }
        }
        Part {
            header,
            body,
            children,
            content_type,
        }
    }

    fn is_multipart(&self) -> bool {
        self.content_type.kind.eq_ignore_ascii_case("multipart")
    }

    fn is_message(&self) -> bool {
        self.content_type.is("message", "rfc822")
    }

    /// The part at a section path (`[2, 1]` for `2.1`); None when there is no such part.
    pub fn find(&self, path: &[u32]) -> Option<&Part<'a>> {
        let Some((&first, rest)) = path.split_first() else {
            return Some(self);
        };
        // A message/rfc822 part's numbering continues inside its message.
        let container = if self.is_message() {
            self.children.first()?
        } else {
            self
        };
        let part = if container.is_multipart() {
            container
                .children
                .get(usize::try_from(first).ok()?.checked_sub(1)?)?
        } else if first == 1 {
            // A non-multipart message has one part: its body.
            container
        } else {
            return None;
        };
        part.find(rest)
    }

    /// The message inside a message/rfc822 part, or the part itself (for HEADER and TEXT of
    /// the top level).
    pub fn message(&self) -> &Part<'a> {
        if self.is_message() {
            self.children.first().unwrap_or(self)
        } else {
            self
        }
    }

    /// Appends BODYSTRUCTURE (`extended`) or BODY of this part.
    pub fn write_structure(&self, out: &mut Vec<u8>, extended: bool) {
        out.push(b'(');
        if self.is_multipart() && !self.children.is_empty() {
            for child in &self.children {
                child.write_structure(out, extended);
            }
            out.push(b' ');
            string(out, self.content_type.subtype.as_bytes());
            if extended {
                out.push(b' ');
                write_params(out, &self.content_type.params);
                out.push(b' ');
                self.write_extension_tail(out);
            }
        } else {
            let ct = &self.content_type;
            let (kind, subtype) = if self.is_multipart() {
                // A multipart without parts (no boundary): shown as text so clients cope.
                ("text", "plain")
            } else {
                (ct.kind.as_str(), ct.subtype.as_str())
            };
            string(out, kind.as_bytes());
            out.push(b' ');
            string(out, subtype.as_bytes());
            out.push(b' ');
            write_params(out, &ct.params);
            for field in ["Content-ID", "Content-Description"] {
                out.push(b' ');
                nstring(
                    out,
                    header_value(self.header, field)
                        .as_deref()
                        .map(str::as_bytes),
                );
            }
            out.push(b' ');
            let encoding = header_value(self.header, "Content-Transfer-Encoding")
                .map(|e| e.trim().to_string())
                .unwrap_or_else(|| "7BIT".into());
            string(out, encoding.as_bytes());
            out.extend_from_slice(format!(" {}", self.body.len()).as_bytes());
            if self.is_message()
                && let Some(inner) = self.children.first()
            {
                out.push(b' ');
                write_envelope(out, inner.header);
                out.push(b' ');
                inner.write_structure(out, extended);
                out.extend_from_slice(format!(" {}", lines(self.body)).as_bytes());
            } else if kind.eq_ignore_ascii_case("text") {
                out.extend_from_slice(format!(" {}", lines(self.body)).as_bytes());
            }
            if extended {
                out.push(b' ');
                nstring(
                    out,
                    header_value(self.header, "Content-MD5")
                        .as_deref()
                        .map(str::as_bytes),
                );
                out.push(b' ');
                self.write_extension_tail(out);
            }
        }
        out.push(b')');
    }

    /// Disposition, language and location (the extension data every part type ends with).
    fn write_extension_tail(&self, out: &mut Vec<u8>) {
        match header_value(self.header, "Content-Disposition").and_then(|v| parse_disposition(&v)) {
            Some((kind, params)) => {
                out.push(b'(');
                string(out, kind.as_bytes());
                out.push(b' ');
                write_params(out, &params);
                out.push(b')');
            }
            None => out.extend_from_slice(b"NIL"),
        }
        out.push(b' ');
        match header_value(self.header, "Content-Language") {
            Some(langs) => {
                let langs: Vec<&str> = langs
                    .split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                out.push(b'(');
                for (i, l) in langs.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    string(out, l.as_bytes());
                }
                out.push(b')');
            }
            None => out.extend_from_slice(b"NIL"),
        }
        out.push(b' ');
        nstring(
            out,
            header_value(self.header, "Content-Location")
                .as_deref()
                .map(str::as_bytes),
        );
    }
}

/// Lines in a body: its line ends, plus a last line without one (a part's last line
/// before a boundary, whose line end belongs to the boundary).
fn lines(body: &[u8]) -> usize {
    let ends = body.iter().filter(|&&b| b == b'\n').count();
    ends + usize::from(!body.is_empty() && !body.ends_with(b"\n"))
}

fn write_params(out: &mut Vec<u8>, params: &[(String, String)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, name.as_bytes());
        out.push(b' ');
        string(out, value.as_bytes());
    }
    out.push(b')');
}

/// Splits a part into its header (without the blank line) and its body.
pub fn split_header(raw: &[u8]) -> (&[u8], &[u8]) {
    if raw.starts_with(b"\r\n") {
        return (&raw[..0], &raw[2..]);
    }
    if raw.starts_with(b"\n") {
        return (&raw[..0], &raw[1..]);
    }
    let mut i = 0;
    while let Some(pos) = raw[i..].iter().position(|&b| b == b'\n') {
        let next = i + pos + 1;
        if raw[next..].starts_with(b"\r\n") {
            return (&raw[..next], &raw[next + 2..]);
        }
        if raw[next..].starts_with(b"\n") {
            return (&raw[..next], &raw[next + 1..]);
        }
        i = next;
    }
    (raw, &raw[raw.len()..])
}

/// The header fields of a block as (name, raw value with folding) pairs, in order; each
/// field's full bytes (name to line end) come with it. An iterator: a lookup stops at the
/// field it wants.
pub fn fields(header: &[u8]) -> Fields<'_> {
    Fields { header, at: 0 }
}

/// The iterator of [`fields`].
pub struct Fields<'a> {
    header: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let header = self.header;
        while self.at < header.len() {
            let start = self.at;
            // The field ends at the first line end not followed by a folded line.
            let mut end = start;
            loop {
                end = memchr::memchr(b'\n', &header[end..]).map_or(header.len(), |p| end + p + 1);
                if !header.get(end).is_some_and(|&b| b == b' ' || b == b'\t') {
                    break;
                }
            }
            self.at = end;
            let field = &header[start..end];
            if let Some(colon) = field.iter().position(|&b| b == b':') {
                return Some((field[..colon].trim_ascii(), field));
            }
        }
        None
    }
}

/// The first value of a header field, unfolded, trimmed (lossy UTF-8).
pub fn header_value(header: &[u8], name: &str) -> Option<String> {
    fields(header)
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(n, field)| {
            let value = &field[n.len()..];
            let value = value
                .iter()
                .position(|&b| b == b':')
                .map_or(value, |p| &value[p + 1..]);
            let unfolded: Vec<u8> = value
                .iter()
                .copied()
                .filter(|&b| b != b'\r' && b != b'\n')
                .collect();
            String::from_utf8_lossy(unfolded.trim_ascii()).into_owned()
        })
}

fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn parse_content_type(value: &str) -> Option<ContentType> {
    let (kind_sub, params) = split_params(value);
    let (kind, subtype) = kind_sub.split_once('/')?;
    let (kind, subtype) = (kind.trim(), subtype.trim());
    if kind.is_empty() || subtype.is_empty() {
        return None;
    }
    Some(ContentType {
        kind: kind.to_ascii_uppercase(),
        subtype: subtype.to_ascii_uppercase(),
        params,
    })
}

fn parse_disposition(value: &str) -> Option<(String, Vec<(String, String)>)> {
    let (kind, params) = split_params(value);
    let kind = kind.trim();
    (!kind.is_empty()).then(|| (kind.to_ascii_uppercase(), params))
}

/// `value; a=1; b="two"` into the value and its parameters (names upper-cased as IMAP
/// servers show them, values unquoted but not decoded).
fn split_params(value: &str) -> (String, Vec<(String, String)>) {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut comment = 0usize;
    for c in value.chars() {
        match c {
            _ if escaped => {
                current.push(c);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '"' if comment == 0 => {
                quoted = !quoted;
                current.push(c);
            }
            '(' if !quoted => comment += 1,
            ')' if !quoted && comment > 0 => comment -= 1,
            _ if comment > 0 => {}
            ';' if !quoted => pieces.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    pieces.push(current);
    let mut pieces = pieces.into_iter();
    let head = pieces.next().unwrap_or_default().trim().to_string();
    let params = pieces
        .filter_map(|p| {
            let (name, value) = p.split_once('=')?;
            let name = name.trim();
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            (!name.is_empty()).then(|| (name.to_ascii_uppercase(), value.to_string()))
        })
        .collect();
    (head, params)
}

/// Appends the ENVELOPE of a message header.
pub fn write_envelope(out: &mut Vec<u8>, header: &[u8]) {
    let get = |name: &str| header_value(header, name);
    out.push(b'(');
    nstring(out, get("Date").as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, get("Subject").as_deref().map(str::as_bytes));
    let from = get("From");
    for (name, fallback) in [
        ("From", None),
        ("Sender", from.as_deref()),
        ("Reply-To", from.as_deref()),
        ("To", None),
        ("Cc", None),
        ("Bcc", None),
    ] {
        out.push(b' ');
        let value = get(name).filter(|v| !v.is_empty());
        write_addresses(out, value.as_deref().or(fallback));
    }
    out.push(b' ');
    nstring(out, get("In-Reply-To").as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, get("Message-ID").as_deref().map(str::as_bytes));
    out.push(b')');
}

fn write_addresses(out: &mut Vec<u8>, value: Option<&str>) {
    let addresses = value.map(super::address::parse_list).unwrap_or_default();
    if addresses.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in addresses {
        out.push(b'(');
        nstring(out, a.name.as_deref().map(str::as_bytes));
        out.extend_from_slice(b" NIL ");
        nstring(out, a.mailbox.as_deref().map(str::as_bytes));
        out.push(b' ');
        nstring(out, a.host.as_deref().map(str::as_bytes));
        out.push(b')');
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] = b"From: A <a@x.fr>\r\nSubject: t\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain; charset=\"utf-8\"; format=flowed\r\n\r\nhello\r\nworld\r\n--b1\r\nContent-Type: application/pdf; name*=UTF-8''r%C3%A9sum%C3%A9.pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"cr.pdf\"\r\n\r\nAAAA\r\n--b1--\r\nepilogue\r\n";

    fn structure(raw: &[u8], extended: bool) -> String {
        let mut out = Vec::new();
        Part::parse(raw).write_structure(&mut out, extended);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn bodystructure_keeps_parameters_as_written() {
        assert_eq!(
            structure(MIXED, true),
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\" \"FORMAT\" \"flowed\") NIL NIL \"7BIT\" 12 2 NIL NIL NIL NIL)\
             (\"APPLICATION\" \"PDF\" (\"NAME*\" \"UTF-8''r%C3%A9sum%C3%A9.pdf\") NIL NIL \"base64\" 4 NIL (\"ATTACHMENT\" (\"FILENAME\" \"cr.pdf\")) NIL NIL) \
             \"MIXED\" (\"BOUNDARY\" \"b1\") NIL NIL NIL)"
        );
        assert!(structure(MIXED, false).ends_with(" \"MIXED\")"));
    }

    #[test]
    fn sections_find_parts() {
        let top = Part::parse(MIXED);
        assert_eq!(top.find(&[1]).map(|p| p.body), Some(&b"hello\r\nworld"[..]));
        assert_eq!(top.find(&[2]).map(|p| p.body), Some(&b"AAAA"[..]));
        assert!(top.find(&[3]).is_none());
        let single = Part::parse(b"Subject: x\r\n\r\nbody\r\n");
        assert_eq!(single.find(&[1]).map(|p| p.body), Some(&b"body\r\n"[..]));
        assert!(single.find(&[2]).is_none());
    }

    #[test]
    fn envelope_defaults_sender_to_from() {
        let mut out = Vec::new();
        write_envelope(
            &mut out,
            b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nFrom: \"Fred Foobar\" <foobar@Blurdybloop.example>\r\nSubject: afternoon meeting\r\nTo: mooch@owatagu.example\r\nMessage-Id: <B27397-0100000@Blurdybloop.example>\r\n",
        );
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            "(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"afternoon meeting\" ((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) ((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) ((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) ((NIL NIL \"mooch\" \"owatagu.example\")) NIL NIL NIL \"<B27397-0100000@Blurdybloop.example>\")"
        );
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut raw = Vec::new();
        for _ in 0..200 {
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        raw.extend_from_slice(b"\r\nend");
        let mut out = Vec::new();
        Part::parse(&raw).write_structure(&mut out, true);
        assert!(out.len() > 100);
    }

    #[test]
    fn fuzz_message_structure() {
        mssante_fuzzing::fuzz("imap mime", mssante_fuzzing::corpus::MESSAGES, |input| {
            let part = Part::parse(input);
            let mut out = Vec::new();
            part.write_structure(&mut out, true);
            part.write_structure(&mut out, false);
            write_envelope(&mut out, part.header);
            for path in [&[1][..], &[1, 1], &[2, 1, 1], &[3]] {
                if let Some(found) = part.find(path) {
                    found.message().write_structure(&mut out, true);
                }
            }
            let _ = header_value(part.header, "content-type");
        });
    }
}
