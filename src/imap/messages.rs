//! Commands that change messages: STORE, COPY and MOVE (with UIDPLUS's COPYUID), EXPUNGE
//! and UID EXPUNGE, APPEND (with APPENDUID, answered after the commit). Every change is
//! checked against the session's rights (RFC 4314 letters) before it is made.

use imap_codec::imap_types::command::StoreModifier;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::sequence::SequenceSet;

use super::encode::uid_set;
use super::fetch::has_flag;
use super::session::{Reply, Session};
use crate::delivery::Quota;
use crate::listener::ReadError;

/// The right a flag change needs (RFC 4314 2.1).
fn right_for(flag: &str) -> &'static str {
    if flag.eq_ignore_ascii_case("\\Seen") {
        "s"
    } else if flag.eq_ignore_ascii_case("\\Deleted") {
        "t"
    } else {
        "w"
    }
}

/// The flags of a STORE or APPEND as stored: system flags spelled canonically, no \Recent.
fn flag_names(flags: &[Flag<'_>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for flag in flags {
        let name = flag.to_string();
        if name.eq_ignore_ascii_case("\\Recent") || name == "\\*" {
            continue;
        }
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            names.push(name);
        }
    }
    names
}

impl Session<'_> {
    /// STORE or UID STORE, with RFC 7162's UNCHANGEDSINCE.
    pub(super) async fn store(
        &mut self,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: &[Flag<'_>],
        by_uid: bool,
        modifiers: &[StoreModifier],
    ) -> Result<Reply, ReadError> {
        let names = flag_names(flags);
        let unchanged_since = modifiers
            .iter()
            .map(|StoreModifier::UnchangedSince(n)| *n)
            .min();
        if unchanged_since.is_some() {
            self.enable_condstore();
        }
        let Some(view) = &self.view else {
            return Ok(Reply::bad("No mailbox selected"));
        };
        if view.read_only {
            return Ok(Reply::no("[READ-ONLY] The mailbox is read-only"));
        }
        if !by_uid && !view.valid_numbers(set) {
            return Ok(Reply::bad("Invalid message sequence number"));
        }
        let targets = view.resolve(set, by_uid);
        // Replacing touches every system flag; adding or removing only the ones named.
        let touched: Vec<&str> = match kind {
            StoreType::Replace => vec!["\\Seen", "\\Deleted", "\\Answered"],
            _ => names.iter().map(String::as_str).collect(),
        };
        if let Some(flag) = touched.iter().find(|f| !view.rights.allows(right_for(f))) {
            return Ok(Reply::no(format!(
                "[NOPERM] You may not change {flag} here"
            )));
        }
        let mailbox_id = view.mailbox.id;
        let mut listed = match self.metas_of(&targets).await {
            Ok(listed) => listed,
            Err(e) => return Ok(Reply::unavailable(e)),
        };
        let mut updates = Vec::new();
        // Messages changed since the client's modseq are left alone and named (MODIFIED).
        let mut modified = Vec::new();
        for (i, meta) in &listed {
            let i = *i;
            if unchanged_since.is_some_and(|n| meta.modseq > n) {
                modified.push(if by_uid { meta.uid } else { i as u32 + 1 });
                continue;
            }
            let mut current: Vec<String> =
                meta.flags.split_whitespace().map(String::from).collect();
            match kind {
                StoreType::Add => {
                    for name in &names {
                        if !has_flag(&meta.flags, name) {
                            current.push(name.clone());
                        }
                    }
                }
                StoreType::Remove => {
                    current.retain(|f| !names.iter().any(|n| n.eq_ignore_ascii_case(f)))
                }
                StoreType::Replace => current = names.clone(),
            }
            let new = current.join(" ");
            if new != meta.flags {
                updates.push((meta.uid, new));
            }
        }
        let done = match self.ctx.store.store_flags(mailbox_id, &updates).await {
            Ok(done) => done,
            Err(e) => return Ok(Reply::unavailable(e)),
        };
        let mut out = Vec::new();
        if let Some(view) = &mut self.view {
            let modseqs: std::collections::HashMap<u32, u64> = done.into_iter().collect();
            let new_flags: std::collections::HashMap<u32, String> = updates.into_iter().collect();
            for (i, meta) in &mut listed {
                let changed = match (modseqs.get(&meta.uid), new_flags.get(&meta.uid)) {
                    (Some(&modseq), Some(flags)) => {
                        meta.flags = flags.clone();
                        meta.modseq = modseq;
                        view.note_own(modseq);
                        true
                    }
                    _ => false,
                };
                if response == StoreResponse::Answer {
                    out.extend_from_slice(&view.flags_line(*i, meta, by_uid));
                } else if view.modseq && changed {
                    // Even .SILENT tells the new modseq under CONDSTORE (RFC 7162 3.2).
                    let uid = if by_uid {
                        format!("UID {} ", meta.uid)
                    } else {
                        String::new()
                    };
                    let line = format!("* {} FETCH ({uid}MODSEQ ({}))\r\n", *i + 1, meta.modseq);
                    out.extend_from_slice(line.as_bytes());
                }
            }
        }
        self.push(&out).await?;
        if !modified.is_empty() {
            return Ok(Reply::ok(format!(
                "[MODIFIED {}] Conditional STORE failed for some messages",
                uid_set(&modified)
            )));
        }
        Ok(Reply::ok(""))
    }

    /// COPY or MOVE (and their UID forms).
    pub(super) async fn copy(
        &mut self,
        set: &SequenceSet,
        target: &Mailbox<'_>,
        by_uid: bool,
        remove: bool,
    ) -> Result<Reply, ReadError> {
        let command = if remove { "MOVE" } else { "COPY" };
        let target = match self.target(target).await {
            Ok(target) => target,
            Err(Reply::No(text)) if text.starts_with("[NONEXISTENT]") => {
                return Ok(Reply::no("[TRYCREATE] No such mailbox"));
            }
            Err(reply) => return Ok(reply),
        };
        let Some(view) = &self.view else {
            return Ok(Reply::bad("No mailbox selected"));
        };
        if !target.rights.allows("i")
            || !view.rights.allows("r")
            || (remove && !view.rights.allows("te"))
        {
            return Ok(Reply::no("[NOPERM] You may not do this here"));
        }
        if remove && view.read_only {
            return Ok(Reply::no("[READ-ONLY] The mailbox is read-only"));
        }
        if !by_uid && !view.valid_numbers(set) {
            return Ok(Reply::bad("Invalid message sequence number"));
        }
        let source = view.mailbox.id;
        let chosen: Vec<crate::store::MessageMeta> =
            match self.metas_of(&view.resolve(set, by_uid)).await {
                Ok(listed) => listed.into_iter().map(|(_, m)| m).collect(),
                Err(e) => return Ok(Reply::unavailable(e)),
            };
        let Some(view) = &self.view else {
            return Ok(Reply::bad("No mailbox selected"));
        };
        if chosen.is_empty() {
            return Ok(Reply::ok(format!("{command} completed (nothing to do)")));
        }
        let store = &self.ctx.store;
        let copied = if view.owner.id == target.owner.id {
            let uids: Vec<u32> = chosen.iter().map(|m| m.uid).collect();
            store.copy(source, &uids, target.folder.id, remove).await
        } else {
            // Another mailbox's folder: its messages are sealed under its own key.
            store
                .copy_between(
                    (&view.owner, source),
                    &chosen,
                    (&target.owner, target.folder.id),
                    remove,
                )
                .await
        };
        let pairs = match copied {
            Ok(pairs) => pairs,
            Err(e) => return Ok(Reply::unavailable(e)),
        };
        let from: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        let to: Vec<u32> = pairs.iter().map(|p| p.1).collect();
        let code = format!(
            "[COPYUID {} {} {}]",
            target.folder.uidvalidity,
            uid_set(&from),
            uid_set(&to)
        );
        if !remove {
            return Ok(Reply::ok(format!("{code} COPY completed")));
        }
        let mut out = format!("* OK {code} Moved\r\n").into_bytes();
        if let Some(view) = &self.view {
            self.forget_summaries(&view.mailbox, &from);
        }
        if let Some(view) = &mut self.view {
            out.extend_from_slice(&view.expunge_report(&from));
        }
        self.push(&out).await?;
        Ok(Reply::ok(""))
    }

    /// EXPUNGE, or UID EXPUNGE limited to `only`.
    pub(super) async fn expunge(&mut self, only: Option<&SequenceSet>) -> Result<Reply, ReadError> {
        let Some(view) = &self.view else {
            return Ok(Reply::bad("No mailbox selected"));
        };
        if view.read_only {
            return Ok(Reply::no("[READ-ONLY] The mailbox is read-only"));
        }
        if !view.rights.allows("e") {
            return Ok(Reply::no("[NOPERM] You may not expunge here"));
        }
        let candidates: Vec<usize> = match only {
            Some(set) => view.resolve(set, true),
            None => (0..view.len()).collect(),
        };
        let mailbox_id = view.mailbox.id;
        let doomed: Vec<u32> = match self.metas_of(&candidates).await {
            Ok(listed) => listed
                .into_iter()
                .filter(|(_, m)| has_flag(&m.flags, "\\Deleted"))
                .map(|(_, m)| m.uid)
                .collect(),
            Err(e) => return Ok(Reply::unavailable(e)),
        };
        if let Err(e) = self.ctx.store.expunge(mailbox_id, &doomed).await {
            return Ok(Reply::unavailable(e));
        }
        let mut out = Vec::new();
        if let Some(view) = &self.view {
            self.forget_summaries(&view.mailbox, &doomed);
        }
        if let Some(view) = &mut self.view {
            out.extend_from_slice(&view.expunge_report(&doomed));
        }
        self.push(&out).await?;
        Ok(Reply::ok(""))
    }

    /// APPEND: answered with APPENDUID once the message is committed.
    pub(super) async fn append(
        &mut self,
        target: &Mailbox<'_>,
        flags: &[Flag<'_>],
        date: Option<DateTime>,
        message: LiteralOrLiteral8<'_>,
    ) -> Reply {
        let target = match self.target(target).await {
            Ok(target) => target,
            Err(Reply::No(text)) if text.starts_with("[NONEXISTENT]") => {
                return Reply::no("[TRYCREATE] No such mailbox");
            }
            Err(reply) => return reply,
        };
        let names = flag_names(flags);
        let needed: String = std::iter::once("i")
            .chain(names.iter().map(|f| right_for(f)))
            .collect();
        if !target.rights.allows(&needed) {
            return Reply::no("[NOPERM] You may not append here");
        }
        let body = match message {
            LiteralOrLiteral8::Literal(literal) => literal.data().to_vec(),
            LiteralOrLiteral8::Literal8(literal8) => literal8.data.into_owned(),
        };
        // Only the server writes verdicts: anyone with `i` could plant "valid" otherwise.
        let body = match crate::delivery::without_verdicts(&body) {
            std::borrow::Cow::Owned(clean) => clean,
            std::borrow::Cow::Borrowed(_) => body,
        };
        if body.is_empty() {
            return Reply::no("[CANNOT] Empty message");
        }
        let (owner, folder) = (&target.owner, &target.folder);
        match self.ctx.delivery.quota(owner, body.len() as u64).await {
            Ok(Quota::Room) => {}
            Ok(_) => return Reply::no("[OVERQUOTA] The mailbox is full"),
            Err(e) => return Reply::unavailable(e),
        }
        let internal_date = date.map_or_else(
            || chrono::Utc::now().timestamp(),
            |d| d.as_ref().timestamp(),
        );
        match self
            .ctx
            .store
            .append(owner, folder.id, body, names.join(" "), internal_date)
            .await
        {
            Ok(uid) => Reply::ok(format!(
                "[APPENDUID {} {uid}] APPEND completed",
                folder.uidvalidity
            )),
            Err(e) => Reply::unavailable(e),
        }
    }
}
