//! A small reader of DER (and of the BER indefinite lengths other S/MIME agents emit), just
//! enough to name the algorithms of a CMS structure before any key touches it, so weak ones
//! are refused by name (RFC 5652 structure, RFC 8551 algorithm requirements).

/// One element: its tag octet and its content (for an indefinite length, the encodings of
/// its children, end-of-contents excluded).
pub(crate) struct Element<'a> {
    pub(crate) tag: u8,
    pub(crate) content: &'a [u8],
}

/// Deepest nesting read: a real CMS structure is a dozen levels deep.
const MAX_DEPTH: usize = 64;

/// Reads one element; returns it and what follows.
fn element(input: &[u8], depth: usize) -> Option<(Element<'_>, &[u8])> {
    if depth > MAX_DEPTH {
        return None;
    }
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-octet tags never occur in CMS
    }
    let (&first, rest) = rest.split_first()?;
    if first == 0x80 {
        // Indefinite length (BER): children until the end-of-contents octets.
        if tag & 0x20 == 0 {
            return None;
        }
        let mut cursor = rest;
        loop {
            if cursor.starts_with(&[0, 0]) {
                let used = rest.len() - cursor.len();
                return Some((
                    Element {
                        tag,
                        content: &rest[..used],
                    },
                    &cursor[2..],
                ));
            }
            let (_, after) = element(cursor, depth + 1)?;
            cursor = after;
        }
    }
    let (len, rest) = if first & 0x80 == 0 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((
        Element {
            tag,
            content: &rest[..len],
        },
        &rest[len..],
    ))
}

/// The first DER element of `input`: its tag octet, its content, and what follows (the one
/// element reader, shared with the server's certificate fields).
pub fn first_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    element(input, 0).map(|(e, rest)| (e.tag, e.content, rest))
}

/// Splits concatenated DER elements (a certificate chain stored one after the other).
pub fn split(mut input: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (_, rest) = element(input, 0)?;
        out.push(&input[..input.len() - rest.len()]);
        input = rest;
    }
    Some(out)
}

/// The children of a constructed element's content.
pub(crate) fn children(content: &[u8], depth: usize) -> Option<Vec<Element<'_>>> {
    let mut out = Vec::new();
    let mut cursor = content;
    while !cursor.is_empty() {
        let (e, rest) = element(cursor, depth + 1)?;
        out.push(e);
        cursor = rest;
    }
    Some(out)
}

