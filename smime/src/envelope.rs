//! Encryption to recipients' certificates and decryption with a mailbox's keys, current or
//! past (RFC 8551 3.3). AES-256-GCM in AuthEnvelopedData with RSA-OAEP-SHA256 by default;
//! AES-256-CBC in EnvelopedData with RSA PKCS#1 v1.5 for old clients.
//!
//! Decryption opens the common shape (AES-GCM, RSA-OAEP-SHA256, see `der::GcmEnvelope`)
//! directly with the key and the cipher; OpenSSL's CMS opens every other one.

use openssl::cms::CmsContentInfo;
use openssl::encrypt::Decrypter;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Padding;
use openssl::symm::{self, Cipher};
use openssl::x509::X509;
use zeroize::Zeroizing;

use crate::der::{self, GcmEnvelope, Structure};
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

/// A decrypted message: the inner entity and which key opened it (for the audit trail).
#[derive(Debug, PartialEq, Eq)]
pub struct Decrypted {
    /// The inner MIME entity.
    pub entity: Vec<u8>,
    /// Index in the `keys` given to [`decrypt`] of the key that opened it.
    pub key: usize,
}

/// Decrypts an `application/pkcs7-mime` entity with the first of `keys` it was encrypted
/// for; returns the inner MIME entity, refused when longer than `max_size` octets.
pub fn decrypt(entity: &[u8], keys: &[KeyPair], max_size: usize) -> Result<Decrypted, SmimeError> {
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
    if let Some(envelope) = der::gcm_envelope(&der) {
        if envelope.ciphertext.len() > max_size {
            return Err(SmimeError::TooLarge(max_size));
        }
        for (key, pair) in keys.iter().enumerate() {
            if let Some(entity) = open_gcm(&envelope, pair) {
                return Ok(Decrypted { entity, key });
            }
        }
    }
    let cms =
        CmsContentInfo::from_der(&der).map_err(|_| SmimeError::Malformed("invalid CMS DER"))?;
    for (key, pair) in keys.iter().enumerate() {
        if let Ok(entity) = cms.decrypt(&pair.key, &pair.cert) {
            if entity.len() > max_size {
                return Err(SmimeError::TooLarge(max_size));
            }
            return Ok(Decrypted { entity, key });
        }
    }
    Err(SmimeError::NoMatchingKey)
}

/// Opens a [`GcmEnvelope`] with `pair` when one of its recipients is `pair`'s certificate;
/// None otherwise, or when the key or the tag do not verify (OpenSSL's CMS then has its turn).
fn open_gcm(envelope: &GcmEnvelope<'_>, pair: &KeyPair) -> Option<Vec<u8>> {
    let cert = pair.cert.to_der().ok()?;
    let (issuer, serial) = der::issuer_and_serial(&cert)?;
    let recipient = envelope
        .recipients
        .iter()
        .find(|r| r.issuer == issuer && r.serial == serial)?;
    let mut decrypter = Decrypter::new(&pair.key).ok()?;
    decrypter.set_rsa_padding(Padding::PKCS1_OAEP).ok()?;
    decrypter.set_rsa_oaep_md(MessageDigest::sha256()).ok()?;
    decrypter.set_rsa_mgf1_md(MessageDigest::sha256()).ok()?;
    let mut key = Zeroizing::new(vec![
        0;
        decrypter.decrypt_len(recipient.encrypted_key).ok()?
    ]);
    let len = decrypter.decrypt(recipient.encrypted_key, &mut key).ok()?;
    let cipher = match (len, envelope.key_len) {
        (16, 16) => Cipher::aes_128_gcm(),
        (24, 24) => Cipher::aes_192_gcm(),
        (32, 32) => Cipher::aes_256_gcm(),
        _ => return None,
    };
    let aad = [];
    symm::decrypt_aead(
        cipher,
        &key[..len],
        Some(envelope.nonce),
        &aad,
        &envelope.ciphertext,
        envelope.tag,
    )
    .ok()
}

