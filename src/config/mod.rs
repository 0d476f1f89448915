//! Configuration: one TOML file, typed, with documented defaults.
//!
//! Without a file mssante runs in *dev mode*, the embedded default: loopback only, ports at
//! 10000 + the standard port, state in `./mssante-data`, a generated TEST PKI. A file that does
//! not say `mode = "dev"` is a production configuration, which refuses TEST certificates and
//! exposed listeners without TLS. Every key is documented in `config/mssante.example.toml`.
//!
//! Errors name the file, the line and the key, so `serve` can refuse a bad file before anything
//! starts.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::tls::{TlsError, read_certificates, read_crl, read_private_key};

mod directory;
mod outbound;
mod policy;

pub use directory::DirectorySettings;
pub use outbound::{DnsConfig, QueuePolicy, RelayDomain, Route, split_host};
pub use policy::{Acr, AuthPolicy, Limits, OutboundSmime, PscConfig, SmimePolicy, TrustPolicy};

/// How the server treats TEST material and exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The production default: real IGC-Santé material only.
    #[default]
    Production,
    /// Loopback only, TEST PKI generated in the data directory.
    Dev,
}

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// SMTP from other operators of the trust space (port 25).
    Mx,
    /// SMTP submission from the professionals' clients (587, 465).
    Submission,
    /// IMAP4 (143, 993).
    Imap,
    /// POP3 (110, 995).
    Pop3,
    /// HTTPS: autoconfiguration and health (443).
    Https,
}

impl Protocol {
    /// The name used in logs and the audit trail.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Mx => "mx",
            Protocol::Submission => "submission",
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Https => "https",
        }
    }
}

/// How TLS starts on a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (465, 993, 995, 443).
    Implicit,
    /// Cleartext greeting, then STARTTLS / STLS; commands that carry data require TLS.
    Starttls,
    /// No TLS at all: only allowed on loopback (behind a local proxy).
    None,
}

/// One listening socket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// What the socket speaks.
    pub protocol: Protocol,
    /// Address and port to bind.
    pub bind: Spanned<SocketAddr>,
    /// How TLS starts.
    pub tls: TlsMode,
    /// Connections served at once; further ones get a "busy" reply and are closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds a client may stay silent before the session is closed.
    #[serde(default)]
    pub idle_timeout_secs: Option<u64>,
}

impl ListenerConfig {
    /// The idle timeout, or the protocol's customary one (RFC 5321 4.5.3.2, RFC 3501 5.4,
    /// RFC 1939 3).
    pub fn idle_timeout(&self) -> std::time::Duration {
        let default = match self.protocol {
            Protocol::Mx | Protocol::Submission => 300,
            Protocol::Imap => 1800,
            Protocol::Pop3 => 600,
            Protocol::Https => 60,
        };
        std::time::Duration::from_secs(self.idle_timeout_secs.unwrap_or(default))
    }
}

fn default_max_connections() -> usize {
    500
}

/// TLS material. In dev mode every key may be left out: the TEST PKI provides it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file: the server certificate followed by its chain.
    pub certificate: Option<Spanned<PathBuf>>,
    /// PEM file: the server private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: Option<Spanned<PathBuf>>,
    /// PEM files: the CAs that client certificates (CPS cards, operators) must chain to.
    #[serde(default)]
    pub client_trust_anchors: Vec<Spanned<PathBuf>>,
    /// DER or PEM files: the CRLs of those CAs.
    #[serde(default)]
    pub crls: Vec<Spanned<PathBuf>>,
    /// `http://` URLs the CRLs are fetched from too, at start and at each refresh (the
    /// IGC-Santé publication points). Default: none.
    #[serde(default)]
    pub crl_urls: Vec<Spanned<String>>,
    /// Seconds between two readings of the CRL files (and URLs) while the server runs, for
    /// client certificates, the next hop of outbound mail and S/MIME signers; one that
    /// cannot be read leaves the last valid CRLs in force. Default: 3600.
    #[serde(default = "default_crl_refresh_secs")]
    pub crl_refresh_secs: u64,
}

fn default_crl_refresh_secs() -> u64 {
    3600
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            certificate: None,
            private_key: None,
            client_trust_anchors: Vec::new(),
            crls: Vec::new(),
            crl_urls: Vec::new(),
            crl_refresh_secs: default_crl_refresh_secs(),
        }
    }
}

