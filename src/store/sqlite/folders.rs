//! The [`Folders`] part of the SQLite backend: folders and messages (`messages.rs`) and the
//! per-folder grants (`delegation.rs`).

use async_trait::async_trait;

use super::{SqliteBackend, delegation, messages};
use crate::store::{
    Folders, Grant, MailboxDelta, MailboxInfo, MessageMeta, NewMessage, StoreError,
};

#[async_trait]
impl Folders for SqliteBackend {
    async fn mailbox(
        &self,
        account_id: i64,
        name: &str,
        create: bool,
    ) -> Result<Option<MailboxInfo>, StoreError> {
        messages::mailbox(&self.pool, account_id, name, create).await
    }

    async fn mailboxes(&self, account_id: i64) -> Result<Vec<MailboxInfo>, StoreError> {
        messages::mailboxes(&self.pool, account_id).await
    }

    async fn create_mailbox(
        &self,
        account_id: i64,
        name: &str,
        special_use: Option<&str>,
    ) -> Result<MailboxInfo, StoreError> {
        messages::create_mailbox(&self.pool, account_id, name, special_use).await
    }

    async fn delete_mailbox(&self, mailbox_id: i64) -> Result<(), StoreError> {
        messages::delete_mailbox(&self.pool, mailbox_id).await
    }

    async fn rename_mailbox(
        &self,
        account_id: i64,
        from: &str,
        to: &str,
    ) -> Result<(), StoreError> {
        messages::rename_mailbox(&self.pool, account_id, from, to).await
    }

    async fn set_subscribed(&self, mailbox_id: i64, subscribed: bool) -> Result<(), StoreError> {
        messages::set_subscribed(&self.pool, mailbox_id, subscribed).await
    }

    async fn append_messages(&self, messages: &[NewMessage]) -> Result<Vec<u32>, StoreError> {
        // Through the group commit: concurrent APPENDs share one fsync.
        let accepted = crate::store::Accepted {
            local: messages.to_vec(),
            ..crate::store::Accepted::default()
        };
        Ok(self.commits.accept(accepted).await?.uids)
    }

    async fn list_messages(&self, mailbox_id: i64) -> Result<Vec<MessageMeta>, StoreError> {
        messages::list_messages(&self.pool, mailbox_id).await
    }

    async fn messages_between(
        &self,
        mailbox_id: i64,
        first: u32,
        last: u32,
    ) -> Result<Vec<MessageMeta>, StoreError> {
        messages::messages_between(&self.pool, mailbox_id, first, last).await
    }

    async fn folder_uids(&self, mailbox_id: i64) -> Result<(Vec<u32>, u64), StoreError> {
        messages::folder_uids(&self.pool, mailbox_id).await
    }

    async fn uids_by_flags(
        &self,
        mailbox_id: i64,
        with: &[String],
        without: &[String],
    ) -> Result<Vec<u32>, StoreError> {
        messages::uids_by_flags(&self.pool, mailbox_id, with, without).await
    }

    async fn changes_since(&self, mailbox_id: i64, since: u64) -> Result<MailboxDelta, StoreError> {
        messages::changes_since(&self.pool, mailbox_id, since).await
    }

    async fn message_sealed(
        &self,
        mailbox_id: i64,
        uid: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        messages::message_sealed(&self.pool, mailbox_id, uid).await
    }

    async fn messages_sealed(
        &self,
        mailbox_id: i64,
        first: u32,
        last: u32,
    ) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        messages::messages_sealed(&self.pool, mailbox_id, first, last).await
    }

    async fn summaries_sealed(
        &self,
        mailbox_id: i64,
        first: u32,
        last: u32,
    ) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        messages::summaries_sealed(&self.pool, mailbox_id, first, last).await
    }

    async fn set_summaries(
        &self,
        mailbox_id: i64,
        summaries: &[(u32, Vec<u8>)],
    ) -> Result<(), StoreError> {
        messages::set_summaries(&self.pool, mailbox_id, summaries).await
    }

    async fn message_original(
        &self,
        mailbox_id: i64,
        uid: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        messages::message_original(&self.pool, mailbox_id, uid).await
    }

    async fn store_flags(
        &self,
        mailbox_id: i64,
        updates: &[(u32, String)],
    ) -> Result<Vec<(u32, u64)>, StoreError> {
        messages::store_flags(&self.pool, mailbox_id, updates).await
    }

    async fn delete_messages(&self, mailbox_id: i64, uids: &[u32]) -> Result<(), StoreError> {
        messages::delete_messages(&self.pool, mailbox_id, uids).await
    }

    async fn copy_messages(
        &self,
        from: i64,
        uids: &[u32],
        to: i64,
        remove: bool,
    ) -> Result<Vec<(u32, u32)>, StoreError> {
        messages::copy_messages(&self.pool, from, uids, to, remove).await
    }

    async fn folder_acl(&self, mailbox_id: i64) -> Result<Vec<(String, String)>, StoreError> {
        delegation::folder_acl(&self.pool, mailbox_id).await
    }

    async fn set_folder_acl(
        &self,
        mailbox_id: i64,
        account_id: i64,
        rights: Option<&str>,
    ) -> Result<(), StoreError> {
        delegation::set_folder_acl(&self.pool, mailbox_id, account_id, rights).await
    }

    async fn grants_to(&self, account_id: i64) -> Result<Vec<Grant>, StoreError> {
        delegation::grants_to(&self.pool, account_id).await
    }
}