/// A dotted OID from its content octets.
pub(crate) fn oid_text(content: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut value: u64 = 0;
    for (i, b) in content.iter().enumerate() {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() && i < 8 {
                let first = (value / 40).min(2);
                parts.push(first);
                parts.push(value - first * 40);
            } else {
                parts.push(value);
            }
            value = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

pub(crate) const OID: u8 = 0x06;
pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const EXPLICIT_0: u8 = 0xa0;

/// What a CMS ContentInfo holds, by content type, with the algorithms that matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Structure {
    /// EnvelopedData or AuthEnvelopedData, with its content-encryption algorithm OID.
    Enveloped {
        /// Dotted OID.
        cipher: String,
    },
    /// SignedData, with its digest algorithm OIDs.
    Signed {
        /// Dotted OIDs.
        digests: Vec<String>,
    },
    /// Any other content type (dotted OID).
    Other(String),
}

/// Reads the outline of a CMS ContentInfo; None when it is not one.
pub fn structure(der: &[u8]) -> Option<Structure> {
    let (info, _) = element(der, 0)?;
    let parts = (info.tag == SEQUENCE).then(|| children(info.content, 1))??;
    let [content_type, wrapped, ..] = parts.as_slice() else {
        return None;
    };
    if content_type.tag != OID || wrapped.tag != EXPLICIT_0 {
        return None;
    }
    let kind = oid_text(content_type.content);
    let inner = children(wrapped.content, 2)?;
    let body = inner.first().filter(|e| e.tag == SEQUENCE)?;
    let fields = children(body.content, 3)?;
    match kind.as_str() {
        // id-envelopedData, id-ct-authEnvelopedData: version, [originatorInfo],
        // recipientInfos, then the encrypted content info with its algorithm.
        "1.2.840.113549.1.7.3" | "1.2.840.113549.1.9.16.1.23" => {
            let info = fields.iter().find(|e| e.tag == SEQUENCE)?;
            let info = children(info.content, 4)?;
            let algorithm = info.get(1).filter(|e| e.tag == SEQUENCE)?;
            let oid = children(algorithm.content, 5)?
                .into_iter()
                .next()
                .filter(|e| e.tag == OID)?;
            Some(Structure::Enveloped {
                cipher: oid_text(oid.content),
            })
        }
        // id-signedData: version, digestAlgorithms SET, ...
        "1.2.840.113549.1.7.2" => {
            let set = fields.iter().find(|e| e.tag == SET)?;
            let digests = children(set.content, 4)?
                .iter()
                .filter_map(|alg| children(alg.content, 5))
                .filter_map(|a| a.into_iter().next().filter(|e| e.tag == OID))
                .map(|oid| oid_text(oid.content))
                .collect();
            Some(Structure::Signed { digests })
        }
        _ => Some(Structure::Other(kind)),
    }
}

/// One element's children with their whole encodings (tag and length included).
pub(crate) fn children_raw(content: &[u8], depth: usize) -> Option<Vec<(Element<'_>, &[u8])>> {
    let mut out = Vec::new();
    let mut cursor = content;
    while !cursor.is_empty() {
        let (e, rest) = element(cursor, depth + 1)?;
        out.push((e, &cursor[..cursor.len() - rest.len()]));
        cursor = rest;
    }
    Some(out)
}

pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const NULL: u8 = 0x05;

/// An AuthEnvelopedData whose content is AES-GCM without authenticated attributes, with its
/// RSA-OAEP-SHA256 recipients: the shape this server and current agents send. It is opened
/// without OpenSSL's CMS layer, whose per-message set-up costs a fifth of the RSA operation;
/// every other shape (PKCS#1 v1.5, CBC, key identifiers, attributes) goes to OpenSSL.
#[derive(Debug)]
pub struct GcmEnvelope<'a> {
    /// Recipients by issuer and serial number, with RSA-OAEP-SHA256 key transport.
    pub recipients: Vec<OaepRecipient<'a>>,
    /// The AES key length in octets: 16, 24 or 32.
    pub key_len: usize,
    /// The GCM nonce.
    pub nonce: &'a [u8],
    /// The encrypted content (BER segments joined).
    pub ciphertext: Vec<u8>,
    /// The GCM tag (the `mac` field).
    pub tag: &'a [u8],
}

/// A key-transport recipient of a [`GcmEnvelope`].
#[derive(Debug)]
pub struct OaepRecipient<'a> {
    /// The issuer Name, whole encoding.
    pub issuer: &'a [u8],
    /// The serial number's INTEGER content.
    pub serial: &'a [u8],
    /// The content-encryption key, encrypted with RSA-OAEP-SHA256.
    pub encrypted_key: &'a [u8],
}

/// The fields (read at depth 3) of the one SEQUENCE a ContentInfo of type `content_type`
/// (dotted OID) carries; None when `der` is another type or shape.
pub(crate) fn content_fields<'a>(der: &'a [u8], content_type: &str) -> Option<Vec<Element<'a>>> {
    let (info, _) = element(der, 0)?;
    let parts = (info.tag == SEQUENCE).then(|| children(info.content, 1))??;
    let [kind, wrapped] = parts.as_slice() else {
        return None;
    };
    if kind.tag != OID || oid_text(kind.content) != content_type || wrapped.tag != EXPLICIT_0 {
        return None;
    }
    let inner = children(wrapped.content, 2)?;
    let [body] = inner.as_slice() else {
        return None;
    };
    (body.tag == SEQUENCE).then(|| children(body.content, 3))?
}

