//! The audit trail: every security decision (login, refused peer, key use, admin change) as
//! an append-only, hash-chained record in the store.
//!
//! Each record's hash is SHA-256 over the previous record's hash and this record's fields, so
//! removing or editing a line breaks the chain at that point; `mssante audit verify` walks it.
//! Records never carry a password or message content.

use crate::store::{AuditRecord, Store, StoreError};

/// Outcome of a security decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed / done.
    Ok,
    /// Refused by policy or bad credentials.
    Refused,
    /// Could not be decided (internal error).
    Error,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
        }
    }
}

/// A record of a decision made now, for a caller that commits it with other writes (a key
/// use with the message it opened); [`Audit::record`] commits one alone.
pub fn entry(
    event: &str,
    actor: &str,
    source: &str,
    outcome: Outcome,
    detail: &str,
) -> AuditRecord {
    AuditRecord {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        event: event.into(),
        actor: actor.into(),
        source: source.into(),
        outcome: outcome.as_str().into(),
        detail: detail.into(),
    }
}

/// Writes and checks the audit trail.
#[derive(Clone)]
pub struct Audit {
    store: Store,
}

/// Where the chain is broken.
#[derive(Debug, PartialEq, Eq)]
pub struct ChainBreak {
    /// Sequence number of the first record whose hash does not match.
    pub seq: u64,
}

impl Audit {
    /// The audit trail of this store.
    pub fn new(store: Store) -> Audit {
        Audit { store }
    }

    /// Records one decision. `source` says where from (`imap 127.0.0.1:4242`, `cli`).
    pub async fn record(
        &self,
        event: &str,
        actor: &str,
        source: &str,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), StoreError> {
        let record = entry(event, actor, source, outcome, detail);
        self.store.db().append_audit(&record).await
    }

    /// Walks the whole chain; `Ok(count)` when intact.
    pub async fn verify(&self) -> Result<Result<u64, ChainBreak>, StoreError> {
        let mut previous = Vec::new();
        let mut after = 0;
        let mut count = 0;
        loop {
            let page = self.store.db().audit_records(after, 1000).await?;
            if page.is_empty() {
                return Ok(Ok(count));
            }
            for (seq, record, hash) in page {
                if record.chained(&previous) != hash {
                    return Ok(Err(ChainBreak { seq }));
                }
                previous = hash;
                after = seq;
                count += 1;
            }
        }
    }

    /// The last `n` records, oldest first.
    pub async fn tail(&self, n: u32) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.db().audit_records(after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.0;
            all.extend(page.into_iter().map(|(seq, r, _)| (seq, r)));
            let excess = all.len().saturating_sub(n as usize);
            all.drain(..excess);
        }
        Ok(all)
    }
}

/// Which records `mssante audit show` prints.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Records by this address, or about it (an administrator's action on the mailbox).
    pub user: Option<String>,
    /// Records at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

impl Filter {
    /// Whether `record` passes.
    pub fn accepts(&self, record: &AuditRecord) -> bool {
        let by_or_about = |user: &String| {
            record.actor.eq_ignore_ascii_case(user)
                || record.detail.to_ascii_lowercase().contains(user.as_str())
        };
        let after = |since: &chrono::DateTime<chrono::Utc>| {
            chrono::DateTime::parse_from_rfc3339(&record.at).is_ok_and(|at| at >= *since)
        };
        self.user.as_ref().is_none_or(by_or_about) && self.since.as_ref().is_none_or(after)
    }
}

impl Audit {
    /// The records `filter` accepts, oldest first, with their sequence numbers.
    pub async fn select(&self, filter: &Filter) -> Result<Vec<(u64, AuditRecord)>, StoreError> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.db().audit_records(after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.0;
            out.extend(
                page.into_iter()
                    .filter(|(_, r, _)| filter.accepts(r))
                    .map(|(seq, r, _)| (seq, r)),
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verify_finds_an_edited_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), None).await.unwrap();
        let audit = Audit::new(store.clone());
        for i in 0..3 {
            audit
                .record("login", &format!("user{i}"), "test", Outcome::Ok, "")
                .await
                .unwrap();
        }
        assert_eq!(audit.verify().await.unwrap(), Ok(3));
        drop(store);
        // Tamper with the second record behind the server's back.
        let db = dir.path().join("mssante.db");
        let status = std::process::Command::new("sqlite3")
            .arg(&db)
            .arg("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
            .status()
            .unwrap();
        assert!(status.success());
        let store = Store::open(dir.path(), None).await.unwrap();
        assert_eq!(
            Audit::new(store).verify().await.unwrap(),
            Err(ChainBreak { seq: 2 })
        );
    }
}
