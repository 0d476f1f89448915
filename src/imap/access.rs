//! Who may use which folder: the folder a command names (the user's own, or another
//! mailbox's under the RFC 2342 namespaces), the session's RFC 4314 rights on it, and the ACL
//! commands (SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS) by which an owner shares a
//! folder. A person's folders appear to others under `Other Users/<address>/`, an
//! organisation's or an application's under `Shared/<address>/`.
//!
//! Rights on someone else's folder are the union of the mailbox-wide delegation (granted by
//! the administrator) and the folder's own grants (SETACL). Without `l` a folder does not
//! exist for the session (RFC 4314 4: no disclosure).

use super::session::{Reply, Session};
use crate::audit::Outcome;
use crate::auth::Rights;
use crate::store::{Account, AccountKind, Grant, MailboxInfo};

/// Where persons' folders appear to the people they share them with.
pub const OTHER_USERS: &str = "Other Users";
/// Where organisations' and applications' folders appear to their team.
pub const SHARED: &str = "Shared";

/// A folder a command names, whoever owns it, with the session's rights on it.
pub(super) struct Target {
    /// The mailbox that owns the folder.
    pub owner: Account,
    /// The folder.
    pub folder: MailboxInfo,
    /// The session's rights on it.
    pub rights: Rights,
    /// Its name as the client sees it (before modified UTF-7).
    pub display: String,
}

/// What `grants` give on a folder of `owner` (None: on the mailbox as a whole): its
/// mailbox-wide delegation and, for a folder, that folder's own grants.
fn granted(grants: &[Grant], owner: &Account, folder: Option<i64>) -> Rights {
    grants
        .iter()
        .filter(|g| g.owner == owner.address)
        .filter(|g| g.mailbox_id.is_none() || (folder.is_some() && g.mailbox_id == folder))
        .filter_map(|g| Rights::parse(&g.rights).ok())
        .fold(Rights::default(), Rights::union)
}

/// The namespace a mailbox's folders appear under for others.
pub fn namespace_of(owner: &Account) -> &'static str {
    match owner.kind {
        AccountKind::Org | AccountKind::App => SHARED,
        AccountKind::Per | AccountKind::Cab => OTHER_USERS,
    }
}

/// The name others see for `folder` of `owner`.
pub fn shared_name(owner: &Account, folder: &str) -> String {
    format!("{}/{}/{folder}", namespace_of(owner), owner.address)
}

