//! Who a certificate names: the idNat of an IGC-Santé person certificate, and whether a
//! certificate is TEST material.
//!
//! Person certificates put `CN=<idNat>`, `SN` and `GN` in ONE multi-valued RDN. A parser that
//! takes "the first attribute of the RDN" may get the surname, so the idNat is read as the CN
//! of the RDN that also holds SN or GN, and mailboxes are mapped by idNat, never by name.

use std::str::FromStr;
use x509_parser::oid_registry::{OID_X509_COMMON_NAME, OID_X509_GIVEN_NAME, OID_X509_SURNAME};

use x509_parser::prelude::*;

use crate::pki::x509::OID_PRODUCT_CATEGORY;

/// Why no identity could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not a DER certificate.
    #[error("malformed certificate")]
    Malformed,
    /// No `{CN + SN + GN}` RDN: not a person certificate.
    #[error("not a person certificate (no CN+SN+GN RDN)")]
    NotAPerson,
    /// A field that must be read to decide (the UPN) is there but cannot be read.
    #[error("a certificate field cannot be read")]
    Unreadable,
}

/// What a person certificate says of its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// National identifier (type digit + identifier).
    pub idnat: String,
    /// Surname.
    pub surname: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
}

/// The subject of a certificate as a comparable DN (attribute short names as in the
/// whitelist: CN, OU, O, ST, C, ...).
pub fn subject_dn(der: &[u8]) -> Result<mssante_directory::DistinguishedName, IdentityError> {
    let (_, cert) = parse_x509_certificate(der).map_err(|_| IdentityError::Malformed)?;
    let pairs = cert.subject().iter_attributes().map(|a| {
        let kind = match a.attr_type().to_id_string().as_str() {
            "2.5.4.3" => "CN".to_string(),
            "2.5.4.4" => "SN".to_string(),
            "2.5.4.5" => "SERIALNUMBER".to_string(),
            "2.5.4.6" => "C".to_string(),
            "2.5.4.7" => "L".to_string(),
            "2.5.4.8" => "ST".to_string(),
            "2.5.4.10" => "O".to_string(),
            "2.5.4.11" => "OU".to_string(),
            "2.5.4.12" => "T".to_string(),
            "2.5.4.42" => "GN".to_string(),
            "1.2.840.113549.1.9.1" => "EMAILADDRESS".to_string(),
            other => other.to_string(),
        };
        (kind, a.as_str().unwrap_or("").to_string())
    });
    Ok(mssante_directory::DistinguishedName::from_attributes(pairs))
}

/// Reads the holder of a person certificate.
pub fn person(der: &[u8]) -> Result<Person, IdentityError> {
    let (_, cert) = parse_x509_certificate(der).map_err(|_| IdentityError::Malformed)?;
    for rdn in cert.subject().iter() {
        let get = |oid| {
            rdn.iter()
                .find(|a| a.attr_type() == &oid)
                .and_then(|a| a.as_str().ok())
                .map(str::to_string)
        };
        let (cn, sn, gn) = (
            get(OID_X509_COMMON_NAME),
            get(OID_X509_SURNAME),
            get(OID_X509_GIVEN_NAME),
        );
        if let Some(idnat) = cn
            && (sn.is_some() || gn.is_some())
        {
            return Ok(Person {
                idnat,
                surname: sn,
                given_name: gn,
            });
        }
    }
    Err(IdentityError::NotAPerson)
}

/// The UPN (Microsoft otherName 1.3.6.1.4.1.311.20.2.3) of the subject alternative name,
/// as CPS cards carry `<idNat>@carte-cps.fr`: Ok(None) when the certificate has none,
/// Err when it has one that cannot be read (a card is then refused, not waved through).
pub fn upn(der: &[u8]) -> Result<Option<String>, IdentityError> {
    let (_, cert) = parse_x509_certificate(der).map_err(|_| IdentityError::Unreadable)?;
    let Some(san) = cert
        .subject_alternative_name()
        .map_err(|_| IdentityError::Unreadable)?
    else {
        return Ok(None);
    };
    let mut found = None;
    for name in &san.value.general_names {
        let GeneralName::OtherName(oid, value) = name else {
            continue;
        };
        if oid.to_id_string() != "1.3.6.1.4.1.311.20.2.3" {
            continue;
        }
        if found.is_some() {
            return Err(IdentityError::Unreadable); // two UPNs: which one?
        }
        found = Some(upn_value(value).ok_or(IdentityError::Unreadable)?);
    }
    Ok(found)
}

/// The UTF8String of an otherName value, `[0] EXPLICIT` wrapper or not, exactly one TLV.
fn upn_value(value: &[u8]) -> Option<String> {
    let (tag, content, rest) = mssante_smime::first_element(value)?;
    let (tag, content, rest) = match tag {
        0xa0 if rest.is_empty() => mssante_smime::first_element(content)?,
        _ => (tag, content, rest),
    };
    (tag == 0x0c && rest.is_empty()).then_some(())?;
    String::from_utf8(content.to_vec()).ok()
}

