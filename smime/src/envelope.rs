//! Encryption to recipients' certificates and decryption with a mailbox's keys, current or
//! past (RFC 8551 3.3). AES-256-GCM in AuthEnvelopedData with RSA-OAEP-SHA256 by default;
//! AES-256-CBC in EnvelopedData with RSA PKCS#1 v1.5 for old clients.

use openssl::cms::CmsContentInfo;
use openssl::pkey::{PKey, Private};
use openssl::symm::Cipher;
use openssl::x509::X509;

use crate::der::{self, Structure};
use crate::ffi::{self, KeyTransport};
use crate::{SmimeError, check_key_size, mime};

/// The symmetric cipher of the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCipher {
    /// AES-256-GCM, in AuthEnvelopedData (RFC 5083, RFC 5084).
    Aes256Gcm,
    /// AES-256-CBC, in EnvelopedData.
    Aes256Cbc,
}

/// How to encrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptOptions {
    /// Content cipher.
    pub cipher: ContentCipher,
    /// Key transport to each recipient.
    pub transport: KeyTransport,
}

impl Default for EncryptOptions {
    /// AES-256-GCM with RSA-OAEP-SHA256.
    fn default() -> Self {
        EncryptOptions {
            cipher: ContentCipher::Aes256Gcm,
            transport: KeyTransport::OaepSha256,
        }
    }
}

impl EncryptOptions {
    /// AES-256-CBC with RSA PKCS#1 v1.5: what clients without GCM or OAEP can read.
    pub fn legacy() -> Self {
        EncryptOptions {
            cipher: ContentCipher::Aes256Cbc,
            transport: KeyTransport::Pkcs1v15,
        }
    }
}

/// A private key and its certificate: one of the keys a mailbox holds in escrow.
pub struct KeyPair {
    /// The private key.
    pub key: PKey<Private>,
    /// Its certificate (it names the recipient info that is ours).
    pub cert: X509,
}

/// Encrypts the MIME entity `entity` (headers and body, CRLF) for every certificate of
/// `recipients`; returns the `application/pkcs7-mime` entity that replaces it.
pub fn encrypt(
    entity: &[u8],
    recipients: &[X509],
    options: EncryptOptions,
) -> Result<Vec<u8>, SmimeError> {
    if recipients.is_empty() {
        return Err(SmimeError::NoRecipient);
    }
    for cert in recipients {
        check_key_size(cert)?;
    }
    let (cipher, smime_type) = match options.cipher {
        ContentCipher::Aes256Gcm => (Cipher::aes_256_gcm(), "authEnveloped-data"),
        ContentCipher::Aes256Cbc => (Cipher::aes_256_cbc(), "enveloped-data"),
    };
    let der = ffi::envelope(entity, recipients, cipher, options.transport)?;
    let mut out = format!(
        "Content-Type: application/pkcs7-mime; smime-type={smime_type}; name=\"smime.p7m\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(&mime::base64_lines(&der));
    Ok(out)
}

/// Decrypts an `application/pkcs7-mime` entity with the first of `keys` it was encrypted
/// for; returns the inner MIME entity, refused when longer than `max_size` octets.
pub fn decrypt(entity: &[u8], keys: &[KeyPair], max_size: usize) -> Result<Vec<u8>, SmimeError> {
    let der = pkcs7_body(entity)?;
    match der::structure(&der) {
        Some(Structure::Enveloped { cipher }) => {
            let (name, acceptable) = der::cipher_name(&cipher);
            if !acceptable {
                return Err(SmimeError::WeakAlgorithm(format!("{name} ({cipher})")));
            }
        }
        Some(_) => return Err(SmimeError::NotSmime("not an encrypted message".into())),
        None => return Err(SmimeError::Malformed("the CMS structure cannot be read")),
    }
    let cms =
        CmsContentInfo::from_der(&der).map_err(|_| SmimeError::Malformed("invalid CMS DER"))?;
    for pair in keys {
        if let Ok(clear) = cms.decrypt(&pair.key, &pair.cert) {
            if clear.len() > max_size {
                return Err(SmimeError::TooLarge(max_size));
            }
            return Ok(clear);
        }
    }
    Err(SmimeError::NoMatchingKey)
}

/// The DER inside an application/pkcs7-mime entity (base64 or binary).
fn pkcs7_body(entity: &[u8]) -> Result<Vec<u8>, SmimeError> {
    let (header, body) = mime::split_entity(entity);
    let content_type = mime::field(header, "content-type").unwrap_or_default();
    let media = mime::media_type(&content_type);
    if media != "application/pkcs7-mime" && media != "application/x-pkcs7-mime" {
        return Err(SmimeError::NotSmime(format!("content type {media:?}")));
    }
    let encoding = mime::field(header, "content-transfer-encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if encoding == "base64" {
        mime::base64_body(body).ok_or(SmimeError::Malformed("the base64 body is invalid"))
    } else {
        Ok(body.to_vec())
    }
}
