//! SEARCH and UID SEARCH: every RFC 3501 key. Keys on flags, sizes, dates and numbers use
//! what the view knows; keys on headers and text open the message (only when the search
//! needs it) and compare case-insensitively with both the raw and the decoded value, so a
//! search for "Hélène" finds an encoded-word From.

use std::fmt::Write as _;

use imap_codec::imap_types::core::Charset;
use imap_codec::imap_types::search::SearchKey;
use mail_parser::{HeaderValue, MessageParser};

use super::extension::SearchReturn;
use super::fetch::has_flag;
use super::mime;
use super::session::{Reply, Session};
use super::view::{View, set_contains};
use crate::listener::ReadError;
use crate::store::MessageMeta;

/// What one message offers to a search: its metadata, its header block when a key reads
/// headers, the whole message when one reads the body.
struct Candidate<'a> {
    index: usize,
    meta: &'a MessageMeta,
    header: &'a [u8],
    raw: Option<&'a [u8]>,
    /// The message (or header block) parsed, made on first use: most header values hold
    /// no encoded word and are compared as they are.
    parsed: std::cell::OnceCell<Option<mail_parser::Message<'a>>>,
}

impl<'a> Candidate<'a> {
    fn new(
        index: usize,
        meta: &'a MessageMeta,
        header: &'a [u8],
        raw: Option<&'a [u8]>,
    ) -> Candidate<'a> {
        Candidate {
            index,
            meta,
            header,
            raw,
            parsed: std::cell::OnceCell::new(),
        }
    }

    fn parsed(&self) -> Option<&mail_parser::Message<'a>> {
        self.parsed
            .get_or_init(|| match self.raw {
                Some(raw) => MessageParser::default().parse(raw),
                None => MessageParser::default().parse_headers(self.header),
            })
            .as_ref()
    }

    /// The header block.
    fn header(&self) -> &'a [u8] {
        self.header
    }
}

/// What of each message a search reads.
#[derive(PartialEq)]
enum Needs {
    Metadata,
    Header,
    Message,
}

