//! FETCH and UID FETCH: the data items of RFC 3501 (and MODSEQ), body sections and partial
//! fetches, BODYSTRUCTURE and ENVELOPE from the stored message. Bodies are opened only when
//! an item needs them; the implicit \Seen of a non-PEEK body fetch is committed, for all
//! messages at once, before any of them is answered.

use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::fetch::{
    Macro, MacroOrMessageDataItemNames, MessageDataItemName, Section,
};
use imap_codec::imap_types::sequence::SequenceSet;

use super::cache;
use super::encode;
use super::mime::{self, Part};
use super::session::{Reply, Session};
use super::transfer::{self, UnknownCte};
use crate::listener::ReadError;

/// Whether a space-separated flag list holds `flag` (case-insensitive, as IMAP compares).
pub fn has_flag(flags: &str, flag: &str) -> bool {
    flags
        .split_whitespace()
        .any(|f| f.eq_ignore_ascii_case(flag))
}

/// The item names a macro stands for.
fn expand(names: MacroOrMessageDataItemNames<'static>) -> Vec<MessageDataItemName<'static>> {
    use MessageDataItemName as N;
    match names {
        MacroOrMessageDataItemNames::Macro(m) => {
            let mut items = vec![N::Flags, N::InternalDate, N::Rfc822Size];
            if matches!(m, Macro::All | Macro::Full) {
                items.push(N::Envelope);
            }
            if matches!(m, Macro::Full) {
                items.push(N::Body);
            }
            items
        }
        MacroOrMessageDataItemNames::MessageDataItemNames(items) => items,
    }
}

fn needs_body(item: &MessageDataItemName<'_>) -> bool {
    use MessageDataItemName as N;
    !matches!(
        item,
        N::Flags | N::InternalDate | N::Rfc822Size | N::Uid | N::ModSeq
    )
}

fn sets_seen(item: &MessageDataItemName<'_>) -> bool {
    use MessageDataItemName as N;
    matches!(
        item,
        N::BodyExt { peek: false, .. } | N::Rfc822 | N::Rfc822Text | N::Binary { peek: false, .. }
    )
}

impl Session<'_> {
    /// FETCH or UID FETCH.
    pub(super) async fn fetch(
        &mut self,
        set: &SequenceSet,
        names: MacroOrMessageDataItemNames<'static>,
        by_uid: bool,
        modifiers: &[FetchModifier],
    ) -> Result<Reply, ReadError> {
        let mut items = expand(names);
        let mut changed_since = None;
        let mut vanished = false;
        for modifier in modifiers {
            match modifier {
                FetchModifier::ChangedSince(n) => changed_since = Some(n.get()),
                FetchModifier::Vanished => vanished = true,
            }
        }
        if vanished && !(by_uid && self.qresync && changed_since.is_some()) {
            return Ok(Reply::bad(
                "VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC enabled",
            ));
        }
        if changed_since.is_some() || items.contains(&MessageDataItemName::ModSeq) {
            self.enable_condstore();
        }
        // Under CONDSTORE every FETCH that tells flags tells their modseq (RFC 7162 3.2).
        let wants_modseq = changed_since.is_some()
            || (self.condstore && items.contains(&MessageDataItemName::Flags));
        if wants_modseq && !items.contains(&MessageDataItemName::ModSeq) {
            items.push(MessageDataItemName::ModSeq);
        }
        if by_uid && !items.contains(&MessageDataItemName::Uid) {
            items.insert(0, MessageDataItemName::Uid);
        }
        let Some(view) = &mut self.view else {
            return Ok(Reply::bad("No mailbox selected"));
        };
        if !view.rights.allows("r") {
            return Ok(Reply::no("[NOPERM] You may no longer read this mailbox"));
        }
        if !by_uid && !view.valid_numbers(set) {
            return Ok(Reply::bad("Invalid message sequence number"));
        }
        let targets = view.resolve(set, by_uid);
        if let (true, Some(since)) = (vanished, changed_since) {
            match self
                .ctx
                .store
                .db()
                .changes_since(view.mailbox.id, since)
                .await
            {
                Ok(delta) => {
                    let gone: Vec<u32> = delta
                        .expunged
                        .into_iter()
                        .filter(|&uid| super::view::set_contains(set, uid, u32::MAX))
                        .collect();
                    if !gone.is_empty() {
                        let line =
                            format!("* VANISHED (EARLIER) {}\r\n", super::encode::uid_set(&gone));
                        self.out.extend_from_slice(line.as_bytes());
                    }
                }
                Err(e) => return Ok(Reply::unavailable(e)),
            }
        }
        let Some(view) = &self.view else {
            return Ok(Reply::bad("No mailbox selected"));
        };
        // The implicit \Seen is committed for each run of messages before it is answered.
        let marks_seen = !view.read_only && view.rights.allows("s") && items.iter().any(sets_seen);
        if marks_seen && !items.contains(&MessageDataItemName::Flags) {
            items.push(MessageDataItemName::Flags);
        }
        let body_needed = items.iter().any(needs_body);
        // Headers and structure come from the cache when that is all the items need.
        let from_cache = body_needed && cache::answers(&items);
        // Whole messages are opened 64 at a time; metadata and cached parts come in larger
        // runs (one query each).
        let run_size = if body_needed && !from_cache {
            RUN
        } else {
            META_RUN
        };
        for run in runs(&targets, run_size) {
            let mut metas = match self.metas(run).await {
                Ok(metas) => metas,
                Err(e) => return Ok(Reply::unavailable(e)),
            };
            if let Some(since) = changed_since {
                metas.retain(|_, m| m.modseq > since);
            }
            if marks_seen && let Err(e) = self.mark_seen(&mut metas).await {
                return Ok(Reply::unavailable(e));
            }
            if from_cache {
                let cached = match self.cached(run).await {
                    Ok(cached) => cached,
                    Err(e) => return Ok(Reply::unavailable(e)),
                };
                for &i in run {
                    let Some(uid) = self.view.as_ref().and_then(|v| v.uid(i)) else {
                        continue;
                    };
                    let (Some(meta), Some(parts)) = (metas.remove(&uid), cached.get(&uid)) else {
                        continue;
                    };
                    let mut out = format!("* {} FETCH (", i + 1).into_bytes();
                    for (n, item) in items.iter().enumerate() {
                        if n > 0 {
                            out.push(b' ');
                        }
                        cache::write_item(&mut out, item, &meta, parts);
                    }
                    out.extend_from_slice(b")\r\n");
                    self.push(&out).await?;
                }
                continue;
            }
            let mut bodies = if body_needed && !metas.is_empty() {
                match self.open_run(run).await {
                    Ok(bodies) => bodies,
                    Err(e) => return Ok(Reply::unavailable(e)),
                }
            } else {
                Default::default()
            };
            for &i in run {
                let Some(uid) = self.view.as_ref().and_then(|v| v.uid(i)) else {
                    continue;
                };
                // Expunged by another session since this view was made: skipped.
                let Some(meta) = metas.remove(&uid) else {
                    continue;
                };
                let body = match bodies.remove(&uid) {
                    Some(body) => Some(body),
                    None if body_needed => continue,
                    None => None,
                };
                if !self
                    .fetch_one(i, &meta, body.as_deref().map(Vec::as_slice), &items)
                    .await?
                {
                    return Ok(Reply::no(
                        "[UNKNOWN-CTE] A part's transfer encoding cannot be decoded",
                    ));
                }
            }
        }
        Ok(Reply::ok(""))
    }

    /// Sets \Seen on the messages that lack it (committed), updating `metas`.
    async fn mark_seen(&mut self, metas: &mut Metas) -> Result<(), crate::store::StoreError> {
        let updates: Vec<(u32, String)> = metas
            .values()
            .filter(|m| !has_flag(&m.flags, "\\Seen"))
            .map(|m| {
                (
                    m.uid,
                    format!("{} \\Seen", m.flags).trim_start().to_string(),
                )
            })
            .collect();
        let Some(mailbox_id) = self.view.as_ref().map(|v| v.mailbox.id) else {
            return Ok(());
        };
        let done = self.ctx.store.store_flags(mailbox_id, &updates).await?;
        let modseqs: std::collections::HashMap<u32, u64> = done.into_iter().collect();
        for (uid, flags) in updates {
            if let (Some(meta), Some(&modseq)) = (metas.get_mut(&uid), modseqs.get(&uid)) {
                meta.flags = flags;
                meta.modseq = modseq;
                if let Some(view) = &mut self.view {
                    view.note_own(modseq);
                }
            }
        }
        Ok(())
    }

    /// Writes one message's FETCH response; false when a BINARY part cannot be decoded.
    async fn fetch_one(
        &mut self,
        i: usize,
        meta: &crate::store::MessageMeta,
        body: Option<&[u8]>,
        items: &[MessageDataItemName<'static>],
    ) -> Result<bool, ReadError> {
        {
            let raw: &[u8] = body.unwrap_or_default();
            let parsed = body.map(|_| Part::parse(raw));
            let mut out = format!("* {} FETCH (", i + 1).into_bytes();
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b' ');
                }
                if write_item(&mut out, item, meta, raw, parsed.as_ref()).is_err() {
                    return Ok(false);
                }
            }
            out.extend_from_slice(b")\r\n");
            self.push(&out).await?;
        }
        Ok(true)
    }

    /// The metadata of the messages at a run of consecutive view indices (one query).
    pub(super) async fn metas(&self, run: &[usize]) -> Result<Metas, crate::store::StoreError> {
        let Some((view, first, last)) = self.run_bounds(run) else {
            return Ok(Metas::default());
        };
        let metas = self
            .ctx
            .store
            .db()
            .messages_between(view.mailbox.id, first, last)
            .await?;
        Ok(metas.into_iter().map(|m| (m.uid, m)).collect())
    }

    /// The metadata of the messages at ascending view indices, with their indices (one query
    /// per run of consecutive indices).
    pub(super) async fn metas_of(
        &self,
        indices: &[usize],
    ) -> Result<Vec<(usize, crate::store::MessageMeta)>, crate::store::StoreError> {
        let mut out = Vec::with_capacity(indices.len());
        let mut start = 0;
        for end in 1..=indices.len() {
            if end < indices.len() && indices[end] == indices[end - 1] + 1 {
                continue;
            }
            let run = &indices[start..end];
            start = end;
            let mut metas = self.metas(run).await?;
            let Some(view) = &self.view else { break };
            for &i in run {
                if let Some(meta) = view.uid(i).and_then(|uid| metas.remove(&uid)) {
                    out.push((i, meta));
                }
            }
        }
        Ok(out)
    }

    /// The view and the first and last UIDs of a run of indices.
    pub(super) fn run_bounds(&self, run: &[usize]) -> Option<(&super::view::View, u32, u32)> {
        let view = self.view.as_ref()?;
        let first = view.uid(*run.first()?)?;
        let last = view.uid(*run.last()?)?;
        Some((view, first, last))
    }

    /// Opens the messages at a run of consecutive view indices, by UID (one query).
    pub(super) async fn open_run(
        &self,
        run: &[usize],
    ) -> Result<std::collections::HashMap<u32, zeroize::Zeroizing<Vec<u8>>>, crate::store::StoreError>
    {
        let Some((view, first, last)) = self.run_bounds(run) else {
            return Ok(Default::default());
        };
        let opened = self
            .ctx
            .store
            .read_range(&view.owner, view.mailbox.id, first, last)
            .await?;
        Ok(opened.into_iter().collect())
    }
}

