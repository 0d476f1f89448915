//! `[directory]`: where the national directory is and how the operator publishes to it.
//! Left out, nothing is published (the operator can catch up later with
//! `mssante directory sync`).

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{Config, ConfigError};

/// `[directory]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySettings {
    /// `ldaps://host:636`, or `ldap://host:389` (with `starttls`, or on loopback only).
    pub url: Spanned<String>,
    /// Where the mailbox entries live (`mail=<address>,<base_dn>`).
    pub base_dn: String,
    /// The operator's bind DN.
    pub bind_dn: String,
    /// A file holding the bind password (mode 0600; surrounding whitespace ignored).
    pub bind_password_file: Spanned<PathBuf>,
    /// StartTLS on an `ldap://` URL.
    #[serde(default)]
    pub starttls: bool,
    /// The CAs the directory's certificate must chain to (ldaps:// or StartTLS). Default:
    /// the system's bundle.
    #[serde(default = "default_ca_file")]
    pub ca_file: PathBuf,
    /// Deadline of each connection and operation, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Seconds between two attempts when the directory is down.
    #[serde(default = "default_retry")]
    pub retry_secs: u64,
    /// Refuse, at submission, recipients of other operators that the directory does not
    /// know (550 5.1.1). A directory that does not answer refuses nobody.
    #[serde(default)]
    pub check_remote_recipients: bool,
}

fn default_ca_file() -> PathBuf {
    PathBuf::from("/etc/ssl/certs/ca-certificates.crt")
}
fn default_timeout() -> u64 {
    5
}
fn default_retry() -> u64 {
    30
}

impl DirectorySettings {
    /// Whether the URL is plain LDAP (no TLS at all).
    pub fn plain(&self) -> bool {
        self.url.get_ref().starts_with("ldap://") && !self.starttls
    }
}

impl Config {
    /// `[directory]`: a known scheme, no clear LDAP beyond loopback, a readable password.
    pub(super) fn validate_directory(&self) -> Result<(), ConfigError> {
        let Some(d) = &self.directory else {
            return Ok(());
        };
        let url = d.url.get_ref();
        let Some(rest) = url
            .strip_prefix("ldap://")
            .or_else(|| url.strip_prefix("ldaps://"))
        else {
            return Err(self.error_at(
                "directory.url",
                &d.url,
                format!("{url:?} is neither ldap:// nor ldaps://"),
            ));
        };
        let host = super::split_host(rest.trim_end_matches('/'))
            .map_err(|e| self.error_at("directory.url", &d.url, e))?
            .0;
        let loopback = matches!(host.as_str(), "127.0.0.1" | "::1" | "localhost");
        if d.plain() && !loopback {
            return Err(self.error_at(
                "directory.url",
                &d.url,
                "plain LDAP would carry the bind password in clear: use ldaps:// or \
                 starttls = true (plain ldap:// is for loopback only)"
                    .into(),
            ));
        }
        std::fs::read(d.bind_password_file.get_ref())
            .map(drop)
            .map_err(|e| {
                self.error_at(
                    "directory.bind_password_file",
                    &d.bind_password_file,
                    format!(
                        "cannot read {}: {e}",
                        d.bind_password_file.get_ref().display()
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory(url: &str, password_file: &str) -> String {
        format!(
            "mode = \"dev\"\n[directory]\nurl = \"{url}\"\nbase_dn = \"dc=x\"\nbind_dn = \"cn=a,dc=x\"\nbind_password_file = \"{password_file}\"\n"
        )
    }

    #[test]
    fn clear_ldap_beyond_loopback_and_an_unreadable_password_are_named() {
        let err = Config::parse(&directory("ldap://annuaire.example:389", "/dev/null"))
            .expect("parses")
            .validate()
            .expect_err("clear LDAP to another host");
        assert_eq!(err.key.as_deref(), Some("directory.url"), "{err}");
        assert_eq!(err.line, Some(3), "{err}");
        let err = Config::parse(&directory("ftp://annuaire.example", "/dev/null"))
            .expect("parses")
            .validate()
            .expect_err("not LDAP");
        assert!(err.message.contains("neither ldap"), "{err}");
        let err = Config::parse(&directory("ldaps://annuaire.example", "/nonexistent/pw"))
            .expect("parses")
            .validate()
            .expect_err("no password file");
        assert_eq!(err.key.as_deref(), Some("directory.bind_password_file"));
        assert!(
            Config::parse(&directory("ldap://127.0.0.1:10389", "/dev/null"))
                .expect("parses")
                .validate()
                .is_ok()
        );
    }
}