impl Session<'_> {
    /// SEARCH or UID SEARCH.
    pub(super) async fn search(
        &mut self,
        charset: Option<Charset<'static>>,
        criteria: &[SearchKey<'static>],
        by_uid: bool,
    ) -> Result<Reply, ReadError> {
        let (found, highest) = match self.matching(charset, criteria, by_uid).await {
            Ok(found) => found,
            Err(reply) => return Ok(reply),
        };
        let mut line = String::with_capacity(9 + found.len() * 6);
        line.push_str("* SEARCH");
        for n in &found {
            // Writing into a String cannot fail.
            let _ = write!(line, " {n}");
        }
        if let Some(highest) = highest {
            line.push_str(&format!(" (MODSEQ {highest})"));
        }
        line.push_str("\r\n");
        self.push(line.as_bytes()).await?;
        Ok(Reply::ok(""))
    }

    /// SEARCH RETURN (...): one ESEARCH response (RFC 4731).
    pub(super) async fn esearch(
        &mut self,
        tag: &str,
        charset: Option<Charset<'static>>,
        criteria: &[SearchKey<'static>],
        by_uid: bool,
        ret: &SearchReturn,
    ) -> Result<Reply, ReadError> {
        let (found, highest) = match self.matching(charset, criteria, by_uid).await {
            Ok(found) => found,
            Err(reply) => {
                // A failed SEARCH ... SAVE leaves `$` empty (RFC 5182 2.1).
                if let (true, Some(view)) = (ret.save, &mut self.view) {
                    view.saved.clear();
                }
                return Ok(reply);
            }
        };
        if ret.save {
            self.save(&found, by_uid, ret);
        }
        if !ret.answers() {
            return Ok(Reply::ok(""));
        }
        let mut line = format!("* ESEARCH (TAG {})", super::encode::quoted(tag));
        if by_uid {
            line.push_str(" UID");
        }
        if let (true, Some(min)) = (ret.min, found.first()) {
            line.push_str(&format!(" MIN {min}"));
        }
        if let (true, Some(max)) = (ret.max, found.last()) {
            line.push_str(&format!(" MAX {max}"));
        }
        if ret.all && !found.is_empty() {
            line.push_str(&format!(" ALL {}", super::encode::uid_set(&found)));
        }
        if ret.count {
            line.push_str(&format!(" COUNT {}", found.len()));
        }
        if let Some(highest) = highest {
            line.push_str(&format!(" MODSEQ {highest}"));
        }
        line.push_str("\r\n");
        self.push(line.as_bytes()).await?;
        Ok(Reply::ok(""))
    }

    /// Keeps a search's result for `$`: its MIN and/or MAX alone when only those were asked
    /// for with SAVE, otherwise all of it (RFC 5182 2.4).
    fn save(&mut self, found: &[u32], by_uid: bool, ret: &SearchReturn) {
        let Some(view) = &mut self.view else {
            return;
        };
        let kept: Vec<u32> = if (ret.min || ret.max) && !ret.all && !ret.count {
            let mut ends = Vec::new();
            ends.extend(found.first().filter(|_| ret.min));
            ends.extend(found.last().filter(|_| ret.max));
            ends.dedup();
            ends
        } else {
            found.to_vec()
        };
        view.saved = if by_uid {
            kept
        } else {
            kept.iter()
                .filter_map(|&n| view.uid(n as usize - 1))
                .collect()
        };
    }

    /// The numbers (or UIDs) of the matching messages, ascending, and the highest modseq
    /// among them when the search used MODSEQ (RFC 7162 3.1.5).
    pub(super) async fn matching(
        &mut self,
        charset: Option<Charset<'static>>,
        criteria: &[SearchKey<'static>],
        by_uid: bool,
    ) -> Result<(Vec<u32>, Option<u64>), Reply> {
        if let Some(charset) = &charset {
            let name = charset.as_ref().to_ascii_uppercase();
            if !matches!(name.as_str(), "UTF-8" | "US-ASCII") {
                return Err(Reply::no(
                    "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset",
                ));
            }
        }
        let modseq = criteria.iter().any(|k| any_key(k, is_modseq));
        if modseq {
            self.enable_condstore();
        }
        let Some(view) = &self.view else {
            return Err(Reply::bad("No mailbox selected"));
        };
        if !view.rights.allows("r") {
            return Err(Reply::no("[NOPERM] You may no longer read this mailbox"));
        }
        if let Some((with, without)) = flags_only(criteria) {
            return self.matching_flags(&with, &without, by_uid).await;
        }
        let needs = if criteria.iter().any(|k| any_key(k, reads_body)) {
            Needs::Message
        } else if criteria.iter().any(|k| any_key(k, reads_header)) {
            Needs::Header
        } else {
            Needs::Metadata
        };
        // A search on headers and UIDs alone reads no metadata (flags, sizes, dates).
        let metadata_read = criteria.iter().any(|k| any_key(k, reads_metadata));
        let all: Vec<usize> = (0..view.len()).collect();
        let mut found = Vec::new();
        let mut highest = 0;
        let size = if needs == Needs::Message {
            super::fetch::RUN
        } else {
            super::fetch::META_RUN
        };
        for run in super::fetch::runs(&all, size) {
            let mut metas = if metadata_read {
                self.metas(run).await.map_err(Reply::unavailable)?
            } else {
                Default::default()
            };
            let mut bodies = match needs {
                Needs::Message => self.open_run(run).await.map_err(Reply::unavailable)?,
                _ => Default::default(),
            };
            let mut headers = match needs {
                Needs::Header => self.cached(run).await.map_err(Reply::unavailable)?,
                _ => Default::default(),
            };
            let Some(view) = &self.view else {
                return Err(Reply::bad("No mailbox selected"));
            };
            for &index in run {
                let Some(uid) = view.uid(index) else {
                    continue;
                };
                let meta = match metas.remove(&uid) {
                    Some(meta) => meta,
                    // Expunged by another session meanwhile.
                    None if metadata_read => continue,
                    // Read by no key: only the UID is filled in.
                    None => MessageMeta {
                        uid,
                        internal_date: 0,
                        size: 0,
                        flags: String::new(),
                        modseq: 0,
                    },
                };
                let (body, cached) = (bodies.remove(&meta.uid), headers.remove(&meta.uid));
                let candidate = match (&needs, &body, &cached) {
                    (Needs::Metadata, _, _) => Candidate::new(index, &meta, &[], None),
                    (Needs::Header, _, Some(cached)) => {
                        Candidate::new(index, &meta, cached.header(), None)
                    }
                    (Needs::Message, Some(body), _) => {
                        Candidate::new(index, &meta, mime::split_header(body).0, Some(body))
                    }
                    // Expunged by another session meanwhile.
                    _ => continue,
                };
                if criteria.iter().all(|key| matches(key, &candidate, view)) {
                    found.push(if by_uid { meta.uid } else { index as u32 + 1 });
                    highest = highest.max(meta.modseq);
                }
            }
        }
        Ok((found, (modseq && highest > 0).then_some(highest)))
    }

    /// A search on flags alone, answered by the store from its index of the metadata.
    async fn matching_flags(
        &self,
        with: &[String],
        without: &[String],
        by_uid: bool,
    ) -> Result<(Vec<u32>, Option<u64>), Reply> {
        let Some(view) = &self.view else {
            return Err(Reply::bad("No mailbox selected"));
        };
        let uids = self
            .ctx
            .store
            .db()
            .uids_by_flags(view.mailbox.id, with, without)
            .await
            .map_err(Reply::unavailable)?;
        // Messages the session has not been told of yet are left out, as in any search.
        let found = uids
            .into_iter()
            .filter_map(|uid| {
                let index = view.index_of(uid)?;
                Some(if by_uid { uid } else { index as u32 + 1 })
            })
            .collect();
        Ok((found, None))
    }
}

/// The flags a search requires and those it excludes, when it has only flag keys (and
/// ALL) joined by AND; None otherwise.
fn flags_only(criteria: &[SearchKey<'_>]) -> Option<(Vec<String>, Vec<String>)> {
    fn add(key: &SearchKey<'_>, with: &mut Vec<String>, without: &mut Vec<String>) -> Option<()> {
        use SearchKey as K;
        let (flag, wanted) = match key {
            K::All => return Some(()),
            K::And(keys) => {
                return keys.as_ref().iter().try_for_each(|k| add(k, with, without));
            }
            K::Answered => ("\\Answered", true),
            K::Deleted => ("\\Deleted", true),
            K::Draft => ("\\Draft", true),
            K::Flagged => ("\\Flagged", true),
            K::Seen => ("\\Seen", true),
            K::Unanswered => ("\\Answered", false),
            K::Undeleted => ("\\Deleted", false),
            K::Undraft => ("\\Draft", false),
            K::Unflagged => ("\\Flagged", false),
            K::Unseen => ("\\Seen", false),
            K::Keyword(k) => (k.as_ref(), true),
            K::Unkeyword(k) => (k.as_ref(), false),
            _ => return None,
        };
        if wanted { with } else { without }.push(flag.to_string());
        Some(())
    }
    let (mut with, mut without) = (Vec::new(), Vec::new());
    criteria
        .iter()
        .try_for_each(|k| add(k, &mut with, &mut without))?;
    Some((with, without))
}

/// Whether `key`, or any key inside it (through AND, OR and NOT), is one `leaf` picks.
fn any_key(key: &SearchKey<'_>, leaf: fn(&SearchKey<'_>) -> bool) -> bool {
    use SearchKey as K;
    match key {
        K::And(keys) => keys.as_ref().iter().any(|k| any_key(k, leaf)),
        K::Not(k) => any_key(k, leaf),
        K::Or(a, b) => any_key(a, leaf) || any_key(b, leaf),
        other => leaf(other),
    }
}

fn is_modseq(key: &SearchKey<'_>) -> bool {
    matches!(key, SearchKey::ModSequence { .. })
}

/// Keys that read the message's body (BODY, TEXT).
fn reads_body(key: &SearchKey<'_>) -> bool {
    matches!(key, SearchKey::Body(_) | SearchKey::Text(_))
}

/// Keys that read the message's header fields.
fn reads_header(key: &SearchKey<'_>) -> bool {
    use SearchKey as K;
    matches!(
        key,
        K::Bcc(_)
            | K::Cc(_)
            | K::From(_)
            | K::Header(..)
            | K::SentBefore(_)
            | K::SentOn(_)
            | K::SentSince(_)
            | K::Subject(_)
            | K::To(_)
    )
}

/// Keys that read a message's metadata (flags, size, dates, modseq): every key but those on
/// headers, UIDs and numbers (so a key added later reads it by default).
fn reads_metadata(key: &SearchKey<'_>) -> bool {
    use SearchKey as K;
    !reads_header(key) && !matches!(key, K::All | K::SequenceSet(_) | K::Uid(_))
}

/// Whether `needle` occurs in `haystack`, ignoring case.
fn contains(haystack: &str, needle: &[u8]) -> bool {
    if needle.is_ascii() {
        // The usual case, compared in place: no lowercased copies.
        return needle.is_empty()
            || haystack
                .as_bytes()
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle));
    }
    let needle = String::from_utf8_lossy(needle).to_lowercase();
    haystack.to_lowercase().contains(&needle)
}

