//! Detached signatures (multipart/signed, RFC 8551 3.5) and their verification against the
//! configured anchors and CRLs, with a verdict that names the signer or the precise reason.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::nid::Nid;
use openssl::pkey::PKeyRef;
use openssl::pkey::Private;
use openssl::sha::{Sha256, sha256};
use openssl::stack::{Stack, StackRef};
use openssl::x509::X509StoreContext;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509Crl, X509PurposeId, X509Ref};

use crate::der::{self, Structure};
use crate::ffi::{self, SignatureScheme};
use crate::signer_info;
use crate::{SmimeError, check_key_size, mime};

/// Signs the MIME entity `entity` with `key` and `cert`, carrying `chain`; returns the
/// multipart/signed entity that replaces it.
pub fn sign(
    entity: &[u8],
    key: &PKeyRef<Private>,
    cert: &X509,
    chain: &[X509],
    scheme: SignatureScheme,
) -> Result<Vec<u8>, SmimeError> {
    check_key_size(cert)?;
    let stack = ffi::stack(chain)?;
    let der = ffi::detached_signature(entity, key, cert, &stack, scheme)?;
    let mut random = [0u8; 12];
    openssl::rand::rand_bytes(&mut random)?;
    let boundary: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let boundary = format!("----mssante-{boundary}");
    let mut out = format!(
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; \
         micalg=sha-256;\r\n\tboundary=\"{boundary}\"\r\n\r\n\
         This is an S/MIME signed message\r\n\r\n--{boundary}\r\n"
    )
    .into_bytes();
    out.extend_from_slice(entity);
    out.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(&mime::base64_lines(&der));
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(out)
}

/// The anchors and CRLs signatures are checked against, with what earlier verifications
/// learnt: the certificates already parsed and the chains already checked (for
/// [`CHAIN_CACHE_SECONDS`]), so a correspondent's hundredth message costs one signature
/// check. Rebuild the `Trust` when the anchors or CRLs change.
pub struct Trust {
    store: X509Store,
    certificates: Mutex<HashMap<[u8; 32], X509>>,
    chains: Mutex<HashMap<[u8; 32], ChainVerdict>>,
}

/// When a chain was checked, and how it went.
type ChainVerdict = (Instant, Result<(), Failure>);

/// How long a chain's verdict is reused: a certificate expiring meanwhile is noticed that
/// much later at most (revocation comes with new CRLs, hence a new `Trust`).
pub const CHAIN_CACHE_SECONDS: u64 = 60;
/// Entries each cache holds before it starts afresh (senders cannot make it grow).
const CACHE_ENTRIES: usize = 4096;

impl Trust {
    /// Trusts `anchors` (and the intermediates among them), checking every certificate of a
    /// chain against `crls` when `crls` is not empty.
    pub fn new(anchors: &[X509], crls: &[X509Crl]) -> Result<Trust, SmimeError> {
        let mut builder = X509StoreBuilder::new()?;
        for cert in anchors {
            builder.add_cert(cert.clone())?;
        }
        for crl in crls {
            ffi::add_crl(&mut builder, crl)?;
        }
        if !crls.is_empty() {
            builder.set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)?;
        }
        builder.set_purpose(X509PurposeId::SMIME_SIGN)?;
        Ok(Trust {
            store: builder.build(),
            certificates: Mutex::default(),
            chains: Mutex::default(),
        })
    }

    /// The certificates (DER) parsed, each distinct one once.
    fn parsed(&self, ders: &[&[u8]]) -> Result<Stack<X509>, Failure> {
        let mut stack = Stack::new().map_err(|e| Failure::Other(e.to_string()))?;
        for der in ders {
            let id = sha256(der);
            let mut cache = lock(&self.certificates);
            let cert = match cache.get(&id) {
                Some(cert) => cert.clone(),
                None => {
                    let cert = X509::from_der(der)
                        .map_err(|_| Failure::Malformed("invalid certificate".into()))?;
                    if cache.len() >= CACHE_ENTRIES {
                        cache.clear();
                    }
                    cache.insert(id, cert.clone());
                    cert
                }
            };
            stack
                .push(cert)
                .map_err(|e| Failure::Other(e.to_string()))?;
        }
        Ok(stack)
    }

    /// Whether `signer` chains to an anchor through `carried`, unrevoked, valid now and for
    /// S/MIME signature; the verdict is reused for [`CHAIN_CACHE_SECONDS`].
    fn chain(&self, signer: &X509Ref, carried: &StackRef<X509>) -> Result<(), Failure> {
        let mut id = Sha256::new();
        for cert in std::iter::once(signer).chain(carried.iter()) {
            id.update(&cert.to_der().map_err(|e| Failure::Other(e.to_string()))?);
        }
        let id = id.finish();
        if let Some((at, verdict)) = lock(&self.chains).get(&id)
            && at.elapsed() < Duration::from_secs(CHAIN_CACHE_SECONDS)
        {
            return verdict.clone();
        }
        let mut context = X509StoreContext::new().map_err(|e| Failure::Other(e.to_string()))?;
        let verdict = context
            .init(&self.store, signer, carried, |c| {
                Ok(if c.verify_cert()? {
                    Ok(())
                } else {
                    Err(failure_of(c.error().error_string()))
                })
            })
            .map_err(|e| Failure::Other(e.to_string()))?;
        let mut cache = lock(&self.chains);
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(id, (Instant::now(), verdict.clone()));
        verdict
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Who signed, as the certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The idNat: the CN inside the subject's multi-valued RDN (IGC-Santé person
    /// certificates), never simply the first CN.
    pub idnat: Option<String>,
    /// Given name and surname, or the CN.
    pub name: String,
    /// The e-mail addresses of the certificate (SAN and emailAddress), lower case.
    pub emails: Vec<String>,
}

