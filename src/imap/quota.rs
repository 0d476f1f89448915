//! QUOTA (RFC 9208): each mailbox has one quota root, its storage, as `mssante user quota`
//! sets it; the root of the session's own folders is "", a shared folder's is its owner's
//! address. Quotas are the administrator's: SETQUOTA is refused.

use imap_codec::imap_types::mailbox::Mailbox;

use super::encode::quoted;
use super::session::{Reply, Session};
use crate::listener::ReadError;
use crate::store::Account;

impl Session<'_> {
    /// The `* QUOTA` line of a mailbox (None when it has no limit).
    async fn quota_line(&self, root: &str, owner: &Account) -> Result<Option<String>, Reply> {
        let limit = owner
            .quota_bytes
            .unwrap_or(self.ctx.config.limits.mailbox_quota);
        if limit == 0 {
            return Ok(None);
        }
        let used = self
            .ctx
            .store
            .db()
            .account_usage(owner.id)
            .await
            .map_err(Reply::unavailable)?;
        // RFC 9208 counts STORAGE in units of 1024 octets.
        Ok(Some(format!(
            "* QUOTA {} (STORAGE {} {})\r\n",
            quoted(root),
            used.div_ceil(1024),
            limit / 1024
        )))
    }

    /// GETQUOTAROOT.
    pub(super) async fn get_quota_root(
        &mut self,
        mailbox: &Mailbox<'_>,
    ) -> Result<Reply, ReadError> {
        let target = match self.target(mailbox).await {
            Ok(target) => target,
            Err(reply) => return Ok(reply),
        };
        let own = self.user.as_ref().is_some_and(|u| u.id == target.owner.id);
        let root = if own {
            String::new()
        } else {
            target.owner.address.clone()
        };
        let name = quoted(&self.name_to_client(&target.display));
        match self.quota_line(&root, &target.owner).await {
            Ok(Some(line)) => {
                let out = format!("* QUOTAROOT {name} {}\r\n{line}", quoted(&root));
                self.push(out.as_bytes()).await?;
            }
            Ok(None) => {
                self.push(format!("* QUOTAROOT {name}\r\n").as_bytes())
                    .await?
            }
            Err(reply) => return Ok(reply),
        }
        Ok(Reply::ok(""))
    }

    /// GETQUOTA.
    pub(super) async fn get_quota(&mut self, root: &[u8]) -> Result<Reply, ReadError> {
        let root = String::from_utf8_lossy(root).into_owned();
        let owner = if root.is_empty() {
            self.user.clone()
        } else {
            // Another mailbox's root: only for a session that can see something in it.
            match self.ctx.store.db().find_account(&root.to_lowercase()).await {
                Ok(Some(owner)) => match self.rights_on(&owner, None).await {
                    Ok(rights) if !rights.is_empty() => Some(owner),
                    Ok(_) => None,
                    Err(reply) => return Ok(reply),
                },
                Ok(None) => None,
                Err(e) => return Ok(Reply::unavailable(e)),
            }
        };
        let Some(owner) = owner else {
            return Ok(Reply::no("[NONEXISTENT] No such quota root"));
        };
        match self.quota_line(&root, &owner).await {
            Ok(Some(line)) => {
                self.push(line.as_bytes()).await?;
                Ok(Reply::ok(""))
            }
            Ok(None) => Ok(Reply::no("[NONEXISTENT] No limit on this mailbox")),
            Err(reply) => Ok(reply),
        }
    }
}
