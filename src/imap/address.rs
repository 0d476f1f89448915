//! RFC 5322 address lists for ENVELOPE: display names, angle addresses, bare addresses,
//! groups (as IMAP's start and end markers), comments skipped. Values stay as written
//! (encoded words are not decoded), as IMAP wants.

/// One ENVELOPE address. A group start has only `mailbox` (the group name); a group end has
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    /// Display name.
    pub name: Option<String>,
    /// Local part (or group name).
    pub mailbox: Option<String>,
    /// Domain.
    pub host: Option<String>,
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Special(char),
}

fn tokens(value: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {}
            '(' => {
                let mut depth = 1;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '"' => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                s.push(n);
                            }
                        }
                        '"' => break,
                        _ => s.push(c),
                    }
                }
                out.push(Token::Quoted(s));
            }
            '<' | '>' | '@' | ',' | ';' | ':' => out.push(Token::Special(c)),
            _ => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if " \t\r\n()\"<>@,;:".contains(n) {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(Token::Word(s));
            }
        }
    }
    out
}

fn text(t: &Token) -> Option<&str> {
    match t {
        Token::Word(s) | Token::Quoted(s) => Some(s),
        Token::Special(_) => None,
    }
}

/// Splits `local@host` tokens into an address.
fn addr_spec(tokens: &[Token]) -> Address {
    let at = tokens.iter().rposition(|t| *t == Token::Special('@'));
    let join = |ts: &[Token]| -> Option<String> {
        let s: String = ts.iter().filter_map(text).collect::<Vec<_>>().join("");
        (!s.is_empty()).then_some(s)
    };
    match at {
        Some(at) => Address {
            name: None,
            mailbox: join(&tokens[..at]),
            host: join(&tokens[at + 1..]),
        },
        None => Address {
            name: None,
            mailbox: join(tokens),
            host: None,
        },
    }
}

/// One mailbox: `name <addr>` or `addr`.
fn mailbox(tokens: &[Token]) -> Option<Address> {
    if tokens.is_empty() {
        return None;
    }
    if let Some(open) = tokens.iter().position(|t| *t == Token::Special('<')) {
        let close = tokens
            .iter()
            .rposition(|t| *t == Token::Special('>'))
            .unwrap_or(tokens.len());
        let inner = tokens.get(open + 1..close.max(open + 1)).unwrap_or(&[]);
        // A source route (`<@a,@b:x@y>`) is dropped: obsolete and never useful.
        let inner = match inner.iter().position(|t| *t == Token::Special(':')) {
            Some(colon) => &inner[colon + 1..],
            None => inner,
        };
        let mut address = addr_spec(inner);
        let name: Vec<&str> = tokens[..open].iter().filter_map(text).collect();
        address.name = (!name.is_empty()).then(|| name.join(" "));
        return Some(address);
    }
    Some(addr_spec(tokens))
}

/// Parses an address list header value.
pub fn parse_list(value: &str) -> Vec<Address> {
    let tokens = tokens(value);
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_group = false;
    let mut angle = false;
    for i in 0..=tokens.len() {
        let t = tokens.get(i);
        match t {
            Some(Token::Special('<')) => angle = true,
            Some(Token::Special('>')) => angle = false,
            Some(Token::Special(':')) if !in_group && !angle => {
                let name: Vec<&str> = tokens[start..i].iter().filter_map(text).collect();
                out.push(Address {
                    mailbox: Some(name.join(" ")),
                    ..Address::default()
                });
                in_group = true;
                start = i + 1;
            }
            Some(Token::Special(',')) | Some(Token::Special(';')) | None if !angle => {
                out.extend(mailbox(&tokens[start..i]));
                if matches!(t, Some(Token::Special(';')) | None) && in_group {
                    out.push(Address::default());
                    in_group = false;
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: Option<&str>, mailbox: Option<&str>, host: Option<&str>) -> Address {
        Address {
            name: name.map(Into::into),
            mailbox: mailbox.map(Into::into),
            host: host.map(Into::into),
        }
    }

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(
            parse_list("\"Dr. Martin, Jean\" <jean.martin@hopital.mssante.fr>, b@x.fr (Bob)"),
            vec![
                a(
                    Some("Dr. Martin, Jean"),
                    Some("jean.martin"),
                    Some("hopital.mssante.fr")
                ),
                a(None, Some("b"), Some("x.fr")),
            ]
        );
        assert_eq!(
            parse_list("=?UTF-8?Q?H=C3=A9l=C3=A8ne?= <h@x.fr>"),
            vec![a(
                Some("=?UTF-8?Q?H=C3=A9l=C3=A8ne?="),
                Some("h"),
                Some("x.fr")
            )]
        );
    }

    #[test]
    fn groups_have_markers() {
        assert_eq!(
            parse_list("Equipe: a@x.fr, b@x.fr;, c@y.fr"),
            vec![
                a(None, Some("Equipe"), None),
                a(None, Some("a"), Some("x.fr")),
                a(None, Some("b"), Some("x.fr")),
                Address::default(),
                a(None, Some("c"), Some("y.fr")),
            ]
        );
        assert_eq!(
            parse_list("undisclosed-recipients:;"),
            vec![
                a(None, Some("undisclosed-recipients"), None),
                Address::default()
            ]
        );
    }

    #[test]
    fn fuzz_address_lists() {
        mssante_fuzzing::fuzz("imap address", mssante_fuzzing::corpus::MESSAGES, |input| {
            let _ = parse_list(&String::from_utf8_lossy(input));
        });
    }
}