/// The whole configuration, as read from the file (or the dev defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `dev` or `production`; a file that does not say is production.
    #[serde(default)]
    pub mode: Mode,
    /// The operator's host name: greetings, Received headers, server certificate.
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// Where the store and the key files live.
    #[serde(default)]
    pub data_dir: Option<Spanned<PathBuf>>,
    /// The key-encryption key file (32 bytes, mode 0600). Required in production.
    #[serde(default)]
    pub kek_file: Option<Spanned<PathBuf>>,
    /// Seconds `serve` waits for open sessions to finish after SIGTERM/SIGINT.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
    /// TLS material.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Size and count limits.
    #[serde(default)]
    pub limits: Limits,
    /// Trust-space policy of the MX.
    #[serde(default)]
    pub trust: TrustPolicy,
    /// S/MIME on the professional's behalf.
    #[serde(default)]
    pub smime: SmimePolicy,
    /// How people log in.
    #[serde(default)]
    pub auth: AuthPolicy,
    /// How the outbound queue retries and gives up.
    #[serde(default)]
    pub queue: QueuePolicy,
    /// Where MX lookups go.
    #[serde(default)]
    pub dns: DnsConfig,
    /// The national directory the mailboxes are published to (none: not published).
    #[serde(default)]
    pub directory: Option<DirectorySettings>,
    /// Fixed next hops for trust-space domains (instead of DNS MX).
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    /// Hospital domains relayed by this operator.
    #[serde(default, rename = "relay_domain")]
    pub relay_domains: Vec<RelayDomain>,
    /// The listening sockets; left out, the dev set (dev mode) or none.
    #[serde(default, rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// The file this came from (None: the embedded dev default).
    #[serde(skip)]
    pub source: Option<PathBuf>,
    #[serde(skip)]
    text: String,
}

fn default_hostname() -> String {
    "localhost".to_string()
}
fn default_shutdown_grace() -> u64 {
    30
}

