//! SEARCHRES (RFC 5182): `SEARCH RETURN (SAVE)` keeps its result in the view, and `$` then
//! stands for those messages in FETCH, STORE, COPY, MOVE, UID EXPUNGE and as a search key.
//! imap-codec's grammar has no `$`, so a command that uses it is rewritten before it is
//! decoded: `$` becomes the saved messages' UIDs (UID commands, and as a `UID` key in
//! searches) or their numbers now (expunged ones drop out by themselves).

use super::encode;

/// What a command becomes once its `$` is replaced.
#[derive(Debug, PartialEq)]
pub enum Rewrite {
    /// No `$` in a place that takes one.
    Unchanged,
    /// The command with the saved messages written out.
    Command(Vec<u8>),
    /// The command acts on `$` and nothing is saved: it does nothing (RFC 5182 2.1).
    Nothing,
}

/// Commands whose first argument may be `$`.
const ON_A_SET: [&str; 5] = ["FETCH", "STORE", "COPY", "MOVE", "EXPUNGE"];
/// Commands whose search criteria may hold `$`.
const SEARCHING: [&str; 3] = ["SEARCH", "SORT", "THREAD"];

/// Search keys followed by one argument (which is never a key, even when it reads `$`).
const ONE_ARGUMENT: [&str; 21] = [
    "BCC",
    "BEFORE",
    "BODY",
    "CC",
    "FROM",
    "KEYWORD",
    "LARGER",
    "ON",
    "SENTBEFORE",
    "SENTON",
    "SENTSINCE",
    "SINCE",
    "SMALLER",
    "SUBJECT",
    "TEXT",
    "TO",
    "UNKEYWORD",
    "CHARSET",
    "RETURN",
    "MODSEQ",
    "UID",
];

/// `raw` (a whole command) with its `$` replaced by `saved` (UIDs, ascending); `index_of`
/// gives a UID's place in the selected folder now (None once expunged).
pub fn rewrite(raw: &[u8], saved: &[u32], index_of: impl Fn(u32) -> Option<usize>) -> Rewrite {
    if !raw.contains(&b'$') {
        return Rewrite::Unchanged;
    }
    let mut words = raw.splitn(4, |&b| b == b' ');
    let _tag = words.next();
    let mut name = upper(words.next().unwrap_or_default());
    let by_uid = name == "UID";
    let args_at = if by_uid {
        let real = words.next().unwrap_or_default();
        name = upper(real);
        real.as_ptr() as usize - raw.as_ptr() as usize + real.len() + 1
    } else {
        name_end(raw)
    };
    if args_at >= raw.len() {
        return Rewrite::Unchanged;
    }
    let uids: Vec<u32> = saved
        .iter()
        .copied()
        .filter(|&uid| index_of(uid).is_some())
        .collect();
    if ON_A_SET.contains(&name.as_str()) {
        let args = &raw[args_at..];
        let is_dollar = args.starts_with(b"$")
            && matches!(args.get(1), Some(b' ') | Some(b'\r') | Some(b'\n') | None);
        if !is_dollar {
            return Rewrite::Unchanged;
        }
        if uids.is_empty() {
            return Rewrite::Nothing;
        }
        let set = if by_uid {
            encode::uid_set(&uids)
        } else {
            let numbers: Vec<u32> = uids
                .iter()
                .filter_map(|&uid| index_of(uid).map(|i| i as u32 + 1))
                .collect();
            encode::uid_set(&numbers)
        };
        return Rewrite::Command(splice(raw, args_at..args_at + 1, set.as_bytes()));
    }
    if !SEARCHING.contains(&name.as_str()) {
        return Rewrite::Unchanged;
    }
    let replacement = if uids.is_empty() {
        "NOT ALL".to_string()
    } else {
        format!("UID {}", encode::uid_set(&uids))
    };
    let mut out = raw[..args_at].to_vec();
    let mut changed = false;
    let mut pending = 0usize;
    let mut previous: Option<(usize, String)> = None;
    let mut i = args_at;
    while i < raw.len() {
        match raw[i] {
            b' ' | b'\r' | b'\n' | b')' => {
                out.push(raw[i]);
                i += 1;
            }
            b'(' if pending > 0 => {
                // A parenthesised argument (RETURN's options): copied whole.
                let end = group_end(raw, i);
                out.extend_from_slice(&raw[i..end]);
                pending -= 1;
                i = end;
            }
            b'(' => {
                out.push(b'(');
                i += 1;
            }
            _ => {
                let end = token_end(raw, i);
                let token = &raw[i..end];
                if token == b"$" && pending == 0 {
                    out.extend_from_slice(replacement.as_bytes());
                    changed = true;
                } else if token == b"$" && previous.as_ref().is_some_and(|(_, p)| p == "UID") {
                    // `UID $`: the key is written again with the set (or as NOT ALL).
                    let (at, _) = previous.take().unwrap_or_default();
                    out.truncate(at);
                    out.extend_from_slice(replacement.as_bytes());
                    pending -= 1;
                    changed = true;
                } else {
                    out.extend_from_slice(token);
                    if pending > 0 {
                        pending -= 1;
                    } else {
                        let key = upper(token);
                        pending = match key.as_str() {
                            "HEADER" => 2,
                            k if ONE_ARGUMENT.contains(&k) => 1,
                            _ => 0,
                        };
                        previous = Some((out.len() - token.len(), key));
                    }
                }
                i = end;
            }
        }
    }
    if changed {
        Rewrite::Command(out)
    } else {
        Rewrite::Unchanged
    }
}

