//! Certificate and CRL building on OpenSSL, for the TEST PKI.
//!
//! Two things the `openssl` crate cannot express are done here through `openssl-sys`, in the
//! only `unsafe` of this module: the multi-valued RDN of IGC-Santé person certificates
//! (`{CN=idNat + SN=surname + GN=given}` in ONE set), and building a CRL.

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Crl, X509Extension, X509Name, X509NameBuilder, X509Ref};

/// ANS private extension: product category (bit 0x80 marks a TEST product).
pub const OID_PRODUCT_CATEGORY: &str = "1.2.250.1.71.1.2.5";
/// ANS private extension: card type (0 CPS, 1 CPF, 2 CPE, 3 CPA).
pub const OID_CARD_TYPE: &str = "1.2.250.1.71.1.2.2";
/// ANS private extension: profession code.
pub const OID_PROFESSION: &str = "1.2.250.1.71.1.2.7";
/// Product category of a TEST smart card.
pub const CATEGORY_TEST_CARD: u8 = 0x80;
/// Product category of a TEST software certificate.
pub const CATEGORY_TEST_SOFTWARE: u8 = 0x83;

/// One attribute of a distinguished name: (short name or OID, value).
pub type Attr<'a> = (&'a str, &'a str);

/// A distinguished name where each entry is an RDN, and an entry with several attributes is
/// a multi-valued RDN.
pub fn name(rdns: &[&[Attr<'_>]]) -> Result<X509Name, ErrorStack> {
    let name = X509NameBuilder::new()?.build();
    for rdn in rdns {
        for (i, (field, value)) in rdn.iter().enumerate() {
            // set = 0 opens a new RDN; -1 adds to the one just opened.
            add_entry(&name, field, value, if i == 0 { 0 } else { -1 })?;
        }
    }
    Ok(name)
}

fn add_entry(name: &X509Name, field: &str, value: &str, set: i32) -> Result<(), ErrorStack> {
    let field = std::ffi::CString::new(field).map_err(|_| ErrorStack::get())?;
    let len = i32::try_from(value.len()).map_err(|_| ErrorStack::get())?;
    // SAFETY: `name` is a live X509_NAME owned by this module (not shared); the strings are
    // valid for the call, which copies them.
    let ok = unsafe {
        openssl_sys::X509_NAME_add_entry_by_txt(
            name.as_ptr(),
            field.as_ptr(),
            openssl_sys::MBSTRING_UTF8,
            value.as_ptr(),
            len,
            -1,
            set,
        )
    };
    if ok == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

/// A fresh RSA-2048 key, as IGC-Santé issues.
pub fn new_key() -> Result<PKey<Private>, ErrorStack> {
    PKey::from_rsa(Rsa::generate(2048)?)
}

/// An ANS private extension: the extension value wraps one DER INTEGER.
pub fn ans_extension(oid: &str, value: u8) -> Result<X509Extension, ErrorStack> {
    let value = BigNum::from_u32(u32::from(value))?;
    let der = Asn1Integer::from_bn(&value)?;
    let oid = Asn1Object::from_str(oid)?;
    let contents = Asn1OctetString::new_from_bytes(&integer_der(&der)?)?;
    X509Extension::new_from_der(&oid, false, &contents)
}

fn integer_der(int: &Asn1Integer) -> Result<Vec<u8>, ErrorStack> {
    let bytes = int.to_bn()?.to_vec();
    // DER INTEGER: a leading zero when the high bit is set; zero itself is one 0x00 byte.
    let mut content = if bytes.is_empty() { vec![0] } else { bytes };
    if content[0] & 0x80 != 0 {
        content.insert(0, 0);
    }
    let mut der = vec![0x02, content.len() as u8];
    der.extend_from_slice(&content);
    Ok(der)
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A certification authority (`path_len` intermediates below it).
    Ca {
        /// Intermediate CAs allowed below.
        path_len: Option<u32>,
    },
    /// A server (operator MTA): TLS server and client.
    Server,
    /// Card authentication: TLS client, smart card logon.
    CardAuth,
    /// S/MIME signature (non-repudiation).
    Signature,
    /// S/MIME encryption.
    Encryption,
}

/// What to put in a certificate besides its profile.
pub struct CertSpec<'a> {
    /// Subject.
    pub subject: &'a X509Name,
    /// Days of validity from now.
    pub days: u32,
    /// DNS names (server) or e-mail addresses (S/MIME) for subjectAltName.
    pub dns: Vec<String>,
    /// IP addresses for subjectAltName.
    pub ips: Vec<String>,
    /// E-mail addresses for subjectAltName.
    pub emails: Vec<String>,
    /// Extra extensions (ANS private ones).
    pub extra: Vec<X509Extension>,
    /// Valid from two days ago to yesterday instead: an expired certificate, to test that
    /// it is refused.
    pub expired: bool,
}

/// Builds and signs a certificate. `issuer` is None for a self-signed root.
pub fn certificate(
    spec: &CertSpec<'_>,
    key: &PKeyRef<Private>,
    profile: Profile,
    issuer: Option<(&X509Ref, &PKeyRef<Private>)>,
) -> Result<X509, ErrorStack> {
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(spec.subject)?;
    b.set_issuer_name(issuer.map_or(spec.subject, |(c, _)| c.subject_name()))?;
    b.set_pubkey(key)?;
    let (not_before, not_after) = if spec.expired {
        let now = chrono::Utc::now().timestamp();
        (
            Asn1Time::from_unix(now - 2 * 86_400)?,
            Asn1Time::from_unix(now - 86_400)?,
        )
    } else {
        (
            Asn1Time::days_from_now(0)?,
            Asn1Time::days_from_now(spec.days)?,
        )
    };
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;

    let (ku, eku, ca) = match profile {
        Profile::Ca { path_len } => {
            let mut bc = BasicConstraints::new();
            bc.critical().ca();
            if let Some(n) = path_len {
                bc.pathlen(n);
            }
            (
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()?,
                None,
                Some(bc.build()?),
            )
        }
        Profile::Server => (
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()?,
            Some(
                ExtendedKeyUsage::new()
                    .server_auth()
                    .client_auth()
                    .build()?,
            ),
            None,
        ),
        Profile::CardAuth => (
            KeyUsage::new().critical().digital_signature().build()?,
            Some(
                ExtendedKeyUsage::new()
                    .client_auth()
                    .other("1.3.6.1.4.1.311.20.2.2")
                    .build()?,
            ),
            None,
        ),
        Profile::Signature => (
            KeyUsage::new()
                .critical()
                .digital_signature()
                .non_repudiation()
                .build()?,
            Some(ExtendedKeyUsage::new().email_protection().build()?),
            None,
        ),
        Profile::Encryption => (
            KeyUsage::new()
                .critical()
                .key_encipherment()
                .data_encipherment()
                .build()?,
            Some(ExtendedKeyUsage::new().email_protection().build()?),
            None,
        ),
    };
    b.append_extension(ca.map_or_else(|| BasicConstraints::new().critical().build(), Ok)?)?;
    b.append_extension(ku)?;
    if let Some(eku) = eku {
        b.append_extension(eku)?;
    }
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(issuer.map(|(c, _)| c), None))?;
    b.append_extension(ski)?;
    if issuer.is_some() {
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(issuer.map(|(c, _)| c), None))?;
        b.append_extension(aki)?;
    }
    if !(spec.dns.is_empty() && spec.ips.is_empty() && spec.emails.is_empty()) {
        let mut san = SubjectAlternativeName::new();
        spec.dns.iter().for_each(|d| {
            san.dns(d);
        });
        spec.ips.iter().for_each(|i| {
            san.ip(i);
        });
        spec.emails.iter().for_each(|e| {
            san.email(e);
        });
        b.append_extension(san.build(&b.x509v3_context(issuer.map(|(c, _)| c), None))?)?;
    }
    for ext in &spec.extra {
        b.append_extension2(ext)?;
    }
    let signer = issuer.map_or(key, |(_, k)| k);
    b.sign(signer, MessageDigest::sha256())?;
    Ok(b.build())
}

