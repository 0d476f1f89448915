//! Other operators' recipients in the national directory: whether an address has an entry
//! (the optional check at submission, `[directory] check_remote_recipients`) and its
//! encryption certificate (outbound S/MIME, when the local table has none). Answers are
//! cached: an entry with a certificate for `POSITIVE_TTL`, anything less (no entry, or no
//! certificate) for `NEGATIVE_TTL`, so a busy sender does not ask the directory for every
//! message. A directory that fails is not cached: the caller decides (the message goes out
//! as for a recipient without a certificate; the address is not refused). After a failed
//! connection the directory is not asked again for `HOLD_DOWN`, so an outage does not make
//! every message wait for the connection timeout.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mssante_directory::{DirectoryConfig, DirectoryError, DirectorySession};

/// How long a certificate found is trusted to be current.
pub const POSITIVE_TTL: Duration = Duration::from_secs(3600);
/// How long "no certificate" is remembered.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(600);
/// How long a directory that could not be reached is left alone.
pub const HOLD_DOWN: Duration = Duration::from_secs(30);
/// Most addresses remembered; the oldest answers go first.
const CAPACITY: usize = 100_000;

/// What the directory says of an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// No entry (or none this bind may see).
    Absent,
    /// An entry, with its encryption certificate if it publishes one.
    Present(Option<Vec<u8>>),
}

/// A remembered answer and when it was given.
type Answer = (Instant, Known);

/// Looks up and caches other operators' recipients.
pub struct DirectoryLookup {
    config: DirectoryConfig,
    /// One bound connection, reopened after a failure.
    session: tokio::sync::Mutex<Option<DirectorySession>>,
    cache: Mutex<HashMap<String, Answer>>,
    /// When the last connection attempt failed.
    failed_at: Mutex<Option<Instant>>,
}

impl DirectoryLookup {
    /// Lookups against the directory `config` describes.
    pub fn new(config: DirectoryConfig) -> DirectoryLookup {
        DirectoryLookup {
            config,
            session: tokio::sync::Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
            failed_at: Mutex::new(None),
        }
    }

    fn cached(&self, address: &str, now: Instant) -> Option<Known> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (at, answer) = cache.get(address)?;
        let ttl = match answer {
            Known::Present(Some(_)) => POSITIVE_TTL,
            _ => NEGATIVE_TTL,
        };
        (now.duration_since(*at) < ttl).then(|| answer.clone())
    }

    fn remember(&self, address: &str, answer: Known, now: Instant) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CAPACITY {
            // Expired answers first; if none, the oldest one.
            cache.retain(|_, (at, _)| now.duration_since(*at) < NEGATIVE_TTL);
            if cache.len() >= CAPACITY
                && let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
            {
                cache.remove(&oldest);
            }
        }
        cache.insert(address.to_string(), (now, answer));
    }

    /// The encryption certificate (DER) the directory publishes for `address`; None when
    /// there is no entry or no certificate.
    pub async fn certificate(&self, address: &str) -> Result<Option<Vec<u8>>, DirectoryError> {
        Ok(match self.known(address).await? {
            Known::Present(certificate) => certificate,
            Known::Absent => None,
        })
    }

    /// Whether the directory has an entry for `address`.
    pub async fn exists(&self, address: &str) -> Result<bool, DirectoryError> {
        Ok(matches!(self.known(address).await?, Known::Present(_)))
    }

    /// What the directory says of `address`, from the cache when it is fresh.
    pub async fn known(&self, address: &str) -> Result<Known, DirectoryError> {
        let address = address.to_ascii_lowercase();
        if let Some(answer) = self.cached(&address, Instant::now()) {
            return Ok(answer);
        }
        let mut session = self.session.lock().await;
        // Asked by another task while this one waited for the connection?
        if let Some(answer) = self.cached(&address, Instant::now()) {
            return Ok(answer);
        }
        let found = match session.as_mut() {
            Some(open) => open.find(&address).await,
            None => Err(DirectoryError::Connection("not connected yet".into())),
        };
        let found = match found {
            Ok(found) => found,
            // A connection that went stale: one new one, one more try, unless the directory
            // could not be reached a moment ago.
            Err(_) => {
                *session = None;
                let failed_at = *self.failed_at.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(at) = failed_at.filter(|at| at.elapsed() < HOLD_DOWN) {
                    return Err(DirectoryError::Connection(format!(
                        "unreachable {} s ago; asked again after {} s",
                        at.elapsed().as_secs(),
                        HOLD_DOWN.as_secs()
                    )));
                }
                let opened = DirectorySession::open(&self.config).await;
                *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) =
                    opened.is_err().then(Instant::now);
                let mut fresh = opened?;
                let found = fresh.find(&address).await?;
                *session = Some(fresh);
                found
            }
        };
        let answer = match found {
            Some(entry) => Known::Present(entry.certificate),
            None => Known::Absent,
        };
        self.remember(&address, answer.clone(), Instant::now());
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup() -> DirectoryLookup {
        DirectoryLookup::new(DirectoryConfig {
            url: "ldap://127.0.0.1:1".into(),
            base_dn: "dc=x".into(),
            bind_dn: None,
            bind_password: String::new(),
            tls: None,
            starttls: false,
            timeout: Duration::from_millis(200),
        })
    }

    #[test]
    fn answers_are_kept_for_their_time_to_live() {
        let l = lookup();
        let now = Instant::now();
        let with = Known::Present(Some(vec![1]));
        l.remember("a@x.test", with.clone(), now);
        l.remember("b@x.test", Known::Absent, now);
        l.remember("c@x.test", Known::Present(None), now);
        assert_eq!(l.cached("a@x.test", now), Some(with.clone()));
        assert_eq!(l.cached("b@x.test", now), Some(Known::Absent));
        let later = now + NEGATIVE_TTL + Duration::from_secs(1);
        assert_eq!(l.cached("b@x.test", later), None, "negative answer expired");
        assert_eq!(
            l.cached("c@x.test", later),
            None,
            "no certificate: asked again"
        );
        assert_eq!(l.cached("a@x.test", later), Some(with));
        assert_eq!(l.cached("a@x.test", now + POSITIVE_TTL), None);
    }

    #[tokio::test]
    async fn a_directory_that_does_not_answer_is_an_error_not_a_cached_absence() {
        let l = lookup();
        let first = l
            .certificate("a@x.test")
            .await
            .expect_err("nothing listens there");
        assert!(!first.to_string().contains("asked again"), "{first}");
        assert_eq!(l.cached("a@x.test", Instant::now()), None);
        // Within the hold-down, the directory is not tried again.
        let second = l.exists("b@x.test").await.expect_err("held down");
        assert!(
            second.to_string().contains("asked again after 30 s"),
            "{second}"
        );
    }
}
