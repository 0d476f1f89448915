//! The `X-MSSante-*` header fields are this server's verdicts (signature valid or not,
//! message decrypted or not): a reader trusts them, so nobody else may write them. Every
//! message that enters the store (by SMTP, by IMAP APPEND, unwrapped from an opaque
//! signature, decrypted) goes through [`without_verdicts`] before the server adds its own:
//! the fields are removed from the top-level header and from the header of every entity
//! nested in it (multipart parts, attached messages), since a mail client shows those too.
//! The content of a multipart/signed is left as it is: the signature covers it, and it is
//! what the signer wrote.

use std::borrow::Cow;
use std::ops::Range;

use mssante_smime::mime::{self, split_entity, split_multipart};

/// The prefix of the fields only this server writes (not `X-MSS-`, the client referential's).
const PREFIX: &[u8] = b"x-mssante-";

/// How deep nested entities are searched (message/rfc822 inside multipart inside ...).
const MAX_DEPTH: usize = 32;

/// `message` without any `X-MSSante-*` field, wherever a reader would see one; borrowed
/// when there was none.
pub fn without_verdicts(message: &[u8]) -> Cow<'_, [u8]> {
    let mut cuts = Vec::new();
    find(message, message, 0, &mut cuts);
    if cuts.is_empty() {
        return Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len());
    let mut at = 0;
    for cut in cuts {
        out.extend_from_slice(&message[at..cut.start]);
        at = cut.end;
    }
    out.extend_from_slice(&message[at..]);
    Cow::Owned(out)
}

/// A header section (its blank line excluded) without its `X-MSSante-*` fields.
pub fn header_without_verdicts(header: &[u8]) -> Vec<u8> {
    let entity = [header, b"\r\n"].concat();
    let mut clean = without_verdicts(&entity).into_owned();
    clean.truncate(clean.len() - 2);
    clean
}

/// Collects, in order, the byte ranges of `entity` (a slice of `whole`) that are verdict
/// fields (with their continuation lines).
fn find(whole: &[u8], entity: &[u8], depth: usize, cuts: &mut Vec<Range<usize>>) {
    if depth > MAX_DEPTH {
        return;
    }
    let base = offset(whole, entity);
    let (header, body) = split_entity(entity);
    let mut at = base;
    let mut cutting = false;
    for line in header.split_inclusive(|b| *b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            cutting = is_verdict(line);
        }
        if cutting {
            match cuts.last_mut() {
                Some(last) if last.end == at => last.end = at + line.len(),
                _ => cuts.push(at..at + line.len()),
            }
        }
        at += line.len();
    }
    let content_type = mime::field(header, "content-type").unwrap_or_default();
    let media = mime::media_type(&content_type);
    if media == "multipart/signed" {
        return;
    }
    if media.starts_with("multipart/") {
        if let Some(boundary) = mime::parameter(&content_type, "boundary") {
            for part in split_multipart(body, boundary.as_bytes()).parts {
                find(whole, part, depth + 1, cuts);
            }
        }
    } else if media == "message/rfc822" || media == "message/global" {
        find(whole, body, depth + 1, cuts);
    }
}

/// Whether a header line is an `X-MSSante-*` field (`X-MSSante-Signature :` included).
fn is_verdict(line: &[u8]) -> bool {
    let name_end = line.iter().position(|b| *b == b':').unwrap_or(line.len());
    let name = line[..name_end].trim_ascii();
    name.len() > PREFIX.len() && name[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
}

/// Where `part` (a subslice of `whole`) starts in `whole`.
fn offset(whole: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize)
        .saturating_sub(whole.as_ptr() as usize)
        .min(whole.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_go_from_every_header_a_reader_sees() {
        let message = b"X-MSSante-Signature: valid; signer=810001234567\r\nFrom: eve@x.test\r\n\
X-MSSante-Encryption : decrypted;\r\n\tfolded\r\nX-MSS-NIL: LPS/1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX-Mssante-Signature: valid\r\n\
Content-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n\
X-MSSANTE-SIGNATURE: valid\r\nSubject: inner\r\n\r\nx\r\n--b--\r\n";
        let clean = without_verdicts(message);
        let text = String::from_utf8_lossy(&clean);
        assert!(!text.to_ascii_lowercase().contains("x-mssante-"), "{text}");
        assert!(
            text.contains("X-MSS-NIL: LPS/1.0"),
            "the client referential's stay"
        );
        assert!(text.starts_with("From: eve@x.test\r\nX-MSS-NIL"), "{text}");
        assert!(
            text.contains("--b\r\nContent-Type: text/plain\r\n\r\nhello"),
            "{text}"
        );
        assert!(text.contains("\r\n\r\nSubject: inner\r\n"), "{text}");
    }

    #[test]
    fn a_message_without_verdicts_is_not_copied_and_signed_content_is_left() {
        let plain = b"From: a@x.test\r\n\r\nX-MSSante-Signature: valid (in the body)\r\n";
        assert!(matches!(without_verdicts(plain), Cow::Borrowed(_)));
        let signed = b"Content-Type: multipart/signed; boundary=s\r\n\r\n--s\r\nX-MSSante-Signature: valid\r\n\r\nsigned\r\n--s\r\nSIG\r\n--s--\r\n";
        assert!(matches!(without_verdicts(signed), Cow::Borrowed(_)));
    }

    #[test]
    fn fuzz_verdict_stripping() {
        mssante_fuzzing::fuzz("verdicts", mssante_fuzzing::corpus::MESSAGES, |input| {
            let clean = without_verdicts(input);
            assert!(clean.len() <= input.len());
            // Stripping twice finds nothing more at the top level.
            let (header, _) = split_entity(&clean);
            assert!(
                !header
                    .split_inclusive(|b| *b == b'\n')
                    .any(|l| !l.starts_with(b" ") && !l.starts_with(b"\t") && is_verdict(l))
            );
        });
    }
}