/// Message metadata by UID.
pub type Metas = std::collections::BTreeMap<u32, crate::store::MessageMeta>;

/// Most messages opened together: bounds the memory of a large FETCH.
pub const RUN: usize = 64;
/// Most messages whose metadata (or cached parts) are read together.
pub const META_RUN: usize = 2048;

/// Splits ascending view indices into runs of consecutive ones (at most `size` each): a run
/// covers one UID range, so one query reads it.
pub fn runs(indices: &[usize], size: usize) -> Vec<&[usize]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=indices.len() {
        let breaks = i == indices.len() || indices[i] != indices[i - 1] + 1 || i - start == size;
        if breaks {
            out.push(&indices[start..i]);
            start = i;
        }
    }
    out
}

/// Writes an item the message's metadata answers (UID, FLAGS, sizes, dates, MODSEQ); false
/// for any other.
pub(super) fn write_meta_item(
    out: &mut Vec<u8>,
    item: &MessageDataItemName<'_>,
    meta: &crate::store::MessageMeta,
) -> bool {
    use MessageDataItemName as N;
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = match item {
        N::Uid => write!(out, "UID {}", meta.uid),
        N::Flags => write!(out, "FLAGS ({})", meta.flags),
        N::Rfc822Size => write!(out, "RFC822.SIZE {}", meta.size),
        N::ModSeq => write!(out, "MODSEQ ({})", meta.modseq),
        N::InternalDate => {
            let date = chrono::DateTime::from_timestamp(meta.internal_date, 0).unwrap_or_default();
            write!(
                out,
                "INTERNALDATE \"{}\"",
                date.format("%d-%b-%Y %H:%M:%S %z")
            )
        }
        _ => return false,
    };
    true
}

