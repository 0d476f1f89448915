//! Folder commands: names as the client writes them (modified UTF-7, or UTF-8 once
//! UTF8=ACCEPT is enabled) to the UTF-8 names the store keeps;
//! CREATE, DELETE, RENAME, SUBSCRIBE (LIST and STATUS are in `list.rs`).

use imap_codec::imap_types::mailbox::Mailbox;

use super::access::Target;
use super::session::{Reply, Session};
use super::utf7;
use crate::store::StoreError;

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

    pub(super) fn name_from_client(&self, raw: &[u8]) -> Result<String, Reply> {
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

    /// The folder a client names, with the session's rights on it.
    pub(super) async fn target(&self, mailbox: &Mailbox<'_>) -> Result<Target, Reply> {
        let name = self.folder_name(mailbox)?;
        self.target_named(&name).await
    }

    /// CREATE (a trailing `/` is allowed and dropped, RFC 3501 6.3.3), in the session's
    /// mailbox or, with `k`, in one shared with it.
    pub(super) async fn create(&mut self, mailbox: &Mailbox<'_>) -> Reply {
        let name = match self.folder_name(mailbox) {
            Ok(name) => name.trim_end_matches('/').to_string(),
            Err(reply) => return reply,
        };
        let (owner, name, _) = match self.owner_of(&name).await {
            Ok(found) => found,
            Err(reply) => return reply,
        };
        match self.rights_on(&owner, None).await {
            Ok(rights) if rights.allows("k") => {}
            Ok(_) => return Reply::no("[NOPERM] You may not create folders here"),
            Err(reply) => return reply,
        }
        if let Err(why) = valid_name(&name) {
            return Reply::no(format!("[CANNOT] {why}"));
        }
        // The superior levels are made as needed (RFC 3501 6.3.3); existing ones are fine.
        let db = self.ctx.store.db();
        for (end, _) in name.match_indices('/') {
            match db.create_mailbox(owner.id, &name[..end], None).await {
                Ok(_) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Reply::unavailable(e),
            }
        }
        match db.create_mailbox(owner.id, &name, None).await {
            Ok(_) => Reply::ok(""),
            Err(StoreError::Conflict(_)) => Reply::no("[ALREADYEXISTS] Folder exists"),
            Err(e) => Reply::unavailable(e),
        }
    }

    /// DELETE.
    pub(super) async fn delete(&mut self, mailbox: &Mailbox<'_>) -> Reply {
        let target = match self.target(mailbox).await {
            Ok(target) => target,
            Err(reply) => return reply,
        };
        if !target.rights.allows("x") {
            return Reply::no("[NOPERM] You may not delete this folder");
        }
        if target.folder.name == "INBOX" {
            return Reply::no("[CANNOT] INBOX cannot be deleted");
        }
        if self
            .view
            .as_ref()
            .is_some_and(|v| v.mailbox.id == target.folder.id)
        {
            self.view = None;
        }
        match self.ctx.store.delete_folder(target.folder.id).await {
            Ok(()) => Reply::ok(""),
            Err(e) => Reply::unavailable(e),
        }
    }

    /// RENAME within one mailbox; renaming INBOX moves its messages to the new folder
    /// (RFC 3501 6.3.5).
    pub(super) async fn rename(&mut self, from: &Mailbox<'_>, to: &Mailbox<'_>) -> Reply {
        let source = match self.target(from).await {
            Ok(target) => target,
            Err(reply) => return reply,
        };
        let new_name = match self.folder_name(to) {
            Ok(name) => name,
            Err(reply) => return reply,
        };
        let (new_owner, new_name, _) = match self.owner_of(&new_name).await {
            Ok(found) => found,
            Err(reply) => return reply,
        };
        if new_owner.id != source.owner.id {
            return Reply::no("[CANNOT] A folder cannot move to another mailbox");
        }
        if !source.rights.allows("xk") {
            return Reply::no("[NOPERM] You may not rename this folder");
        }
        if let Err(why) = valid_name(&new_name) {
            return Reply::no(format!("[CANNOT] {why}"));
        }
        let store = &self.ctx.store;
        let (owner, folder) = (&source.owner, &source.folder);
        let done = if folder.name == "INBOX" {
            match store.db().create_mailbox(owner.id, &new_name, None).await {
                Ok(created) => match store.db().list_messages(folder.id).await {
                    Ok(all) => {
                        let uids: Vec<u32> = all.iter().map(|m| m.uid).collect();
                        store
                            .copy(folder.id, &uids, created.id, true)
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
                .rename_mailbox(owner.id, &folder.name, &new_name)
                .await
        };
        match done {
            Ok(()) => Reply::ok(""),
            Err(StoreError::Conflict(_)) => Reply::no("[ALREADYEXISTS] Target folder exists"),
            Err(e) => Reply::unavailable(e),
        }
    }

    /// SUBSCRIBE and UNSUBSCRIBE. A shared folder's subscription is its owner's: others'
    /// (un)subscribing is accepted and changes nothing, as LSUB always shows what is shared.
    pub(super) async fn subscribe(&mut self, mailbox: &Mailbox<'_>, on: bool) -> Reply {
        let target = match self.target(mailbox).await {
            Ok(target) => target,
            // Unsubscribing from a folder that is gone is allowed.
            Err(_) if !on => return Reply::ok(""),
            Err(reply) => return reply,
        };
        if self.user.as_ref().is_some_and(|u| u.id != target.owner.id) {
            return Reply::ok("");
        }
        match self
            .ctx
            .store
            .db()
            .set_subscribed(target.folder.id, on)
            .await
        {
            Ok(()) => Reply::ok(""),
            Err(e) => Reply::unavailable(e),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("Projets/2026").is_ok());
        assert!(valid_name("a//b").is_err());
        assert!(valid_name("a*").is_err());
        assert!(valid_name("").is_err());
    }
}
