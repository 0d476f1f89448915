//! LIST, LSUB and STATUS: wildcards (`*` and `%`), SPECIAL-USE and CHILDREN attributes,
//! LIST-EXTENDED's selection and return options and several patterns (RFC 5258), and
//! LIST-STATUS (RFC 5819), which answers STATUS for each listed folder in the same round trip.

use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::status::StatusDataItemName;

use super::access::Target;
use super::encode;
use super::extension::ListOptions;
use super::fetch::has_flag;
use super::session::{Reply, Session};
use crate::listener::ReadError;
use crate::store::MailboxInfo;

impl Session<'_> {
    /// LIST or LSUB as RFC 3501 has them.
    pub(super) async fn list(
        &mut self,
        reference: &Mailbox<'_>,
        pattern: &ListMailbox<'_>,
        lsub: bool,
    ) -> Result<Reply, ReadError> {
        let reference: &[u8] = match reference {
            Mailbox::Inbox => b"INBOX",
            Mailbox::Other(other) => other.inner().as_ref(),
        };
        let pattern: &[u8] = match pattern {
            ListMailbox::Token(token) => token.as_ref(),
            ListMailbox::String(string) => string.as_ref(),
        };
        let options = ListOptions {
            subscribed: lsub,
            ..ListOptions::default()
        };
        self.list_extended(reference, &[pattern.to_vec()], &options, lsub)
            .await
    }

    /// LIST with LIST-EXTENDED options and patterns (LSUB when `lsub`).
    pub(super) async fn list_extended(
        &mut self,
        reference: &[u8],
        patterns: &[Vec<u8>],
        options: &ListOptions,
        lsub: bool,
    ) -> Result<Reply, ReadError> {
        let command = if lsub { "LSUB" } else { "LIST" };
        if patterns.len() == 1 && patterns[0].is_empty() {
            let line = format!("* {command} (\\Noselect) \"/\" \"\"\r\n");
            self.push(line.as_bytes()).await?;
            return Ok(Reply::ok(""));
        }
        let reference = match self.name_from_client(reference) {
            Ok(name) => name,
            Err(reply) => return Ok(reply),
        };
        let mut full_patterns = Vec::new();
        for pattern in patterns {
            match self.name_from_client(pattern) {
                Ok(p) => full_patterns.push(format!("{reference}{p}")),
                Err(reply) => return Ok(reply),
            }
        }
        let folders = match self.visible_folders().await {
            Ok(folders) => folders,
            Err(reply) => return Ok(reply),
        };
        // A shared folder counts as subscribed: its subscription is its owner's.
        let subscribed = |name: &str, f: &MailboxInfo| f.subscribed || name != f.name;
        let selected = |name: &str, f: &MailboxInfo| {
            (!options.subscribed || subscribed(name, f))
                && (!options.special_use || f.special_use.is_some())
        };
        let mut shown = std::collections::HashSet::new();
        for (name, _) in folders.iter().filter(|(n, f)| selected(n, f)) {
            // Each level of the name, so "%" shows "a" for "a/b" (as \Noselect when absent).
            let mut levels: Vec<&str> = Vec::new();
            for (i, _) in name.match_indices('/') {
                levels.push(&name[..i]);
            }
            levels.push(name);
            for level in levels {
                let matched = full_patterns.iter().any(|p| wildcard_match(p, level));
                if !matched || !shown.insert(level.to_string()) {
                    continue;
                }
                let exists = folders.iter().find(|(n, _)| n == level);
                let children = folders.iter().any(|(n, _)| {
                    n.len() > level.len() + 1
                        && n.starts_with(level)
                        && n.as_bytes()[level.len()] == b'/'
                });
                let mut attributes = Vec::new();
                if exists.is_none() {
                    attributes.push("\\Noselect");
                }
                attributes.push(if children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
                if let Some((n, f)) = exists {
                    if options.return_subscribed && subscribed(n, f) {
                        attributes.push("\\Subscribed");
                    }
                    attributes.extend(f.special_use.as_deref());
                }
                let mut out = format!("* {command} ({}) \"/\" ", attributes.join(" ")).into_bytes();
                encode::string(&mut out, self.name_to_client(level).as_bytes());
                out.extend_from_slice(b"\r\n");
                if let (Some((n, _)), false) = (exists, options.status.is_empty()) {
                    let target = match self.target_named(n).await {
                        Ok(target) => target,
                        Err(reply) => return Ok(reply),
                    };
                    // No STATUS where the session may not read (RFC 5819 2).
                    if let Ok(line) = self.status_line(&target, &options.status).await {
                        out.extend_from_slice(&line);
                    }
                }
                self.push(&out).await?;
            }
        }
        Ok(Reply::ok(""))
    }

    /// STATUS.
    pub(super) async fn status(
        &mut self,
        mailbox: &Mailbox<'_>,
        items: &[StatusDataItemName],
    ) -> Result<Reply, ReadError> {
        let target = match self.target(mailbox).await {
            Ok(target) => target,
            Err(reply) => return Ok(reply),
        };
        match self.status_line(&target, items).await {
            Ok(line) => {
                self.push(&line).await?;
                Ok(Reply::ok(""))
            }
            Err(reply) => Ok(reply),
        }
    }

    /// The `* STATUS` line of a folder.
    async fn status_line(
        &self,
        target: &Target,
        items: &[StatusDataItemName],
    ) -> Result<Vec<u8>, Reply> {
        if !target.rights.allows("r") {
            return Err(Reply::no("[NOPERM] You may not read this mailbox"));
        }
        let folder = &target.folder;
        let messages = self
            .ctx
            .store
            .db()
            .list_messages(folder.id)
            .await
            .map_err(Reply::unavailable)?;
        let count = |flag: &str, want: bool| {
            messages
                .iter()
                .filter(|m| has_flag(&m.flags, flag) == want)
                .count()
        };
        let values: Vec<String> = items
            .iter()
            .map(|item| match item {
                StatusDataItemName::Messages => format!("MESSAGES {}", messages.len()),
                StatusDataItemName::Recent => "RECENT 0".into(),
                StatusDataItemName::UidNext => format!(
                    "UIDNEXT {}",
                    messages
                        .last()
                        .map_or(folder.uidnext, |m| m.uid + 1)
                        .max(folder.uidnext)
                ),
                StatusDataItemName::UidValidity => format!("UIDVALIDITY {}", folder.uidvalidity),
                StatusDataItemName::Unseen => format!("UNSEEN {}", count("\\Seen", false)),
                StatusDataItemName::Size => {
                    format!("SIZE {}", messages.iter().map(|m| m.size).sum::<u64>())
                }
                StatusDataItemName::Deleted => format!("DELETED {}", count("\\Deleted", true)),
                StatusDataItemName::DeletedStorage => format!(
                    "DELETED-STORAGE {}",
                    messages
                        .iter()
                        .filter(|m| has_flag(&m.flags, "\\Deleted"))
                        .map(|m| m.size)
                        .sum::<u64>()
                ),
                StatusDataItemName::HighestModSeq => {
                    format!("HIGHESTMODSEQ {}", folder.highestmodseq)
                }
            })
            .collect();
        let mut out = b"* STATUS ".to_vec();
        encode::string(&mut out, self.name_to_client(&target.display).as_bytes());
        out.extend_from_slice(format!(" ({})\r\n", values.join(" ")).as_bytes());
        Ok(out)
    }
}