/// Why a signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The message is not multipart/signed, or its parts cannot be read.
    #[error("not a readable signed message: {0}")]
    Malformed(String),
    /// A digest the crate refuses (MD5, SHA-1).
    #[error("weak algorithm: {0}")]
    WeakAlgorithm(String),
    /// The signer's RSA key is under 2048 bits.
    #[error("signer key of {0} bits")]
    WeakKey(u32),
    /// The signed content was changed after signing.
    #[error("the signed content was modified")]
    Tampered,
    /// The signature value does not verify.
    #[error("the signature value is wrong")]
    BadSignature,
    /// The signer's certificate (or a CA above it) is revoked.
    #[error("certificate revoked")]
    Revoked,
    /// The signer's certificate is expired or not yet valid.
    #[error("certificate expired or not yet valid")]
    Expired,
    /// The chain does not reach a configured anchor.
    #[error("certificate from an unknown CA")]
    UnknownCa,
    /// The certificate is not for e-mail protection (key usage, extended key usage).
    #[error("certificate not for e-mail signature")]
    NotForEmail,
    /// No CRL covers a certificate of the chain.
    #[error("no CRL for the certificate's CA")]
    NoCrl,
    /// The From: address is none of the certificate's.
    #[error("From: {from} is not an address of the certificate")]
    FromMismatch {
        /// The message's From: address.
        from: String,
    },
    /// Any other verification failure, as OpenSSL says it.
    #[error("{0}")]
    Other(String),
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The signature holds.
    Valid(Signer),
    /// It does not, and why.
    Invalid(Failure),
}

/// Verifies a signed message (or entity), multipart/signed or opaque
/// (`application/pkcs7-mime; smime-type=signed-data`): the signature over the content, the
/// chain to `trust`'s anchors with CRLs, S/MIME signing purpose, key size, digest, and that
/// the message's From: (when it has one and the certificate has addresses) is the signer's.
pub fn verify(message: &[u8], trust: &Trust) -> Verdict {
    match check(message, trust) {
        Ok(signer) => Verdict::Valid(signer),
        Err(failure) => Verdict::Invalid(failure),
    }
}

