//! Folder commands: names as the client writes them (modified UTF-7, or UTF-8 once
//! UTF8=ACCEPT is enabled) to the UTF-8 names the store keeps, LIST and LSUB with their
//! wildcards and SPECIAL-USE attributes, CREATE, DELETE, RENAME, SUBSCRIBE, STATUS.

use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::status::StatusDataItemName;

use super::encode;
use super::fetch::has_flag;
use super::session::{Reply, Session};
use super::utf7;
use crate::listener::ReadError;
use crate::store::{MailboxInfo, StoreError};

/// Longest folder name, in bytes.
const MAX_NAME: usize = 512;

impl Session<'_> {
    /// The store's name for a name the client sent.
    pub(super) fn folder_name(&self, mailbox: &Mailbox<'_>) -> Result<String, Reply> {
        let raw = match mailbox {
            Mailbox::Inbox => return Ok("INBOX".into()),
            Mailbox::Other(other) => other.inner().as_ref(),
        };
        self.name_from_client(raw)
    }

    fn name_from_client(&self, raw: &[u8]) -> Result<String, Reply> {
        let text = std::str::from_utf8(raw)
            .map_err(|_| Reply::no("[CANNOT] Folder names are UTF-8 or modified UTF-7"))?;
        let name = if self.utf8 || !text.is_ascii() {
            // UTF8=ACCEPT, or a client sending UTF-8 without saying so: taken as written.
            text.to_string()
        } else {
            utf7::decode(text).ok_or_else(|| Reply::no("[CANNOT] Invalid modified UTF-7 name"))?
        };
        // "inbox/x" is "INBOX/x": INBOX is case-insensitive, at any level's start.
        Ok(match name.split_once('/') {
            Some((first, rest)) if first.eq_ignore_ascii_case("INBOX") => format!("INBOX/{rest}"),
            _ if name.eq_ignore_ascii_case("INBOX") => "INBOX".into(),
            _ => name,
        })
    }

    /// A folder name as the client reads it.
    pub(super) fn name_to_client(&self, name: &str) -> String {
        if self.utf8 {
            name.to_string()
        } else {
            utf7::encode(name)
        }
    }

    /// The folder a client names; `NO [NONEXISTENT]` when there is none.
    pub(super) async fn folder(&self, mailbox: &Mailbox<'_>) -> Result<MailboxInfo, Reply> {
        let name = self.folder_name(mailbox)?;
        let user = self
            .user
            .as_ref()
            .ok_or_else(|| Reply::bad("Not authenticated"))?;
        match self.ctx.store.db().mailbox(user.id, &name, false).await {
            Ok(Some(mailbox)) => Ok(mailbox),
            Ok(None) => Err(Reply::no("[NONEXISTENT] No such mailbox")),
            Err(e) => Err(Reply::unavailable(e)),
        }
    }

    async fn folders(&self) -> Result<Vec<MailboxInfo>, StoreError> {
        match &self.user {
            Some(user) => self.ctx.store.db().mailboxes(user.id).await,
            None => Ok(Vec::new()),
        }
    }

    /// CREATE (a trailing `/` is allowed and dropped, RFC 3501 6.3.3).
    pub(super) async fn create(&mut self, mailbox: &Mailbox<'_>) -> Reply {
        if !self.rights.allows("k") {
            return Reply::no("[NOPERM] You may not create folders here");
        }
        let name = match self.folder_name(mailbox) {
            Ok(name) => name.trim_end_matches('/').to_string(),
            Err(reply) => return reply,
        };
        if let Err(why) = valid_name(&name) {
            return Reply::no(format!("[CANNOT] {why}"));
        }
        let Some(user) = &self.user else {
            return Reply::bad("Not authenticated");
        };
        // The superior levels are made as needed (RFC 3501 6.3.3); existing ones are fine.
        let db = self.ctx.store.db();
        for (end, _) in name.match_indices('/') {
            match db.create_mailbox(user.id, &name[..end], None).await {
                Ok(_) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Reply::unavailable(e),
            }
        }
        match self
            .ctx
            .store
            .db()
            .create_mailbox(user.id, &name, None)
            .await
        {
            Ok(_) => Reply::ok(""),
            Err(StoreError::Conflict(_)) => Reply::no("[ALREADYEXISTS] Folder exists"),
            Err(e) => Reply::unavailable(e),
        }
    }

    /// DELETE.
    pub(super) async fn delete(&mut self, mailbox: &Mailbox<'_>) -> Reply {
        if !self.rights.allows("x") {
            return Reply::no("[NOPERM] You may not delete folders here");
        }
        let folder = match self.folder(mailbox).await {
            Ok(folder) => folder,
            Err(reply) => return reply,
        };
        if folder.name == "INBOX" {
            return Reply::no("[CANNOT] INBOX cannot be deleted");
        }
        if self
            .view
            .as_ref()
            .is_some_and(|v| v.mailbox.id == folder.id)
        {
            self.view = None;
        }
        match self.ctx.store.delete_folder(folder.id).await {
            Ok(()) => Reply::ok(""),
            Err(e) => Reply::unavailable(e),
        }
    }

    /// RENAME; renaming INBOX moves its messages to the new folder (RFC 3501 6.3.5).
    pub(super) async fn rename(&mut self, from: &Mailbox<'_>, to: &Mailbox<'_>) -> Reply {
        if !self.rights.allows("xk") {
            return Reply::no("[NOPERM] You may not rename folders here");
        }
        let source = match self.folder(from).await {
            Ok(folder) => folder,
            Err(reply) => return reply,
        };
        let target = match self.folder_name(to) {
            Ok(name) => name,
            Err(reply) => return reply,
        };
        if let Err(why) = valid_name(&target) {
            return Reply::no(format!("[CANNOT] {why}"));
        }
        let Some(user) = self.user.clone() else {
            return Reply::bad("Not authenticated");
        };
        let store = &self.ctx.store;
        let done = if source.name == "INBOX" {
            match store.db().create_mailbox(user.id, &target, None).await {
                Ok(created) => match store.db().list_messages(source.id).await {
                    Ok(all) => {
                        let uids: Vec<u32> = all.iter().map(|m| m.uid).collect();
                        store
                            .copy(source.id, &uids, created.id, true)
                            .await
                            .map(|_| ())
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            }
        } else {
            store
                .db()
                .rename_mailbox(user.id, &source.name, &target)
                .await
        };
        match done {
            Ok(()) => Reply::ok(""),
            Err(StoreError::Conflict(_)) => Reply::no("[ALREADYEXISTS] Target folder exists"),
            Err(e) => Reply::unavailable(e),
        }
    }

    /// SUBSCRIBE and UNSUBSCRIBE.
    pub(super) async fn subscribe(&mut self, mailbox: &Mailbox<'_>, on: bool) -> Reply {
        let folder = match self.folder(mailbox).await {
            Ok(folder) => folder,
            // Unsubscribing from a folder that is gone is allowed.
            Err(_) if !on => return Reply::ok(""),
            Err(reply) => return reply,
        };
        match self.ctx.store.db().set_subscribed(folder.id, on).await {
            Ok(()) => Reply::ok(""),
            Err(e) => Reply::unavailable(e),
        }
    }

    /// LIST or LSUB.
    pub(super) async fn list(
        &mut self,
        reference: &Mailbox<'_>,
        pattern: &ListMailbox<'_>,
        lsub: bool,
    ) -> Result<Reply, ReadError> {
        let command = if lsub { "LSUB" } else { "LIST" };
        let pattern_raw: &[u8] = match pattern {
            ListMailbox::Token(token) => token.as_ref(),
            ListMailbox::String(string) => string.as_ref(),
        };
        let reference = match reference {
            Mailbox::Inbox => "INBOX".to_string(),
            Mailbox::Other(other) => match self.name_from_client(other.inner().as_ref()) {
                Ok(name) => name,
                Err(reply) => return Ok(reply),
            },
        };
        if pattern_raw.is_empty() {
            let line = format!("* {command} (\\Noselect) \"/\" \"\"\r\n");
            self.push(line.as_bytes()).await?;
            return Ok(Reply::ok(""));
        }
        if !self.rights.allows("l") {
            return Ok(Reply::ok(""));
        }
        let pattern = match self.name_from_client(pattern_raw) {
            Ok(pattern) => format!("{reference}{pattern}"),
            Err(reply) => return Ok(reply),
        };
        let folders = match self.folders().await {
            Ok(folders) => folders,
            Err(e) => return Ok(Reply::unavailable(e)),
        };
        let mut out = Vec::new();
        let mut shown = std::collections::HashSet::new();
        for folder in folders.iter().filter(|f| !lsub || f.subscribed) {
            // Each level of the name, so "%" shows "a" for "a/b" (as \Noselect when absent).
            let mut levels: Vec<&str> = Vec::new();
            for (i, _) in folder.name.match_indices('/') {
                levels.push(&folder.name[..i]);
            }
            levels.push(&folder.name);
            for level in levels {
                if !wildcard_match(&pattern, level) || !shown.insert(level.to_string()) {
                    continue;
                }
                let exists = folders.iter().find(|f| f.name == level);
                let children = folders.iter().any(|f| {
                    f.name.len() > level.len() + 1
                        && f.name.starts_with(level)
                        && f.name.as_bytes()[level.len()] == b'/'
                });
                let mut attributes = vec![if children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                }];
                match exists {
                    None => attributes.insert(0, "\\Noselect"),
                    Some(f) => attributes.extend(f.special_use.as_deref()),
                }
                let name = self.name_to_client(level);
                out.extend_from_slice(
                    format!("* {command} ({}) \"/\" ", attributes.join(" ")).as_bytes(),
                );
                encode::string(&mut out, name.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        self.push(&out).await?;
        Ok(Reply::ok(""))
    }

    /// STATUS.
    pub(super) async fn status(
        &mut self,
        mailbox: &Mailbox<'_>,
        items: &[StatusDataItemName],
    ) -> Result<Reply, ReadError> {
        if !self.rights.allows("r") {
            return Ok(Reply::no("[NOPERM] You may not read this mailbox"));
        }
        let folder = match self.folder(mailbox).await {
            Ok(folder) => folder,
            Err(reply) => return Ok(reply),
        };
        let messages = match self.ctx.store.db().list_messages(folder.id).await {
            Ok(messages) => messages,
            Err(e) => return Ok(Reply::unavailable(e)),
        };
        let count = |flag: &str, want: bool| {
            messages
                .iter()
                .filter(|m| has_flag(&m.flags, flag) == want)
                .count()
        };
        let mut values = Vec::new();
        for item in items {
            values.push(match item {
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
            });
        }
        let mut out = b"* STATUS ".to_vec();
        encode::string(&mut out, self.name_to_client(&folder.name).as_bytes());
        out.extend_from_slice(format!(" ({})\r\n", values.join(" ")).as_bytes());
        self.push(&out).await?;
        Ok(Reply::ok(""))
    }
}

/// Why a name cannot be a new folder.
fn valid_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err("Folder names are 1 to 512 bytes");
    }
    if name.starts_with('/') || name.split('/').any(str::is_empty) {
        return Err("Empty level in the folder name");
    }
    if name.chars().any(|c| c.is_control() || c == '*' || c == '%') {
        return Err("Folder names cannot hold control characters, * or %");
    }
    Ok(())
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

    #[test]
    fn names() {
        assert!(valid_name("Projets/2026").is_ok());
        assert!(valid_name("a//b").is_err());
        assert!(valid_name("a*").is_err());
        assert!(valid_name("").is_err());
    }
}
