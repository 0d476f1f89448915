//! Commands imap-codec's grammar does not cover, parsed here: ESEARCH's `SEARCH RETURN (...)`
//! (RFC 4731), LIST-EXTENDED's selection and return options with LIST-STATUS (RFC 5258,
//! RFC 5819), and the ACL commands (RFC 4314). Tried only after imap-codec refused a
//! command, so everything it knows keeps its parser.

use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::status::StatusDataItemName;

use super::input;

/// Deepest parenthesised nesting accepted here (none of these commands needs more than 3).
const MAX_DEPTH: usize = 8;

/// One token of an extension command.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// An atom (upper-cased when compared).
    Atom(String),
    /// A quoted string or a literal.
    Str(Vec<u8>),
    /// A parenthesised list.
    List(Vec<Token>),
}

impl Token {
    /// The token as an astring (atom or string).
    pub fn astring(&self) -> Option<&[u8]> {
        match self {
            Token::Atom(a) => Some(a.as_bytes()),
            Token::Str(s) => Some(s),
            Token::List(_) => None,
        }
    }

    fn is_atom(&self, name: &str) -> bool {
        matches!(self, Token::Atom(a) if a.eq_ignore_ascii_case(name))
    }
}

/// ESEARCH result options (RFC 4731).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchReturn {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
    /// SAVE (RFC 5182): keep the result for `$`.
    pub save: bool,
}

impl SearchReturn {
    /// What a SEARCH without RETURN answers in IMAP4rev2 (RFC 9051 6.4.4).
    pub fn all() -> SearchReturn {
        SearchReturn {
            all: true,
            ..SearchReturn::default()
        }
    }

    /// Whether an ESEARCH response is sent: not for SAVE alone (RFC 5182 2.4).
    pub fn answers(&self) -> bool {
        self.min || self.max || self.all || self.count
    }
}

/// LIST-EXTENDED options (RFC 5258, RFC 6154, RFC 5819).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListOptions {
    /// Selection: only subscribed folders.
    pub subscribed: bool,
    /// Selection: only special-use folders.
    pub special_use: bool,
    /// Selection: a parent matches when a child does.
    pub recursive: bool,
    /// Return: \Subscribed attributes.
    pub return_subscribed: bool,
    /// Return: STATUS of each selectable folder.
    pub status: Vec<StatusDataItemName>,
}

/// An extension command.
#[derive(Debug)]
pub enum Extended {
    /// `[UID] SEARCH RETURN (...) criteria`: the search as imap-codec decoded it.
    Search(Command<'static>, SearchReturn),
    /// `LIST (selection) reference (patterns) RETURN (options)`.
    List {
        reference: Vec<u8>,
        patterns: Vec<Vec<u8>>,
        options: ListOptions,
    },
    /// `SETACL mailbox identifier rights` (rights may start with + or -).
    SetAcl(Vec<u8>, String, String),
    /// `DELETEACL mailbox identifier`.
    DeleteAcl(Vec<u8>, String),
    /// `GETACL mailbox`.
    GetAcl(Vec<u8>),
    /// `LISTRIGHTS mailbox identifier`.
    ListRights(Vec<u8>, String),
    /// `MYRIGHTS mailbox`.
    MyRights(Vec<u8>),
}

/// Parses `raw` (a whole command) as an extension command; None when it is not one of them
/// (the caller answers BAD), Err with a reason when it is one but malformed.
pub fn parse(raw: &[u8]) -> Option<Result<(String, Extended), &'static str>> {
    let tag = input::tag_of(raw)?;
    let rest = &raw[tag.len()..];
    let rest = rest.strip_prefix(b" ")?;
    let (name, _) = split_word(rest);
    let upper = String::from_utf8_lossy(name).to_ascii_uppercase();
    let by_uid = upper == "UID";
    let after_uid = if by_uid { split_word(rest).1 } else { rest };
    let command = String::from_utf8_lossy(split_word(after_uid).0).to_ascii_uppercase();
    let known = matches!(
        command.as_str(),
        "SEARCH" | "LIST" | "SETACL" | "DELETEACL" | "GETACL" | "LISTRIGHTS" | "MYRIGHTS"
    );
    if !known || (by_uid && command != "SEARCH") {
        return None;
    }
    let args_start = raw.len() - split_word(after_uid).1.len();
    let tokens = match Tokens::new(&raw[args_start..]).all() {
        Ok(tokens) => tokens,
        Err(e) => return Some(Err(e)),
    };
    let parsed = match command.as_str() {
        "SEARCH" => search(raw, args_start, &tokens),
        "LIST" => list(&tokens),
        _ => acl(&command, &tokens),
    };
    Some(parsed.map(|e| (tag, e)))
}

