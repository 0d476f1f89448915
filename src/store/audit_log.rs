//! One line of the audit trail as the store keeps it, and the hash that chains it to the
//! line before. The hash lives with the record so the store can chain records inside any
//! transaction (a key use commits with the message it opened); `crate::audit` writes and
//! checks the trail.

use aws_lc_rs::digest::{Context, SHA256};

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// RFC 3339 time.
    pub at: String,
    /// What happened (`login`, `tls.refused`, `user.add`, ...).
    pub event: String,
    /// Who (address, idNat, `admin`, certificate DN).
    pub actor: String,
    /// From where (`imap 127.0.0.1:50123`, `cli`).
    pub source: String,
    /// `ok`, `refused`, `error`.
    pub outcome: String,
    /// Free text; never a password or message content.
    pub detail: String,
}

impl AuditRecord {
    /// This record's hash after the record whose hash is `previous` (empty for the first):
    /// SHA-256 over `previous` then each field length-prefixed, so fields cannot run
    /// together and removing or editing a record breaks the chain.
    pub fn chained(&self, previous: &[u8]) -> Vec<u8> {
        let mut ctx = Context::new(&SHA256);
        ctx.update(previous);
        for field in [
            &self.at,
            &self.event,
            &self.actor,
            &self.source,
            &self.outcome,
            &self.detail,
        ] {
            ctx.update(&(field.len() as u64).to_be_bytes());
            ctx.update(field.as_bytes());
        }
        ctx.finish().as_ref().to_vec()
    }

    /// Writes this record to the log (target `audit`), once it is committed: the caller
    /// does it, so the line carries the caller's span (the session id).
    pub fn trace(&self) {
        tracing::info!(
            target: "audit",
            event = self.event.as_str(),
            actor = self.actor.as_str(),
            source = self.source.as_str(),
            outcome = self.outcome.as_str(),
            detail = self.detail.as_str()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(detail: &str) -> AuditRecord {
        AuditRecord {
            at: "t".into(),
            event: "login".into(),
            actor: "a".into(),
            source: "s".into(),
            outcome: "ok".into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn the_hash_depends_on_the_previous_one_and_every_field() {
        let a = record("x").chained(b"");
        assert_ne!(a, record("x").chained(b"other"));
        assert_ne!(a, record("y").chained(b""));
        // Length prefixes: moving a character between fields changes the hash.
        let mut r = record("x");
        r.actor = "as".into();
        r.source = "".into();
        assert_ne!(a, r.chained(b""));
    }
}
