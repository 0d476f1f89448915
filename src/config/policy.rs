//! The policies of the configuration: size limits, the trust-space checks of the MX, S/MIME
//! on the professional's behalf, and how people log in (`[limits]`, `[trust]`, `[smime]`,
//! `[auth]`, `[auth.psc]`).

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

/// Sizes and counts that protect the server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest message accepted, in bytes (advertised by SMTP SIZE).
    #[serde(default = "default_max_message_size")]
    pub max_message_size: usize,
    /// Recipients per SMTP transaction.
    #[serde(default = "default_max_recipients")]
    pub max_recipients: usize,
    /// Octets a mailbox may hold, unless `mssante user quota` set its own (0: no limit).
    #[serde(default = "default_mailbox_quota")]
    pub mailbox_quota: u64,
    /// Octets of decrypted message headers and structures IMAP keeps in memory for all
    /// sessions (0: none; they are read from the store each time).
    #[serde(default = "default_imap_cache_size")]
    pub imap_cache_size: usize,
    /// Seconds a command line (or HTTP request head) may take to arrive, from its first
    /// octet.
    #[serde(default = "default_command_timeout_secs")]
    pub command_timeout_secs: u64,
    /// Octets per second bulk data (DATA, BDAT, literals) must at least arrive at, beyond
    /// `command_timeout_secs`.
    #[serde(default = "default_min_data_rate")]
    pub min_data_rate: u64,
    /// Seconds a connection may stay without logging in.
    #[serde(default = "default_login_timeout_secs")]
    pub login_timeout_secs: u64,
    /// Connections one source address (an IPv6 /64) may hold before they log in, across
    /// every listener.
    #[serde(default = "default_max_unauthenticated_per_address")]
    pub max_unauthenticated_per_address: usize,
    /// Literal octets an IMAP command may carry before login.
    #[serde(default = "default_max_literal_before_login")]
    pub max_literal_before_login: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: default_max_message_size(),
            max_recipients: default_max_recipients(),
            mailbox_quota: default_mailbox_quota(),
            imap_cache_size: default_imap_cache_size(),
            command_timeout_secs: default_command_timeout_secs(),
            min_data_rate: default_min_data_rate(),
            login_timeout_secs: default_login_timeout_secs(),
            max_unauthenticated_per_address: default_max_unauthenticated_per_address(),
            max_literal_before_login: default_max_literal_before_login(),
        }
    }
}

fn default_max_message_size() -> usize {
    25 * 1024 * 1024
}
fn default_max_recipients() -> usize {
    100
}
fn default_mailbox_quota() -> u64 {
    10 * 1024 * 1024 * 1024
}
fn default_imap_cache_size() -> usize {
    64 * 1024 * 1024
}
fn default_command_timeout_secs() -> u64 {
    60
}
fn default_min_data_rate() -> u64 {
    1024
}
fn default_login_timeout_secs() -> u64 {
    60
}
fn default_max_unauthenticated_per_address() -> usize {
    20
}
fn default_max_literal_before_login() -> usize {
    8 * 1024
}

/// How the MX judges other operators.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustPolicy {
    /// The peer's certificate subject must equal the whitelist's `DNCertificatOperateur` of
    /// the sender's domain.
    #[serde(default = "default_true")]
    pub require_operator_dn: bool,
}

impl Default for TrustPolicy {
    fn default() -> Self {
        TrustPolicy {
            require_operator_dn: true,
        }
    }
}

fn default_true() -> bool {
    true
}

/// Whether mail to other operators is signed and encrypted for the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboundSmime {
    /// Sent as the client wrote it.
    Off,
    /// Signed with the sender's key; encrypted when every remote recipient has a
    /// certificate.
    #[default]
    Prefer,
    /// Signed and encrypted; a recipient without a certificate is not sent to, and the
    /// sender gets a failure report naming them.
    Require,
}