/// `word rest` at the first space (or CRLF).
fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(s.len());
    let rest = &s[end..];
    (&s[..end], rest.strip_prefix(b" ").unwrap_or(rest))
}

fn search(raw: &[u8], args_start: usize, tokens: &[Token]) -> Result<Extended, &'static str> {
    let (Some(first), Some(Token::List(options))) = (tokens.first(), tokens.get(1)) else {
        return Err("SEARCH RETURN takes a list of options");
    };
    if !first.is_atom("RETURN") {
        return Err("Unknown SEARCH arguments");
    }
    let mut ret = SearchReturn::default();
    for option in options {
        match option {
            o if o.is_atom("MIN") => ret.min = true,
            o if o.is_atom("MAX") => ret.max = true,
            o if o.is_atom("ALL") => ret.all = true,
            o if o.is_atom("COUNT") => ret.count = true,
            o if o.is_atom("SAVE") => ret.save = true,
            _ => return Err("Unknown SEARCH RETURN option"),
        }
    }
    if options.is_empty() {
        // RETURN () means ALL (RFC 4731 3.1).
        ret.all = true;
    }
    // The criteria after `RETURN (...)` are imap-codec's to parse: rebuild the plain SEARCH.
    let args = &raw[args_start..];
    let close = args
        .iter()
        .position(|&b| b == b')')
        .ok_or("SEARCH RETURN takes a list of options")?;
    let criteria = args[close + 1..]
        .strip_prefix(b" ")
        .unwrap_or(&args[close + 1..]);
    let mut plain = raw[..args_start].to_vec();
    plain.extend_from_slice(criteria);
    let command = input::decode(&plain)?;
    match command.body {
        CommandBody::Search { .. } => Ok(Extended::Search(command, ret)),
        _ => Err("Invalid SEARCH"),
    }
}

fn list(tokens: &[Token]) -> Result<Extended, &'static str> {
    let mut options = ListOptions::default();
    let mut rest = tokens;
    if let Some(Token::List(selection)) = rest.first() {
        for option in selection {
            match option {
                o if o.is_atom("SUBSCRIBED") => options.subscribed = true,
                o if o.is_atom("SPECIAL-USE") => options.special_use = true,
                o if o.is_atom("RECURSIVEMATCH") => options.recursive = true,
                o if o.is_atom("REMOTE") => {}
                _ => return Err("Unknown LIST selection option"),
            }
        }
        if options.recursive && !options.subscribed {
            return Err("RECURSIVEMATCH needs another selection option");
        }
        rest = &rest[1..];
    }
    let reference = rest
        .first()
        .and_then(Token::astring)
        .ok_or("LIST takes a reference")?
        .to_vec();
    let patterns = match rest.get(1) {
        Some(Token::List(list)) => list
            .iter()
            .map(|t| t.astring().map(<[u8]>::to_vec))
            .collect::<Option<Vec<_>>>()
            .ok_or("LIST patterns are strings")?,
        Some(t) => vec![t.astring().ok_or("LIST takes a pattern")?.to_vec()],
        None => return Err("LIST takes a pattern"),
    };
    match (rest.get(2), rest.get(3), rest.len()) {
        (None, None, 2) => {}
        (Some(r), Some(Token::List(returns)), 4) if r.is_atom("RETURN") => {
            let mut i = 0;
            while i < returns.len() {
                match &returns[i] {
                    o if o.is_atom("SUBSCRIBED") => options.return_subscribed = true,
                    o if o.is_atom("CHILDREN") || o.is_atom("SPECIAL-USE") => {}
                    o if o.is_atom("STATUS") => {
                        let Some(Token::List(items)) = returns.get(i + 1) else {
                            return Err("STATUS takes a list of items");
                        };
                        for item in items {
                            options.status.push(status_item(item)?);
                        }
                        i += 1;
                    }
                    _ => return Err("Unknown LIST return option"),
                }
                i += 1;
            }
        }
        _ => return Err("Invalid LIST arguments"),
    }
    Ok(Extended::List {
        reference,
        patterns,
        options,
    })
}

