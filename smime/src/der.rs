//! A small reader of DER (and of the BER indefinite lengths other S/MIME agents emit), just
//! enough to name the algorithms of a CMS structure before any key touches it, so weak ones
//! are refused by name (RFC 5652 structure, RFC 8551 algorithm requirements).

/// One element: its tag octet and its content (for an indefinite length, the encodings of
/// its children, end-of-contents excluded).
struct Element<'a> {
    tag: u8,
    content: &'a [u8],
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
fn children(content: &[u8], depth: usize) -> Option<Vec<Element<'_>>> {
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
fn oid_text(content: &[u8]) -> String {
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

const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const EXPLICIT_0: u8 = 0xa0;

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
}
