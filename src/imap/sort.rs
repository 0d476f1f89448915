//! SORT (RFC 5256 3, with RFC 5957's DISPLAYFROM and DISPLAYTO) and what SORT and THREAD
//! both read of a message: its base subject (RFC 5256 2.1), sent date, first addresses and
//! message identifiers.

use std::cmp::Ordering;

use imap_codec::imap_types::core::Charset;
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use imap_codec::imap_types::search::SearchKey;
use mail_parser::MessageParser;

use super::address;
use super::mime;
use super::session::{Reply, Session};
use crate::listener::ReadError;

/// What sorting and threading read of one message.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Index in the view (sequence number - 1).
    pub index: usize,
    pub uid: u32,
    pub size: u64,
    /// Arrival, seconds since the epoch.
    pub arrival: i64,
    /// Sent date (Date:), or the arrival when absent or unreadable (RFC 5256 3).
    pub date: i64,
    pub base_subject: String,
    /// The subject marks a reply or a forward (`Re:`, `Fwd:`, `(fwd)`).
    pub reply: bool,
    /// First From/To/Cc addresses' local parts (SORT FROM/TO/CC), and display names or
    /// addresses (DISPLAYFROM/DISPLAYTO).
    pub from: String,
    pub to: String,
    pub cc: String,
    pub display_from: String,
    pub display_to: String,
    /// Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// The message's parents, oldest first: References, else the first In-Reply-To.
    pub references: Vec<String>,
}

impl Summary {
    /// Reads the summary of a stored message.
    pub fn of(index: usize, meta: &crate::store::MessageMeta, header: &[u8]) -> Summary {
        let get = |name: &str| mime::header_value(header, name);
        let first = |name: &str| {
            get(name)
                .map(|v| address::parse_list(&v))
                .and_then(|list| list.into_iter().find(|a| a.host.is_some()))
        };
        let local = |name: &str| {
            first(name)
                .and_then(|a| a.mailbox)
                .unwrap_or_default()
                .to_ascii_uppercase()
        };
        let display = |name: &str| {
            first(name)
                .map(|a| {
                    a.name.unwrap_or_else(|| {
                        format!(
                            "{}@{}",
                            a.mailbox.unwrap_or_default(),
                            a.host.unwrap_or_default()
                        )
                    })
                })
                .unwrap_or_default()
                .to_uppercase()
        };
        // Parsed only when the subject holds encoded words.
        let raw_subject = get("Subject").unwrap_or_default();
        let decoded_subject = if raw_subject.contains("=?") {
            MessageParser::default()
                .parse_headers(header)
                .and_then(|m| m.subject().map(str::to_string))
                .unwrap_or(raw_subject)
        } else {
            raw_subject
        };
        let date = get("Date")
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(d.trim()).ok())
            .map_or(meta.internal_date, |d| d.timestamp());
        let references = {
            let refs = message_ids(&get("References").unwrap_or_default());
            if refs.is_empty() {
                message_ids(&get("In-Reply-To").unwrap_or_default())
                    .into_iter()
                    .take(1)
                    .collect()
            } else {
                refs
            }
        };
        Summary {
            index,
            uid: meta.uid,
            size: meta.size,
            arrival: meta.internal_date,
            date,
            base_subject: base_subject(&decoded_subject),
            reply: is_reply(&decoded_subject),
            from: local("From"),
            to: local("To"),
            cc: local("Cc"),
            display_from: display("From"),
            display_to: display("To"),
            message_id: message_ids(&get("Message-ID").unwrap_or_default())
                .into_iter()
                .next(),
            references,
        }
    }
}

/// The `<...>` identifiers in a header value, without the brackets.
fn message_ids(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let id = rest[open + 1..open + close].trim();
        if !id.is_empty() {
            out.push(id.to_string());
        }
        rest = &rest[open + close + 1..];
    }
    out
}

/// RFC 5256 2.1: the subject without `Re:`, `Fw:`, `Fwd:`, `[blob]` prefixes, `(fwd)`
/// trailers and `[Fwd: ...]` wrappers, whitespace collapsed, upper-cased for comparison.
pub fn base_subject(subject: &str) -> String {
    let mut s: String = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        let before = s.clone();
        // Trailers: "(fwd)" and whitespace.
        while s.to_ascii_lowercase().ends_with("(fwd)") {
            s = s[..s.len() - 5].trim_end().to_string();
        }
        // Leaders: blobs, and re/fw/fwd (with an optional blob) before a colon.
        while let Some(rest) = strip_leader(&s) {
            s = rest;
        }
        // Wrappers: "[fwd: ...]".
        if s.len() > 6
            && s.is_char_boundary(5)
            && s[..5].eq_ignore_ascii_case("[fwd:")
            && s.ends_with(']')
        {
            s = s[5..s.len() - 1].trim().to_string();
        }
        if s == before {
            break;
        }
    }
    s.to_uppercase()
}

