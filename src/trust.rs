//! The MSSanté trust space: which domains may send us mail, and from which operator.
//!
//! The list is the ANS whitelist, imported whole with `mssante trust import` (a bad file
//! changes nothing), or the same list as the national directory publishes it
//! (`mssante trust import-directory`). On the MX, a sender is accepted only when its domain is listed and, by
//! default, the TLS peer's certificate subject is the DN the list gives for that domain.

use std::path::Path;

use mssante_directory::{DistinguishedName, whitelist};

use crate::config::Config;
use crate::store::{Store, StoreError, TrustDiff, TrustEntry};

/// Why an import was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid whitelist.
    #[error("{path}, {source}; nothing was changed")]
    Invalid {
        /// The file.
        path: String,
        /// What and where.
        source: mssante_directory::WhitelistError,
    },
    /// The directory could not be read; nothing was changed.
    #[error("the directory: {0}; nothing was changed")]
    Directory(String),
    /// The directory publishes no trust-space domain (refused: it would empty the list).
    #[error("the directory publishes no trust-space domain; nothing was changed")]
    EmptyDirectory,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads a whitelist file and replaces the stored trust space with it.
pub async fn import(store: &Store, path: &Path) -> Result<TrustDiff, ImportError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
        path: shown.clone(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let list = whitelist::parse(&text).map_err(|source| ImportError::Invalid {
        path: shown.clone(),
        source,
    })?;
    replace(store, list.domains).await
}

/// Replaces the stored trust space with the domains the national directory publishes
/// (`mssTrustedDomain` entries); an empty or unreadable directory changes nothing.
pub async fn import_from_directory(
    store: &Store,
    config: &mssante_directory::DirectoryConfig,
) -> Result<TrustDiff, ImportError> {
    let failed = |e: mssante_directory::DirectoryError| ImportError::Directory(e.to_string());
    let mut session = mssante_directory::DirectorySession::open(config)
        .await
        .map_err(failed)?;
    let domains = session.trusted_domains().await.map_err(failed)?;
    session.close().await;
    if domains.is_empty() {
        return Err(ImportError::EmptyDirectory);
    }
    replace(store, domains).await
}

async fn replace(
    store: &Store,
    domains: Vec<whitelist::TrustedDomain>,
) -> Result<TrustDiff, ImportError> {
    let mut entries = Vec::with_capacity(domains.len());
    for d in domains {
        // The parser already checked every DN.
        let key = DistinguishedName::parse(&d.operator_dn)
            .map(|dn| dn.to_string())
            .unwrap_or_default();
        entries.push(TrustEntry {
            domain: d.name,
            operator_dn: d.operator_dn,
            operator_key: key,
            description: d.description,
            support_contact: d.support_contact,
            updated: d.updated,
        });
    }
    Ok(store.db().replace_trust_list(&entries).await?)
}

/// Why the MX refuses a sender, in words a postmaster understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The domain is not whitelisted.
    #[error("sender domain {0} is not in the MSSanté trust space")]
    UnknownDomain(String),
    /// The peer is not the domain's operator.
    #[error("certificate DN does not match the operator of {0}")]
    WrongOperator(String),
    /// A bounce (null sender) from a peer that operates no listed domain.
    #[error("the peer's certificate is not that of an operator of the MSSanté trust space")]
    UnknownOperator,
    /// A relayed hospital domain, but the peer is not its configured MTA.
    #[error("certificate DN does not match the relay host of {0}")]
    WrongRelayHost(String),
    /// The sender address has no usable domain.
    #[error("sender address <{0}> has no valid domain")]
    BadSender(String),
}

/// Who the MX peer is, once its sender is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MxPeer {
    /// Another operator: it may send to our mailboxes and relayed domains.
    Operator,
    /// The MTA of a hospital we relay for: it may also send to the rest of the trust space.
    RelayHost,
}

/// Judges the envelope sender of an MX transaction against the relay domains and the trust
/// space.
pub async fn check_mx_sender(
    store: &Store,
    config: &Config,
    sender: &str,
    peer: &DistinguishedName,
) -> Result<Result<MxPeer, Refusal>, StoreError> {
    let peer_key = peer.to_string();
    let is_relay_host =
        |dn: &str| DistinguishedName::parse(dn).is_ok_and(|d| d.to_string() == peer_key);
    if sender.is_empty() {
        // Reports carry no domain: the peer must at least be a relay host or an operator.
        if config
            .relay_domains
            .iter()
            .any(|r| is_relay_host(r.certificate_dn.get_ref()))
        {
            return Ok(Ok(MxPeer::RelayHost));
        }
        return Ok(if store.db().trusted_operator(&peer_key).await? {
            Ok(MxPeer::Operator)
        } else {
            Err(Refusal::UnknownOperator)
        });
    }
    let Some(domain) = sender
        .rsplit_once('@')
        .and_then(|(_, d)| whitelist::a_label(d).ok())
    else {
        return Ok(Err(Refusal::BadSender(sender.to_string())));
    };
    if let Some(relay) = config.relay_domain(&domain) {
        return Ok(if is_relay_host(relay.certificate_dn.get_ref()) {
            Ok(MxPeer::RelayHost)
        } else {
            Err(Refusal::WrongRelayHost(domain))
        });
    }
    let Some(entry) = store.db().trust_entry(&domain).await? else {
        return Ok(Err(Refusal::UnknownDomain(domain)));
    };
    if config.trust.require_operator_dn && entry.operator_key != peer_key {
        return Ok(Err(Refusal::WrongOperator(domain)));
    }
    Ok(Ok(MxPeer::Operator))
}
