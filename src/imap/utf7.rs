//! Modified UTF-7 (RFC 3501 section 5.1.3), the form of non-ASCII folder names for clients
//! that have not enabled UTF8=ACCEPT. Names are kept as UTF-8 in the store.

use base64::Engine;
use base64::alphabet::IMAP_MUTF7;
use base64::engine::general_purpose::{GeneralPurpose, NO_PAD};

const ENGINE: GeneralPurpose = GeneralPurpose::new(&IMAP_MUTF7, NO_PAD);

/// Encodes a UTF-8 name in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if !pending.is_empty() {
            let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&ENGINE.encode(bytes));
            out.push('-');
            pending.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes a modified UTF-7 name; None when it is not valid modified UTF-7.
pub fn decode(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(amp) = rest.find('&') {
        let (plain, tail) = rest.split_at(amp);
        if !plain.chars().all(|c| (' '..='~').contains(&c)) {
            return None;
        }
        out.push_str(plain);
        let end = tail.find('-')?;
        let encoded = &tail[1..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            let bytes = ENGINE.decode(encoded).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            let text = String::from_utf16(&units).ok()?;
            // Printable ASCII must not be encoded (RFC 3501): a second spelling of a name.
            if text.chars().any(|c| (' '..='~').contains(&c)) {
                return None;
            }
            out.push_str(&text);
        }
        rest = &tail[end + 1..];
    }
    if !rest.chars().all(|c| (' '..='~').contains(&c)) {
        return None;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc_examples() {
        // RFC 3501 5.1.3: "~peter/mail/台北/日本語".
        let utf8 = "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}";
        let mutf7 = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        assert_eq!(encode(utf8), mutf7);
        assert_eq!(decode(mutf7).as_deref(), Some(utf8));
        assert_eq!(encode("Envoyés & reçus"), "Envoy&AOk-s &- re&AOc-us");
        assert_eq!(
            decode("Envoy&AOk-s &- re&AOc-us").as_deref(),
            Some("Envoyés & reçus")
        );
    }

    #[test]
    fn refuses_invalid_forms() {
        assert_eq!(decode("&Jjo!"), None, "unterminated");
        assert_eq!(decode("&AGE-"), None, "encoded ASCII");
        assert_eq!(decode("&2D3-"), None, "lone surrogate / odd length");
        assert_eq!(decode("caf\u{e9}"), None, "raw 8-bit");
    }

    #[test]
    fn fuzz_modified_utf7() {
        mssante_fuzzing::fuzz(
            "imap utf7",
            &[b"&AOk-t&AOk-", b"Dossiers/&AMk-quipe", b"&-", b"INBOX"],
            |input| {
                if let Some(name) = decode(&String::from_utf8_lossy(input)) {
                    assert_eq!(decode(&encode(&name)).as_deref(), Some(name.as_str()));
                }
            },
        );
    }
}