/// LIST wildcards: `*` matches anything, `%` anything but the `/` delimiter. INBOX matches
/// whatever its case.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let pattern = match pattern.get(..5) {
        Some(head) if head.eq_ignore_ascii_case("INBOX") => format!("INBOX{}", &pattern[5..]),
        _ => pattern.to_string(),
    };
    matches(pattern.as_bytes(), name.as_bytes())
}

fn matches(pattern: &[u8], name: &[u8]) -> bool {
    // Iterative with backtracking over the last star: linear enough for folder names, and
    // no recursion a hostile pattern could deepen.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize, bool)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n, true));
                p += 1;
            }
            Some(b'%') => {
                star = Some((p, n, false));
                p += 1;
            }
            Some(&c) if c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn, any)) if any || name[sn] != b'/' => {
                    star = Some((sp, sn + 1, any));
                    p = sp + 1;
                    n = sn + 1;
                }
                _ => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*' || c == b'%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", "Archive/2024"));
        assert!(wildcard_match("%", "Archive"));
        assert!(!wildcard_match("%", "Archive/2024"));
        assert!(wildcard_match("Archive/%", "Archive/2024"));
        assert!(wildcard_match("inbox", "INBOX"));
        assert!(wildcard_match("A*4", "Archive/2024"));
        assert!(!wildcard_match("A%4", "Archive/2024"));
        assert!(!wildcard_match("Sent", "Sent/x"));
    }
}
