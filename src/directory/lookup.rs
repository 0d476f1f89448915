//! Recipients' encryption certificates from the national directory, for outbound S/MIME
//! when the local table (`mssante cert add`) has none. Answers are cached: a certificate
//! for `POSITIVE_TTL`, "no certificate" (no entry, or an entry without one) for
//! `NEGATIVE_TTL`, so a busy sender does not ask the directory for every message. A
//! directory that fails is not cached: the message goes out as the policy says for a
//! recipient without a certificate, and the next one asks again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mssante_directory::{DirectoryConfig, DirectoryError, DirectorySession};

/// How long a certificate found is trusted to be current.
pub const POSITIVE_TTL: Duration = Duration::from_secs(3600);
/// How long "no certificate" is remembered.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(600);
/// Most addresses remembered; the oldest answers go first.
const CAPACITY: usize = 100_000;

/// A remembered answer: when it was given, and the certificate (None: there is none).
type Answer = (Instant, Option<Vec<u8>>);

/// Looks up and caches recipients' certificates.
pub struct CertificateLookup {
    config: DirectoryConfig,
    /// One bound connection, reopened after a failure.
    session: tokio::sync::Mutex<Option<DirectorySession>>,
    cache: Mutex<HashMap<String, Answer>>,
}

impl CertificateLookup {
    /// Lookups against the directory `config` describes.
    pub fn new(config: DirectoryConfig) -> CertificateLookup {
        CertificateLookup {
            config,
            session: tokio::sync::Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, address: &str, now: Instant) -> Option<Option<Vec<u8>>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (at, answer) = cache.get(address)?;
        let ttl = if answer.is_some() {
            POSITIVE_TTL
        } else {
            NEGATIVE_TTL
        };
        (now.duration_since(*at) < ttl).then(|| answer.clone())
    }

    fn remember(&self, address: &str, answer: Option<Vec<u8>>, now: Instant) {
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
            // A connection that went stale: one new one, one more try.
            Err(_) => {
                *session = None;
                let mut fresh = DirectorySession::open(&self.config).await?;
                let found = fresh.find(&address).await?;
                *session = Some(fresh);
                found
            }
        };
        let answer = found.and_then(|entry| entry.certificate);
        self.remember(&address, answer.clone(), Instant::now());
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup() -> CertificateLookup {
        CertificateLookup::new(DirectoryConfig {
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
        l.remember("a@x.test", Some(vec![1]), now);
        l.remember("b@x.test", None, now);
        assert_eq!(l.cached("a@x.test", now), Some(Some(vec![1])));
        assert_eq!(l.cached("b@x.test", now), Some(None));
        let later = now + NEGATIVE_TTL + Duration::from_secs(1);
        assert_eq!(l.cached("b@x.test", later), None, "negative answer expired");
        assert_eq!(l.cached("a@x.test", later), Some(Some(vec![1])));
        assert_eq!(l.cached("a@x.test", now + POSITIVE_TTL), None);
    }

    #[tokio::test]
    async fn a_directory_that_does_not_answer_is_an_error_not_a_cached_absence() {
        let l = lookup();
        assert!(l.certificate("a@x.test").await.is_err());
        assert_eq!(l.cached("a@x.test", Instant::now()), None);
    }
}
