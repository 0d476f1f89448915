//! mssante-smime: S/MIME (CMS) on the professional's behalf — encrypt, decrypt, sign and
//! verify — for a server that holds the professionals' keys in escrow.
//!
//! The crate knows nothing of sessions or storage: it takes MIME entities (headers and body,
//! CRLF line ends), keys and certificates, and returns MIME entities and verdicts.
//!
//! - [`encrypt`]: AES-256-GCM (AuthEnvelopedData) with RSA-OAEP-SHA256 by default,
//!   [`EncryptOptions::legacy`] for AES-256-CBC with RSA PKCS#1 v1.5.
//! - [`decrypt`]: GCM or CBC, OAEP or PKCS#1 v1.5, with whichever of the mailbox's keys
//!   (current or past) the message was encrypted for.
//! - [`sign`]: a detached multipart/signed, SHA-256 with RSA-PSS ([`SignatureScheme`]).
//! - [`verify`]: a [`Verdict`] naming the signer or the precise reason.
//!
//! Weak input is refused by name before any key is used: RC2, DES and 3DES, MD5 and SHA-1,
//! RSA keys under 2048 bits, malformed DER. OpenSSL does the cryptography: its CMS layer,
//! except for the usual shapes (an AES-GCM envelope with RSA-OAEP, a detached RSA signature
//! with SHA-256), read by this crate and checked with OpenSSL's primitives, for speed. The
//! few calls the `openssl` crate lacks (OAEP and PSS parameters) are in one small unsafe
//! module.

mod der;
pub use der::first_element;
mod envelope;
mod ffi;
pub mod mime;
mod signature;
mod signer_info;

pub use envelope::{ContentCipher, Decrypted, EncryptOptions, KeyPair, decrypt, encrypt};
pub use ffi::{KeyTransport, SignatureScheme};
pub use signature::{
    Failure, Signer, Trust, Verdict, certificate_emails, opaque_content, sign, verify,
};

use openssl::error::ErrorStack;
use openssl::x509::X509Ref;

/// The smallest RSA key accepted, in bits.
pub const MIN_RSA_BITS: u32 = 2048;

/// Why an S/MIME operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmimeError {
    /// The input is not the S/MIME structure the operation expects.
    #[error("not an S/MIME message: {0}")]
    NotSmime(String),
    /// Truncated or invalid encoding.
    #[error("malformed S/MIME: {0}")]
    Malformed(&'static str),
    /// An algorithm the crate refuses.
    #[error("weak algorithm: {0}")]
    WeakAlgorithm(String),
    /// An RSA key under [`MIN_RSA_BITS`] (or not RSA at all: bits 0).
    #[error("RSA key of {0} bits (at least 2048 required)")]
    WeakKey(u32),
    /// Encryption without a recipient.
    #[error("no recipient certificate")]
    NoRecipient,
    /// None of the mailbox's keys opens the message.
    #[error("the message is not encrypted for any key of this mailbox")]
    NoMatchingKey,
    /// The clear content exceeds the size limit.
    #[error("the decrypted content exceeds {0} octets")]
    TooLarge(usize),
    /// OpenSSL failed.
    #[error("cryptographic failure: {0}")]
    Crypto(String),
}

impl From<ErrorStack> for SmimeError {
    fn from(e: ErrorStack) -> Self {
        SmimeError::Crypto(e.to_string())
    }
}

/// Refuses certificates whose key is not RSA of at least [`MIN_RSA_BITS`].
fn check_key_size(cert: &X509Ref) -> Result<(), SmimeError> {
    let key = cert.public_key()?;
    match key.rsa() {
        Ok(rsa) if rsa.size() * 8 >= MIN_RSA_BITS => Ok(()),
        Ok(rsa) => Err(SmimeError::WeakKey(rsa.size() * 8)),
        Err(_) => Err(SmimeError::WeakKey(0)),
    }
}

/// Certificates stored one DER after the other (a chain), parsed; None if any is invalid.
pub fn certificates_from_der(bytes: &[u8]) -> Option<Vec<openssl::x509::X509>> {
    der::split(bytes)?
        .into_iter()
        .map(|one| openssl::x509::X509::from_der(one).ok())
        .collect()
}

/// What the unit tests share: self-signed key pairs made in memory.
#[cfg(test)]
mod testing {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509Builder, X509NameBuilder};

    use crate::{KeyPair, SignatureScheme};

    /// The entity the signature tests sign.
    pub const ENTITY: &[u8] = b"Content-Type: text/plain\r\n\r\nOrdonnance.\r\n";

    /// [`ENTITY`] signed by `signer` with `scheme`, as a multipart/signed message.
    pub fn signed_by(signer: &KeyPair, scheme: SignatureScheme) -> Vec<u8> {
        crate::sign(ENTITY, &signer.key, &signer.cert, &[], scheme).expect("sign")
    }

    /// An RSA-2048 key and a self-signed certificate with this serial number.
    pub fn pair(serial: u32) -> KeyPair {
        let key = PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey");
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", "Dr Test").expect("cn");
        let name = name.build();
        let mut cert = X509Builder::new().expect("builder");
        let serial = BigNum::from_u32(serial).and_then(|b| b.to_asn1_integer());
        cert.set_serial_number(&serial.expect("serial"))
            .expect("set serial");
        cert.set_subject_name(&name).expect("subject");
        cert.set_issuer_name(&name).expect("issuer");
        cert.set_pubkey(&key).expect("pubkey");
        cert.set_not_before(&Asn1Time::days_from_now(0).expect("time"))
            .expect("nb");
        cert.set_not_after(&Asn1Time::days_from_now(30).expect("time"))
            .expect("na");
        cert.sign(&key, MessageDigest::sha256()).expect("sign");
        KeyPair {
            key,
            cert: cert.build(),
        }
    }

    /// A multipart/signed message's signed content and its signature's DER.
    pub fn signed_parts(signed: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (header, body) = crate::mime::split_entity(signed);
        let content_type = crate::mime::field(header, "content-type").expect("content type");
        let boundary = crate::mime::parameter(&content_type, "boundary").expect("boundary");
        let (content, part) = crate::mime::signed_parts(body, &boundary).expect("parts");
        let der = crate::mime::base64_body(crate::mime::split_entity(part).1).expect("base64");
        (content.to_vec(), der)
    }

    /// The DER of a multipart/signed message's signature part.
    pub fn signature_der(signed: &[u8]) -> Vec<u8> {
        signed_parts(signed).1
    }
}