/// One revoked certificate: serial (hex) and revocation time (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// Serial number, upper-case hex.
    pub serial_hex: String,
    /// When it was revoked.
    pub at: i64,
}

/// Builds a signed v2 CRL (with CRL number and authority key identifier, as RFC 5280 and
/// webpki require), valid for `days`.
pub fn crl(
    issuer: &X509Ref,
    key: &PKeyRef<Private>,
    revoked: &[Revoked],
    number: u32,
    days: u32,
) -> Result<Vec<u8>, ErrorStack> {
    let check = |rc: i32| {
        if rc == 1 {
            Ok(())
        } else {
            Err(ErrorStack::get())
        }
    };
    // SAFETY: every pointer passed below is either freshly allocated here and owned by a Rust
    // wrapper (`crl`, `rev` until add0 takes it), or borrowed from a live wrapper for the
    // duration of the call; the set1/set_* functions copy what they are given.
    unsafe {
        let raw = openssl_sys::X509_CRL_new();
        if raw.is_null() {
            return Err(ErrorStack::get());
        }
        let crl = X509Crl::from_ptr(raw);
        check(openssl_sys::X509_CRL_set_version(crl.as_ptr(), 1))?;
        check(openssl_sys::X509_CRL_set_issuer_name(
            crl.as_ptr(),
            openssl_sys::X509_get_subject_name(issuer.as_ptr()),
        ))?;
        check(openssl_sys::X509_CRL_set1_lastUpdate(
            crl.as_ptr(),
            Asn1Time::days_from_now(0)?.as_ptr(),
        ))?;
        check(openssl_sys::X509_CRL_set1_nextUpdate(
            crl.as_ptr(),
            Asn1Time::days_from_now(days)?.as_ptr(),
        ))?;
        for r in revoked {
            let serial = BigNum::from_hex_str(&r.serial_hex)?.to_asn1_integer()?;
            let at = Asn1Time::from_unix(r.at as _)?;
            let rev = openssl_sys::X509_REVOKED_new();
            if rev.is_null() {
                return Err(ErrorStack::get());
            }
            if openssl_sys::X509_REVOKED_set_serialNumber(rev, serial.as_ptr()) != 1
                || openssl_sys::X509_REVOKED_set_revocationDate(rev, at.as_ptr()) != 1
                || openssl_sys::X509_CRL_add0_revoked(crl.as_ptr(), rev) != 1
            {
                openssl_sys::X509_REVOKED_free(rev);
                return Err(ErrorStack::get());
            }
        }
        let number = BigNum::from_u32(number)?;
        let number = Asn1Integer::from_bn(&number)?;
        let oid = Asn1Object::from_str("2.5.29.20")?;
        let contents = Asn1OctetString::new_from_bytes(&integer_der(&number)?)?;
        let crl_number = X509Extension::new_from_der(&oid, false, &contents)?;
        check(openssl_sys::X509_CRL_add_ext(
            crl.as_ptr(),
            crl_number.as_ptr(),
            -1,
        ))?;
        if let Some(ski) = issuer.subject_key_id() {
            let id = ski.as_slice();
            let mut aki = vec![0x30, (id.len() + 2) as u8, 0x80, id.len() as u8];
            aki.extend_from_slice(id);
            let oid = Asn1Object::from_str("2.5.29.35")?;
            let contents = Asn1OctetString::new_from_bytes(&aki)?;
            let ext = X509Extension::new_from_der(&oid, false, &contents)?;
            check(openssl_sys::X509_CRL_add_ext(
                crl.as_ptr(),
                ext.as_ptr(),
                -1,
            ))?;
        }
        check(openssl_sys::X509_CRL_sort(crl.as_ptr()))?;
        if openssl_sys::X509_CRL_sign(crl.as_ptr(), key.as_ptr(), MessageDigest::sha256().as_ptr())
            <= 0
        {
            return Err(ErrorStack::get());
        }
        crl.to_der()
    }
}

