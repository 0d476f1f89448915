//! The national directory over LDAP (ldap3): publishing the operator's mailboxes, removing
//! them, reading back the entries of its domains, and looking up a recipient's certificate.
//!
//! Every operation has a deadline: a slow or silent directory gives an error, never a
//! stalled caller. Connections are short-lived (one per batch of work); the caller decides
//! what to retry.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry, dn_escape, ldap_escape};

use crate::DistinguishedName;
use crate::entry::{ATTRIBUTES, CERTIFICATE_ATTRIBUTES, Entry, first_value};
use crate::whitelist::{self, TrustedDomain};

/// Where the directory is and how the operator binds to it.
#[derive(Clone)]
pub struct DirectoryConfig {
    /// `ldap://host:port` (StartTLS when `tls` is set) or `ldaps://host:port`.
    pub url: String,
    /// Where mailbox entries live: `mail=<address>,<base_dn>`.
    pub base_dn: String,
    /// The operator's bind DN; None binds anonymously (lookups only).
    pub bind_dn: Option<String>,
    /// Its password.
    pub bind_password: String,
    /// TLS client configuration for ldaps:// or StartTLS; None: plain LDAP (loopback only).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// StartTLS on an ldap:// URL.
    pub starttls: bool,
    /// Deadline of each connection and operation.
    pub timeout: Duration,
}

/// What went wrong talking to the directory.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// No answer in time.
    #[error("the directory did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection or the protocol failed.
    #[error("directory connection: {0}")]
    Connection(String),
    /// The directory refused the operator's bind (a configuration to fix).
    #[error("the directory refused the bind as {dn} (LDAP code {code}: {text})")]
    BindRefused {
        /// The bind DN.
        dn: String,
        /// RFC 4511 result code (49: invalid credentials).
        code: u32,
        /// The server's diagnostic.
        text: String,
    },
    /// The directory refused an operation (LDAP result code and text).
    #[error("the directory refused {operation} (LDAP code {code}: {text})")]
    Refused {
        /// What was asked.
        operation: String,
        /// RFC 4511 result code.
        code: u32,
        /// The server's diagnostic.
        text: String,
    },
}

impl DirectoryError {
    /// Whether trying again cannot help: the directory refused the entry itself (schema,
    /// syntax, naming: RFC 4511 codes 16-21, 34, 64-69). A connection failure, a timeout,
    /// a busy or unavailable directory, or a refused bind (a configuration to fix) may pass.
    pub fn is_permanent(&self) -> bool {
        matches!(self, DirectoryError::Refused { code, .. } if matches!(code, 16..=21 | 34 | 64..=69))
    }
}

/// What a publication changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// A new entry.
    Added,
    /// An existing entry now says what the mailbox says.
    Updated,
}

/// RFC 4511 result codes this module acts on.
const NO_SUCH_OBJECT: u32 = 32;
const ALREADY_EXISTS: u32 = 68;

/// One bound connection to the directory.
pub struct DirectorySession {
    ldap: ldap3::Ldap,
    base_dn: String,
    timeout: Duration,
}

/// Runs one directory operation under the deadline.
async fn timed<T>(
    timeout: Duration,
    operation: impl std::future::Future<Output = Result<T, ldap3::LdapError>>,
) -> Result<T, DirectoryError> {
    match tokio::time::timeout(timeout, operation).await {
        Err(_) => Err(DirectoryError::Timeout(timeout)),
        Ok(Err(e)) => Err(DirectoryError::Connection(e.to_string())),
        Ok(Ok(value)) => Ok(value),
    }
}

fn refused(operation: &str, result: &ldap3::LdapResult) -> DirectoryError {
    DirectoryError::Refused {
        operation: operation.to_string(),
        code: result.rc,
        text: result.text.clone(),
    }
}

