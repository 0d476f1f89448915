//! The one-time-code second factor of a mailbox, as the store keeps it: the TOTP secret
//! sealed under the key-encryption key and bound to the mailbox, the last step accepted,
//! and whether the administrator requires a code. The codes themselves: `auth::totp`.

use zeroize::Zeroizing;

use super::{Account, Store, StoreError};

/// What the store holds about a mailbox's second factor.
#[derive(Debug, Clone, Default)]
pub struct OtpState {
    /// The secret, sealed; None until enrolled.
    pub sealed_secret: Option<Vec<u8>>,
    /// The last time step a code was accepted for.
    pub last_step: i64,
    /// Whether the administrator requires a code for this mailbox.
    pub required: bool,
}

fn otp_context(address: &str) -> String {
    format!("otp:{address}")
}

impl Store {
    /// The second-factor state of `account` (all defaults when it has none).
    pub async fn otp(&self, account: &Account) -> Result<OtpState, StoreError> {
        Ok(self.backend.otp(account.id).await?.unwrap_or_default())
    }

    /// Stores a new secret for `account` (replacing any; no step used yet).
    pub async fn enroll_otp(&self, account: &Account, secret: &[u8]) -> Result<(), StoreError> {
        let sealed = self.kek.wrap(&otp_context(&account.address), secret)?;
        self.backend.set_otp_secret(account.id, Some(&sealed)).await
    }

    /// Forgets `account`'s secret.
    pub async fn remove_otp(&self, account: &Account) -> Result<(), StoreError> {
        self.backend.set_otp_secret(account.id, None).await
    }

    /// Sets whether `account` must give a code.
    pub async fn require_otp(&self, account: &Account, required: bool) -> Result<(), StoreError> {
        self.backend.set_otp_required(account.id, required).await
    }

    /// Opens a sealed secret of `account`.
    pub fn open_otp_secret(
        &self,
        account: &Account,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        Ok(self.kek.unwrap(&otp_context(&account.address), sealed)?)
    }

    /// Marks `step` used; false when it (or a later one) was used already.
    pub async fn use_otp_step(&self, account: &Account, step: i64) -> Result<bool, StoreError> {
        self.backend.use_otp_step(account.id, step).await
    }
}
