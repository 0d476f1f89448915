//! The usual shape of a detached signature, checked without OpenSSL's CMS layer: one
//! SignerInfo naming its certificate by issuer and serial number, SHA-256, signed attributes
//! holding the content type (id-data) and the message digest, and an RSA signature, PKCS#1
//! v1.5 or PSS with SHA-256 and MGF1-SHA-256. It is what this server, OpenSSL, gpgsm and
//! Thunderbird send. OpenSSL 3's CMS spends more setting a verification up than the RSA
//! operation itself takes; every other shape still goes to it (the caller falls back when
//! [`usual_signer`] says None).

use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKeyRef, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};

use crate::der::{
    EXPLICIT_0, Element, INTEGER, NULL, OCTET_STRING, OID, SEQUENCE, SET, children, children_raw,
    content_fields, oid_text,
};

const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const DATA: &str = "1.2.840.113549.1.7.1";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const MGF1: &str = "1.2.840.113549.1.1.8";

/// How the signature value was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaScheme {
    /// PKCS#1 v1.5 with SHA-256.
    Pkcs1,
    /// PSS with SHA-256, MGF1-SHA-256 and this salt length.
    Pss {
        /// Salt length in octets.
        salt: i32,
    },
}

/// The one signer of a detached SignedData of the usual shape.
#[derive(Debug)]
pub struct UsualSigner<'a> {
    /// The certificate's issuer Name (whole encoding).
    pub issuer: &'a [u8],
    /// The certificate's serial number (INTEGER content).
    pub serial: &'a [u8],
    /// The messageDigest attribute: SHA-256 of the content.
    pub digest: &'a [u8],
    /// The signed attributes as they were signed: re-tagged as a SET OF.
    pub signed_attributes: Vec<u8>,
    /// How the signature value was made.
    pub scheme: RsaScheme,
    /// The signature value.
    pub signature: &'a [u8],
}

/// Reads `der` (a ContentInfo) as a detached SignedData of the usual shape; None for any
/// other (an encapsulated content, CRLs, several signers, other algorithms, BER lengths in
/// the signed attributes).
pub fn usual_signer(der: &[u8]) -> Option<UsualSigner<'_>> {
    let fields = content_fields(der, SIGNED_DATA)?;
    // version, digestAlgorithms, encapContentInfo, [0] certificates, [1] crls, signerInfos.
    let mut fields = fields.iter().filter(|e| e.tag != EXPLICIT_0);
    let (_version, _digests, encapsulated, signers) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    if fields.next().is_some() || encapsulated.tag != SEQUENCE || signers.tag != SET {
        return None;
    }
    // Detached: the content type alone, no content.
    let encapsulated = children(encapsulated.content, 4)?;
    let [kind] = encapsulated.as_slice() else {
        return None;
    };
    if kind.tag != OID || oid_text(kind.content) != DATA {
        return None;
    }
    let signers = children(signers.content, 4)?;
    let [signer] = signers.as_slice() else {
        return None;
    };
    signer_info(signer, 5)
}

/// A SignerInfo of the usual shape.
fn signer_info<'a>(signer: &Element<'a>, depth: usize) -> Option<UsualSigner<'a>> {
    if signer.tag != SEQUENCE {
        return None;
    }
    let fields = children_raw(signer.content, depth)?;
    // version 1, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature,
    // [1] unsignedAttrs (not signed: ignored).
    let [
        (version, _),
        (sid, _),
        (digest, _),
        (attributes, attributes_raw),
        (algorithm, _),
        (signature, _),
        ..,
    ] = fields.as_slice()
    else {
        return None;
    };
    if version.tag != INTEGER || version.content != [1] || signature.tag != OCTET_STRING {
        return None;
    }
    let sid = (sid.tag == SEQUENCE).then(|| children_raw(sid.content, depth + 1))??;
    let [(issuer, issuer_raw), (serial, _)] = sid.as_slice() else {
        return None;
    };
    if issuer.tag != SEQUENCE || serial.tag != INTEGER {
        return None;
    }
    if !is_sha256(digest, depth + 1)? {
        return None;
    }
    // Signed as a SET OF with a definite length: the [0] tag replaced, nothing else.
    if attributes.tag != EXPLICIT_0 || attributes_raw.get(1) == Some(&0x80) {
        return None;
    }
    let mut signed_attributes = attributes_raw.to_vec();
    signed_attributes[0] = SET;
    let message_digest = message_digest(attributes, depth + 1)?;
    Some(UsualSigner {
        issuer: issuer_raw,
        serial: serial.content,
        digest: message_digest,
        signed_attributes,
        scheme: scheme(algorithm, depth + 1)?,
        signature: signature.content,
    })
}