/// A header's raw value and, when it holds encoded words, its decoded values, for
/// substring matching.
fn header_text(c: &Candidate<'_>, name: &str) -> String {
    let mut text = mime::header_value(c.header(), name).unwrap_or_default();
    if !text.contains("=?") {
        return text;
    }
    if let Some(message) = c.parsed() {
        for value in message.header_values(name) {
            text.push('\n');
            match value {
                HeaderValue::Text(t) => text.push_str(t),
                HeaderValue::TextList(list) => text.push_str(&list.join(" ")),
                HeaderValue::Address(address) => {
                    for a in address.iter() {
                        text.push_str(a.name.as_deref().unwrap_or_default());
                        text.push(' ');
                        text.push_str(a.address.as_deref().unwrap_or_default());
                        text.push(' ');
                    }
                }
                _ => {}
            }
        }
    }
    text
}

/// The Date: header's day, for SENTBEFORE/SENTON/SENTSINCE (messages without one never match).
fn sent_date(c: &Candidate<'_>) -> Option<chrono::NaiveDate> {
    let value = mime::header_value(c.header(), "Date")?;
    chrono::DateTime::parse_from_rfc2822(&value)
        .ok()
        .map(|d| d.date_naive())
}

fn internal_day(c: &Candidate<'_>) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp(c.meta.internal_date, 0)
        .unwrap_or_default()
        .date_naive()
}

