//! Content-Transfer-Encoding decoding for BINARY (RFC 3516): base64 and quoted-printable
//! decoded, identity encodings passed through, anything else refused (UNKNOWN-CTE).

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};

/// Lenient about padding, as mail in the wild is.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The encoding is not one this server decodes.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownCte;

/// Decodes a part's body according to its Content-Transfer-Encoding (None: 7bit).
pub fn decode<'a>(encoding: Option<&str>, body: &'a [u8]) -> Result<Cow<'a, [u8]>, UnknownCte> {
    let encoding = encoding.map(|e| e.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("7bit" | "8bit" | "binary") => Ok(Cow::Borrowed(body)),
        Some("base64") => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            LENIENT
                .decode(&clean)
                .or_else(|_| general_purpose::STANDARD_NO_PAD.decode(clean.trim_ascii_end()))
                .map(Cow::Owned)
                .map_err(|_| UnknownCte)
        }
        Some("quoted-printable") => Ok(Cow::Owned(quoted_printable(body))),
        Some(_) => Err(UnknownCte),
    }
}

/// RFC 2045 6.7: `=XX` escapes, soft line breaks (`=` at a line end) removed; a malformed
/// escape is kept as written.
fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'=' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        let rest = &body[i + 1..];
        if rest.starts_with(b"\r\n") {
            i += 3;
        } else if rest.starts_with(b"\n") {
            i += 2;
        } else if let (Some(h), Some(l)) = (
            rest.first().and_then(|c| (*c as char).to_digit(16)),
            rest.get(1).and_then(|c| (*c as char).to_digit(16)),
        ) {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b'=');
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_usual_encodings() {
        assert_eq!(
            decode(Some("BASE64"), b"AAEC\r\nAw==\r\n").as_deref(),
            Ok(&[0u8, 1, 2, 3][..])
        );
        assert_eq!(
            decode(Some("quoted-printable"), b"caf=C3=A9 =\r\nnoir =ZZ").as_deref(),
            Ok("café noir =ZZ".as_bytes())
        );
        assert_eq!(decode(None, b"plain").as_deref(), Ok(&b"plain"[..]));
        assert_eq!(decode(Some("x-uuencode"), b"x"), Err(UnknownCte));
    }

    #[test]
    fn fuzz_transfer_encodings() {
        mssante_fuzzing::fuzz(
            "imap transfer",
            &[
                b"d=C3=A9j=C3=A0 vu=\r\n\r\nx=3D",
                b"JVBERi0xLjQK\r\nJVBE\r\n",
                b"=\r",
                b"=4",
            ],
            |input| {
                for encoding in ["base64", "quoted-printable", "7bit", "x-uuencode"] {
                    let _ = decode(Some(encoding), input);
                }
            },
        );
    }
}
