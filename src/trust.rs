//! The MSSanté trust space: which domains may send us mail, and from which operator.
//!
//! The list is the ANS whitelist, imported whole with `mssante trust import` (a bad file
//! changes nothing). On the MX, a sender is accepted only when its domain is listed and, by
//! default, the TLS peer's certificate subject is the DN the list gives for that domain.

use std::path::Path;

use mssante_directory::{DistinguishedName, whitelist};

use crate::config::TrustPolicy;
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
    let mut entries = Vec::with_capacity(list.domains.len());
    for d in list.domains {
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
    /// The sender address has no usable domain.
    #[error("sender address <{0}> has no valid domain")]
    BadSender(String),
}

/// Judges the envelope sender of an MX transaction against the trust space.
pub async fn check_mx_sender(
    store: &Store,
    policy: &TrustPolicy,
    sender: &str,
    peer: &DistinguishedName,
) -> Result<Result<(), Refusal>, StoreError> {
    if sender.is_empty() {
        // Bounces carry no domain: the peer must at least operate some listed domain.
        return Ok(if store.db().trusted_operator(&peer.to_string()).await? {
            Ok(())
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
    let Some(entry) = store.db().trust_entry(&domain).await? else {
        return Ok(Err(Refusal::UnknownDomain(domain)));
    };
    if policy.require_operator_dn && entry.operator_key != peer.to_string() {
        return Ok(Err(Refusal::WrongOperator(domain)));
    }
    Ok(Ok(()))
}