/// A self-signed card-authentication certificate (DER) with this subject and extensions,
/// for the unit tests that read certificates.
#[cfg(test)]
pub fn test_card(rdns: &[&[Attr<'_>]], extra: Vec<X509Extension>) -> Vec<u8> {
    let key = new_key().expect("key");
    let subject = name(rdns).expect("name");
    let spec = CertSpec {
        subject: &subject,
        days: 1,
        dns: vec![],
        ips: vec![],
        emails: vec![],
        extra,
        expired: false,
    };
    certificate(&spec, &key, Profile::CardAuth, None)
        .and_then(|c| c.to_der())
        .expect("certificate")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_valued_rdn_is_one_set() {
        let n = name(&[
            &[("C", "FR")],
            &[("CN", "899700367917"), ("SN", "DUPONT"), ("GN", "Jean")],
        ])
        .unwrap();
        let der = n.to_der().unwrap();
        use x509_parser::prelude::FromDer;
        let (_, parsed) = x509_parser::x509::X509Name::from_der(&der).unwrap();
        assert_eq!(parsed.iter().count(), 2, "two RDNs: C, then CN+SN+GN");
        assert_eq!(parsed.iter().nth(1).unwrap().iter().count(), 3);
    }

    #[test]
    fn crl_lists_revoked_serials_and_verifies() {
        let key = new_key().unwrap();
        let subject = name(&[&[("CN", "TEST CA")]]).unwrap();
        let spec = CertSpec {
            subject: &subject,
            days: 10,
            dns: vec![],
            ips: vec![],
            emails: vec![],
            extra: vec![],
            expired: false,
        };
        let ca = certificate(&spec, &key, Profile::Ca { path_len: None }, None).unwrap();
        let revoked = [Revoked {
            serial_hex: "0A1B".into(),
            at: 1_700_000_000,
        }];
        let der = crl(&ca, &key, &revoked, 7, 7).unwrap();
        let parsed = X509Crl::from_der(&der).unwrap();
        assert!(parsed.verify(&ca.public_key().unwrap()).unwrap());
        let serials: Vec<String> = parsed
            .get_revoked()
            .unwrap()
            .iter()
            .map(|r| {
                r.serial_number()
                    .to_bn()
                    .unwrap()
                    .to_hex_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(serials, ["0A1B"]);
        webpki::BorrowedCertRevocationList::from_der(&der).expect("webpki accepts our CRL");
    }
}
