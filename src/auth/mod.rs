//! Authentication: turns what a client proved (SASL [`Credentials`]) into the account it
//! may act as, and records every decision in the audit trail.
//!
//! Every protocol goes through [`Authenticator::authenticate`], so a policy (lockout, second
//! factor, certificates) added here applies to SMTP, IMAP and POP3 alike.
//!
//! Second factor: a mailbox with a one-time-code secret (`mssante user otp enroll`), one the
//! administrator requires a code of, or one in `[auth] require_otp_domains`, logs in with
//! the code typed after its password (`password123456`, see [`totp`]).

pub mod bearer;
mod card;
mod converse;
pub mod device;
pub mod password;
pub mod rights;
pub mod sasl;
mod throttle;
pub mod totp;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audit::{Audit, Outcome};
use crate::config::AuthPolicy;
use crate::store::{Account, OtpState, Store};
pub use converse::{bearer_refused, converse};
pub use device::Login;
pub use rights::Rights;
pub use sasl::{Credentials, Mechanism};
use throttle::{Gate, Throttle, ThrottlePolicy};

/// The peer address in an audit source (`imap 127.0.0.1:50432`).
fn source_ip(source: &str) -> Option<IpAddr> {
    let peer = source.rsplit(' ').next()?;
    peer.parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| peer.parse::<IpAddr>())
        .ok()
}

/// Why a login was refused. The client is told only "invalid credentials" or "temporary
/// failure"; the audit trail gets the precise reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Unknown user or wrong password (never said which).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The account is suspended.
    #[error("account suspended")]
    Suspended,
    /// Acting as another mailbox that is not delegated to the user (or lacks a right).
    #[error("not authorized to act as {0}")]
    NotAuthorized(String),
    /// The mailbox needs a one-time code after the password, and none came, or a wrong one,
    /// or one already used.
    #[error("one-time code missing, wrong or already used")]
    OtpRefused,
    /// A one-time code is required and the mailbox has none enrolled.
    #[error("a one-time code is required and none is enrolled (mssante user otp enroll)")]
    OtpNotEnrolled,
    /// A card or a token that cannot log in, and why.
    #[error("{0}")]
    Refused(String),
    /// An app password of a device the mailbox blocked.
    #[error("device {0:?} is blocked")]
    DeviceBlocked(String),
    /// Too many failures from this source address: refused without checking for a while.
    #[error("source address blocked for {0} s after repeated failures")]
    SourceBlocked(u64),
    /// The store or the audit trail failed: try later.
    #[error("temporary failure")]
    Unavailable,
}

/// Checks credentials against the store.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    audit: Audit,
    /// Domains (A-labels) where every password login needs a one-time code.
    otp_domains: Arc<HashSet<String>>,
    throttle: Arc<Throttle>,
    /// Production mode: TEST cards are refused.
    production: bool,
    /// Pro Santé Connect tokens, when `[auth.psc]` is configured.
    bearer: Option<Arc<bearer::BearerVerifier>>,
}

/// Lower-cases and trims an address as typed by a user.
pub fn normalize_address(address: &str) -> String {
    address.trim().to_lowercase()
}

impl Authenticator {
    /// An authenticator on this store.
    pub fn new(store: Store, audit: Audit) -> Authenticator {
        Authenticator {
            store,
            audit,
            otp_domains: Arc::default(),
            throttle: Arc::default(),
            production: false,
            bearer: None,
        }
    }

    /// The same, with the `[auth]` policy (one-time codes required in some domains, the
    /// brute-force brake), and TEST cards refused when `production`.
    pub fn with_policy(self, policy: &AuthPolicy, production: bool) -> Authenticator {
        let domains = policy
            .require_otp_domains
            .iter()
            .filter_map(|d| mssante_directory::whitelist::a_label(d.get_ref()).ok())
            .collect();
        let brake = ThrottlePolicy {
            delay: Duration::from_millis(policy.failure_delay_ms),
            max_delay: Duration::from_secs(policy.max_failure_delay_secs),
            block_after: policy.block_after_failures.max(1),
            block_for: Duration::from_secs(policy.block_secs),
            ..ThrottlePolicy::default()
        };
        let bearer = policy.psc.as_ref().and_then(|psc| {
            let jwks = match (&psc.jwks_file, &psc.jwks_url) {
                (Some(file), _) => bearer::KeySource::File(file.get_ref().clone()),
                (None, Some(url)) => {
                    let mut roots = rustls::RootCertStore::empty();
                    let anchors = crate::tls::read_certificates(&psc.ca_file)
                        .map_err(|e| tracing::error!(error = %e, "Pro Santé Connect off"))
                        .ok()?;
                    roots.add_parsable_certificates(anchors);
                    bearer::KeySource::Url {
                        url: url.get_ref().clone(),
                        roots: Arc::new(roots),
                    }
                }
                (None, None) => return None,
            };
            Some(Arc::new(bearer::BearerVerifier::new(
                bearer::BearerPolicy {
                    issuer: psc.issuer.clone(),
                    audience: psc.audience.clone(),
                    jwks,
                    min_acr: psc.min_acr,
                },
            )))
        });
        Authenticator {
            otp_domains: Arc::new(domains),
            throttle: Arc::new(Throttle::new(brake)),
            production,
            bearer,
            ..self
        }
    }