/// The messageDigest of signed attributes that also say the content is id-data; each of
/// the two exactly once, with one value.
fn message_digest<'a>(attributes: &Element<'a>, depth: usize) -> Option<&'a [u8]> {
    let (mut content_type, mut digest) = (None, None);
    for attribute in children(attributes.content, depth)? {
        let parts =
            (attribute.tag == SEQUENCE).then(|| children(attribute.content, depth + 1))??;
        let [oid, values] = parts.as_slice() else {
            return None;
        };
        if oid.tag != OID || values.tag != SET {
            return None;
        }
        let slot = match oid_text(oid.content).as_str() {
            CONTENT_TYPE => &mut content_type,
            MESSAGE_DIGEST => &mut digest,
            _ => continue,
        };
        let values = children(values.content, depth + 2)?;
        let [value] = values.as_slice() else {
            return None;
        };
        if slot.replace((value.tag, value.content)).is_some() {
            return None;
        }
    }
    match (content_type?, digest?) {
        ((OID, kind), (OCTET_STRING, digest)) if oid_text(kind) == DATA => Some(digest),
        _ => None,
    }
}

/// Whether an AlgorithmIdentifier is SHA-256 (parameters absent or NULL); None when it is
/// not an AlgorithmIdentifier.
fn is_sha256(algorithm: &Element<'_>, depth: usize) -> Option<bool> {
    let parts = (algorithm.tag == SEQUENCE).then(|| children(algorithm.content, depth))??;
    Some(match parts.as_slice() {
        [oid] | [oid, Element { tag: NULL, .. }] => {
            oid.tag == OID && oid_text(oid.content) == SHA256
        }
        _ => false,
    })
}

/// The signature algorithm: RSA PKCS#1 v1.5, or PSS whose parameters say SHA-256 and
/// MGF1-SHA-256 (their defaults are SHA-1: refused here, OpenSSL judges them).
fn scheme(algorithm: &Element<'_>, depth: usize) -> Option<RsaScheme> {
    let parts = (algorithm.tag == SEQUENCE).then(|| children(algorithm.content, depth))??;
    let (oid, params) = match parts.as_slice() {
        [oid] => (oid, None),
        [oid, params] => (oid, Some(params)),
        _ => return None,
    };
    if oid.tag != OID {
        return None;
    }
    match (oid_text(oid.content).as_str(), params) {
        (RSA_ENCRYPTION | SHA256_WITH_RSA, None) => Some(RsaScheme::Pkcs1),
        (RSA_ENCRYPTION | SHA256_WITH_RSA, Some(p)) if p.tag == NULL => Some(RsaScheme::Pkcs1),
        (RSASSA_PSS, Some(p)) if p.tag == SEQUENCE => pss(p, depth + 1),
        _ => None,
    }
}

/// RSASSA-PSS-params: [0] hash SHA-256, [1] MGF1 with SHA-256, [2] salt length, [3] trailer 1.
fn pss(params: &Element<'_>, depth: usize) -> Option<RsaScheme> {
    let (mut hash, mut mgf, mut salt) = (false, false, 20);
    for field in children(params.content, depth)? {
        let inner = children(field.content, depth + 1)?;
        let [value] = inner.as_slice() else {
            return None;
        };
        match field.tag {
            0xa0 => hash = is_sha256(value, depth + 2)?,
            0xa1 => {
                let parts =
                    (value.tag == SEQUENCE).then(|| children(value.content, depth + 2))??;
                let [oid, with] = parts.as_slice() else {
                    return None;
                };
                mgf =
                    oid.tag == OID && oid_text(oid.content) == MGF1 && is_sha256(with, depth + 3)?;
            }
            0xa2 if value.tag == INTEGER && value.content.len() <= 2 => {
                salt = value
                    .content
                    .iter()
                    .fold(0i32, |acc, b| (acc << 8) | i32::from(*b));
            }
            0xa3 if value.tag == INTEGER && value.content == [1] => {}
            _ => return None,
        }
    }
    (hash && mgf).then_some(RsaScheme::Pss { salt })
}