fn status_item(token: &Token) -> Result<StatusDataItemName, &'static str> {
    let Token::Atom(name) = token else {
        return Err("STATUS items are atoms");
    };
    Ok(match name.to_ascii_uppercase().as_str() {
        "MESSAGES" => StatusDataItemName::Messages,
        "RECENT" => StatusDataItemName::Recent,
        "UIDNEXT" => StatusDataItemName::UidNext,
        "UIDVALIDITY" => StatusDataItemName::UidValidity,
        "UNSEEN" => StatusDataItemName::Unseen,
        "DELETED" => StatusDataItemName::Deleted,
        "SIZE" => StatusDataItemName::Size,
        "HIGHESTMODSEQ" => StatusDataItemName::HighestModSeq,
        _ => return Err("Unknown STATUS item"),
    })
}

fn acl(command: &str, tokens: &[Token]) -> Result<Extended, &'static str> {
    let arg = |i: usize| -> Result<Vec<u8>, &'static str> {
        tokens
            .get(i)
            .and_then(Token::astring)
            .map(<[u8]>::to_vec)
            .ok_or("Missing argument")
    };
    let text = |i: usize| -> Result<String, &'static str> {
        String::from_utf8(arg(i)?).map_err(|_| "Identifiers and rights are UTF-8")
    };
    let count = |n: usize| {
        if tokens.len() == n {
            Ok(())
        } else {
            Err("Wrong number of arguments")
        }
    };
    Ok(match command {
        "SETACL" => {
            count(3)?;
            Extended::SetAcl(arg(0)?, text(1)?, text(2)?)
        }
        "DELETEACL" => {
            count(2)?;
            Extended::DeleteAcl(arg(0)?, text(1)?)
        }
        "GETACL" => {
            count(1)?;
            Extended::GetAcl(arg(0)?)
        }
        "LISTRIGHTS" => {
            count(2)?;
            Extended::ListRights(arg(0)?, text(1)?)
        }
        _ => {
            count(1)?;
            Extended::MyRights(arg(0)?)
        }
    })
}

