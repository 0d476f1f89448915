//! POP3 command lines (RFC 1939, 2449, 2595, 5034) parsed into [`Command`], without I/O or
//! state: whether a command is allowed now, and whether a message number exists, is the
//! session's business.

/// One client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// CAPA (RFC 2449).
    Capa,
    /// STLS (RFC 2595).
    Stls,
    /// USER name: the name may be `user*mailbox` to open a delegated mailbox.
    User(String),
    /// PASS: the rest of the line, spaces included.
    Pass(String),
    /// AUTH mechanism [initial-response] (RFC 5034); bare AUTH lists mechanisms.
    Auth {
        /// The SASL mechanism, None for the bare listing form.
        mechanism: Option<String>,
        /// The base64 initial response.
        initial: Option<String>,
    },
    /// STAT.
    Stat,
    /// LIST [msg].
    List(Option<usize>),
    /// UIDL [msg].
    Uidl(Option<usize>),
    /// RETR msg.
    Retr(usize),
    /// TOP msg n.
    Top(usize, usize),
    /// DELE msg.
    Dele(usize),
    /// RSET.
    Rset,
    /// NOOP.
    Noop,
    /// QUIT.
    Quit,
}

/// Why a line is not a command we can run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A keyword POP3 does not have (or we do not offer).
    #[error("Unknown command {0}")]
    Unknown(String),
    /// A known command with the wrong arguments; says what it takes.
    #[error("{0}")]
    Syntax(&'static str),
}

impl Command {
    /// The command keyword, for the logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Auth { .. } => "AUTH",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Uidl(_) => "UIDL",
            Command::Retr(_) => "RETR",
            Command::Top(..) => "TOP",
            Command::Dele(_) => "DELE",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
        }
    }
}

/// Parses one line, its CRLF (or LF) removed or not.
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    let (keyword, rest) = match text.split_once(' ') {
        Some((k, r)) => (k, r),
        None => (text.as_ref(), ""),
    };
    let args: Vec<&str> = rest.split_whitespace().collect();
    let keyword = keyword.to_ascii_uppercase();
    let none = |command: Command, usage: &'static str| {
        if args.is_empty() {
            Ok(command)
        } else {
            Err(ParseError::Syntax(usage))
        }
    };
    match keyword.as_str() {
        "CAPA" => none(Command::Capa, "CAPA takes no argument"),
        "STLS" => none(Command::Stls, "STLS takes no argument"),
        "STAT" => none(Command::Stat, "STAT takes no argument"),
        "RSET" => none(Command::Rset, "RSET takes no argument"),
        "NOOP" => none(Command::Noop, "NOOP takes no argument"),
        "QUIT" => none(Command::Quit, "QUIT takes no argument"),
        "USER" => match args.as_slice() {
            [name] => Ok(Command::User((*name).to_string())),
            _ => Err(ParseError::Syntax("USER takes one name")),
        },
        // The password is the rest of the line: it may hold spaces (RFC 1939 7).
        "PASS" if !rest.is_empty() => Ok(Command::Pass(rest.to_string())),
        "PASS" => Err(ParseError::Syntax("PASS takes the password")),
        "AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth {
                mechanism: None,
                initial: None,
            }),
            [m] => Ok(Command::Auth {
                mechanism: Some(m.to_string()),
                initial: None,
            }),
            [m, ir] => Ok(Command::Auth {
                mechanism: Some(m.to_string()),
                initial: Some(ir.to_string()),
            }),
            _ => Err(ParseError::Syntax(
                "AUTH takes a mechanism and an initial response",
            )),
        },
        "LIST" | "UIDL" => {
            let n = match args.as_slice() {
                [] => None,
                [n] => Some(number(n)?),
                _ => return Err(ParseError::Syntax("LIST and UIDL take one message number")),
            };
            Ok(if keyword == "LIST" {
                Command::List(n)
            } else {
                Command::Uidl(n)
            })
        }
        "RETR" | "DELE" => match args.as_slice() {
            [n] if keyword == "RETR" => Ok(Command::Retr(number(n)?)),
            [n] => Ok(Command::Dele(number(n)?)),
            _ => Err(ParseError::Syntax("RETR and DELE take one message number")),
        },
        "TOP" => match args.as_slice() {
            [n, lines] => Ok(Command::Top(
                number(n)?,
                lines.parse().map_err(|_| {
                    ParseError::Syntax("TOP takes a message number and a line count")
                })?,
            )),
            _ => Err(ParseError::Syntax(
                "TOP takes a message number and a line count",
            )),
        },
        _ => Err(ParseError::Unknown(
            keyword.chars().take(20).collect::<String>(),
        )),
    }
}

/// A message number: decimal, from 1.
fn number(text: &str) -> Result<usize, ParseError> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ParseError::Syntax("Message numbers start at 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_case_insensitively_with_their_arguments() {
        assert_eq!(parse(b"capa\r\n"), Ok(Command::Capa));
        assert_eq!(
            parse(b"USER alice@x.test"),
            Ok(Command::User("alice@x.test".into()))
        );
        assert_eq!(
            parse(b"PASS a b  c\r\n"),
            Ok(Command::Pass("a b  c".into()))
        );
        assert_eq!(parse(b"list"), Ok(Command::List(None)));
        assert_eq!(parse(b"UIDL 3"), Ok(Command::Uidl(Some(3))));
        assert_eq!(parse(b"TOP 2 0"), Ok(Command::Top(2, 0)));
        assert_eq!(
            parse(b"AUTH PLAIN AGEAYg=="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some("AGEAYg==".into())
            })
        );
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert_eq!(parse(b"XYZZY"), Err(ParseError::Unknown("XYZZY".into())));
        assert!(matches!(parse(b"RETR"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"RETR 0"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"DELE -1"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"TOP 1"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"STAT 1"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"PASS"), Err(ParseError::Syntax(_))));
        assert!(matches!(
            parse(b"LIST 99999999999999999999999"),
            Err(ParseError::Syntax(_))
        ));
    }

    #[test]
    fn fuzz_command_lines() {
        mssante_fuzzing::fuzz(
            "pop3 command",
            &[
                b"CAPA\r\n",
                b"USER alice@x.fr*secretariat@x.fr\r\n",
                b"PASS pass word \r\n",
                b"AUTH PLAIN AGpAZQBwYXNz\r\n",
                b"TOP 1 99999999999999999999\r\n",
                b"RETR -1\r\n",
                b"UIDL\r\n",
                b"LIST 2\n",
                b"\xff\xfe QUIT\r\n",
            ],
            |input| {
                let _ = parse(input);
            },
        );
    }
}