/// The DER inside an application/pkcs7-mime entity (base64 or binary).
pub(crate) fn pkcs7_body(entity: &[u8]) -> Result<Vec<u8>, SmimeError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pair;

    const ENTITY: &[u8] = b"Content-Type: text/plain\r\n\r\nCompte rendu.\r\n";

    fn der_of(entity: &[u8]) -> Vec<u8> {
        pkcs7_body(entity).expect("pkcs7 body")
    }

    #[test]
    fn the_default_shape_opens_without_openssls_cms() {
        let (ours, other) = (pair(1), pair(2));
        let message = encrypt(
            ENTITY,
            &[other.cert.clone(), ours.cert.clone()],
            EncryptOptions::default(),
        )
        .expect("encrypt");
        let der = der_of(&message);
        let envelope = der::gcm_envelope(&der).expect("read as a GCM envelope");
        assert_eq!(envelope.recipients.len(), 2);
        assert_eq!(envelope.key_len, 32);
        assert_eq!(open_gcm(&envelope, &ours).as_deref(), Some(ENTITY));
        assert_eq!(open_gcm(&envelope, &other).as_deref(), Some(ENTITY));
        // A key the message was not encrypted for is not even tried.
        assert_eq!(open_gcm(&envelope, &pair(3)), None);
    }

    #[test]
    fn a_tampered_tag_or_content_does_not_open() {
        let ours = pair(1);
        let message = encrypt(
            ENTITY,
            std::slice::from_ref(&ours.cert),
            EncryptOptions::default(),
        )
        .expect("encrypt");
        let der = der_of(&message);
        let tag_at = der.len() - 1; // the mac is the last field
        for at in [tag_at, der.len() - 40] {
            let mut bad = der.clone();
            bad[at] ^= 1;
            if let Some(envelope) = der::gcm_envelope(&bad) {
                assert_eq!(open_gcm(&envelope, &ours), None, "octet {at}");
            }
            let mut entity = b"Content-Type: application/pkcs7-mime\r\n\
                Content-Transfer-Encoding: base64\r\n\r\n"
                .to_vec();
            entity.extend(crate::mime::base64_lines(&bad));
            assert!(decrypt(&entity, std::slice::from_ref(&ours), 1 << 20).is_err());
        }
    }

    #[test]
    fn other_shapes_are_left_to_openssl() {
        let ours = pair(1);
        let message = encrypt(
            ENTITY,
            std::slice::from_ref(&ours.cert),
            EncryptOptions::legacy(),
        )
        .expect("encrypt");
        assert!(der::gcm_envelope(&der_of(&message)).is_none());
        let clear = decrypt(&message, std::slice::from_ref(&ours), 1 << 20).expect("decrypt");
        assert_eq!(clear.entity, ENTITY);
        // GCM with PKCS#1 v1.5 transport: the envelope is read, its recipient is not ours.
        let options = EncryptOptions {
            cipher: ContentCipher::Aes256Gcm,
            transport: KeyTransport::Pkcs1v15,
        };
        let message = encrypt(ENTITY, std::slice::from_ref(&ours.cert), options).expect("encrypt");
        let der = der_of(&message);
        let envelope = der::gcm_envelope(&der).expect("GCM envelope");
        assert!(envelope.recipients.is_empty());
        let clear = decrypt(&message, std::slice::from_ref(&ours), 1 << 20).expect("decrypt");
        assert_eq!(clear.entity, ENTITY);
    }

    #[test]
    fn the_size_limit_holds_before_decryption() {
        let ours = pair(1);
        let message = encrypt(
            ENTITY,
            std::slice::from_ref(&ours.cert),
            EncryptOptions::default(),
        )
        .expect("encrypt");
        assert_eq!(
            decrypt(&message, std::slice::from_ref(&ours), 10),
            Err(SmimeError::TooLarge(10))
        );
    }
}