/// A tokenizer over the arguments of one command (literals already inline, as `input::read`
/// assembles them).
struct Tokens<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Tokens<'a> {
    fn new(input: &'a [u8]) -> Tokens<'a> {
        Tokens { input, pos: 0 }
    }

    fn all(&mut self) -> Result<Vec<Token>, &'static str> {
        let tokens = self.sequence(0, None)?;
        match &self.input[self.pos..] {
            b"" | b"\r\n" | b"\n" => Ok(tokens),
            _ => Err("Unexpected characters"),
        }
    }

    fn sequence(&mut self, depth: usize, close: Option<u8>) -> Result<Vec<Token>, &'static str> {
        if depth > MAX_DEPTH {
            return Err("Too deeply nested");
        }
        let mut out = Vec::new();
        loop {
            while self.input.get(self.pos) == Some(&b' ') {
                self.pos += 1;
            }
            match self.input.get(self.pos) {
                None | Some(b'\r') | Some(b'\n') if close.is_none() => return Ok(out),
                None | Some(b'\r') | Some(b'\n') => return Err("Unclosed list"),
                Some(&c) if Some(c) == close => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'(') => {
                    self.pos += 1;
                    out.push(Token::List(self.sequence(depth + 1, Some(b')'))?));
                }
                Some(b'"') => out.push(Token::Str(self.quoted()?)),
                Some(b'{') => out.push(Token::Str(self.literal()?)),
                Some(_) => out.push(Token::Atom(self.atom()?)),
            }
        }
    }

    fn quoted(&mut self) -> Result<Vec<u8>, &'static str> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.input.get(self.pos) {
                None | Some(b'\r') | Some(b'\n') => return Err("Unterminated string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let c = *self.input.get(self.pos + 1).ok_or("Unterminated string")?;
                    out.push(c);
                    self.pos += 2;
                }
                Some(&c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> Result<Vec<u8>, &'static str> {
        let rest = &self.input[self.pos..];
        let end = rest.iter().position(|&b| b == b'}').ok_or("Bad literal")?;
        let digits = rest[1..end].strip_suffix(b"+").unwrap_or(&rest[1..end]);
        let n: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or("Bad literal")?;
        let after_brace = &rest[end + 1..];
        let line_end = if after_brace.starts_with(b"\r\n") {
            2
        } else if after_brace.starts_with(b"\n") {
            1
        } else {
            return Err("Bad literal");
        };
        let data = after_brace
            .get(line_end..)
            .and_then(|d| d.get(..n))
            .ok_or("Bad literal")?;
        self.pos += end + 1 + line_end + n;
        Ok(data.to_vec())
    }

    /// An atom of at least one octet: a character that can start nothing (a control octet,
    /// a stray `)`) is an error, so every call either consumes input or fails.
    fn atom(&mut self) -> Result<String, &'static str> {
        let start = self.pos;
        while let Some(&c) = self.input.get(self.pos) {
            if c <= b' ' || c == 0x7f || b"(){\"".contains(&c) || c == b')' {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err("Unexpected character");
        }
        std::str::from_utf8(&self.input[start..self.pos])
            .map(str::to_string)
            .map_err(|_| "Atoms are ASCII")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_esearch_list_extended_and_acl() {
        let Some(Ok((tag, Extended::Search(_, ret)))) =
            parse(b"a UID SEARCH RETURN (MIN COUNT) UNSEEN FROM \"x\"\r\n")
        else {
            panic!("search");
        };
        assert_eq!(tag, "a");
        assert!(ret.min && ret.count && !ret.all);
        let Some(Ok((_, Extended::List { patterns, options, .. }))) = parse(
            b"b LIST (SUBSCRIBED) \"\" (\"INBOX\" \"Sent\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n",
        ) else {
            panic!("list");
        };
        assert_eq!(patterns, vec![b"INBOX".to_vec(), b"Sent".to_vec()]);
        assert!(options.subscribed);
        assert_eq!(options.status.len(), 2);
        assert!(matches!(
            parse(b"c SETACL INBOX bob@x.fr +lrs\r\n"),
            Some(Ok((_, Extended::SetAcl(_, _, rights)))) if rights == "+lrs"
        ));
        assert!(
            matches!(parse(b"d MYRIGHTS {5}\r\nINBOX\r\n"), Some(Ok((_, Extended::MyRights(m)))) if m == b"INBOX")
        );
        assert!(matches!(parse(b"e GETACL\r\n"), Some(Err(_))));
        assert!(parse(b"f FROBNICATE\r\n").is_none());
        let deep = format!("g LIST {}\r\n", "(".repeat(50));
        assert!(matches!(parse(deep.as_bytes()), Some(Err(_))));
    }

    #[test]
    fn a_stray_parenthesis_or_control_octet_is_an_error_not_a_loop() {
        // `a SEARCH )` once made the tokenizer loop on an empty atom until memory ran out.
        for raw in [
            &b"a SEARCH )\r\n"[..],
            b"a UID SEARCH )\r\n",
            b"a LIST )\r\n",
            b"a SETACL \x01\r\n",
            b"a GETACL INBOX\x7f\r\n",
            b"a MYRIGHTS {18446744073709551615}\r\nx\r\n",
            b"a MYRIGHTS {3}\r\nx",
        ] {
            assert!(matches!(parse(raw), Some(Err(_))), "{}", raw.escape_ascii());
        }
    }

    #[test]
    fn fuzz_extension_commands() {
        mssante_fuzzing::fuzz("imap extension", crate::imap::corpus::COMMANDS, |input| {
            let _ = parse(input);
        });
    }
}