fn check(message: &[u8], trust: &Trust) -> Result<Signer, Failure> {
    let malformed = |what: &str| Failure::Malformed(what.to_string());
    let (header, body) = mime::split_entity(message);
    let content_type = mime::field(header, "content-type").unwrap_or_default();
    // Detached (multipart/signed: the first part, then the signature) or opaque (the
    // content inside the SignedData).
    let (der, detached) = match mime::media_type(&content_type).as_str() {
        "multipart/signed" => {
            let boundary = mime::parameter(&content_type, "boundary")
                .ok_or_else(|| malformed("no boundary"))?;
            let (signed, signature) =
                mime::signed_parts(body, &boundary).ok_or_else(|| malformed("missing parts"))?;
            let (sig_header, sig_body) = mime::split_entity(signature);
            let sig_type =
                mime::media_type(&mime::field(sig_header, "content-type").unwrap_or_default());
            if sig_type != "application/pkcs7-signature"
                && sig_type != "application/x-pkcs7-signature"
            {
                return Err(malformed("the second part is not a PKCS#7 signature"));
            }
            let der =
                mime::base64_body(sig_body).ok_or_else(|| malformed("invalid base64 signature"))?;
            (der, Some(signed))
        }
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => {
            let der = crate::envelope::pkcs7_body(message)
                .map_err(|e| Failure::Malformed(e.to_string()))?;
            (der, None)
        }
        _ => return Err(malformed("not a signed message")),
    };
    match der::structure(&der) {
        Some(Structure::Signed { digests }) => {
            for oid in digests {
                let (name, acceptable) = der::digest_name(&oid);
                if !acceptable {
                    return Err(Failure::WeakAlgorithm(format!("{name} ({oid})")));
                }
            }
        }
        _ => return Err(malformed("the signature is not a CMS SignedData")),
    }
    // The signature (directly for the usual shape, else with OpenSSL's CMS), the chain
    // apart (and remembered).
    let (bare, carried_der) = der::split_certificates(&der)
        .ok_or_else(|| malformed("a SignedData carrying other than X.509 certificates"))?;
    let carried = trust.parsed(&carried_der)?;
    let usual = match (signer_info::usual_signer(&bare), detached) {
        (Some(usual), Some(content)) => check_usual(&usual, content, &carried_der, &carried)?,
        _ => None,
    };
    let cert = match usual {
        Some(cert) => cert,
        None => {
            let mut cms =
                CmsContentInfo::from_der(&bare).map_err(|_| malformed("invalid CMS DER"))?;
            cms.verify(
                Some(&carried),
                Some(&trust.store),
                detached,
                None,
                CMSOptions::BINARY | CMSOptions::NO_SIGNER_CERT_VERIFY,
            )
            .map_err(|e| failure_of(&e.to_string()))?;
            ffi::signers(&cms)
                .ok()
                .and_then(|c| c.into_iter().next())
                .ok_or_else(|| malformed("no signer certificate"))?
        }
    };
    trust.chain(&cert, &carried)?;
    if let Err(SmimeError::WeakKey(bits)) = check_key_size(&cert) {
        return Err(Failure::WeakKey(bits));
    }
    let signer = signer_of(&cert);
    if let Some(from) = mime::field(header, "from").and_then(|f| address(&f))
        && !signer.emails.is_empty()
        && !signer.emails.contains(&from)
    {
        return Err(Failure::FromMismatch { from });
    }
    Ok(signer)
}

/// Checks a signature of the usual shape over `content`: the signed attributes with the
/// signer's key, then the content against their digest (OpenSSL's order, so a message with
/// both altered gets the same verdict). Returns the signer's certificate, or None when the
/// signer is not among the `carried` certificates or its key is not RSA (OpenSSL decides).
fn check_usual(
    usual: &signer_info::UsualSigner<'_>,
    content: &[u8],
    carried_der: &[&[u8]],
    carried: &StackRef<X509>,
) -> Result<Option<X509>, Failure> {
    let Some(cert) = carried_der
        .iter()
        .position(|d| der::issuer_and_serial(d) == Some((usual.issuer, usual.serial)))
        .and_then(|i| carried.get(i))
    else {
        return Ok(None);
    };
    let Ok(key) = cert.public_key() else {
        return Ok(None);
    };
    match signer_info::rsa_verifies(
        &key,
        usual.scheme,
        &usual.signed_attributes,
        usual.signature,
    ) {
        None => return Ok(None),
        Some(false) => return Err(Failure::BadSignature),
        Some(true) => {}
    }
    if sha256(content).as_slice() != usual.digest {
        return Err(Failure::Tampered);
    }
    Ok(Some(cert.to_owned()))
}

/// The entity an opaque signed message (`application/pkcs7-mime; smime-type=signed-data`)
/// carries, read without judging the signature ([`verify`] does); None when it is not one.
pub fn opaque_content(message: &[u8]) -> Option<Vec<u8>> {
    der::encapsulated_content(&crate::envelope::pkcs7_body(message).ok()?)
}

/// The verdict for an OpenSSL verification error.
fn failure_of(text: &str) -> Failure {
    let t = text.to_ascii_lowercase();
    if t.contains("revoked") {
        Failure::Revoked
    } else if t.contains("expired") || t.contains("not yet valid") {
        Failure::Expired
    } else if t.contains("unable to get local issuer")
        || t.contains("unable to get issuer")
        || t.contains("self-signed certificate")
        || t.contains("self signed certificate")
    {
        Failure::UnknownCa
    } else if t.contains("unsupported certificate purpose") {
        Failure::NotForEmail
    } else if t.contains("unable to get certificate crl") {
        Failure::NoCrl
    } else if t.contains("digest mismatch") || t.contains("content verify error") {
        Failure::Tampered
    } else if t.contains("signature failure") || t.contains("verification failure") {
        Failure::BadSignature
    } else {
        Failure::Other(text.to_string())
    }
}

