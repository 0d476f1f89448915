//! The trust space as the store keeps it: one row per whitelisted domain, replaced whole
//! and atomically by each import.

/// A domain of the trust space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustEntry {
    /// The domain, A-label, lower case.
    pub domain: String,
    /// Its operator's certificate subject, as the whitelist writes it.
    pub operator_dn: String,
    /// The same DN normalised (`DistinguishedName::to_string`), for comparisons.
    pub operator_key: String,
    /// `Description`.
    pub description: String,
    /// `SupportContact`.
    pub support_contact: String,
    /// `DateMAJ`.
    pub updated: String,
}

/// What an import changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustDiff {
    /// Domains that were not listed before.
    pub added: Vec<String>,
    /// Domains no longer listed.
    pub removed: Vec<String>,
    /// Domains whose operator DN changed.
    pub changed: Vec<String>,
    /// Domains listed now.
    pub total: usize,
}