/// Reads `der` as a [`GcmEnvelope`]; None for any other shape.
pub fn gcm_envelope(der: &[u8]) -> Option<GcmEnvelope<'_>> {
    let fields = content_fields(der, "1.2.840.113549.1.9.16.1.23")?;
    // version, [0] originatorInfo?, recipientInfos, authEncryptedContentInfo, mac.
    let mut fields = fields.iter().filter(|e| e.tag != EXPLICIT_0).skip(1);
    let (recipient_set, content, mac) = (fields.next()?, fields.next()?, fields.next()?);
    if recipient_set.tag != SET || content.tag != SEQUENCE || mac.tag != OCTET_STRING {
        return None; // authAttrs ([1]) would be authenticated data: OpenSSL's case
    }
    let recipients = children(recipient_set.content, 4)?
        .iter()
        .filter_map(|ri| oaep_recipient(ri, 5))
        .collect();
    let content = children(content.content, 4)?;
    let [_, algorithm, encrypted] = content.as_slice() else {
        return None;
    };
    let algorithm = children(algorithm.content, 5)?;
    let [cipher, params] = algorithm.as_slice() else {
        return None;
    };
    let key_len = match oid_text(cipher.content).as_str() {
        "2.16.840.1.101.3.4.1.6" => 16,
        "2.16.840.1.101.3.4.1.26" => 24,
        "2.16.840.1.101.3.4.1.46" => 32,
        _ => return None,
    };
    let params = children(params.content, 6)?;
    let nonce = params.first().filter(|e| e.tag == OCTET_STRING)?.content;
    let tag_len = match params.get(1) {
        Some(e) if e.tag == INTEGER && e.content.len() == 1 => usize::from(e.content[0]),
        Some(_) => return None,
        None => 12,
    };
    if !(12..=16).contains(&tag_len) || mac.content.len() != tag_len || nonce.is_empty() {
        return None;
    }
    let ciphertext = match encrypted.tag {
        0x80 => encrypted.content.to_vec(),
        0xa0 => {
            let segments = children(encrypted.content, 5)?;
            if segments.iter().any(|e| e.tag != OCTET_STRING) {
                return None;
            }
            segments.iter().flat_map(|e| e.content).copied().collect()
        }
        _ => return None,
    };
    Some(GcmEnvelope {
        recipients,
        key_len,
        nonce,
        ciphertext,
        tag: mac.content,
    })
}

/// A KeyTransRecipientInfo by issuer and serial with RSA-OAEP, SHA-256 and MGF1-SHA-256.
fn oaep_recipient<'a>(ri: &Element<'a>, depth: usize) -> Option<OaepRecipient<'a>> {
    if ri.tag != SEQUENCE {
        return None; // [1]..[4]: key agreement, KEK, password, other
    }
    let fields = children(ri.content, depth)?;
    let [_, rid, algorithm, encrypted_key] = fields.as_slice() else {
        return None;
    };
    if rid.tag != SEQUENCE || algorithm.tag != SEQUENCE || encrypted_key.tag != OCTET_STRING {
        return None;
    }
    let rid = children_raw(rid.content, depth + 1)?;
    let [(issuer, issuer_raw), (serial, _)] = rid.as_slice() else {
        return None;
    };
    if issuer.tag != SEQUENCE || serial.tag != INTEGER {
        return None;
    }
    let algorithm = children(algorithm.content, depth + 1)?;
    let [oid, params] = algorithm.as_slice() else {
        return None;
    };
    if oid_text(oid.content) != "1.2.840.113549.1.1.7"
        || oaep_sha256(params, depth + 2) != Some(true)
    {
        return None;
    }
    Some(OaepRecipient {
        issuer: issuer_raw,
        serial: serial.content,
        encrypted_key: encrypted_key.content,
    })
}

/// Whether RSAES-OAEP-params say SHA-256, MGF1 with SHA-256, and the default label.
fn oaep_sha256(params: &Element<'_>, depth: usize) -> Option<bool> {
    let sha256 = |alg: &Element<'_>| -> Option<bool> {
        let parts = children(alg.content, depth + 2)?;
        let oid = parts.first().filter(|e| e.tag == OID)?;
        let params_ok = parts.get(1).is_none_or(|p| p.tag == NULL) && parts.len() <= 2;
        Some(oid_text(oid.content) == "2.16.840.1.101.3.4.2.1" && params_ok)
    };
    let fields = children(params.content, depth)?;
    let [hash, mask] = fields.as_slice() else {
        return Some(false); // SHA-1 defaults, or a label: OpenSSL's case
    };
    if hash.tag != EXPLICIT_0 || mask.tag != 0xa1 {
        return Some(false);
    }
    let hash = children(hash.content, depth + 1)?;
    let mask = children(mask.content, depth + 1)?;
    let (Some(hash), Some(mask)) = (hash.first(), mask.first()) else {
        return Some(false);
    };
    let mgf = children(mask.content, depth + 2)?;
    let [mgf_oid, mgf_hash] = mgf.as_slice() else {
        return Some(false);
    };
    Some(sha256(hash)? && oid_text(mgf_oid.content) == "1.2.840.113549.1.1.8" && sha256(mgf_hash)?)
}

