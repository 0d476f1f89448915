//! Writing IMAP data: strings as quoted or literal, NIL, parenthesised lists. Responses are
//! built as bytes so message data goes out untouched (literals are 8-bit clean).

/// Appends `value` as an IMAP string: quoted when it is short printable text, else a literal.
pub fn string(out: &mut Vec<u8>, value: &[u8]) {
    let quotable = value.len() < 1024
        && value
            .iter()
            .all(|&b| b != b'\r' && b != b'\n' && b != 0 && b.is_ascii());
    if quotable {
        out.push(b'"');
        for &b in value {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, value);
    }
}

/// Appends `value` as a literal `{n}\r\n...`.
pub fn literal(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", value.len()).as_bytes());
    out.extend_from_slice(value);
}

/// Appends an nstring: NIL for None.
pub fn nstring(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => string(out, v),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// `value` as a quoted string (or literal), for a response built with `format!`.
pub fn quoted(value: &str) -> String {
    let mut out = Vec::with_capacity(value.len() + 2);
    string(&mut out, value.as_bytes());
    String::from_utf8_lossy(&out).into_owned()
}

/// `1:3,7` for a list of UIDs (in the order given, runs joined).
pub fn uid_set(uids: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            end = uids[i + 1];
            i += 1;
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_join_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn quotes_or_literals() {
        let mut out = Vec::new();
        string(&mut out, br#"a "b" \c"#);
        assert_eq!(out, br#""a \"b\" \\c""#);
        out.clear();
        string(&mut out, "é".as_bytes());
        assert_eq!(out, b"{2}\r\n\xc3\xa9");
        out.clear();
        nstring(&mut out, None);
        assert_eq!(out, b"NIL");
    }
}
