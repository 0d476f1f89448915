//! Authentication: turns what a client proved (SASL [`Credentials`]) into the account it
//! may act as, and records every decision in the audit trail.
//!
//! Every protocol goes through [`Authenticator::authenticate`], so a policy (lockout, second
//! factor, certificates) added here applies to SMTP, IMAP and POP3 alike.

mod converse;
pub mod password;
pub mod rights;
pub mod sasl;

use crate::audit::{Audit, Outcome};
use crate::store::{Account, Store};
pub use converse::converse;
pub use rights::Rights;
pub use sasl::{Credentials, Mechanism};

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
    /// The store or the audit trail failed: try later.
    #[error("temporary failure")]
    Unavailable,
}

/// Checks credentials against the store.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    audit: Audit,
}

/// Lower-cases and trims an address as typed by a user.
pub fn normalize_address(address: &str) -> String {
    address.trim().to_lowercase()
}

impl Authenticator {
    /// An authenticator on this store.
    pub fn new(store: Store, audit: Audit) -> Authenticator {
        Authenticator { store, audit }
    }

    /// Checks `credentials`; `source` names protocol and peer for the audit trail
    /// (`imap 127.0.0.1:50432`).
    pub async fn authenticate(
        &self,
        credentials: Credentials,
        source: &str,
    ) -> Result<Account, AuthError> {
        let Credentials::Password {
            authzid,
            username,
            password: secret,
        } = credentials;
        let username = normalize_address(&username);
        let result = self.check_password(&username, secret).await;
        let result = match (result, authzid.map(|a| normalize_address(&a))) {
            (Ok(account), Some(authzid)) if authzid != account.address => {
                Err(AuthError::NotAuthorized(authzid))
            }
            (other, _) => other,
        };
        let (outcome, detail) = match &result {
            Ok(_) => (Outcome::Ok, "password".to_string()),
            Err(AuthError::Unavailable) => {
                (Outcome::Error, "password: store unavailable".to_string())
            }
            Err(e) => (Outcome::Refused, format!("password: {e}")),
        };
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
        if let Err(e) = self
            .audit
            .record("login.delegated", &user.address, source, outcome, &detail)
            .await
        {
            tracing::error!(error = %e, "audit write failed; refusing the delegated access");
            return Err(AuthError::Unavailable);
        }
        result
    }

    async fn check_password(&self, username: &str, secret: String) -> Result<Account, AuthError> {
        let account = self.store.db().find_account(username).await.map_err(|e| {
            tracing::error!(error = %e, "account lookup failed");
            AuthError::Unavailable
        })?;
        let stored = account
            .as_ref()
            .and_then(|a| a.password_hash.clone())
            .unwrap_or_else(|| password::decoy().to_string());
        // argon2 is slow on purpose: keep it off the async workers.
        let matches = tokio::task::spawn_blocking(move || password::verify(&stored, &secret))
            .await
            .map_err(|_| AuthError::Unavailable)?;
        match account {
            Some(a) if matches && a.password_hash.is_some() => {
                if a.suspended {
                    Err(AuthError::Suspended)
                } else {
                    Ok(a)
                }
            }
            _ => Err(AuthError::InvalidCredentials),
        }
    }
}
