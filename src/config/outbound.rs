//! The outbound side of the configuration: how the queue retries, where mail for a domain
//! goes when DNS should not decide (static routes, used by tests and private links), and the
//! hospital domains this operator relays for.

use std::num::NonZeroU16;

use serde::Deserialize;
use toml::Spanned;

use mssante_directory::{DistinguishedName, whitelist};

use super::{Config, ConfigError};

/// How the outbound queue retries and gives up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueuePolicy {
    /// Seconds before the first retry; each later retry waits twice as long as the last.
    #[serde(default = "default_retry_first")]
    pub retry_first_secs: u64,
    /// The longest wait between two attempts.
    #[serde(default = "default_retry_max")]
    pub retry_max_secs: u64,
    /// After this long in the queue a message fails and its sender gets a failure report.
    #[serde(default = "default_lifetime")]
    pub lifetime_secs: u64,
    /// After this long still undelivered, the sender gets one delay report (0: never).
    #[serde(default = "default_delay_notice")]
    pub delay_notice_secs: u64,
    /// Seconds to wait for a TCP connection to a remote MTA.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds to wait for each reply of a remote MTA (RFC 5321 4.5.3.2 suggests minutes).
    #[serde(default = "default_reply_timeout")]
    pub reply_timeout_secs: u64,
    /// Deliveries in progress at once.
    #[serde(default = "default_max_parallel")]
    pub max_parallel: usize,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        QueuePolicy {
            retry_first_secs: default_retry_first(),
            retry_max_secs: default_retry_max(),
            lifetime_secs: default_lifetime(),
            delay_notice_secs: default_delay_notice(),
            connect_timeout_secs: default_connect_timeout(),
            reply_timeout_secs: default_reply_timeout(),
            max_parallel: default_max_parallel(),
        }
    }
}

fn default_retry_first() -> u64 {
    300
}
fn default_retry_max() -> u64 {
    3600
}
fn default_lifetime() -> u64 {
    5 * 24 * 3600
}
fn default_delay_notice() -> u64 {
    4 * 3600
}
fn default_connect_timeout() -> u64 {
    30
}
fn default_reply_timeout() -> u64 {
    300
}
fn default_max_parallel() -> usize {
    20
}

impl QueuePolicy {
    /// Seconds to wait after the `attempts`-th failed attempt (1-based): exponential, capped.
    pub fn backoff(&self, attempts: u32) -> u64 {
        let doublings = attempts.saturating_sub(1).min(32);
        self.retry_first_secs
            .saturating_mul(1u64 << doublings)
            .min(self.retry_max_secs.max(self.retry_first_secs))
    }
}

/// How the queue asks DNS for the MX hosts of a trust-space domain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Name servers to ask, as `ip:port`; empty: the system's (/etc/resolv.conf).
    #[serde(default)]
    pub nameservers: Vec<Spanned<String>>,
    /// The port the MX hosts listen on: 25, except for a test that runs them on loopback.
    #[serde(default = "default_mx_port")]
    pub mx_port: NonZeroU16,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            nameservers: Vec::new(),
            mx_port: default_mx_port(),
        }
    }
}

fn default_mx_port() -> NonZeroU16 {
    const SMTP: NonZeroU16 = NonZeroU16::new(25).expect("25 is not zero");
    SMTP
}

/// A fixed next hop for a domain of the trust space, instead of its DNS MX.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The recipient domain.
    pub domain: Spanned<String>,
    /// `host:port` (port 25 when left out) of the MTA that takes its mail.
    pub host: Spanned<String>,
}

/// A hospital domain whose mail this operator relays: its MTA may send on the MX like an
/// operator, and mail for the domain is forwarded to that MTA.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayDomain {
    /// The hospital's mail domain.
    pub domain: Spanned<String>,
    /// `host:port` (port 25 when left out) of the hospital MTA.
    pub host: Spanned<String>,
    /// The subject DN of the hospital MTA's certificate, in both directions.
    pub certificate_dn: Spanned<String>,
}

/// A `host:port` string split, the port defaulting to 25. IPv6 addresses go in brackets.
pub fn split_host(text: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ]")?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("unexpected {after:?} after the address")),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err("no host name".into());
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{p:?} is not a port number"))?,
        None => 25,
    };
    Ok((host.to_string(), port))
}