    /// Checks `credentials` (a password, with its one-time code when the mailbox needs one,
    /// or a device's app password); `source` names protocol and peer for the audit trail
    /// (`imap 127.0.0.1:50432`).
    pub async fn authenticate(
        &self,
        credentials: Credentials,
        source: &str,
    ) -> Result<Login, AuthError> {
        let (authzid, username, secret) = match credentials {
            Credentials::Certificate { authzid, leaf } => {
                return self.card_login(authzid, &leaf, source).await;
            }
            Credentials::Bearer { authzid, token } => {
                return self.bearer_login(authzid, &token, source).await;
            }
            Credentials::Password {
                authzid,
                username,
                password,
            } => (authzid, username, password),
        };
        let username = normalize_address(&username);
        // The brute-force brake: per source address and per account (see `throttle`).
        let ip = source_ip(source);
        // On a slowed account, one attempt at a time: the delay cannot be waited out in
        // parallel. Held through the password check.
        let _turn = self.throttle.turn(&username, Instant::now()).await;
        let (gate, waited) = match self.throttle.gate(ip, &username, Instant::now()) {
            Gate::Blocked(left) => (
                Err(AuthError::SourceBlocked(left.as_secs().max(1))),
                Duration::ZERO,
            ),
            Gate::Wait(delay) => {
                if !delay.is_zero() {
                    tracing::warn!(user = %username, %source, delay_ms = delay.as_millis() as u64, "login slowed after repeated failures");
                    tokio::time::sleep(delay).await;
                }
                (Ok(()), delay)
            }
        };
        let result = match gate {
            Ok(()) => self.check_password(&username, secret).await,
            Err(blocked) => Err(blocked),
        };
        match &result {
            Ok(_) => self.throttle.succeeded(ip, &username),
            Err(
                AuthError::InvalidCredentials
                | AuthError::OtpRefused
                | AuthError::OtpNotEnrolled
                | AuthError::DeviceBlocked(_)
                | AuthError::Suspended,
            ) => {
                if let Some(blocked) = self.throttle.failed(ip, &username, Instant::now()) {
                    tracing::warn!(%source, secs = blocked.as_secs(), "source address blocked after repeated login failures");
                }
            }
            Err(_) => {}
        }
        // An authorization identity other than the user's own names a mailbox delegated to
        // them (audited as `login.delegated`).
        let result = match (result, authzid.map(|a| normalize_address(&a))) {
            (Ok(login), Some(authzid)) if authzid != login.account.address => self
                .delegated(&login.account, &authzid, source)
                .await
                .map(|delegated| Login {
                    delegated: Some(delegated),
                    ..login
                }),
            (other, _) => other,
        };
        if let Ok(Login {
            device: Some((id, _)),
            ..
        }) = &result
        {
            let from = ip.map(|ip| ip.to_string()).unwrap_or_default();
            let protocol = source.split(' ').next().unwrap_or_default();
            if let Err(e) = self.store.db().device_used(*id, &from, protocol).await {
                tracing::error!(error = %e, "recording a device's use failed");
            }
        }
        let (outcome, mut detail) = match &result {
            Ok(Login {
                device: Some((_, name)),
                ..
            }) => (Outcome::Ok, format!("device {name:?}")),
            Ok(_) => (Outcome::Ok, "password".to_string()),
            Err(AuthError::Unavailable) => {
                (Outcome::Error, "password: store unavailable".to_string())
            }
            Err(e) => (Outcome::Refused, format!("password: {e}")),
        };
        if !waited.is_zero() {
            detail.push_str(&format!(
                " (answered after {} ms: earlier failures)",
                waited.as_millis()
            ));
        }
        if let Err(e) = self
            .audit
            .record("login", &username, source, outcome, &detail)
            .await
        {
            // An access that cannot be traced is not granted.
            tracing::error!(error = %e, "audit write failed; refusing the login");
            return Err(AuthError::Unavailable);
        }
        result
    }

