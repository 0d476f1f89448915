//! What FETCH answers most without opening a message: its header block, BODYSTRUCTURE and
//! BODY. Made the first time a client asks and kept sealed in the store (like Dovecot's
//! cache file), so a second sync of a folder decrypts a few hundred octets per message
//! instead of the whole message and parses nothing.

use imap_codec::imap_types::fetch::{MessageDataItemName, Section};

use super::encode;
use super::fetch::{header_fields, with_blank_line, write_body_section};
use super::mime::{self, Part};
use crate::store::MessageMeta;

/// Format version, first octet of the encoding: a new layout is simply made again.
const VERSION: u8 = 1;

/// The cached parts of one message, held in their stored form (read without copying).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    /// The stored form: a version octet, then three length-prefixed fields.
    bytes: zeroize::Zeroizing<Vec<u8>>,
    /// Where the header block, BODYSTRUCTURE and BODY lie in `bytes`.
    fields: [std::ops::Range<usize>; 3],
}

impl Cached {
    /// Computes the cached parts of a message.
    pub fn of(raw: &[u8]) -> Cached {
        let part = Part::parse(raw);
        let mut bodystructure = Vec::new();
        part.write_structure(&mut bodystructure, true);
        let mut body = Vec::new();
        part.write_structure(&mut body, false);
        let mut bytes = zeroize::Zeroizing::new(vec![VERSION]);
        for field in [part.header, &bodystructure, &body] {
            bytes.extend_from_slice(&(field.len() as u32).to_be_bytes());
            bytes.extend_from_slice(field);
        }
        let fields = bounds(&bytes).unwrap_or_default();
        Cached { bytes, fields }
    }

    /// Reads the stored form; None for another version or damaged data (made again).
    pub fn decode(bytes: zeroize::Zeroizing<Vec<u8>>) -> Option<Cached> {
        let fields = bounds(&bytes)?;
        Some(Cached { bytes, fields })
    }

    /// The stored form.
    pub fn encoded(&self) -> &[u8] {
        &self.bytes
    }

    /// The top-level header block, without the blank line.
    pub fn header(&self) -> &[u8] {
        &self.bytes[self.fields[0].clone()]
    }

    /// BODYSTRUCTURE, as written in a FETCH response.
    pub fn bodystructure(&self) -> &[u8] {
        &self.bytes[self.fields[1].clone()]
    }

    /// BODY (non-extensible).
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.fields[2].clone()]
    }
}

/// Where the three fields of a stored form lie; None for another version or damaged data.
fn bounds(bytes: &[u8]) -> Option<[std::ops::Range<usize>; 3]> {
    if bytes.first() != Some(&VERSION) {
        return None;
    }
    let mut at = 1;
    let mut field = || {
        let len = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        let range = at + 4..at + 4 + len;
        bytes.get(range.clone())?;
        at = range.end;
        Some(range)
    };
    Some([field()?, field()?, field()?])
}

/// Whether every item that needs the message can be answered from the cache.
pub fn answers(items: &[MessageDataItemName<'_>]) -> bool {
    use MessageDataItemName as N;
    items.iter().all(|item| match item {
        N::Envelope | N::BodyStructure | N::Body | N::Rfc822Header => true,
        N::BodyExt { section, .. } => matches!(
            section,
            Some(Section::Header(None))
                | Some(Section::HeaderFields(None, _))
                | Some(Section::HeaderFieldsNot(None, _))
        ),
        N::Flags | N::InternalDate | N::Rfc822Size | N::Uid | N::ModSeq => true,
        _ => false,
    })
}

/// Writes one of the items [`answers`] accepts, from the cache; false for any other.
pub fn write_item(
    out: &mut Vec<u8>,
    item: &MessageDataItemName<'_>,
    meta: &MessageMeta,
    cached: &Cached,
) -> bool {
    use MessageDataItemName as N;
    match item {
        N::Envelope => {
            out.extend_from_slice(b"ENVELOPE ");
            mime::write_envelope(out, cached.header());
        }
        N::BodyStructure => {
            out.extend_from_slice(b"BODYSTRUCTURE ");
            out.extend_from_slice(cached.bodystructure());
        }
        N::Body => {
            out.extend_from_slice(b"BODY ");
            out.extend_from_slice(cached.body());
        }
        N::Rfc822Header => {
            out.extend_from_slice(b"RFC822.HEADER ");
            encode::literal(out, &with_blank_line(cached.header()));
        }
        N::BodyExt {
            section, partial, ..
        } => {
            let data = match section {
                Some(Section::Header(None)) => with_blank_line(cached.header()),
                Some(Section::HeaderFields(None, names)) => {
                    header_fields(cached.header(), names.as_ref(), true)
                }
                Some(Section::HeaderFieldsNot(None, names)) => {
                    header_fields(cached.header(), names.as_ref(), false)
                }
                _ => return false,
            };
            write_body_section(out, section.as_ref(), *partial, &data);
        }
        _ => return super::fetch::write_meta_item(out, item, meta),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let cached = Cached::of(b"Subject: x\r\nContent-Type: text/plain\r\n\r\nbody\r\n");
        assert_eq!(
            cached.header(),
            b"Subject: x\r\nContent-Type: text/plain\r\n"
        );
        assert!(cached.bodystructure().starts_with(b"(\"TEXT\" \"PLAIN\""));
        let stored = zeroize::Zeroizing::new(cached.encoded().to_vec());
        assert_eq!(Cached::decode(stored), Some(cached.clone()));
        let mut damaged = cached.encoded().to_vec();
        damaged.truncate(damaged.len() - 1);
        assert_eq!(Cached::decode(damaged.into()), None);
        assert_eq!(Cached::decode(vec![2].into()), None);
    }

    #[test]
    fn fuzz_stored_summaries() {
        let made = Cached::of(mssante_fuzzing::corpus::MESSAGES[2]);
        let stored = made.encoded().to_vec();
        mssante_fuzzing::fuzz("imap cache", &[&stored, b"\x01\xff\xff\xff\xff"], |input| {
            if let Some(cached) = Cached::decode(zeroize::Zeroizing::new(input.to_vec())) {
                let _ = (cached.header(), cached.bodystructure(), cached.body());
            }
        });
    }
}