impl DirectorySession {
    /// Connects and binds as `config` says.
    pub async fn open(config: &DirectoryConfig) -> Result<DirectorySession, DirectoryError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(config.timeout)
            .set_starttls(config.starttls);
        if let Some(tls) = &config.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, mut ldap) = timed(
            config.timeout,
            LdapConnAsync::with_settings(settings, &config.url),
        )
        .await?;
        ldap3::drive!(conn);
        if let Some(dn) = &config.bind_dn {
            let result = timed(config.timeout, ldap.simple_bind(dn, &config.bind_password)).await?;
            if result.rc != 0 {
                return Err(DirectoryError::BindRefused {
                    dn: dn.clone(),
                    code: result.rc,
                    text: result.text,
                });
            }
        }
        Ok(DirectorySession {
            ldap,
            base_dn: config.base_dn.clone(),
            timeout: config.timeout,
        })
    }

    /// The DN of `address`'s entry.
    pub fn dn_of(&self, address: &str) -> String {
        format!(
            "mail={},{}",
            dn_escape(address.to_ascii_lowercase()),
            self.base_dn
        )
    }

    /// Writes `entry`: added when new, otherwise every attribute replaced by what the
    /// mailbox says now (those it no longer has removed).
    pub async fn publish(&mut self, entry: &Entry) -> Result<Published, DirectoryError> {
        let dn = self.dn_of(&entry.address);
        let attributes = entry.attributes();
        let operation = format!("the publication of {}", entry.address);
        let as_bytes: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = attributes
            .iter()
            .map(|(name, values)| (name.clone().into_bytes(), values.clone()))
            .collect();
        let added = timed(self.timeout, self.ldap.add(&dn, as_bytes)).await?;
        match added.rc {
            0 => return Ok(Published::Added),
            ALREADY_EXISTS => {}
            _ => return Err(refused(&operation, &added)),
        }
        let present: HashSet<&str> = attributes.iter().map(|(n, _)| n.as_str()).collect();
        let mut mods: Vec<Mod<Vec<u8>>> = attributes
            .iter()
            .map(|(name, values)| Mod::Replace(name.clone().into_bytes(), values.clone()))
            .collect();
        // A Replace without values removes the attribute (RFC 4511 4.6).
        for name in ATTRIBUTES.iter().chain(CERTIFICATE_ATTRIBUTES.iter()) {
            if !present.contains(name) {
                mods.push(Mod::Replace(name.as_bytes().to_vec(), HashSet::new()));
            }
        }
        let modified = timed(self.timeout, self.ldap.modify(&dn, mods)).await?;
        match modified.rc {
            0 => Ok(Published::Updated),
            _ => Err(refused(&operation, &modified)),
        }
    }

    /// Removes `address`'s entry; false when there was none.
    pub async fn remove(&mut self, address: &str) -> Result<bool, DirectoryError> {
        let dn = self.dn_of(address);
        let result = timed(self.timeout, self.ldap.delete(&dn)).await?;
        match result.rc {
            0 => Ok(true),
            NO_SUCH_OBJECT => Ok(false),
            _ => Err(refused(&format!("the removal of {address}"), &result)),
        }
    }

    /// The entries whose address is in one of `domains` (what sync compares).
    pub async fn entries_of(&mut self, domains: &[String]) -> Result<Vec<Entry>, DirectoryError> {
        if domains.is_empty() {
            return Ok(Vec::new());
        }
        let alternatives: String = domains
            .iter()
            .map(|d| format!("(mail=*@{})", ldap_escape(d.as_str())))
            .collect();
        let filter = format!("(&(objectClass=mssMailbox)(|{alternatives}))");
        self.search(&filter).await
    }

    /// The entry of `address`, if the directory has one (that this bind may see).
    pub async fn find(&mut self, address: &str) -> Result<Option<Entry>, DirectoryError> {
        let filter = format!(
            "(&(objectClass=mssMailbox)(mail={}))",
            ldap_escape(address.to_ascii_lowercase())
        );
        Ok(self.search(&filter).await?.into_iter().next())
    }

    /// The mailbox entries `filter` finds; entries that are not ours are skipped (logged).
    async fn search(&mut self, filter: &str) -> Result<Vec<Entry>, DirectoryError> {
        let mut wanted: Vec<&str> = ATTRIBUTES.to_vec();
        wanted.extend(CERTIFICATE_ATTRIBUTES);
        let mut out = Vec::new();
        for parsed in self.raw_search(filter, wanted).await? {
            match Entry::from_ldap(&parsed.attrs, &parsed.bin_attrs) {
                Ok(entry) => out.push(entry),
                Err(reason) => tracing::warn!(dn = %parsed.dn, %reason, "directory entry skipped"),
            }
        }
        Ok(out)
    }

    /// One subtree search under the base DN, within the deadline.
    async fn raw_search(
        &mut self,
        filter: &str,
        attrs: Vec<&str>,
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let found = timed(
            self.timeout,
            self.ldap
                .search(&self.base_dn, Scope::Subtree, filter, attrs),
        )
        .await?;
        let (entries, result) = (found.0, found.1);
        if result.rc != 0 {
            return Err(refused(&format!("the search {filter}"), &result));
        }
        entries
            .into_iter()
            .map(|raw| {
                // ldap3 panics on BER it cannot read: a broken directory must not take the
                // server down with it.
                std::panic::catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(raw))).map_err(
                    |_| {
                        DirectoryError::Connection(
                            "an entry the directory sent is malformed".into(),
                        )
                    },
                )
            })
            .collect()
    }

    /// The trust space the directory publishes (`mssTrustedDomain` entries), as the
    /// whitelist would give it; entries with an invalid domain or DN are skipped (logged).
    pub async fn trusted_domains(&mut self) -> Result<Vec<TrustedDomain>, DirectoryError> {
        let found = self
            .raw_search(
                "(objectClass=mssTrustedDomain)",
                vec!["associatedDomain", "mssOperatorDN", "description"],
            )
            .await?;
        let mut out: Vec<TrustedDomain> = Vec::with_capacity(found.len());
        for parsed in found {
            let get = |name: &str| first_value(&parsed.attrs, name).unwrap_or_default();
            let domain = match whitelist::a_label(&get("associatedDomain")) {
                Ok(domain) => domain,
                Err(e) => {
                    tracing::warn!(dn = %parsed.dn, error = %e, "trust-space entry skipped");
                    continue;
                }
            };
            let operator_dn = get("mssOperatorDN");
            if let Err(e) = DistinguishedName::parse(&operator_dn) {
                tracing::warn!(dn = %parsed.dn, error = %e, "trust-space entry skipped");
                continue;
            }
            if out.iter().any(|d| d.name == domain) {
                continue;
            }
            out.push(TrustedDomain {
                name: domain,
                operator_dn,
                description: get("description"),
                support_contact: String::new(),
                updated: String::new(),
            });
        }
        Ok(out)
    }

    /// Ends the session politely.
    pub async fn close(mut self) {
        let _ = timed(self.timeout, self.ldap.unbind()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(operation: &str, code: u32) -> DirectoryError {
        DirectoryError::Refused {
            operation: operation.into(),
            code,
            text: String::new(),
        }
    }

    #[test]
    fn only_a_refused_entry_is_permanent() {
        assert!(refused("the publication of a@b.test", 65).is_permanent());
        assert!(refused("the publication of a@b.test", 21).is_permanent());
        assert!(!refused("the publication of a@b.test", 51).is_permanent());
        let bind = DirectoryError::BindRefused {
            dn: "cn=admin".into(),
            code: 49,
            text: String::new(),
        };
        assert!(!bind.is_permanent());
        assert!(!DirectoryError::Timeout(Duration::from_secs(1)).is_permanent());
        assert!(!DirectoryError::Connection("reset".into()).is_permanent());
    }
}