/// Whether `signature` over `signed` verifies with the RSA `key`; None when `key` is not
/// RSA or OpenSSL cannot set the check up.
pub fn rsa_verifies(
    key: &PKeyRef<Public>,
    scheme: RsaScheme,
    signed: &[u8],
    signature: &[u8],
) -> Option<bool> {
    if key.id() != Id::RSA {
        return None;
    }
    let mut verifier = Verifier::new(MessageDigest::sha256(), key).ok()?;
    match scheme {
        RsaScheme::Pkcs1 => verifier.set_rsa_padding(Padding::PKCS1).ok()?,
        RsaScheme::Pss { salt } => {
            verifier.set_rsa_padding(Padding::PKCS1_PSS).ok()?;
            verifier.set_rsa_mgf1_md(MessageDigest::sha256()).ok()?;
            verifier
                .set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt))
                .ok()?;
        }
    }
    verifier.update(signed).ok()?;
    // A signature value of the wrong length is an error to OpenSSL: a wrong signature here.
    Some(verifier.verify(signature).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ENTITY, pair, signature_der, signed_by};
    use crate::{Failure, SignatureScheme, Trust, Verdict, mime, verify};

    /// `signed` with `der` in place of its signature.
    fn with_signature(signed: &[u8], der: &[u8]) -> Vec<u8> {
        let old = mime::base64_lines(&signature_der(signed));
        let new = mime::base64_lines(der);
        let text = String::from_utf8_lossy(signed);
        let old = String::from_utf8_lossy(&old);
        assert!(
            text.contains(old.as_ref()),
            "the signature part is where expected"
        );
        text.replace(old.as_ref(), &String::from_utf8_lossy(&new))
            .into_bytes()
    }

    #[test]
    fn both_schemes_of_this_crate_are_the_usual_shape() {
        let signer = pair(3);
        for (scheme, expected) in [
            (SignatureScheme::PssSha256, RsaScheme::Pss { salt: 32 }),
            (SignatureScheme::Pkcs1v15Sha256, RsaScheme::Pkcs1),
        ] {
            let signed = signed_by(&signer, scheme);
            let der = signature_der(&signed);
            let usual = usual_signer(&der).expect("the usual shape");
            assert_eq!(usual.scheme, expected);
            assert_eq!(usual.digest, openssl::sha::sha256(ENTITY).as_slice());
            assert_eq!(usual.signed_attributes[0], SET);
        }
    }

    #[test]
    fn an_altered_signature_value_or_content_gets_its_own_verdict() {
        let signer = pair(4);
        let trust = Trust::new(std::slice::from_ref(&signer.cert), &[]).expect("trust");
        for scheme in [SignatureScheme::PssSha256, SignatureScheme::Pkcs1v15Sha256] {
            let signed = signed_by(&signer, scheme);
            assert!(matches!(verify(&signed, &trust), Verdict::Valid(_)));
            // The signature value is the last field of the DER.
            let mut der = signature_der(&signed);
            let last = der.len() - 1;
            der[last] ^= 0x01;
            assert!(usual_signer(&der).is_some());
            assert_eq!(
                verify(&with_signature(&signed, &der), &trust),
                Verdict::Invalid(Failure::BadSignature)
            );
            let altered = String::from_utf8_lossy(&signed).replace("Ordonnance", "Ordonnancf");
            assert_eq!(
                verify(altered.as_bytes(), &trust),
                Verdict::Invalid(Failure::Tampered)
            );
        }
    }

    #[test]
    fn other_shapes_are_left_to_openssl() {
        assert!(usual_signer(b"").is_none());
        assert!(usual_signer(&[0x30, 0x03, 0x06, 0x01, 0x00]).is_none());
        // Truncated DER is not the usual shape (OpenSSL then names the fault).
        let signer = pair(5);
        let signed = signed_by(&signer, SignatureScheme::PssSha256);
        let der = signature_der(&signed);
        for cut in [1, 10, der.len() / 2] {
            assert!(usual_signer(&der[..der.len() - cut]).is_none(), "cut {cut}");
        }
    }
}