/// A configuration that cannot be used, with where it went wrong.
#[derive(Debug)]
pub struct ConfigError {
    /// The file (None for the embedded default).
    pub file: Option<PathBuf>,
    /// 1-based line of the offending key, when known.
    pub line: Option<usize>,
    /// Dotted path of the key, when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self
            .file
            .as_deref()
            .map_or_else(|| "embedded default".into(), |p| p.display().to_string());
        write!(f, "config error in {file}")?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The embedded dev default: no file, loopback listeners on 10000 + standard port.
    pub fn dev_default() -> Config {
        let mut config: Config = match toml::from_str("mode = \"dev\"") {
            Ok(c) => c,
            Err(e) => unreachable!("the embedded default parses: {e}"),
        };
        config.listeners = dev_listeners();
        config
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: Some(path.to_path_buf()),
            line: None,
            key: None,
            message: format!("cannot read the file: {e}"),
        })?;
        let mut config = Config::parse(&text).map_err(|mut e| {
            e.file = Some(path.to_path_buf());
            e
        })?;
        config.source = Some(path.to_path_buf());
        // Relative paths in the file are relative to the file's folder.
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text (no file checks). Errors carry the line and the key.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError {
            file: None,
            line: e.span().map(|s| line_of(text, s.start)),
            key: None,
            message: e.message().to_string(),
        })?;
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            ConfigError {
                file: None,
                line: inner.span().map(|s| line_of(text, s.start)),
                key: (path != ".").then_some(path),
                message: inner.message().to_string(),
            }
        })?;
        if config.listeners.is_empty() && config.mode == Mode::Dev {
            config.listeners = dev_listeners();
        }
        config.text = text.to_string();
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut Spanned<PathBuf>| {
            if p.get_ref().is_relative() {
                *p.get_mut() = base.join(p.get_ref());
            }
        };
        self.data_dir.iter_mut().for_each(fix);
        self.kek_file.iter_mut().for_each(fix);
        self.tls.certificate.iter_mut().for_each(fix);
        self.tls.private_key.iter_mut().for_each(fix);
        self.tls.client_trust_anchors.iter_mut().for_each(fix);
        self.tls.crls.iter_mut().for_each(fix);
        if let Some(d) = &mut self.directory {
            fix(&mut d.bind_password_file);
        }
    }

    /// An error about one key of this configuration, with its line.
    pub fn error_at<T>(&self, key: &str, value: &Spanned<T>, message: String) -> ConfigError {
        ConfigError {
            file: self.source.clone(),
            line: (!self.text.is_empty()).then(|| line_of(&self.text, value.span().start)),
            key: Some(key.to_string()),
            message,
        }
    }

    /// Checks what parsing cannot: files exist and are readable, binds fit the mode.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let readable = |key: &str, p: &Spanned<PathBuf>| -> Result<(), ConfigError> {
            std::fs::read(p.get_ref()).map(drop).map_err(|e| {
                self.error_at(
                    key,
                    p,
                    format!("cannot read {}: {e}", p.get_ref().display()),
                )
            })
        };
        // Read and parse the TLS files now, so a wrong file stops `serve` with its key and line.
        let parsed = |key: &str, p: &Spanned<PathBuf>, r: Result<(), TlsError>| {
            readable(key, p)?;
            r.map_err(|e| self.error_at(key, p, e.to_string()))
        };
        if let Some(p) = &self.tls.certificate {
            parsed(
                "tls.certificate",
                p,
                read_certificates(p.get_ref()).map(drop),
            )?;
        }
        if let Some(p) = &self.tls.private_key {
            parsed(
                "tls.private_key",
                p,
                read_private_key(p.get_ref()).map(drop),
            )?;
        }
        for p in &self.tls.client_trust_anchors {
            parsed(
                "tls.client_trust_anchors",
                p,
                read_certificates(p.get_ref()).map(drop),
            )?;
        }
        for p in &self.tls.crls {
            parsed("tls.crls", p, read_crl(p.get_ref()).map(drop))?;
        }
        // A missing KEK file is created with a new data directory; one that exists must be
        // readable, and a missing one needs an existing folder to be created in.
        if let Some(p) = &self.kek_file {
            if p.get_ref().exists() {
                readable("kek_file", p)?;
            } else if let Some(parent) = p.get_ref().parent()
                && !parent.as_os_str().is_empty()
                && !parent.is_dir()
            {
                return Err(self.error_at(
                    "kek_file",
                    p,
                    format!("folder {} does not exist", parent.display()),
                ));
            }
        }
        if self.tls.certificate.is_some() != self.tls.private_key.is_some() {
            let (key, span) = match (&self.tls.certificate, &self.tls.private_key) {
                (Some(c), None) => ("tls.private_key", c.span()),
                (_, Some(k)) => ("tls.certificate", k.span()),
                (None, None) => unreachable!("one of them is set"),
            };
            return Err(ConfigError {
                file: self.source.clone(),
                line: Some(line_of(&self.text, span.start)),
                key: Some(key.to_string()),
                message: "tls.certificate and tls.private_key go together".into(),
            });
        }
        let has_tls_material = self.tls.certificate.is_some();
        for (i, l) in self.listeners.iter().enumerate() {
            let key = format!("listener[{i}].bind");
            let loopback = l.bind.get_ref().ip().is_loopback();
            match self.mode {
                Mode::Dev if !loopback => {
                    return Err(self.error_at(
                        &key,
                        &l.bind,
                        "dev mode binds loopback addresses only (127.0.0.1, ::1)".into(),
                    ));
                }
                Mode::Production if l.tls == TlsMode::None && !loopback => {
                    return Err(self.error_at(
                        &key,
                        &l.bind,
                        "a listener without TLS may only bind a loopback address".into(),
                    ));
                }
                Mode::Production if l.tls != TlsMode::None && !has_tls_material => {
                    return Err(self.error_at(
                        &key,
                        &l.bind,
                        "this listener needs TLS: set tls.certificate and tls.private_key".into(),
                    ));
                }
                _ => {}
            }
        }
        if self.listeners.is_empty() {
            return Err(ConfigError {
                file: self.source.clone(),
                line: None,
                key: Some("listener".into()),
                message: "no [[listener]] table: the server would listen on nothing".into(),
            });
        }
        self.validate_outbound()?;
        self.validate_directory()?;
        if self.mode == Mode::Production && self.kek_file.is_none() {
            return Err(ConfigError {
                file: self.source.clone(),
                line: None,
                key: Some("kek_file".into()),
                message:
                    "production needs a key-encryption key file kept outside the data directory"
                        .into(),
            });
        }
        Ok(())
    }
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dev listeners: loopback, 10000 + the standard port.
fn dev_listeners() -> Vec<ListenerConfig> {
    let spec = [
        (Protocol::Mx, 10025, TlsMode::Starttls),
        (Protocol::Submission, 10587, TlsMode::Starttls),
        (Protocol::Submission, 10465, TlsMode::Implicit),
        (Protocol::Imap, 10143, TlsMode::Starttls),
        (Protocol::Imap, 10993, TlsMode::Implicit),
        (Protocol::Pop3, 10110, TlsMode::Starttls),
        (Protocol::Pop3, 10995, TlsMode::Implicit),
        (Protocol::Https, 10443, TlsMode::Implicit),
    ];
    spec.into_iter()
        .map(|(protocol, port, tls)| ListenerConfig {
            protocol,
            bind: Spanned::new(0..0, SocketAddr::from(([127, 0, 0, 1], port))),
            tls,
            max_connections: default_max_connections(),
            idle_timeout_secs: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = Config::parse("mode = \"dev\"\n\n[limits]\nmax_mesage_size = 3\n").unwrap_err();
        assert_eq!(err.line, Some(4), "{err}");
        assert!(err.to_string().contains("max_mesage_size"), "{err}");
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let err = Config::parse("mode = \"dev\"\nshutdown_grace_secs = \"soon\"\n").unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
        assert_eq!(err.key.as_deref(), Some("shutdown_grace_secs"), "{err}");
    }

    #[test]
    fn production_refuses_exposed_cleartext() {
        let text = "kek_file = \"/dev/null\"\n[[listener]]\nprotocol = \"imap\"\nbind = \"0.0.0.0:143\"\ntls = \"none\"\n";
        let err = Config::parse(text).unwrap().validate().unwrap_err();
        assert_eq!(err.line, Some(4), "{err}");
        assert!(err.message.contains("loopback"), "{err}");
    }

    #[test]
    fn dev_refuses_public_bind() {
        let text = "mode = \"dev\"\n[[listener]]\nprotocol = \"pop3\"\nbind = \"0.0.0.0:110\"\ntls = \"starttls\"\n";
        let err = Config::parse(text).unwrap().validate().unwrap_err();
        assert!(err.message.contains("loopback"), "{err}");
    }

    #[test]
    fn missing_certificate_file_is_named() {
        let text = "mode = \"dev\"\n[tls]\ncertificate = \"/nonexistent/cert.pem\"\nprivate_key = \"/nonexistent/key.pem\"\n";
        let err = Config::parse(text).unwrap().validate().unwrap_err();
        assert_eq!(err.key.as_deref(), Some("tls.certificate"));
        assert_eq!(err.line, Some(3));
    }

    #[test]
    fn the_example_file_parses_with_the_documented_defaults() {
        let text = include_str!("../../config/mssante.example.toml");
        let config = Config::parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.mode, Mode::Production);
        assert_eq!(
            config.limits.max_message_size,
            Limits::default().max_message_size
        );
        assert_eq!(
            config.limits.max_recipients,
            Limits::default().max_recipients
        );
        assert_eq!(config.shutdown_grace_secs, default_shutdown_grace());
        assert_eq!(config.tls.client_trust_anchors.len(), 3);
        assert_eq!(
            config.tls.crl_refresh_secs,
            TlsConfig::default().crl_refresh_secs
        );
        assert_eq!(config.listeners.len(), 7);
        assert!(config.trust.require_operator_dn);
        assert!(config.listeners.iter().all(|l| l.max_connections == 500));
        assert_eq!(config.limits.mailbox_quota, Limits::default().mailbox_quota);
        let q = QueuePolicy::default();
        assert_eq!(
            (config.queue.retry_first_secs, config.queue.retry_max_secs),
            (q.retry_first_secs, q.retry_max_secs)
        );
        assert_eq!(config.queue.lifetime_secs, q.lifetime_secs);
        assert_eq!(config.queue.delay_notice_secs, q.delay_notice_secs);
        assert_eq!(config.queue.max_parallel, q.max_parallel);
        assert_eq!(config.smime.outbound, OutboundSmime::default());
        assert!(!config.smime.legacy && config.smime.legacy_domains.is_empty());
        assert!(config.auth.require_otp_domains.is_empty());
        let auth = AuthPolicy::default();
        assert_eq!(
            (
                config.auth.failure_delay_ms,
                config.auth.max_failure_delay_secs
            ),
            (auth.failure_delay_ms, auth.max_failure_delay_secs)
        );
        assert_eq!(
            (config.auth.block_after_failures, config.auth.block_secs),
            (auth.block_after_failures, auth.block_secs)
        );
        let dns = DnsConfig::default();
        assert_eq!(
            (config.dns.nameservers.len(), config.dns.mx_port),
            (dns.nameservers.len(), dns.mx_port)
        );
        assert_eq!((config.routes.len(), config.relay_domains.len()), (1, 1));
        assert!(config.validate_outbound().is_ok());
    }

    #[test]
    fn dev_default_has_the_documented_ports() {
        let ports: Vec<u16> = Config::dev_default()
            .listeners
            .iter()
            .map(|l| l.bind.get_ref().port())
            .collect();
        assert_eq!(
            ports,
            [10025, 10587, 10465, 10143, 10993, 10110, 10995, 10443]
        );
    }
}
