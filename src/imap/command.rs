//! IMAP command syntax (RFC 3501 section 9), without I/O: a tagged command whose arguments are
//! atoms, strings (quoted or literal) and parenthesised lists, plus sequence sets.
//!
//! Enough for the foundation's commands; the IMAP issue moves parsing to imap-codec.

/// One argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// An atom, including section specs like `BODY.PEEK[HEADER.FIELDS (FROM)]<0.10>`.
    Atom(String),
    /// A quoted string or a literal.
    Str(Vec<u8>),
    /// `( ... )`.
    List(Vec<Arg>),
}

impl Arg {
    /// The argument as text (atom or string).
    pub fn text(&self) -> Option<String> {
        match self {
            Arg::Atom(a) => Some(a.clone()),
            Arg::Str(s) => String::from_utf8(s.clone()).ok(),
            Arg::List(_) => None,
        }
    }
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client's tag.
    pub tag: String,
    /// The command name, upper case.
    pub name: String,
    /// The arguments.
    pub args: Vec<Arg>,
}

/// Where a command line ends in a literal announcement: `{n}` or `{n+}` before CRLF.
/// Returns (n, non-synchronising).
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

/// Maximum nesting of parenthesised lists.
const MAX_DEPTH: usize = 8;

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn atom(&mut self) -> Result<String, String> {
        let start = self.pos;
        let mut brackets = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'[' => brackets += 1,
                b']' => brackets = brackets.saturating_sub(1),
                b' ' | b'(' | b')' if brackets == 0 => break,
                b'\r' | b'\n' => break,
                b'{' | b'"' if brackets == 0 && self.pos == start => break,
                _ => {}
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err("expected an atom".into());
        }
        String::from_utf8(self.input[start..self.pos].to_vec())
            .map_err(|_| "atom is not UTF-8".into())
    }

    fn quoted(&mut self) -> Result<Vec<u8>, String> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r' | b'\n') => return Err("unterminated quoted string".into()),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let escaped = self.input.get(self.pos + 1).copied();
                    match escaped {
                        Some(c @ (b'"' | b'\\')) => out.push(c),
                        _ => return Err("bad escape in quoted string".into()),
                    }
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> Result<Vec<u8>, String> {
        let close = self.input[self.pos..]
            .iter()
            .position(|&b| b == b'}')
            .ok_or("bad literal")?;
        let spec = &self.input[self.pos + 1..self.pos + close];
        let digits = spec.strip_suffix(b"+").unwrap_or(spec);
        let n: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or("bad literal length")?;
        self.pos += close + 1;
        if self.input.get(self.pos..self.pos + 2) == Some(b"\r\n") {
            self.pos += 2;
        } else if self.peek() == Some(b'\n') {
            self.pos += 1;
        } else {
            return Err("literal must end its line".into());
        }
        let data = self
            .input
            .get(self.pos..self.pos + n)
            .ok_or("literal is shorter than announced")?;
        self.pos += n;
        Ok(data.to_vec())
    }

    fn args(&mut self, depth: usize) -> Result<Vec<Arg>, String> {
        if depth > MAX_DEPTH {
            return Err("lists nested too deeply".into());
        }
        let mut out = Vec::new();
        loop {
            while self.peek() == Some(b' ') {
                self.pos += 1;
            }
            match self.peek() {
                None | Some(b'\r' | b'\n') => {
                    return if depth == 0 {
                        Ok(out)
                    } else {
                        Err("unclosed list".into())
                    };
                }
                Some(b')') => {
                    return if depth == 0 {
                        Err("unexpected )".into())
                    } else {
                        self.pos += 1;
                        Ok(out)
                    };
                }
                Some(b'(') => {
                    self.pos += 1;
                    out.push(Arg::List(self.args(depth + 1)?));
                }
                Some(b'"') => out.push(Arg::Str(self.quoted()?)),
                Some(b'{') => out.push(Arg::Str(self.literal()?)),
                Some(_) => out.push(Arg::Atom(self.atom()?)),
            }
        }
    }
}

/// Parses a whole command (literals included). Err carries the tag, when one was read.
pub fn parse(input: &[u8]) -> Result<Command, (Option<String>, String)> {
    let mut p = Parser { input, pos: 0 };
    let tag = p.atom().map_err(|e| (None, e))?;
    if tag.contains(['*', '+', '%', '"', '\\', ']']) {
        return Err((None, "invalid tag".into()));
    }
    if p.peek() != Some(b' ') {
        return Err((Some(tag), "missing command".into()));
    }
    p.pos += 1;
    let name = p
        .atom()
        .map_err(|e| (Some(tag.clone()), e))?
        .to_ascii_uppercase();
    let args = p.args(0).map_err(|e| (Some(tag.clone()), e))?;
    Ok(Command { tag, name, args })
}

/// A sequence set (`1,3:5,7:*`), resolved against the largest number in use.
pub fn sequence_set(text: &str, largest: u32) -> Option<Vec<(u32, u32)>> {
    text.split(',')
        .map(|part| {
            let number = |s: &str| {
                if s == "*" {
                    Some(largest)
                } else {
                    s.parse::<u32>().ok().filter(|&n| n > 0)
                }
            };
            let (a, b) = match part.split_once(':') {
                Some((a, b)) => (number(a)?, number(b)?),
                None => (number(part)?, number(part)?),
            };
            Some((a.min(b), a.max(b)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_with_quoted_and_literal() {
        let c = parse(b"a1 LOGIN \"jean\\\"x\" {3}\r\npw!\r\n").unwrap();
        assert_eq!(c.tag, "a1");
        assert_eq!(c.name, "LOGIN");
        assert_eq!(
            c.args,
            vec![Arg::Str(b"jean\"x".to_vec()), Arg::Str(b"pw!".to_vec())]
        );
    }

    #[test]
    fn fetch_items_keep_sections_whole() {
        let c =
            parse(b"7 uid fetch 1:* (UID BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)\r\n").unwrap();
        assert_eq!(c.name, "UID");
        assert_eq!(
            c.args[2],
            Arg::List(vec![
                Arg::Atom("UID".into()),
                Arg::Atom("BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>".into())
            ])
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(parse(b"\r\n").is_err());
        assert!(parse(b"a1\r\n").is_err());
        assert!(parse(b"a1 LOGIN \"unterminated\r\n").is_err());
        assert!(parse(b"a1 LOGIN {10}\r\nshort").is_err());
        assert!(parse(b"a1 X ((((((((((((x))))))))))))\r\n").is_err());
        assert!(parse(b"a1 X (a\r\n").is_err());
        assert!(parse(b"a1 X )\r\n").is_err());
    }

    #[test]
    fn literal_announcements() {
        assert_eq!(trailing_literal(b"a LOGIN {5}\r\n"), Some((5, false)));
        assert_eq!(trailing_literal(b"a LOGIN {5+}\r\n"), Some((5, true)));
        assert_eq!(trailing_literal(b"a LOGIN x\r\n"), None);
        assert_eq!(trailing_literal(b"a LOGIN {99999999999}\r\n"), None);
    }

    #[test]
    fn sequence_sets() {
        assert_eq!(
            sequence_set("1,3:5,7:*", 9),
            Some(vec![(1, 1), (3, 5), (7, 9)])
        );
        assert_eq!(sequence_set("*:4", 2), Some(vec![(2, 4)]));
        assert_eq!(sequence_set("0", 9), None);
        assert_eq!(sequence_set("a", 9), None);
    }
}