fn write_item(
    out: &mut Vec<u8>,
    item: &MessageDataItemName<'_>,
    meta: &crate::store::MessageMeta,
    raw: &[u8],
    parsed: Option<&Part<'_>>,
) -> Result<(), UnknownCte> {
    use MessageDataItemName as N;
    if write_meta_item(out, item, meta) {
        return Ok(());
    }
    match item {
        N::Uid | N::Flags | N::Rfc822Size | N::ModSeq | N::InternalDate => {}
        N::Envelope => {
            out.extend_from_slice(b"ENVELOPE ");
            mime::write_envelope(out, parsed.map_or(&[][..], |p| p.header));
        }
        N::BodyStructure | N::Body => {
            let extended = matches!(item, N::BodyStructure);
            out.extend_from_slice(if extended {
                b"BODYSTRUCTURE "
            } else {
                b"BODY "
            });
            match parsed {
                Some(p) => p.write_structure(out, extended),
                None => out.extend_from_slice(b"NIL"),
            }
        }
        N::Rfc822 => {
            out.extend_from_slice(b"RFC822 ");
            encode::literal(out, raw);
        }
        N::Rfc822Header => {
            out.extend_from_slice(b"RFC822.HEADER ");
            let header = parsed.map_or(&[][..], |p| p.header);
            encode::literal(out, &with_blank_line(header));
        }
        N::Rfc822Text => {
            out.extend_from_slice(b"RFC822.TEXT ");
            encode::literal(out, parsed.map_or(&[][..], |p| p.body));
        }
        N::BodyExt {
            section, partial, ..
        } => {
            let data = match parsed {
                Some(p) => section_bytes(raw, p, section.as_ref()),
                None => Vec::new(),
            };
            write_body_section(out, section.as_ref(), *partial, &data);
        }
        N::Binary {
            section, partial, ..
        } => {
            let data = binary(raw, parsed, section)?;
            out.extend_from_slice(format!("BINARY[{}]", dotted(section)).as_bytes());
            let data: &[u8] = match partial {
                Some((start, len)) => {
                    let from = (*start as usize).min(data.len());
                    let to = from.saturating_add(len.get() as usize).min(data.len());
                    out.extend_from_slice(format!("<{start}>").as_bytes());
                    &data[from..to]
                }
                None => &data,
            };
            // A literal8 when the data holds NUL (RFC 3516 4.3).
            let tilde = if data.contains(&0) { "~" } else { "" };
            out.extend_from_slice(format!(" {tilde}{{{}}}\r\n", data.len()).as_bytes());
            out.extend_from_slice(data);
        }
        N::BinarySize { section } => {
            let size = binary(raw, parsed, section)?.len();
            out.extend_from_slice(format!("BINARY.SIZE[{}] {size}", dotted(section)).as_bytes());
        }
    }
    Ok(())
}