impl Session<'_> {
    /// The owner a name points into, and the folder name inside that mailbox: the session's
    /// own for a plain name.
    pub(super) async fn owner_of(&self, name: &str) -> Result<(Account, String, bool), Reply> {
        let user = self
            .user
            .clone()
            .ok_or_else(|| Reply::bad("Not authenticated"))?;
        let nonexistent = || Reply::no("[NONEXISTENT] No such mailbox");
        let Some((namespace, rest)) = name.split_once('/') else {
            return Ok((user, name.to_string(), false));
        };
        if namespace != OTHER_USERS && namespace != SHARED {
            return Ok((user, name.to_string(), false));
        }
        let (address, folder) = rest.split_once('/').unwrap_or((rest, ""));
        let owner = match self
            .ctx
            .store
            .db()
            .find_account(&address.to_lowercase())
            .await
        {
            Ok(Some(owner)) if owner.id != user.id && namespace_of(&owner) == namespace => owner,
            Ok(_) => return Err(nonexistent()),
            Err(e) => return Err(Reply::unavailable(e)),
        };
        Ok((owner, folder.to_string(), true))
    }

    /// The session's rights on a folder of `owner` (None: on the mailbox as a whole, for
    /// creating folders in it).
    pub(super) async fn rights_on(
        &self,
        owner: &Account,
        folder: Option<i64>,
    ) -> Result<Rights, Reply> {
        let Some(user) = &self.user else {
            return Ok(Rights::default());
        };
        if owner.id == user.id {
            return Ok(self.rights);
        }
        let grants = self
            .ctx
            .store
            .db()
            .grants_to(user.id)
            .await
            .map_err(Reply::unavailable)?;
        // A delegate acting for `user` has at most the delegation's rights here too: the
        // grants others gave the mailbox are not the delegate's to use beyond it.
        Ok(granted(&grants, owner, folder).intersect(self.rights))
    }

    /// The folder a client names, with the session's rights; `NO [NONEXISTENT]` when there
    /// is none or the session may not even see it.
    pub(super) async fn target_named(&self, name: &str) -> Result<Target, Reply> {
        let (owner, folder_name, shared) = self.owner_of(name).await?;
        let folder = match self
            .ctx
            .store
            .db()
            .mailbox(owner.id, &folder_name, false)
            .await
        {
            Ok(Some(folder)) => folder,
            Ok(None) => return Err(Reply::no("[NONEXISTENT] No such mailbox")),
            Err(e) => return Err(Reply::unavailable(e)),
        };
        let rights = self.rights_on(&owner, Some(folder.id)).await?;
        if shared && !rights.allows("l") {
            return Err(Reply::no("[NONEXISTENT] No such mailbox"));
        }
        let display = if shared {
            shared_name(&owner, &folder.name)
        } else {
            folder.name.clone()
        };
        Ok(Target {
            owner,
            folder,
            rights,
            display,
        })
    }

    /// Every folder the session may see: its own, then others' it has `l` on, with display
    /// names.
    pub(super) async fn visible_folders(&self) -> Result<Vec<(String, MailboxInfo)>, Reply> {
        let Some(user) = &self.user else {
            return Ok(Vec::new());
        };
        let db = self.ctx.store.db();
        let mut out: Vec<(String, MailboxInfo)> = db
            .mailboxes(user.id)
            .await
            .map_err(Reply::unavailable)?
            .into_iter()
            .map(|f| (f.name.clone(), f))
            .collect();
        let grants = db.grants_to(user.id).await.map_err(Reply::unavailable)?;
        let mut owners: Vec<&str> = grants.iter().map(|g| g.owner.as_str()).collect();
        owners.dedup();
        for address in owners {
            let Some(owner) = db.find_account(address).await.map_err(Reply::unavailable)? else {
                continue;
            };
            for folder in db.mailboxes(owner.id).await.map_err(Reply::unavailable)? {
                // The grants already read: no query per folder.
                if granted(&grants, &owner, Some(folder.id)).allows("l") {
                    out.push((shared_name(&owner, &folder.name), folder));
                }
            }
        }
        Ok(out)
    }

    /// MYRIGHTS (RFC 4314 3.5).
    pub(super) async fn my_rights(
        &mut self,
        name: &[u8],
    ) -> Result<Reply, crate::listener::ReadError> {
        let target = match self.acl_target(name).await {
            Ok(target) => target,
            Err(reply) => return Ok(reply),
        };
        let line = format!(
            "* MYRIGHTS {} {}\r\n",
            super::encode::quoted(&self.name_to_client(&target.display)),
            target.rights
        );
        self.push(line.as_bytes()).await?;
        Ok(Reply::ok(""))
    }

    /// GETACL (RFC 4314 3.3): the owner, the mailbox-wide delegations and the folder's grants.
    pub(super) async fn get_acl(
        &mut self,
        name: &[u8],
    ) -> Result<Reply, crate::listener::ReadError> {
        let target = match self.administered(name).await {
            Ok(target) => target,
            Err(reply) => return Ok(reply),
        };
        let db = self.ctx.store.db();
        let mut entries: Vec<(String, Rights)> = vec![(target.owner.address.clone(), Rights::ALL)];
        let delegations = match db.delegations().await {
            Ok(all) => all,
            Err(e) => return Ok(Reply::unavailable(e)),
        };
        let folder_grants = match db.folder_acl(target.folder.id).await {
            Ok(grants) => grants,
            Err(e) => return Ok(Reply::unavailable(e)),
        };
        let grants = delegations
            .into_iter()
            .filter(|d| d.mailbox == target.owner.address)
            .map(|d| (d.delegate, d.rights))
            .chain(folder_grants);
        for (who, letters) in grants {
            let rights = Rights::parse(&letters).unwrap_or_default();
            match entries.iter_mut().find(|(w, _)| *w == who) {
                Some((_, r)) => *r = r.union(rights),
                None => entries.push((who, rights)),
            }
        }
        let mut line = format!(
            "* ACL {}",
            super::encode::quoted(&self.name_to_client(&target.display))
        );
        for (who, rights) in entries {
            line.push_str(&format!(" {} {rights}", super::encode::quoted(&who)));
        }
        line.push_str("\r\n");
        self.push(line.as_bytes()).await?;
        Ok(Reply::ok(""))
    }

    /// LISTRIGHTS (RFC 4314 3.4): nothing is always granted; each right may be granted alone.
    pub(super) async fn list_rights(
        &mut self,
        name: &[u8],
        identifier: &str,
    ) -> Result<Reply, crate::listener::ReadError> {
        let target = match self.administered(name).await {
            Ok(target) => target,
            Err(reply) => return Ok(reply),
        };
        let line = format!(
            "* LISTRIGHTS {} {} \"\" l r s w i p k x t e a\r\n",
            super::encode::quoted(&self.name_to_client(&target.display)),
            super::encode::quoted(identifier)
        );
        self.push(line.as_bytes()).await?;
        Ok(Reply::ok(""))
    }

    /// SETACL (RFC 4314 3.1; `+` adds, `-` removes) and DELETEACL (None): audited.
    pub(super) async fn set_acl(
        &mut self,
        name: &[u8],
        identifier: &str,
        change: Option<&str>,
    ) -> Reply {
        let target = match self.administered(name).await {
            Ok(target) => target,
            Err(reply) => return reply,
        };
        let db = self.ctx.store.db();
        let grantee = match db.find_account(&identifier.to_lowercase()).await {
            Ok(Some(account)) => account,
            Ok(None) => return Reply::no(format!("[CANNOT] No mailbox {identifier} here")),
            Err(e) => return Reply::unavailable(e),
        };
        if grantee.id == target.owner.id {
            return Reply::no("[CANNOT] The owner's rights cannot be changed");
        }
        let current = match db.folder_acl(target.folder.id).await {
            Ok(grants) => grants
                .into_iter()
                .find(|(who, _)| *who == grantee.address)
                .and_then(|(_, r)| Rights::parse(&r).ok())
                .unwrap_or_default(),
            Err(e) => return Reply::unavailable(e),
        };
        let new = match change {
            None => Rights::default(),
            Some(change) => {
                let (mode, letters) = match change.chars().next() {
                    Some('+') => ('+', &change[1..]),
                    Some('-') => ('-', &change[1..]),
                    _ => ('=', change),
                };
                let Ok(rights) = Rights::parse(letters) else {
                    return Reply::bad("Rights are RFC 4314 letters (lrswipkxtea)");
                };
                match mode {
                    '+' => current.union(rights),
                    '-' => current.without(rights),
                    _ => rights,
                }
            }
        };
        let stored = (!new.is_empty()).then(|| new.to_string());
        if let Err(e) = db
            .set_folder_acl(target.folder.id, grantee.id, stored.as_deref())
            .await
        {
            return Reply::unavailable(e);
        }
        let actor = self.actor();
        let detail = format!(
            "{} folder {:?}: {} now has {:?}",
            target.owner.address,
            target.folder.name,
            grantee.address,
            new.to_string()
        );
        let source = format!("imap {}", self.conn.peer);
        if let Err(e) = self
            .ctx
            .audit
            .record("acl.set", &actor, &source, Outcome::Ok, &detail)
            .await
        {
            tracing::error!(error = %e, "audit of an ACL change failed");
        }
        Reply::ok("")
    }

    async fn acl_target(&self, name: &[u8]) -> Result<Target, Reply> {
        let name = self.name_from_client(name)?;
        let target = self.target_named(&name).await?;
        if target.rights.is_empty() {
            return Err(Reply::no("[NONEXISTENT] No such mailbox"));
        }
        Ok(target)
    }

    /// A folder whose ACL the session may read and change (`a`).
    async fn administered(&self, name: &[u8]) -> Result<Target, Reply> {
        let target = self.acl_target(name).await?;
        if !target.rights.allows("a") {
            return Err(Reply::no("[NOPERM] You may not administer this mailbox"));
        }
        Ok(target)
    }
}