/// A SignedData with its certificates taken out: the DER without them, and each
/// certificate's DER. Parsing a certificate costs OpenSSL 3 more than checking the
/// signature, so the caller parses each distinct certificate once. None when `der` is not a
/// SignedData this can rewrite (the caller then hands the whole DER to OpenSSL).
pub fn split_certificates(der: &[u8]) -> Option<(Vec<u8>, Vec<&[u8]>)> {
    let (info, _) = element(der, 0)?;
    let parts = (info.tag == SEQUENCE).then(|| children_raw(info.content, 1))??;
    let [(content_type, content_type_raw), (wrapped, _)] = parts.as_slice() else {
        return None;
    };
    if content_type.tag != OID
        || oid_text(content_type.content) != "1.2.840.113549.1.7.2"
        || wrapped.tag != EXPLICIT_0
    {
        return None;
    }
    let inner = children(wrapped.content, 2)?;
    let [body] = inner.as_slice() else {
        return None;
    };
    let fields = (body.tag == SEQUENCE).then(|| children_raw(body.content, 3))??;
    let mut signed_data = Vec::new();
    let mut certificates = Vec::new();
    for (field, raw) in &fields {
        if field.tag == EXPLICIT_0 {
            for (cert, cert_raw) in children_raw(field.content, 4)? {
                if cert.tag != SEQUENCE {
                    return None; // attribute certificates and the like: OpenSSL's case
                }
                certificates.push(cert_raw);
            }
        } else {
            signed_data.extend_from_slice(raw);
        }
    }
    let signed_data = encode(SEQUENCE, &signed_data);
    let mut content = content_type_raw.to_vec();
    content.extend(encode(EXPLICIT_0, &signed_data));
    Some((encode(SEQUENCE, &content), certificates))
}

/// A definite-length encoding of `content` under `tag`.
fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let octets: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | octets.len() as u8);
        out.extend(octets);
    }
    out.extend_from_slice(content);
    out
}

/// The content a SignedData encapsulates (opaque signing), BER segments joined; None when
/// `der` is not a SignedData with content.
pub fn encapsulated_content(der: &[u8]) -> Option<Vec<u8>> {
    let (info, _) = element(der, 0)?;
    let parts = (info.tag == SEQUENCE).then(|| children(info.content, 1))??;
    let [content_type, wrapped] = parts.as_slice() else {
        return None;
    };
    if content_type.tag != OID || oid_text(content_type.content) != "1.2.840.113549.1.7.2" {
        return None;
    }
    let inner = children(wrapped.content, 2)?;
    let body = inner.first().filter(|e| e.tag == SEQUENCE)?;
    let fields = children(body.content, 3)?;
    // version, digestAlgorithms, encapContentInfo { eContentType, [0] eContent }.
    let encap = fields.get(2).filter(|e| e.tag == SEQUENCE)?;
    let encap = children(encap.content, 4)?;
    let explicit = encap.get(1).filter(|e| e.tag == EXPLICIT_0)?;
    let octets = children(explicit.content, 5)?;
    let octets = octets.first()?;
    match octets.tag {
        OCTET_STRING => Some(octets.content.to_vec()),
        0x24 => {
            let segments = children(octets.content, 6)?;
            if segments.iter().any(|e| e.tag != OCTET_STRING) {
                return None;
            }
            Some(segments.iter().flat_map(|e| e.content).copied().collect())
        }
        _ => None,
    }
}