/// `1.2` for a section path.
fn dotted(section: &[std::num::NonZeroU32]) -> String {
    let numbers: Vec<String> = section.iter().map(|n| n.to_string()).collect();
    numbers.join(".")
}

/// The decoded content of a BINARY section (the whole message, as is, for `[]`).
fn binary<'a>(
    raw: &'a [u8],
    parsed: Option<&'a Part<'a>>,
    section: &[std::num::NonZeroU32],
) -> Result<std::borrow::Cow<'a, [u8]>, UnknownCte> {
    if section.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(raw));
    }
    let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
    let Some(part) = parsed.and_then(|p| p.find(&path)) else {
        return Ok(std::borrow::Cow::Borrowed(&[]));
    };
    let encoding = mime::header_value(part.header, "Content-Transfer-Encoding");
    transfer::decode(encoding.as_deref(), part.body)
}

/// A header block with the blank line that ends it, as IMAP returns headers.
pub(super) fn with_blank_line(header: &[u8]) -> Vec<u8> {
    let mut out = header.to_vec();
    out.extend_from_slice(b"\r\n");
    out
}

/// `BODY[section]<origin> {n}` and the (partial) data.
pub(super) fn write_body_section(
    out: &mut Vec<u8>,
    section: Option<&Section<'_>>,
    partial: Option<(u32, std::num::NonZeroU32)>,
    data: &[u8],
) {
    out.extend_from_slice(b"BODY[");
    write_section_name(out, section);
    out.push(b']');
    match partial {
        Some((start, len)) => {
            let from = (start as usize).min(data.len());
            let to = from.saturating_add(len.get() as usize).min(data.len());
            out.extend_from_slice(format!("<{start}> ").as_bytes());
            encode::literal(out, &data[from..to]);
        }
        None => {
            out.push(b' ');
            encode::literal(out, data);
        }
    }
}