fn matches(key: &SearchKey<'_>, c: &Candidate<'_>, view: &View) -> bool {
    use SearchKey as K;
    let flag = |f: &str| has_flag(&c.meta.flags, f);
    match key {
        K::And(keys) => keys.as_ref().iter().all(|k| matches(k, c, view)),
        K::Not(k) => !matches(k, c, view),
        K::Or(a, b) => matches(a, c, view) || matches(b, c, view),
        K::All | K::Old => true,
        K::New | K::Recent => false,
        K::Answered => flag("\\Answered"),
        K::Deleted => flag("\\Deleted"),
        K::Draft => flag("\\Draft"),
        K::Flagged => flag("\\Flagged"),
        K::Seen => flag("\\Seen"),
        K::Unanswered => !flag("\\Answered"),
        K::Undeleted => !flag("\\Deleted"),
        K::Undraft => !flag("\\Draft"),
        K::Unflagged => !flag("\\Flagged"),
        K::Unseen => !flag("\\Seen"),
        K::Keyword(k) => flag(k.as_ref()),
        K::Unkeyword(k) => !flag(k.as_ref()),
        K::Larger(n) => c.meta.size > u64::from(*n),
        K::Smaller(n) => c.meta.size < u64::from(*n),
        K::Before(d) => internal_day(c) < *d.as_ref(),
        K::On(d) => internal_day(c) == *d.as_ref(),
        K::Since(d) => internal_day(c) >= *d.as_ref(),
        K::SentBefore(d) => sent_date(c).is_some_and(|s| s < *d.as_ref()),
        K::SentOn(d) => sent_date(c).is_some_and(|s| s == *d.as_ref()),
        K::SentSince(d) => sent_date(c).is_some_and(|s| s >= *d.as_ref()),
        // Membership of this one message: resolving the set for each message is quadratic.
        K::SequenceSet(set) => set_contains(set, c.index as u32 + 1, view.len() as u32),
        K::Uid(set) => set_contains(set, c.meta.uid, view.last_uid()),
        K::From(s) => contains(&header_text(c, "From"), s.as_ref()),
        K::To(s) => contains(&header_text(c, "To"), s.as_ref()),
        K::Cc(s) => contains(&header_text(c, "Cc"), s.as_ref()),
        K::Bcc(s) => contains(&header_text(c, "Bcc"), s.as_ref()),
        K::Subject(s) => contains(&header_text(c, "Subject"), s.as_ref()),
        K::Header(name, s) => {
            let name = String::from_utf8_lossy(name.as_ref()).into_owned();
            // HEADER name "" matches every message that has the field.
            mime::header_value(c.header(), &name).is_some()
                && contains(&header_text(c, &name), s.as_ref())
        }
        K::Body(s) => body_contains(c, s.as_ref()),
        K::Text(s) => {
            contains(&String::from_utf8_lossy(c.header()), s.as_ref())
                || body_contains(c, s.as_ref())
        }
        K::ModSequence { modseq, .. } => c.meta.modseq >= *modseq,
    }
}

fn body_contains(c: &Candidate<'_>, needle: &[u8]) -> bool {
    if let Some(message) = c.parsed() {
        let decoded = message
            .text_bodies()
            .chain(message.html_bodies())
            .filter_map(|p| p.text_contents())
            .any(|t| contains(t, needle));
        if decoded {
            return true;
        }
    }
    c.raw
        .map(|raw| contains(&String::from_utf8_lossy(mime::split_header(raw).1), needle))
        .unwrap_or(false)
}