/// The issuer Name (whole encoding) and serial number (INTEGER content) of a certificate.
pub fn issuer_and_serial(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    let (certificate, _) = element(cert, 0)?;
    let parts = children(certificate.content, 1)?;
    let tbs = parts.first().filter(|e| e.tag == SEQUENCE)?;
    let fields = children_raw(tbs.content, 2)?;
    // [0] version?, serialNumber, signature, issuer.
    let mut fields = fields.iter().filter(|(e, _)| e.tag != EXPLICIT_0);
    let (serial, _) = fields.next().filter(|(e, _)| e.tag == INTEGER)?;
    let _signature = fields.next()?;
    let (_, issuer) = fields.next().filter(|(e, _)| e.tag == SEQUENCE)?;
    Some((issuer, serial.content))
}

/// The name of a content-encryption algorithm, and whether it is acceptable (RFC 8551 2.7:
/// AES-GCM or AES-CBC; RC2, DES and 3DES refused).
pub fn cipher_name(oid: &str) -> (&'static str, bool) {
    match oid {
        "2.16.840.1.101.3.4.1.2" => ("AES-128-CBC", true),
        "2.16.840.1.101.3.4.1.22" => ("AES-192-CBC", true),
        "2.16.840.1.101.3.4.1.42" => ("AES-256-CBC", true),
        "2.16.840.1.101.3.4.1.6" => ("AES-128-GCM", true),
        "2.16.840.1.101.3.4.1.26" => ("AES-192-GCM", true),
        "2.16.840.1.101.3.4.1.46" => ("AES-256-GCM", true),
        "1.2.840.113549.3.7" => ("3DES", false),
        "1.3.14.3.2.7" => ("DES", false),
        "1.2.840.113549.3.2" => ("RC2", false),
        _ => ("an unknown cipher", false),
    }
}

/// The name of a digest algorithm, and whether it is acceptable (SHA-2 only).
pub fn digest_name(oid: &str) -> (&'static str, bool) {
    match oid {
        "2.16.840.1.101.3.4.2.1" => ("SHA-256", true),
        "2.16.840.1.101.3.4.2.2" => ("SHA-384", true),
        "2.16.840.1.101.3.4.2.3" => ("SHA-512", true),
        "1.3.14.3.2.26" => ("SHA-1", false),
        "1.2.840.113549.2.5" => ("MD5", false),
        _ => ("an unknown digest", false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_read_as_dotted_text() {
        assert_eq!(
            oid_text(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x07]),
            "1.2.840.113549.3.7"
        );
        assert_eq!(
            oid_text(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]),
            "2.16.840.1.101.3.4.2.1"
        );
    }

    #[test]
    fn truncated_or_hostile_input_is_none_not_a_panic() {
        assert_eq!(structure(&[]), None);
        assert_eq!(structure(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(structure(&[0x30, 0x80, 0x30, 0x80]), None);
        let deep: Vec<u8> = std::iter::repeat_n([0x30u8, 0x80], 200).flatten().collect();
        assert_eq!(structure(&deep), None);
    }

    #[test]
    fn fuzz_der_readers() {
        use crate::testing::{pair, signature_der, signed_by};
        let signer = pair(9);
        let pss = signature_der(&signed_by(&signer, crate::SignatureScheme::PssSha256));
        let pkcs1 = signature_der(&signed_by(&signer, crate::SignatureScheme::Pkcs1v15Sha256));
        let enveloped = crate::encrypt(
            b"Content-Type: text/plain\r\n\r\nx\r\n",
            std::slice::from_ref(&signer.cert),
            crate::EncryptOptions::default(),
        )
        .expect("encrypt");
        let enveloped =
            crate::mime::base64_body(crate::mime::split_entity(&enveloped).1).expect("base64");
        let cert = signer.cert.to_der().expect("der");
        mssante_fuzzing::fuzz(
            "smime der",
            &[
                &pss,
                &pkcs1,
                &enveloped,
                &cert,
                b"\x30\x80\x30\x80\x00\x00\x00\x00",
            ],
            |input| {
                let _ = split(input);
                let _ = structure(input);
                let _ = gcm_envelope(input);
                let _ = split_certificates(input);
                let _ = encapsulated_content(input);
                let _ = issuer_and_serial(input);
                let _ = crate::signer_info::usual_signer(input);
            },
        );
    }
}