impl Config {
    /// Checks routes and relay domains: domains, hosts and DNs that parse, no domain twice.
    pub(super) fn validate_outbound(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        let mut domain = |key: &str, d: &Spanned<String>| -> Result<String, ConfigError> {
            let name =
                whitelist::a_label(d.get_ref()).map_err(|reason| self.error_at(key, d, reason))?;
            if !seen.insert(name.clone()) {
                return Err(self.error_at(key, d, format!("{name} has more than one next hop")));
            }
            Ok(name)
        };
        let host = |key: &str, h: &Spanned<String>| -> Result<(), ConfigError> {
            split_host(h.get_ref())
                .map(drop)
                .map_err(|reason| self.error_at(key, h, reason))
        };
        for (i, ns) in self.dns.nameservers.iter().enumerate() {
            ns.get_ref().parse::<std::net::SocketAddr>().map_err(|_| {
                self.error_at(
                    &format!("dns.nameservers[{i}]"),
                    ns,
                    format!("{:?} is not an ip:port address", ns.get_ref()),
                )
            })?;
        }
        for (i, url) in self.tls.crl_urls.iter().enumerate() {
            crate::tls::fetch::parse(url.get_ref())
                .map_err(|reason| self.error_at(&format!("tls.crl_urls[{i}]"), url, reason))?;
        }
        if let Some(psc) = &self.auth.psc {
            self.validate_psc(psc)?;
        }
        for (i, d) in self.auth.require_otp_domains.iter().enumerate() {
            whitelist::a_label(d.get_ref()).map_err(|reason| {
                self.error_at(&format!("auth.require_otp_domains[{i}]"), d, reason)
            })?;
        }
        for (i, d) in self.smime.legacy_domains.iter().enumerate() {
            whitelist::a_label(d.get_ref()).map_err(|reason| {
                self.error_at(&format!("smime.legacy_domains[{i}]"), d, reason)
            })?;
        }
        for (i, r) in self.routes.iter().enumerate() {
            domain(&format!("route[{i}].domain"), &r.domain)?;
            host(&format!("route[{i}].host"), &r.host)?;
        }
        for (i, r) in self.relay_domains.iter().enumerate() {
            domain(&format!("relay_domain[{i}].domain"), &r.domain)?;
            host(&format!("relay_domain[{i}].host"), &r.host)?;
            DistinguishedName::parse(r.certificate_dn.get_ref()).map_err(|e| {
                self.error_at(
                    &format!("relay_domain[{i}].certificate_dn"),
                    &r.certificate_dn,
                    e.to_string(),
                )
            })?;
        }
        Ok(())
    }

    /// `[auth.psc]`: one key source, readable or well formed.
    fn validate_psc(&self, psc: &super::PscConfig) -> Result<(), ConfigError> {
        match (&psc.jwks_file, &psc.jwks_url) {
            (Some(file), None) if !file.get_ref().is_file() => Err(self.error_at(
                "auth.psc.jwks_file",
                file,
                format!("{} is not a readable file", file.get_ref().display()),
            )),
            (Some(_), None) => Ok(()),
            (None, Some(url)) => {
                crate::tls::fetch::parse_https(url.get_ref())
                    .map_err(|reason| self.error_at("auth.psc.jwks_url", url, reason))?;
                crate::tls::read_certificates(&psc.ca_file)
                    .map(drop)
                    .map_err(|e| self.error_at("auth.psc.jwks_url", url, e.to_string()))
            }
            _ => Err(ConfigError {
                file: self.source.clone(),
                line: None,
                key: Some("auth.psc".into()),
                message: "give the keys as jwks_file or jwks_url (one of them)".into(),
            }),
        }
    }

    /// The relay domain `domain` (an A-label), if this operator relays for it.
    pub fn relay_domain(&self, domain: &str) -> Option<&RelayDomain> {
        self.relay_domains
            .iter()
            .find(|r| whitelist::a_label(r.domain.get_ref()).is_ok_and(|d| d == domain))
    }

    /// The static route for `domain` (an A-label), if any.
    pub fn route(&self, domain: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| whitelist::a_label(r.domain.get_ref()).is_ok_and(|d| d == domain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_split_with_the_default_port() {
        assert_eq!(split_host("mx.b.test").ok(), Some(("mx.b.test".into(), 25)));
        assert_eq!(
            split_host("127.0.0.1:2525").ok(),
            Some(("127.0.0.1".into(), 2525))
        );
        assert_eq!(split_host("[::1]:26").ok(), Some(("::1".into(), 26)));
        assert_eq!(split_host("[::1]").ok(), Some(("::1".into(), 25)));
        assert!(split_host("mx:0").is_err());
        assert!(split_host("mx:smtp").is_err());
        assert!(split_host(":25").is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = QueuePolicy {
            retry_first_secs: 60,
            retry_max_secs: 600,
            ..QueuePolicy::default()
        };
        let waits: Vec<u64> = (1..=6).map(|a| p.backoff(a)).collect();
        assert_eq!(waits, [60, 120, 240, 480, 600, 600]);
        assert_eq!(p.backoff(u32::MAX), 600);
    }

    #[test]
    fn bad_routes_name_their_key_and_line() {
        let text = "mode = \"dev\"\n[[route]]\ndomain = \"b.test\"\nhost = \"127.0.0.1:x\"\n";
        let err = Config::parse(text)
            .expect("parses")
            .validate()
            .expect_err("bad port");
        assert_eq!(err.key.as_deref(), Some("route[0].host"), "{err}");
        assert_eq!(err.line, Some(4), "{err}");
        let text = "mode = \"dev\"\n[[route]]\ndomain = \"b.test\"\nhost = \"h\"\n[[relay_domain]]\ndomain = \"B.test\"\nhost = \"h\"\ncertificate_dn = \"CN=h\"\n";
        let err = Config::parse(text)
            .expect("parses")
            .validate()
            .expect_err("twice");
        assert!(err.message.contains("more than one next hop"), "{err}");
        let text = "mode = \"dev\"\n[[relay_domain]]\ndomain = \"h.test\"\nhost = \"h\"\ncertificate_dn = \"no equals sign\"\n";
        let err = Config::parse(text)
            .expect("parses")
            .validate()
            .expect_err("bad DN");
        assert_eq!(
            err.key.as_deref(),
            Some("relay_domain[0].certificate_dn"),
            "{err}"
        );
        let text = "mode = \"dev\"\n[smime]\nlegacy_domains = [\"old.test\", \"not a domain\"]\n";
        let err = Config::parse(text)
            .expect("parses")
            .validate()
            .expect_err("bad legacy domain");
        assert_eq!(err.key.as_deref(), Some("smime.legacy_domains[1]"), "{err}");
        assert_eq!(err.line, Some(3), "{err}");
    }
}