/// The address inside a From: value (`Name <a@b>` or `a@b`), lower case.
fn address(value: &str) -> Option<String> {
    let inner = match (value.rfind('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value,
    };
    let inner = inner.trim();
    inner.contains('@').then(|| inner.to_ascii_lowercase())
}

fn signer_of(cert: &X509Ref) -> Signer {
    let entries = ffi::name_entries(cert);
    let multi = |set: i32| entries.iter().filter(|(s, _, _)| *s == set).count() > 1;
    let in_multi = |name: &str| {
        entries
            .iter()
            .find(|(set, n, _)| n == name && multi(*set))
            .map(|(_, _, text)| text.clone())
    };
    let idnat = in_multi("CN");
    let name = match (in_multi("GN"), in_multi("SN")) {
        (Some(given), Some(surname)) => format!("{given} {surname}"),
        _ => entries
            .iter()
            .find(|(_, n, _)| n == "CN")
            .map(|(_, _, t)| t.clone())
            .unwrap_or_default(),
    };
    let emails = certificate_emails(cert);
    Signer {
        idnat,
        name,
        emails,
    }
}

/// The e-mail addresses a certificate names (SAN rfc822Name, then subject emailAddress),
/// lower case.
pub fn certificate_emails(cert: &X509Ref) -> Vec<String> {
    let mut emails: Vec<String> = cert
        .subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.email().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default();
    emails.extend(
        cert.subject_name()
            .entries_by_nid(Nid::PKCS9_EMAILADDRESS)
            .filter_map(|e| e.data().to_string().ok().map(|s| s.to_ascii_lowercase())),
    );
    emails
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pair, signed_by};

    #[test]
    fn certificates_are_carried_apart_and_the_signature_still_verifies() {
        let signer = pair(7);
        let signed = signed_by(&signer, SignatureScheme::PssSha256);
        let trust = Trust::new(std::slice::from_ref(&signer.cert), &[]).expect("trust");
        // Twice: the second time from the caches, with the same verdict.
        for _ in 0..2 {
            let verdict = verify(&signed, &trust);
            assert!(
                matches!(verdict, Verdict::Valid(ref s) if s.name == "Dr Test"),
                "{verdict:?}"
            );
        }
        assert_eq!(lock(&trust.certificates).len(), 1);
        assert_eq!(lock(&trust.chains).len(), 1);

        let der = crate::testing::signature_der(&signed);
        let (bare, certs) = der::split_certificates(&der).expect("split");
        assert_eq!(certs, vec![signer.cert.to_der().expect("der").as_slice()]);
        let bare = CmsContentInfo::from_der(&bare).expect("the bare SignedData is valid DER");
        assert!(ffi::signers(&bare).map(|s| s.is_empty()).unwrap_or(true));
    }

    #[test]
    fn a_failed_chain_is_remembered_as_failed() {
        let (signer, stranger) = (pair(7), pair(8));
        let signed = signed_by(&signer, SignatureScheme::PssSha256);
        let trust = Trust::new(&[stranger.cert], &[]).expect("trust");
        for _ in 0..2 {
            assert_eq!(
                verify(&signed, &trust),
                Verdict::Invalid(Failure::UnknownCa)
            );
        }
    }

    #[test]
    fn the_usual_shape_is_decided_without_cms() {
        let signer = pair(9);
        let trust = Trust::new(std::slice::from_ref(&signer.cert), &[]).expect("trust");
        for scheme in [SignatureScheme::PssSha256, SignatureScheme::Pkcs1v15Sha256] {
            let signed = signed_by(&signer, scheme);
            let (content, der) = crate::testing::signed_parts(&signed);
            let (bare, carried_der) = der::split_certificates(&der).expect("split");
            let carried = trust.parsed(&carried_der).expect("parsed");
            let usual = signer_info::usual_signer(&bare).expect("the usual shape");
            let cert = check_usual(&usual, &content, &carried_der, &carried)
                .expect("the signature holds")
                .expect("decided here, not handed to CMS");
            assert_eq!(cert.to_der().ok(), signer.cert.to_der().ok());
            let mut altered = content.clone();
            altered[0] ^= 0x20;
            assert_eq!(
                check_usual(&usual, &altered, &carried_der, &carried).err(),
                Some(Failure::Tampered)
            );
        }
    }

    #[test]
    fn fuzz_signed_messages() {
        let signer = pair(11);
        let trust = Trust::new(std::slice::from_ref(&signer.cert), &[]).expect("trust");
        let signed = signed_by(&signer, SignatureScheme::PssSha256);
        let opaque_prefix = b"Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n\
            Content-Transfer-Encoding: base64\r\n\r\n";
        let opaque = [
            &opaque_prefix[..],
            b"MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCA\r\n",
        ]
        .concat();
        mssante_fuzzing::fuzz("smime verify", &[&signed, &opaque], move |input| {
            if let Verdict::Valid(_) = verify(input, &trust) {
                // Only the genuine signature over the genuine content may read valid.
                assert!(
                    input
                        .windows(crate::testing::ENTITY.len())
                        .any(|w| w == crate::testing::ENTITY),
                    "valid without the signed content"
                );
            }
            let _ = opaque_content(input);
        });
    }
}