/// The ANS product category, when the certificate carries one.
pub fn product_category(der: &[u8]) -> Option<u8> {
    let (_, cert) = parse_x509_certificate(der).ok()?;
    let oid = x509_parser::der_parser::oid::Oid::from_str(OID_PRODUCT_CATEGORY).ok()?;
    let ext = cert.extensions().iter().find(|e| e.oid == oid)?;
    // One DER value: INTEGER, ENUMERATED or a one-byte OCTET STRING / BIT STRING.
    match ext.value {
        [0x02 | 0x0a | 0x04, len, rest @ ..]
            if usize::from(*len) == rest.len() && !rest.is_empty() =>
        {
            rest.last().copied()
        }
        _ => None,
    }
}

/// TEST material: a TEST product category (bit 0x80), or an issuer or subject of the
/// `IGC-SANTE TEST` branch.
pub fn is_test_certificate(der: &[u8]) -> bool {
    if product_category(der).is_some_and(|c| c & 0x80 != 0) {
        return true;
    }
    let Ok((_, cert)) = parse_x509_certificate(der) else {
        return false;
    };
    let test_ou = |name: &X509Name<'_>| {
        name.iter_organizational_unit()
            .any(|ou| ou.as_str().is_ok_and(|s| s.contains("IGC-SANTE TEST")))
    };
    test_ou(cert.issuer()) || test_ou(cert.subject())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::x509;

    use crate::pki::x509::test_card as cert;

    #[test]
    fn idnat_comes_from_the_cn_of_the_multi_valued_rdn() {
        // SN first inside the set: a naive "first attribute" reader would return DUPONT.
        let der = cert(
            &[
                &[("C", "FR")],
                &[("SN", "DUPONT"), ("CN", "899700367917"), ("GN", "Jean")],
            ],
            vec![],
        );
        let p = person(&der).unwrap();
        assert_eq!(p.idnat, "899700367917");
        assert_eq!(p.surname.as_deref(), Some("DUPONT"));
        assert_eq!(p.given_name.as_deref(), Some("Jean"));
    }

    #[test]
    fn a_server_certificate_is_not_a_person() {
        let der = cert(&[&[("C", "FR")], &[("CN", "smtp.example.fr")]], vec![]);
        assert_eq!(person(&der), Err(IdentityError::NotAPerson));
        assert_eq!(person(b"garbage"), Err(IdentityError::Malformed));
    }

    #[test]
    fn test_category_and_test_ou_are_detected() {
        let ext =
            x509::ans_extension(x509::OID_PRODUCT_CATEGORY, x509::CATEGORY_TEST_CARD).unwrap();
        let der = cert(&[&[("CN", "899700367917"), ("SN", "X")]], vec![ext]);
        assert_eq!(product_category(&der), Some(0x80));
        assert!(is_test_certificate(&der));
        let der = cert(&[&[("OU", "IGC-SANTE TEST")], &[("CN", "x")]], vec![]);
        assert!(is_test_certificate(&der));
        let der = cert(&[&[("OU", "IGC-SANTE")], &[("CN", "x")]], vec![]);
        assert!(!is_test_certificate(&der));
    }

    #[test]
    fn the_upn_of_a_card_is_read() {
        #[allow(deprecated)] // the openssl crate's one way to write an otherName SAN
        let san = openssl::x509::X509Extension::new_nid(
            None,
            None,
            openssl::nid::Nid::SUBJECT_ALT_NAME,
            "otherName:1.3.6.1.4.1.311.20.2.3;UTF8:899700367917@carte-cps.fr",
        )
        .expect("SAN extension");
        let der = cert(&[&[("CN", "899700367917"), ("SN", "X")]], vec![san]);
        assert_eq!(
            upn(&der).expect("readable").as_deref(),
            Some("899700367917@carte-cps.fr")
        );
        let der = cert(&[&[("CN", "899700367917"), ("SN", "X")]], vec![]);
        assert_eq!(upn(&der).expect("readable"), None);
    }

    #[test]
    fn an_unreadable_upn_is_an_error_not_none() {
        #[allow(deprecated)]
        let san = openssl::x509::X509Extension::new_nid(
            None,
            None,
            openssl::nid::Nid::SUBJECT_ALT_NAME,
            "otherName:1.3.6.1.4.1.311.20.2.3;IA5STRING:899700367917@carte-cps.fr",
        )
        .expect("SAN extension");
        let der = cert(&[&[("CN", "899700367917"), ("SN", "X")]], vec![san]);
        assert!(upn(&der).is_err(), "an IA5String UPN is not read as none");
        // A long UPN (long-form DER length) is read, not skipped.
        let long = format!("{}@carte-cps.fr", "8".repeat(200));
        #[allow(deprecated)]
        let san = openssl::x509::X509Extension::new_nid(
            None,
            None,
            openssl::nid::Nid::SUBJECT_ALT_NAME,
            &format!("otherName:1.3.6.1.4.1.311.20.2.3;UTF8:{long}"),
        )
        .expect("SAN extension");
        let der = cert(&[&[("CN", "899700367917"), ("SN", "X")]], vec![san]);
        assert_eq!(upn(&der).expect("readable"), Some(long));
    }
}