/// S/MIME on the professional's behalf.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmimePolicy {
    /// `off`, `prefer` (the default) or `require`.
    #[serde(default)]
    pub outbound: OutboundSmime,
    /// Mail for every peer in the forms old clients read (gpgsm 2.2, older Outlook):
    /// AES-256-CBC with RSA PKCS#1 v1.5, signatures in PKCS#1 v1.5. Off by default:
    /// AES-256-GCM with RSA-OAEP, RSA-PSS signatures.
    #[serde(default)]
    pub legacy: bool,
    /// The same for these recipient domains only.
    #[serde(default)]
    pub legacy_domains: Vec<Spanned<String>>,
}

/// How people log in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthPolicy {
    /// Domains where every password login needs a one-time code after the password
    /// (`mssante user otp enroll`). Default: none.
    #[serde(default)]
    pub require_otp_domains: Vec<Spanned<String>>,
    /// After 3 failed logins (per account, per source address), the next answer waits this
    /// many milliseconds, doubling with each failure. Default: 500.
    #[serde(default = "default_failure_delay_ms")]
    pub failure_delay_ms: u64,
    /// The longest wait, in seconds. Default: 15.
    #[serde(default = "default_max_failure_delay_secs")]
    pub max_failure_delay_secs: u64,
    /// Failures from one source address that block it for `block_secs` (an account is
    /// never blocked, only slowed). Default: 20.
    #[serde(default = "default_block_after_failures")]
    pub block_after_failures: u32,
    /// Default: 900.
    #[serde(default = "default_block_secs")]
    pub block_secs: u64,
    /// Pro Santé Connect (SASL OAUTHBEARER and XOAUTH2); absent: not offered.
    #[serde(default)]
    pub psc: Option<PscConfig>,
}

fn default_psc_ca_file() -> PathBuf {
    PathBuf::from("/etc/ssl/certs/ca-certificates.crt")
}

/// `[auth.psc]`: how Pro Santé Connect access tokens are checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PscConfig {
    /// The expected `iss` (the PSC realm URL).
    pub issuer: String,
    /// This operator's client id: in the token's `aud`, or its `azp`.
    pub audience: String,
    /// The issuer's signing keys (JWKS, JSON), re-read when the file changes; or
    #[serde(default)]
    pub jwks_file: Option<Spanned<PathBuf>>,
    /// the realm's certs endpoint (`https://`), fetched every 10 minutes.
    #[serde(default)]
    pub jwks_url: Option<Spanned<String>>,
    /// The CAs the `jwks_url` server must chain to. Default: the system's bundle.
    #[serde(default = "default_psc_ca_file")]
    pub ca_file: PathBuf,
    /// The lowest `acr` accepted (`eidas1`, `eidas2`, `eidas3`); none by default.
    #[serde(default)]
    pub min_acr: Option<Acr>,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            require_otp_domains: Vec::new(),
            failure_delay_ms: default_failure_delay_ms(),
            max_failure_delay_secs: default_max_failure_delay_secs(),
            block_after_failures: default_block_after_failures(),
            block_secs: default_block_secs(),
            psc: None,
        }
    }
}

fn default_failure_delay_ms() -> u64 {
    500
}
fn default_max_failure_delay_secs() -> u64 {
    15
}
fn default_block_after_failures() -> u32 {
    20
}
fn default_block_secs() -> u64 {
    900
}

/// An eIDAS level as Pro Santé Connect states it in a token's `acr`, read exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Acr {
    /// `eidas1`.
    Eidas1,
    /// `eidas2`.
    Eidas2,
    /// `eidas3`.
    Eidas3,
}

impl Acr {
    /// The level an `acr` claim names; None for anything but the three exact values.
    pub fn parse(acr: &str) -> Option<Acr> {
        match acr {
            "eidas1" => Some(Acr::Eidas1),
            "eidas2" => Some(Acr::Eidas2),
            "eidas3" => Some(Acr::Eidas3),
            _ => None,
        }
    }
}