    /// Opens the mailbox `mailbox` for `user`, who logged in as themselves: their own with
    /// every right, another only if delegated to them (and active), with the delegated
    /// rights. Both outcomes land in the audit trail.
    pub async fn delegated(
        &self,
        user: &Account,
        mailbox: &str,
        source: &str,
    ) -> Result<(Account, Rights), AuthError> {
        let mailbox = normalize_address(mailbox);
        if mailbox == user.address {
            return Ok((user.clone(), Rights::ALL));
        }
        let db = self.store.db();
        let unavailable = |e: crate::store::StoreError| {
            tracing::error!(error = %e, "delegation lookup failed");
            AuthError::Unavailable
        };
        let rights = db
            .delegated_rights(user.id, &mailbox)
            .await
            .map_err(unavailable)?;
        let target = db.find_account(&mailbox).await.map_err(unavailable)?;
        let result = match (rights, target) {
            (Some(rights), Some(target)) if !target.suspended => Rights::parse(&rights)
                .map(|r| (target, r))
                .map_err(|_| AuthError::NotAuthorized(mailbox.clone())),
            (Some(_), Some(_)) => Err(AuthError::Suspended),
            _ => Err(AuthError::NotAuthorized(mailbox.clone())),
        };
        let (outcome, detail) = match &result {
            Ok((_, rights)) => (Outcome::Ok, format!("{mailbox} with rights {rights}")),
            Err(e) => (Outcome::Refused, format!("{mailbox}: {e}")),
        };
        self.trace("login.delegated", &user.address, source, outcome, &detail)
            .await?;
        result
    }

    /// Records a decision in the audit trail; one that cannot be traced is not granted.
    async fn trace(
        &self,
        event: &str,
        actor: &str,
        source: &str,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), AuthError> {
        self.audit
            .record(event, actor, source, outcome, detail)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "audit write failed; refusing");
                AuthError::Unavailable
            })
    }

    /// Whether Pro Santé Connect tokens are accepted (OAUTHBEARER and XOAUTH2 offered).
    pub fn offers_bearer(&self) -> bool {
        self.bearer.is_some()
    }

    /// Whether the device a session logged in with may still be used (checked before each
    /// command, so a block takes effect on open sessions too). Store trouble: no.
    pub async fn device_usable(&self, device_id: i64) -> bool {
        self.store
            .db()
            .device_usable(device_id)
            .await
            .unwrap_or(false)
    }

    async fn check_password(&self, username: &str, typed: String) -> Result<Login, AuthError> {
        let unavailable = |e: crate::store::StoreError| {
            tracing::error!(error = %e, "account lookup failed");
            AuthError::Unavailable
        };
        let account = self
            .store
            .db()
            .find_account(username)
            .await
            .map_err(unavailable)?;
        // A device's app password stands for the password and the one-time code.
        if let Some(a) = &account
            && let Some(found) = self
                .store
                .db()
                .device_by_secret(a.id, &device::hash(&typed))
                .await
                .map_err(unavailable)?
        {
            if found.blocked {
                return Err(AuthError::DeviceBlocked(found.name));
            }
            if a.suspended {
                return Err(AuthError::Suspended);
            }
            return Ok(Login {
                device: Some((found.id, found.name)),
                ..Login::own(a.clone())
            });
        }
        let otp = match &account {
            Some(a) => self.store.otp(a).await.map_err(unavailable)?,
            None => OtpState::default(),
        };
        // With a second factor, the code is typed after the password.
        let needs_code = account.as_ref().is_some_and(|a| {
            otp.sealed_secret.is_some() || otp.required || self.domain_requires_otp(a)
        });
        let (secret, code) = match needs_code.then(|| totp::split_code(&typed)).flatten() {
            Some((password, code)) => (password.to_string(), Some(code.to_string())),
            None => (typed, None),
        };
        let stored = account
            .as_ref()
            .and_then(|a| a.password_hash.clone())
            .unwrap_or_else(|| password::decoy().to_string());
        // argon2 is slow and large on purpose: off the async workers, a few at a time.
        let matches = password::verify_bounded(stored, secret)
            .await
            .ok_or(AuthError::Unavailable)?;
        let account = match account {
            Some(a) if matches && a.password_hash.is_some() => a,
            _ => return Err(AuthError::InvalidCredentials),
        };
        if account.suspended {
            return Err(AuthError::Suspended);
        }
        if !needs_code {
            return Ok(Login::own(account));
        }
        let sealed = otp.sealed_secret.ok_or(AuthError::OtpNotEnrolled)?;
        let code = code.ok_or(AuthError::OtpRefused)?;
        let secret = self
            .store
            .open_otp_secret(&account, &sealed)
            .map_err(unavailable)?;
        let now = chrono::Utc::now().timestamp();
        match totp::accepted_step(&secret, &code, now, otp.last_step) {
            // Marked used atomically: of two logins with one code, one wins.
            Some(step)
                if self
                    .store
                    .use_otp_step(&account, step)
                    .await
                    .map_err(unavailable)? =>
            {
                Ok(Login::own(account))
            }
            _ => Err(AuthError::OtpRefused),
        }
    }

    fn domain_requires_otp(&self, account: &Account) -> bool {
        account
            .address
            .rsplit_once('@')
            .is_some_and(|(_, domain)| self.otp_domains.contains(domain))
    }
}
