//! Access rights on a mailbox, as RFC 4314 letters: what a delegate (a replacement doctor, a
//! secretary, a member of an ORG mailbox's team) may do in a mailbox that is not theirs. The
//! owner has every right. POP3 needs `r` to read and `t` plus `e` to delete; IMAP's ACL
//! commands use the same letters.

use std::fmt;

/// The RFC 4314 rights, in the order the RFC lists them.
const LETTERS: &str = "lrswipkxtea";

/// A set of RFC 4314 rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rights(u16);

/// A rights string with a letter RFC 4314 does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an RFC 4314 right (one of {LETTERS})")]
pub struct UnknownRight(pub char);

impl Rights {
    /// Every right: the mailbox owner's.
    pub const ALL: Rights = Rights((1 << LETTERS.len()) - 1);
    /// Read only: see the mailbox, read its messages, keep the seen state.
    pub const READ: Rights = Rights(0b111);

    /// Parses letters such as `lrs` or `lrswite`; the obsolete `c` and `d` of RFC 2086
    /// stand for `k` and `xte` (RFC 4314 2.1.1).
    pub fn parse(text: &str) -> Result<Rights, UnknownRight> {
        let mut bits = 0;
        for c in text.chars() {
            let expanded = match c {
                'c' => "k",
                'd' => "xte",
                _ => "",
            };
            for letter in expanded.chars().chain((expanded.is_empty()).then_some(c)) {
                let i = LETTERS.find(letter).ok_or(UnknownRight(c))?;
                bits |= 1 << i;
            }
        }
        Ok(Rights(bits))
    }

    /// The rights granted by either set.
    pub fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    /// The rights granted by both sets (a delegate's rights never exceed the delegation).
    pub fn intersect(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }

    /// These rights without `other`'s.
    pub fn without(self, other: Rights) -> Rights {
        Rights(self.0 & !other.0)
    }

    /// Whether any right in `letters` is granted.
    pub fn any(&self, letters: &str) -> bool {
        letters.chars().any(|c| self.allows(&c.to_string()))
    }

    /// Whether no right at all is granted.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Whether every right in `letters` is granted (an unknown letter never is).
    pub fn allows(&self, letters: &str) -> bool {
        letters
            .chars()
            .all(|c| LETTERS.find(c).is_some_and(|i| self.0 & (1 << i) != 0))
    }
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in LETTERS.chars().enumerate() {
            if self.0 & (1 << i) != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_parse_print_and_check() {
        let r = Rights::parse("srl").expect("valid");
        assert_eq!(r, Rights::READ);
        assert_eq!(r.to_string(), "lrs");
        assert!(r.allows("lr") && !r.allows("te"));
        assert_eq!(Rights::ALL.to_string(), LETTERS);
        assert_eq!(
            Rights::parse("lrd").map(|r| r.to_string()).as_deref(),
            Ok("lrxte")
        );
        assert_eq!(Rights::parse("lrz"), Err(UnknownRight('z')));
        assert!(!Rights::ALL.allows("z"));
    }
}
