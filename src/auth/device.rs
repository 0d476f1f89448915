//! Device credentials: a long random app password per device, for stock clients
//! (Thunderbird, a phone) once the professional has logged in strongly. It stands for the
//! password and the one-time code together; only its SHA-256 is stored (120 random bits
//! need no slow hash). A login says which device it used ([`Login`]), so an open session
//! notices at its next command that the device was blocked.

use aws_lc_rs::digest::{SHA256, digest};

use crate::store::Account;

/// Who logged in, and with which device credential.
#[derive(Debug, Clone)]
pub struct Login {
    /// The account.
    pub account: Account,
    /// The device's id and name, when an app password was used.
    pub device: Option<(i64, String)>,
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

/// What the store keeps of an app password.
pub fn hash(app_password: &str) -> Vec<u8> {
    digest(&SHA256, app_password.as_bytes()).as_ref().to_vec()
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