fn upper(word: &[u8]) -> String {
    String::from_utf8_lossy(word)
        .trim_end()
        .to_ascii_uppercase()
}

/// Where the arguments start after `tag NAME `.
fn name_end(raw: &[u8]) -> usize {
    let mut spaces = raw.iter().enumerate().filter(|&(_, &b)| b == b' ');
    spaces.nth(1).map_or(raw.len(), |(i, _)| i + 1)
}

/// The end of the token at `start`: a quoted string, a literal with its data, or an atom.
fn token_end(raw: &[u8], start: usize) -> usize {
    if raw[start] == b'"' {
        let mut i = start + 1;
        while i < raw.len() {
            match raw[i] {
                b'\\' => i += 2,
                b'"' => return i + 1,
                _ => i += 1,
            }
        }
        return raw.len();
    }
    if raw[start] == b'{' || raw[start..].starts_with(b"~{") {
        let open = if raw[start] == b'~' { start + 1 } else { start };
        if let Some(close) = raw[open..].iter().position(|&b| b == b'}') {
            let digits = String::from_utf8_lossy(&raw[open + 1..open + close]);
            let length: usize = digits.trim_end_matches('+').parse().unwrap_or(0);
            // `{n}` CRLF, then n octets.
            let data = open + close + 3;
            return data.saturating_add(length).min(raw.len());
        }
    }
    raw[start..]
        .iter()
        .position(|&b| matches!(b, b' ' | b'(' | b')' | b'\r' | b'\n'))
        .map_or(raw.len(), |p| start + p)
}

/// The end of the parenthesised group opening at `start` (after its closing parenthesis).
fn group_end(raw: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < raw.len() {
        match raw[i] {
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return i;
                }
            }
            b' ' => i += 1,
            _ => i = token_end(raw, i).max(i + 1),
        }
    }
    raw.len()
}

fn splice(raw: &[u8], range: std::ops::Range<usize>, with: &[u8]) -> Vec<u8> {
    let mut out = raw[..range.start].to_vec();
    out.extend_from_slice(with);
    out.extend_from_slice(&raw[range.end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder holding UIDs 10, 20, 30, 40 (numbers 1 to 4).
    fn place(uid: u32) -> Option<usize> {
        [10, 20, 30, 40].iter().position(|&u| u == uid)
    }

    fn rewritten(raw: &str, saved: &[u32]) -> String {
        match rewrite(raw.as_bytes(), saved, place) {
            Rewrite::Command(c) => String::from_utf8(c).expect("utf-8"),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn dollar_becomes_uids_or_numbers() {
        let saved = [20, 30, 40, 99];
        assert_eq!(
            rewritten("a FETCH $ (FLAGS)\r\n", &saved),
            "a FETCH 2:4 (FLAGS)\r\n"
        );
        assert_eq!(
            rewritten("a UID STORE $ +FLAGS (\\Seen)\r\n", &saved),
            "a UID STORE 20,30,40 +FLAGS (\\Seen)\r\n"
        );
        assert_eq!(
            rewritten("a UID MOVE $ Trash\r\n", &[10, 30]),
            "a UID MOVE 10,30 Trash\r\n"
        );
        assert_eq!(
            rewritten("a UID EXPUNGE $\r\n", &[10]),
            "a UID EXPUNGE 10\r\n"
        );
        assert_eq!(rewritten("a FETCH $ (FLAGS)\r\n", &[]), "Nothing");
        assert_eq!(rewritten("a FETCH $ (FLAGS)\r\n", &[99]), "Nothing");
    }

    #[test]
    fn dollar_in_searches_is_a_key_only_where_a_key_goes() {
        let saved = [10, 20];
        assert_eq!(
            rewritten("a SEARCH $ UNSEEN\r\n", &saved),
            "a SEARCH UID 10,20 UNSEEN\r\n"
        );
        assert_eq!(
            rewritten("a UID SEARCH OR $ (UID $) NOT $\r\n", &saved),
            "a UID SEARCH OR UID 10,20 (UID 10,20) NOT UID 10,20\r\n"
        );
        assert_eq!(rewritten("a SEARCH $\r\n", &[]), "a SEARCH NOT ALL\r\n");
        // Arguments that read `$` are strings, not the saved result.
        assert_eq!(rewritten("a SEARCH SUBJECT $\r\n", &saved), "Unchanged");
        assert_eq!(rewritten("a SEARCH HEADER X-A $\r\n", &saved), "Unchanged");
        assert_eq!(rewritten("a SEARCH TEXT \"$\"\r\n", &saved), "Unchanged");
        assert_eq!(rewritten("a SEARCH BODY {1}\r\n$\r\n", &saved), "Unchanged");
        assert_eq!(
            rewritten("a SEARCH RETURN (SAVE) $ FROM x\r\n", &saved),
            "a SEARCH RETURN (SAVE) UID 10,20 FROM x\r\n"
        );
        // Elsewhere `$` is left alone: a folder may be named so.
        assert_eq!(rewritten("a COPY 1 $\r\n", &saved), "Unchanged");
        assert_eq!(rewritten("a SELECT $\r\n", &saved), "Unchanged");
    }

    #[test]
    fn fuzz_dollar_rewriting() {
        mssante_fuzzing::fuzz("imap searchres", crate::imap::corpus::COMMANDS, |input| {
            if let Rewrite::Command(out) = rewrite(input, &[10, 20, 30], place) {
                // Each `$` becomes one set: the command grows by a bounded amount.
                assert!(out.len() <= input.len() * 24 + 64, "{}", out.len());
            }
        });
    }
}
