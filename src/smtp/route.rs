//! Where mail for a domain goes, and whom we expect to find there.
//!
//! A relay domain goes to its hospital MTA, which must show the configured certificate DN.
//! Any other domain must be in the trust space, and its next hop must show the whitelist's
//! operator DN for it; the hop is the static route when one is configured, else the DNS MX
//! hosts by preference (the domain itself when it has no MX, RFC 5321 5.1).

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use mssante_directory::DistinguishedName;

use crate::config::{Config, DnsConfig, split_host};
use crate::store::{Store, StoreError};

/// The hosts to try for a domain, in order, and the certificate they must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHops {
    /// `(host, port)`, best first.
    pub hosts: Vec<(String, u16)>,
    /// The subject DN the peer certificate must have, normalised.
    pub expected_dn: String,
}

/// Why a domain has no next hop now.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The domain left the trust space since the message was accepted.
    #[error("{0} is not in the MSSanté trust space")]
    NotInTrustSpace(String),
    /// DNS says the domain takes no mail (null MX, RFC 7505) or does not exist.
    #[error("{0}")]
    NoMail(String),
    /// DNS failed; try later.
    #[error("DNS lookup for {domain} failed: {reason}")]
    Dns {
        /// The domain.
        domain: String,
        /// Why.
        reason: String,
    },
    /// The store failed; try later.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RouteError {
    /// Whether retrying later is pointless.
    pub fn is_permanent(&self) -> bool {
        matches!(self, RouteError::NotInTrustSpace(_) | RouteError::NoMail(_))
    }

    /// The enhanced status code to report.
    pub fn status(&self) -> &'static str {
        match self {
            RouteError::NotInTrustSpace(_) => "5.7.1",
            RouteError::NoMail(_) => "5.1.2",
            RouteError::Dns { .. } => "4.4.3",
            RouteError::Store(_) => "4.3.0",
        }
    }
}

/// Finds next hops and their addresses; holds the DNS resolver (made on first use).
pub struct Router {
    dns: DnsConfig,
    resolver: tokio::sync::OnceCell<Result<TokioResolver, String>>,
}

impl Router {
    /// A router asking the name servers of `dns`; DNS is set up when first needed.
    pub fn new(dns: &DnsConfig) -> Router {
        Router {
            dns: dns.clone(),
            resolver: tokio::sync::OnceCell::new(),
        }
    }

    /// The resolver: the configured name servers, else the system's.
    async fn resolver(&self) -> Result<&TokioResolver, String> {
        self.resolver
            .get_or_init(|| async {
                let servers: Vec<SocketAddr> = self
                    .dns
                    .nameservers
                    .iter()
                    .filter_map(|s| s.get_ref().parse().ok())
                    .collect();
                let builder = if servers.is_empty() {
                    TokioResolver::builder_tokio().map_err(|e| e.to_string())?
                } else {
                    let servers = servers
                        .iter()
                        .map(|addr| {
                            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                            for connection in &mut server.connections {
                                connection.port = addr.port();
                            }
                            server
                        })
                        .collect();
                    TokioResolver::builder_with_config(
                        ResolverConfig::from_name_servers(servers),
                        TokioRuntimeProvider::default(),
                    )
                };
                builder.build().map_err(|e| e.to_string())
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The addresses of a next hop: an IP address as it is, a name through DNS (and the
    /// hosts file, with the system's resolver).
    pub async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let lookup = self
            .resolver()
            .await?
            .lookup_ip(format!("{host}.").as_str())
            .await
            .map_err(|e| e.to_string())?;
        Ok(lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect())
    }

    /// The next hops for `domain` (an A-label).
    pub async fn next_hops(
        &self,
        config: &Config,
        store: &Store,
        domain: &str,
    ) -> Result<NextHops, RouteError> {
        if let Some(relay) = config.relay_domain(domain) {
            return Ok(NextHops {
                hosts: split_host(relay.host.get_ref()).into_iter().collect(),
                expected_dn: normalised(relay.certificate_dn.get_ref()),
            });
        }
        let entry = store
            .db()
            .trust_entry(domain)
            .await?
            .ok_or_else(|| RouteError::NotInTrustSpace(domain.to_string()))?;
        let hosts = match config.route(domain) {
            Some(route) => split_host(route.host.get_ref()).into_iter().collect(),
            None => self.mx_hosts(domain).await?,
        };
        Ok(NextHops {
            hosts,
            expected_dn: entry.operator_key,
        })
    }

    async fn mx_hosts(&self, domain: &str) -> Result<Vec<(String, u16)>, RouteError> {
        let dns_error = |reason: String| RouteError::Dns {
            domain: domain.to_string(),
            reason,
        };
        let resolver = self.resolver().await.map_err(dns_error)?;
        let fqdn = format!("{domain}.");
        let lookup = match resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => lookup,
            Err(e) if e.is_nx_domain() => {
                return Err(RouteError::NoMail(format!(
                    "domain {domain} does not exist"
                )));
            }
            // No MX record: the domain itself is the mail host.
            Err(e) if e.is_no_records_found() => {
                return Ok(vec![(domain.to_string(), self.dns.mx_port.get())]);
            }
            Err(e) => return Err(dns_error(e.to_string())),
        };
        let mut mx: Vec<(u16, String)> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                _ => None,
            })
            .map(|(p, host)| (p, host.trim_end_matches('.').to_string()))
            .collect();
        mx.sort();
        if mx.iter().any(|(_, h)| h.is_empty()) {
            return Err(RouteError::NoMail(format!(
                "{domain} publishes a null MX: it accepts no mail"
            )));
        }
        let port = self.dns.mx_port.get();
        Ok(mx.into_iter().map(|(_, host)| (host, port)).collect())
    }
}

/// A DN in the form the trust space compares (the config's was checked when loaded).
fn normalised(dn: &str) -> String {
    DistinguishedName::parse(dn)
        .map(|d| d.to_string())
        .unwrap_or_default()
}
