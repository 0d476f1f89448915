//! Device credentials: a long random app password per device, for stock clients
//! (Thunderbird, a phone) once the professional has logged in strongly. It stands for the
//! password and the one-time code together; only its SHA-256 is stored (120 random bits
//! need no slow hash). A login says which device it used ([`Login`]), so an open session
//! notices at its next command that the device was blocked.

use std::time::Instant;

use aws_lc_rs::digest::{SHA256, digest};

use super::throttle::Gate;
use super::{AuthError, Authenticator, source_ip};
use crate::audit::Outcome;
use crate::store::{Account, StoreError};

/// How long a pairing code is valid.
pub const PAIRING_SECONDS: i64 = 120;

/// Who logged in, with which device credential, acting for which mailbox.
#[derive(Debug, Clone)]
pub struct Login {
    /// The account.
    pub account: Account,
    /// The device's id and name, when an app password was used.
    pub device: Option<(i64, String)>,
    /// The mailbox the authorization identity named, when it is another's delegated to
    /// `account` (a replacement doctor's card opening the INBOX they stand in for), with the
    /// delegated rights.
    pub delegated: Option<(Account, super::Rights)>,
}

impl Login {
    /// A login to `account` itself, without a device credential.
    pub fn own(account: Account) -> Login {
        Login {
            account,
            device: None,
            delegated: None,
        }
    }
}

/// A new app password: 24 characters in four groups (`k3j9xq-...`), 120 random bits.
pub fn new_app_password() -> Result<String, openssl::error::ErrorStack> {
    let mut random = [0u8; 15];
    openssl::rand::rand_bytes(&mut random)?;
    let text = super::totp::base32(&random).to_ascii_lowercase();
    Ok(text
        .as_bytes()
        .chunks(6)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-"))
}

/// A new pairing code: 10 characters in two groups (`K3J9X-QW2ZP`), 50 random bits, valid
/// [`PAIRING_SECONDS`] and once, tried under the brute-force brake.
pub fn new_pairing_code() -> Result<String, openssl::error::ErrorStack> {
    let mut random = [0u8; 7];
    openssl::rand::rand_bytes(&mut random)?;
    let text: String = super::totp::base32(&random).chars().take(10).collect();
    Ok(format!("{}-{}", &text[..5], &text[5..]))
}

/// A pairing code as typed (any case, with or without the dash and spaces), as hashed.
pub fn pairing_hash(typed: &str) -> Vec<u8> {
    let clean: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hash(&clean)
}

/// A device paired with a code: its mailbox, name and new app password.
#[derive(Debug)]
pub struct Paired {
    /// The mailbox.
    pub address: String,
    /// The device's name.
    pub name: String,
    /// Its app password (given once, to the device).
    pub app_password: String,
}

impl Authenticator {
    /// Exchanges a pairing code for a new device credential; `source` as for logins.
    /// Wrong, expired and used codes are failures for the brute-force brake.
    pub async fn pair(&self, code: &str, source: &str) -> Result<Paired, AuthError> {
        let ip = source_ip(source);
        let bucket = format!("pairing {}", ip.map(|i| i.to_string()).unwrap_or_default());
        match self.throttle.gate(ip, &bucket, Instant::now()) {
            Gate::Blocked(left) => return Err(AuthError::SourceBlocked(left.as_secs().max(1))),
            Gate::Wait(delay) => tokio::time::sleep(delay).await,
        }
        let unavailable = |e: StoreError| {
            tracing::error!(error = %e, "pairing failed");
            AuthError::Unavailable
        };
        let db = self.store.db();
        let now = chrono::Utc::now().timestamp();
        let Some((address, name)) = db
            .redeem_pairing(&pairing_hash(code), now)
            .await
            .map_err(unavailable)?
        else {
            self.throttle.failed(ip, &bucket, Instant::now());
            self.trace(
                "device.pair",
                "-",
                source,
                Outcome::Refused,
                "unknown, expired or used code",
            )
            .await?;
            return Err(AuthError::InvalidCredentials);
        };
        let account = db
            .find_account(&address)
            .await
            .map_err(unavailable)?
            .ok_or(AuthError::InvalidCredentials)?;
        let app_password = new_app_password().map_err(|_| AuthError::Unavailable)?;
        db.add_device(account.id, &name, &hash(&app_password))
            .await
            .map_err(unavailable)?;
        self.throttle.succeeded(ip, &bucket);
        self.trace(
            "device.pair",
            &address,
            source,
            Outcome::Ok,
            &format!("device {name:?}"),
        )
        .await?;
        Ok(Paired {
            address,
            name,
            app_password,
        })
    }
}

/// What the store keeps of an app password.
pub fn hash(app_password: &str) -> Vec<u8> {
    hash_bytes(app_password.as_bytes())
}

/// SHA-256 of `bytes` (also a certificate's fingerprint).
pub fn hash_bytes(bytes: &[u8]) -> Vec<u8> {
    digest(&SHA256, bytes).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_passwords_are_long_random_and_stored_hashed() {
        let (a, b) = (
            new_app_password().expect("random"),
            new_app_password().expect("random"),
        );
        assert_ne!(a, b);
        assert_eq!(a.len(), 27);
        assert_eq!(a.split('-').count(), 4);
        assert_eq!(hash(&a).len(), 32);
        assert_ne!(hash(&a), hash(&b));
    }
}
