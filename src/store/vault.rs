//! Encryption at rest: the key-encryption key (KEK) and the data keys it wraps.
//!
//! Every mailbox has its own 256-bit data key, stored only wrapped under the KEK. Message
//! bodies are sealed with AES-256-GCM under their mailbox's data key; secrets (the TEST PKI's
//! private keys, later escrowed S/MIME keys) are sealed under the KEK itself. The KEK sits
//! outside the database: a 0600 file now, an HSM through PKCS#11 later, which is why it is
//! reached only through the small [`Kek`] trait.
//!
//! Sealed format: `1 || nonce(12) || ciphertext || tag(16)`. The associated data names what
//! the blob is (`msg:<mailbox>`, `secret:<name>`, ...), so a blob moved to another row fails
//! to open instead of decrypting as something else.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

const FORMAT_V1: u8 = 1;
const KEY_LEN: usize = 32;

/// What went wrong with keys or sealed data.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The KEK file could not be read or created.
    #[error("key-encryption key file {path}: {reason}")]
    KekFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A sealed blob did not open: wrong key, tampered data or moved row.
    #[error("sealed data does not open under this key (wrong key-encryption key or tampered data)")]
    Unseal,
    /// The system random generator failed.
    #[error("random generator failure")]
    Random,
}

/// The key-encryption key: wraps data keys and seals secrets. One implementation per place a
/// KEK can live (a file now; an HSM later).
pub trait Kek: Send + Sync {
    /// Seals `plaintext`, binding it to `context`.
    fn wrap(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError>;
    /// Opens what [`Kek::wrap`] sealed with the same `context`.
    fn unwrap(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError>;
}

/// A 256-bit AES-GCM key held in memory.
pub struct DataKey(LessSafeKey);

impl DataKey {
    fn from_bytes(bytes: &[u8]) -> Result<DataKey, VaultError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| VaultError::Unseal)?;
        Ok(DataKey(LessSafeKey::new(key)))
    }

    /// Seals `plaintext` for `context`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| VaultError::Random)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let mut body = out.split_off(1 + NONCE_LEN);
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut body,
            )
            .map_err(|_| VaultError::Unseal)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens a blob sealed by [`DataKey::seal`] for the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != FORMAT_V1 {
            return Err(VaultError::Unseal);
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN])
            .map_err(|_| VaultError::Unseal)?;
        let mut body = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
        let len = self
            .0
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
            .map_err(|_| VaultError::Unseal)?
            .len();
        body.truncate(len);
        Ok(body)
    }
}

/// A fresh random data key, returned wrapped under `kek` (for storage) and usable.
pub fn new_data_key(kek: &dyn Kek, context: &str) -> Result<(Vec<u8>, DataKey), VaultError> {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| VaultError::Random)?;
    let wrapped = kek.wrap(context, bytes.as_ref())?;
    Ok((wrapped, DataKey::from_bytes(bytes.as_ref())?))
}

/// Unwraps a stored data key.
pub fn open_data_key(kek: &dyn Kek, context: &str, wrapped: &[u8]) -> Result<DataKey, VaultError> {
    let bytes = kek.unwrap(context, wrapped)?;
    DataKey::from_bytes(&bytes)
}

/// A KEK kept in a 0600 file of 32 random bytes.
pub struct FileKek {
    key: DataKey,
}

impl FileKek {
    /// Loads the KEK; refuses a file that others can read or of the wrong size.
    pub fn load(path: &Path) -> Result<FileKek, VaultError> {
        let err = |reason: String| VaultError::KekFile {
            path: path.to_path_buf(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(err(format!(
                "mode {:o} lets others read it; run chmod 600",
                meta.permissions().mode() & 0o777
            )));
        }
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| err(e.to_string()))?);
        if bytes.len() != KEY_LEN {
            return Err(err(format!(
                "holds {} bytes, expected {KEY_LEN}",
                bytes.len()
            )));
        }
        Ok(FileKek {
            key: DataKey::from_bytes(&bytes)?,
        })
    }

    /// Creates a new random KEK file (mode 0600); refuses to overwrite one.
    pub fn create(path: &Path) -> Result<FileKek, VaultError> {
        let err = |reason: String| VaultError::KekFile {
            path: path.to_path_buf(),
            reason,
        };
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| VaultError::Random)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| err(e.to_string()))?;
        file.write_all(bytes.as_ref())
            .and_then(|()| file.sync_all())
            .map_err(|e| err(e.to_string()))?;
        Ok(FileKek {
            key: DataKey::from_bytes(bytes.as_ref())?,
        })
    }
}

impl std::fmt::Debug for FileKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKek(..)") // never the key
    }
}

impl Kek for FileKek {
    fn wrap(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.key.seal(context, plaintext)
    }

    fn unwrap(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        self.key.open(context, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let dir = tempfile::tempdir().unwrap();
        let kek = FileKek::create(&dir.path().join("kek")).unwrap();
        let (wrapped, key) = new_data_key(&kek, "dek:1").unwrap();
        let sealed = key.seal("msg:1", b"secret body").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        let reopened = open_data_key(&kek, "dek:1", &wrapped).unwrap();
        assert_eq!(
            &reopened.open("msg:1", &sealed).unwrap()[..],
            b"secret body"
        );
        assert!(
            reopened.open("msg:2", &sealed).is_err(),
            "context must bind"
        );
        assert!(open_data_key(&kek, "dek:2", &wrapped).is_err());
    }

    #[test]
    fn tampered_or_truncated_blobs_fail() {
        let dir = tempfile::tempdir().unwrap();
        let kek = FileKek::create(&dir.path().join("kek")).unwrap();
        let mut sealed = kek.wrap("s", b"abc").unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(kek.unwrap("s", &sealed).is_err());
        assert!(kek.unwrap("s", &sealed[..5]).is_err());
        assert!(kek.unwrap("s", &[]).is_err());
    }

    #[test]
    fn kek_file_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        FileKek::create(&path).unwrap();
        assert!(FileKek::create(&path).is_err(), "never overwrite a KEK");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        FileKek::load(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            FileKek::load(&path)
                .unwrap_err()
                .to_string()
                .contains("chmod 600")
        );
    }
}