fn write_section_name(out: &mut Vec<u8>, section: Option<&Section<'_>>) {
    let path =
        |out: &mut Vec<u8>, part: Option<&imap_codec::imap_types::fetch::Part>, dot: bool| {
            if let Some(part) = part {
                let numbers: Vec<String> = part.0.as_ref().iter().map(|n| n.to_string()).collect();
                out.extend_from_slice(numbers.join(".").as_bytes());
                if dot {
                    out.push(b'.');
                }
            }
        };
    let fields = |out: &mut Vec<u8>, names: &[imap_codec::imap_types::core::AString<'_>]| {
        out.extend_from_slice(b" (");
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            encode::string(out, name.as_ref());
        }
        out.push(b')');
    };
    match section {
        None => {}
        Some(Section::Part(part)) => path(out, Some(part), false),
        Some(Section::Header(part)) => {
            path(out, part.as_ref(), true);
            out.extend_from_slice(b"HEADER");
        }
        Some(Section::HeaderFields(part, names)) => {
            path(out, part.as_ref(), true);
            out.extend_from_slice(b"HEADER.FIELDS");
            fields(out, names.as_ref());
        }
        Some(Section::HeaderFieldsNot(part, names)) => {
            path(out, part.as_ref(), true);
            out.extend_from_slice(b"HEADER.FIELDS.NOT");
            fields(out, names.as_ref());
        }
        Some(Section::Text(part)) => {
            path(out, part.as_ref(), true);
            out.extend_from_slice(b"TEXT");
        }
        Some(Section::Mime(part)) => {
            path(out, Some(part), true);
            out.extend_from_slice(b"MIME");
        }
    }
}

/// The bytes of a section; empty when the message has no such part (RFC 3501 allows an
/// empty string for a part that does not exist).
fn section_bytes(raw: &[u8], top: &Part<'_>, section: Option<&Section<'_>>) -> Vec<u8> {
    let numbers = |part: Option<&imap_codec::imap_types::fetch::Part>| -> Vec<u32> {
        part.map(|p| p.0.as_ref().iter().map(|n| n.get()).collect())
            .unwrap_or_default()
    };
    let at = |part: Option<&imap_codec::imap_types::fetch::Part>| top.find(&numbers(part));
    match section {
        None => raw.to_vec(),
        Some(Section::Part(part)) => at(Some(part)).map_or_else(Vec::new, |p| p.body.to_vec()),
        Some(Section::Header(part)) => {
            at(part.as_ref()).map_or_else(Vec::new, |p| with_blank_line(p.message().header))
        }
        Some(Section::Text(part)) => {
            at(part.as_ref()).map_or_else(Vec::new, |p| p.message().body.to_vec())
        }
        Some(Section::Mime(part)) => {
            at(Some(part)).map_or_else(Vec::new, |p| with_blank_line(p.header))
        }
        Some(Section::HeaderFields(part, names)) | Some(Section::HeaderFieldsNot(part, names)) => {
            let keep = matches!(section, Some(Section::HeaderFields(..)));
            at(part.as_ref()).map_or_else(Vec::new, |p| {
                header_fields(p.message().header, names.as_ref(), keep)
            })
        }
    }
}

/// The fields of a header block named in `names` (or, when not `keep`, the others), with
/// the blank line that ends a header.
pub(super) fn header_fields(
    header: &[u8],
    names: &[imap_codec::imap_types::core::AString<'_>],
    keep: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, field) in mime::fields(header) {
        let listed = names.iter().any(|n| n.as_ref().eq_ignore_ascii_case(name));
        if listed == keep {
            out.extend_from_slice(field);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}
