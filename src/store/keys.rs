//! Key escrow: the S/MIME key pairs a mailbox holds, sealed under the key-encryption key
//! (through the [`super::Kek`] interface, which an HSM can implement later). The store sees
//! public keys and certificates in clear, private keys only sealed, each bound to its mailbox
//! and use so a sealed key cannot be moved to another mailbox.

use std::fmt;
use std::str::FromStr;

use zeroize::Zeroizing;

use super::{Account, Store, StoreError};

/// What a key pair is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// Decrypting mail sent to the mailbox.
    Encryption,
    /// Signing mail the mailbox sends.
    Signature,
}

impl KeyUse {
    /// The stored form.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyUse::Encryption => "encryption",
            KeyUse::Signature => "signature",
        }
    }
}

impl FromStr for KeyUse {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "encryption" => Ok(KeyUse::Encryption),
            "signature" => Ok(KeyUse::Signature),
            other => Err(format!(
                "{other:?} is not a key use (encryption or signature)"
            )),
        }
    }
}

impl fmt::Display for KeyUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Made by `key csr`, waiting for its certificate.
    Pending,
    /// The one in use for its purpose.
    Current,
    /// Replaced; kept to read old mail.
    Past,
}

impl KeyState {
    /// The stored form.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Current => "current",
            KeyState::Past => "past",
        }
    }
}

impl FromStr for KeyState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(KeyState::Pending),
            "current" => Ok(KeyState::Current),
            "past" => Ok(KeyState::Past),
            other => Err(format!("unknown key state {other:?}")),
        }
    }
}

/// A key of a mailbox, without its private part.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// Row id.
    pub id: i64,
    /// Its use.
    pub usage: KeyUse,
    /// Its state.
    pub state: KeyState,
    /// SubjectPublicKeyInfo DER.
    pub public_key: Vec<u8>,
    /// Certificate DER, None while pending.
    pub certificate: Option<Vec<u8>>,
    /// The CA certificates that came with it, DER one after the other.
    pub chain: Vec<u8>,
    /// When it was added, seconds since the epoch.
    pub created_at: i64,
}

/// A key to add; the private key is already sealed.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Its use.
    pub usage: KeyUse,
    /// Pending (no certificate yet) or current.
    pub state: KeyState,
    /// Sealed PKCS#8 DER.
    pub sealed_key: Vec<u8>,
    /// SubjectPublicKeyInfo DER.
    pub public_key: Vec<u8>,
    /// Certificate DER.
    pub certificate: Option<Vec<u8>>,
    /// CA certificates, DER concatenated.
    pub chain: Vec<u8>,
}

fn key_context(address: &str, usage: KeyUse) -> String {
    format!("mailbox-key:{address}:{usage}")
}

impl Store {
    /// Escrows a private key (PKCS#8 DER) of `account`: current when it comes with its
    /// certificate (the previous current key of that use becomes past), else pending.
    pub async fn add_key(
        &self,
        account: &Account,
        usage: KeyUse,
        pkcs8: &[u8],
        public_key: Vec<u8>,
        certificate: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Result<i64, StoreError> {
        let sealed_key = self
            .kek
            .wrap(&key_context(&account.address, usage), pkcs8)?;
        let (state, certificate, chain) = match certificate {
            Some((cert, chain)) => (KeyState::Current, Some(cert), chain),
            None => (KeyState::Pending, None, Vec::new()),
        };
        let key = NewKey {
            usage,
            state,
            sealed_key,
            public_key,
            certificate,
            chain,
        };
        self.backend.add_mailbox_key(account.id, &key).await
    }

    /// Every key of `account`, newest first.
    pub async fn keys(&self, account: &Account) -> Result<Vec<StoredKey>, StoreError> {
        self.backend.mailbox_keys(account.id).await
    }

    /// Installs the certificate of the pending key with the same public key; it becomes
    /// current and the previous current key of that use becomes past.
    pub async fn install_certificate(
        &self,
        account: &Account,
        public_key: &[u8],
        certificate: Vec<u8>,
        chain: Vec<u8>,
    ) -> Result<StoredKey, StoreError> {
        let pending = self
            .keys(account)
            .await?
            .into_iter()
            .find(|k| k.state == KeyState::Pending && k.public_key == public_key)
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "no pending key of {} matches this certificate (make one with `key csr`)",
                    account.address
                ))
            })?;
        self.backend
            .install_key_certificate(account.id, pending.id, &certificate, &chain)
            .await?;
        Ok(StoredKey {
            state: KeyState::Current,
            certificate: Some(certificate),
            chain,
            ..pending
        })
    }

    /// Opens the private key (PKCS#8 DER) of one of `account`'s keys.
    pub async fn open_key(
        &self,
        account: &Account,
        key: &StoredKey,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let sealed = self
            .backend
            .mailbox_key_sealed(account.id, key.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no key {}", key.id)))?;
        Ok(self
            .kek
            .unwrap(&key_context(&account.address, key.usage), &sealed)?)
    }
}