/// One leader removed (RFC 5256 2.1 step 3), if there is one.
fn strip_leader(s: &str) -> Option<String> {
    let t = s.trim_start();
    if let Some(rest) = strip_blob(t)
        && !rest.trim().is_empty()
    {
        return Some(rest.to_string());
    }
    let lower = t.to_ascii_lowercase();
    for word in ["re", "fwd", "fw"] {
        if lower.starts_with(word) {
            let after = t[word.len()..].trim_start();
            let after = strip_blob(after).unwrap_or(after);
            if let Some(rest) = after.trim_start().strip_prefix(':') {
                return Some(rest.trim_start().to_string());
            }
        }
    }
    None
}

/// Whether a subject marks a reply or a forward.
fn is_reply(subject: &str) -> bool {
    let s = subject.trim().to_ascii_lowercase();
    ["re:", "re[", "fw:", "fwd:", "[fwd:"]
        .iter()
        .any(|p| s.starts_with(p))
        || s.ends_with("(fwd)")
}

/// `[blob] rest` → `rest`.
fn strip_blob(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let close = inner.find(']')?;
    if inner[..close].contains('[') {
        return None;
    }
    Some(inner[close + 1..].trim_start())
}

fn compare(a: &Summary, b: &Summary, key: &SortKey) -> Ordering {
    match key {
        SortKey::Arrival => a.arrival.cmp(&b.arrival),
        SortKey::Cc => a.cc.cmp(&b.cc),
        SortKey::Date => a.date.cmp(&b.date),
        SortKey::From => a.from.cmp(&b.from),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::Subject => a.base_subject.cmp(&b.base_subject),
        SortKey::To => a.to.cmp(&b.to),
        SortKey::DisplayFrom => a.display_from.cmp(&b.display_from),
        SortKey::DisplayTo => a.display_to.cmp(&b.display_to),
    }
}

impl Session<'_> {
    /// The summaries of the messages matching `criteria`, in sequence order.
    pub(super) async fn summaries(
        &mut self,
        charset: Option<Charset<'static>>,
        criteria: &[SearchKey<'static>],
    ) -> Result<Vec<Summary>, Reply> {
        let (numbers, _) = self.matching(charset, criteria, false).await?;
        let indices: Vec<usize> = numbers.iter().map(|&n| n as usize - 1).collect();
        let mut out = Vec::with_capacity(indices.len());
        for run in super::fetch::runs(&indices, super::fetch::META_RUN) {
            let mut metas = self.metas(run).await.map_err(Reply::unavailable)?;
            let mut headers = self.cached(run).await.map_err(Reply::unavailable)?;
            let Some(view) = &self.view else {
                return Err(Reply::bad("No mailbox selected"));
            };
            for &index in run {
                if let Some(uid) = view.uid(index)
                    && let (Some(meta), Some(cached)) = (metas.remove(&uid), headers.remove(&uid))
                {
                    out.push(Summary::of(index, &meta, cached.header()));
                }
            }
        }
        Ok(out)
    }

    /// SORT or UID SORT.
    pub(super) async fn sort(
        &mut self,
        criteria: &[SortCriterion],
        charset: Charset<'static>,
        search: &[SearchKey<'static>],
        by_uid: bool,
    ) -> Result<Reply, ReadError> {
        let mut summaries = match self.summaries(Some(charset), search).await {
            Ok(summaries) => summaries,
            Err(reply) => return Ok(reply),
        };
        summaries.sort_by(|a, b| {
            criteria
                .iter()
                .map(|c| {
                    let order = compare(a, b, &c.key);
                    if c.reverse { order.reverse() } else { order }
                })
                .find(|o| o.is_ne())
                // Ties go by sequence number (RFC 5256 3).
                .unwrap_or_else(|| a.index.cmp(&b.index))
        });
        let mut line = String::from("* SORT");
        for s in &summaries {
            let n = if by_uid { s.uid } else { s.index as u32 + 1 };
            line.push_str(&format!(" {n}"));
        }
        line.push_str("\r\n");
        self.push(line.as_bytes()).await?;
        Ok(Reply::ok(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects_as_rfc_5256_extracts_them() {
        assert_eq!(
            base_subject("Re: Re: [PATIENT] Fwd: compte rendu (fwd)"),
            "COMPTE RENDU"
        );
        assert_eq!(base_subject("[Fwd: Résultats]"), "RÉSULTATS");
        assert_eq!(base_subject("RE[2]: bilan"), "BILAN");
        assert_eq!(base_subject("   bilan   sanguin "), "BILAN SANGUIN");
        assert_eq!(base_subject("[liste]"), "[LISTE]");
        assert_eq!(base_subject(""), "");
    }

    #[test]
    fn references_fall_back_to_in_reply_to() {
        assert_eq!(message_ids("<a@x> <b@y>"), vec!["a@x", "b@y"]);
        assert_eq!(message_ids("garbage <c@z"), Vec::<String>::new());
    }
}
