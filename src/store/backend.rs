//! The storage operations as one trait, implemented once per database (SQLite now). A
//! backend keeps rows and opaque bytes: whatever is secret reaches it already sealed by the
//! [`super::Store`].

use async_trait::async_trait;

use super::*;

/// The storage operations, implemented once per database.
#[async_trait]
pub trait Backend: Folders + Send + Sync {
    /// A setting, or None.
    async fn get_setting(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets a setting; with `only_if_absent`, returns false and changes nothing if it exists.
    async fn put_setting(
        &self,
        key: &str,
        value: &[u8],
        only_if_absent: bool,
    ) -> Result<bool, StoreError>;
    /// Every setting whose key starts with `prefix`, sorted by key.
    async fn settings_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// A sealed secret, or None.
    async fn get_secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores a sealed secret (replacing one of the same name).
    async fn put_secret(&self, name: &str, sealed: &[u8]) -> Result<(), StoreError>;

    /// Adds a served domain.
    async fn add_domain(&self, name: &str) -> Result<(), StoreError>;
    /// The served domains, sorted.
    async fn list_domains(&self) -> Result<Vec<String>, StoreError>;
    /// Removes a domain that has no mailbox left.
    async fn remove_domain(&self, name: &str) -> Result<(), StoreError>;

    /// Adds an account with its wrapped data key; returns its id.
    async fn add_account(
        &self,
        account: &NewAccount,
        dek_wrapped: &[u8],
    ) -> Result<i64, StoreError>;
    /// The account of this address.
    async fn find_account(&self, address: &str) -> Result<Option<Account>, StoreError>;
    /// The mailboxes whose owner has this national identifier, by address.
    async fn accounts_by_idnat(&self, idnat: &str) -> Result<Vec<Account>, StoreError>;
    /// Every account, sorted by address.
    async fn list_accounts(&self) -> Result<Vec<Account>, StoreError>;
    /// Replaces (or clears) the password hash.
    async fn set_password_hash(&self, address: &str, hash: Option<&str>) -> Result<(), StoreError>;
    /// Suspends or reinstates an account.
    async fn set_suspended(&self, address: &str, suspended: bool) -> Result<(), StoreError>;
    /// Removes an account and its mail.
    async fn remove_account(&self, address: &str) -> Result<(), StoreError>;
    /// Sets (or clears, back to the default) an account's quota.
    async fn set_quota(&self, address: &str, bytes: Option<u64>) -> Result<(), StoreError>;
    /// Octets stored in all folders of an account.
    async fn account_usage(&self, account_id: i64) -> Result<u64, StoreError>;
    /// Lets `delegate` act for `mailbox` (both addresses of accounts), updating an existing
    /// delegation.
    async fn grant_delegation(
        &self,
        mailbox: &str,
        delegate: &str,
        send_as: bool,
        rights: &str,
    ) -> Result<(), StoreError>;
    /// Withdraws a delegation.
    async fn revoke_delegation(&self, mailbox: &str, delegate: &str) -> Result<(), StoreError>;
    /// Every delegation.
    async fn delegations(&self) -> Result<Vec<Delegation>, StoreError>;
    /// Whether account `delegate_id` may send as `address` (an active delegated mailbox).
    async fn may_send_as(&self, delegate_id: i64, address: &str) -> Result<bool, StoreError>;
    /// The rights (RFC 4314 letters) of account `delegate_id` on the mailbox `address`, if
    /// delegated.
    async fn delegated_rights(
        &self,
        delegate_id: i64,
        address: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Commits one accepted message at once: the copies for local mailboxes, its queue entry
    /// when some recipients are elsewhere, its audit records. Returns the queue id once
    /// committed.
    async fn accept_message(&self, accepted: Accepted) -> Result<Committed, StoreError>;
    /// Queued messages due at `now` with something pending, oldest first.
    async fn queue_due(&self, now: i64, limit: u32) -> Result<Vec<QueuedMessage>, StoreError>;
    /// The whole queue, oldest first.
    async fn queue_list(&self) -> Result<Vec<QueuedMessage>, StoreError>;
    /// One queued message.
    async fn queue_message(&self, id: i64) -> Result<Option<QueuedMessage>, StoreError>;
    /// The sealed body of a queued message.
    async fn queue_sealed(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Records an attempt; a message with nothing pending left is removed.
    async fn queue_record(&self, id: i64, record: &AttemptRecord) -> Result<(), StoreError>;
    /// Makes one message (or all) due at `now`; returns how many.
    async fn queue_retry(&self, id: Option<i64>, now: i64) -> Result<u64, StoreError>;
    /// Removes a queued message without delivering it.
    async fn queue_delete(&self, id: i64) -> Result<(), StoreError>;

    /// Appends an audit record chained to the last one. Serialised, so the chain has no fork
    /// even with several processes writing.
    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError>;
    /// Audit records with sequence numbers after `after`, oldest first, with their hashes.
    async fn audit_records(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(u64, AuditRecord, Vec<u8>)>, StoreError>;

    /// Replaces the trust space (the ANS whitelist) in one transaction.
    async fn replace_trust_list(&self, entries: &[TrustEntry]) -> Result<TrustDiff, StoreError>;
    /// A domain's trust-space entry, or None when it is not in the trust space.
    async fn trust_entry(&self, domain: &str) -> Result<Option<TrustEntry>, StoreError>;
    /// The whole trust space, by domain.
    async fn trust_entries(&self) -> Result<Vec<TrustEntry>, StoreError>;
    /// Whether some domain of the trust space has this operator (normalised DN).
    async fn trusted_operator(&self, operator_key: &str) -> Result<bool, StoreError>;

    /// Adds an escrowed key of `account_id`; a current one makes the previous current key
    /// of its use past, in the same transaction. Returns its id.
    async fn add_mailbox_key(&self, account_id: i64, key: &NewKey) -> Result<i64, StoreError>;
    /// The keys of `account_id`, newest first.
    async fn mailbox_keys(&self, account_id: i64) -> Result<Vec<StoredKey>, StoreError>;
    /// The sealed private key of key `key_id` of `account_id`.
    async fn mailbox_key_sealed(
        &self,
        account_id: i64,
        key_id: i64,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Gives pending key `key_id` its certificate and makes it current (the previous current
    /// key of its use becomes past).
    async fn install_key_certificate(
        &self,
        account_id: i64,
        key_id: i64,
        certificate: &[u8],
        chain: &[u8],
    ) -> Result<(), StoreError>;

    /// Sets the encryption certificate (DER) of a correspondent at another operator.
    async fn put_correspondent(&self, address: &str, certificate: &[u8]) -> Result<(), StoreError>;
    /// The certificate of a correspondent, if known.
    async fn correspondent(&self, address: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every correspondent certificate, by address.
    async fn correspondents(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Forgets a correspondent's certificate.
    async fn remove_correspondent(&self, address: &str) -> Result<(), StoreError>;

    /// The second-factor state of `account_id`, if it has any.
    async fn otp(&self, account_id: i64) -> Result<Option<OtpState>, StoreError>;
    /// Sets (None: removes) the sealed TOTP secret; a new one starts with no step used.
    async fn set_otp_secret(
        &self,
        account_id: i64,
        sealed: Option<&[u8]>,
    ) -> Result<(), StoreError>;
    /// Sets whether a code is required.
    async fn set_otp_required(&self, account_id: i64, required: bool) -> Result<(), StoreError>;
    /// Records `step` as used if later than the last one; false otherwise.
    async fn use_otp_step(&self, account_id: i64, step: i64) -> Result<bool, StoreError>;

    /// Adds a device credential (SHA-256 of its app password); a taken name is a Conflict.
    async fn add_device(
        &self,
        account_id: i64,
        name: &str,
        secret_hash: &[u8],
    ) -> Result<i64, StoreError>;
    /// The devices of `account_id`, by name.
    async fn devices(&self, account_id: i64) -> Result<Vec<Device>, StoreError>;
    /// The device of `account_id` with this app-password hash.
    async fn device_by_secret(
        &self,
        account_id: i64,
        secret_hash: &[u8],
    ) -> Result<Option<Device>, StoreError>;
    /// Whether device `id` may still be used (not blocked, not removed).
    async fn device_usable(&self, id: i64) -> Result<bool, StoreError>;
    /// Blocks or unblocks a device by name; false when there is none.
    async fn set_device_blocked(
        &self,
        account_id: i64,
        name: &str,
        blocked: bool,
    ) -> Result<bool, StoreError>;
    /// Removes a device by name; false when there is none.
    async fn remove_device(&self, account_id: i64, name: &str) -> Result<bool, StoreError>;
    /// Records a login with device `id` from `from` over `protocol`.
    async fn device_used(&self, id: i64, from: &str, protocol: &str) -> Result<(), StoreError>;
    /// Binds a software certificate (SHA-256 fingerprint of its DER) to `account_id`.
    async fn bind_certificate(
        &self,
        account_id: i64,
        fingerprint: &[u8],
        subject: &str,
    ) -> Result<(), StoreError>;
    /// Unbinds every certificate of `account_id`; returns how many there were.
    async fn unbind_certificates(&self, account_id: i64) -> Result<u64, StoreError>;
    /// The address of the mailbox this certificate fingerprint is bound to.
    async fn bound_account(&self, fingerprint: &[u8]) -> Result<Option<String>, StoreError>;
    /// Stores a pairing code (SHA-256) for a future device `name` of `account_id`.
    async fn add_pairing(
        &self,
        account_id: i64,
        name: &str,
        code_hash: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Uses a pairing code at `now` (Unix time): the mailbox's address and device name when it is
    /// known, unexpired and unused (atomically marked used); None otherwise.
    async fn redeem_pairing(
        &self,
        code_hash: &[u8],
        now: i64,
    ) -> Result<Option<(String, String)>, StoreError>;

    /// The directory profile of a mailbox, if it has one.
    async fn directory_profile(
        &self,
        account_id: i64,
    ) -> Result<Option<DirectoryProfile>, StoreError>;
    /// Replaces the directory profile of a mailbox.
    async fn set_directory_profile(
        &self,
        account_id: i64,
        profile: &DirectoryProfile,
    ) -> Result<(), StoreError>;
    /// Queues a mailbox for publication to the directory.
    async fn directory_enqueue(&self, address: &str, now: i64) -> Result<(), StoreError>;
    /// The oldest pending publications, in order.
    async fn directory_pending(&self, limit: u32) -> Result<Vec<PendingPublication>, StoreError>;
    /// A publication (and the older ones of the same address) is done.
    async fn directory_done(&self, seq: i64, address: &str) -> Result<(), StoreError>;
    /// A publication attempt failed.
    async fn directory_failed(&self, seq: i64, error: &str) -> Result<(), StoreError>;
}

/// Folders, their messages and who may use them: the part of a backend IMAP works with.
#[async_trait]
pub trait Folders: Send + Sync {
    /// The folder `name` of an account, created when asked to.
    async fn mailbox(
        &self,
        account_id: i64,
        name: &str,
        create: bool,
    ) -> Result<Option<MailboxInfo>, StoreError>;
    /// Every folder of an account, by name.
    async fn mailboxes(&self, account_id: i64) -> Result<Vec<MailboxInfo>, StoreError>;
    /// Creates a folder; `Conflict` when it exists.
    async fn create_mailbox(
        &self,
        account_id: i64,
        name: &str,
        special_use: Option<&str>,
    ) -> Result<MailboxInfo, StoreError>;
    /// Deletes a folder and its messages.
    async fn delete_mailbox(&self, mailbox_id: i64) -> Result<(), StoreError>;
    /// Renames a folder and the folders under it (`a` to `b` renames `a/x` to `b/x`).
    async fn rename_mailbox(&self, account_id: i64, from: &str, to: &str)
    -> Result<(), StoreError>;
    /// Adds a folder to, or removes it from, the subscription list.
    async fn set_subscribed(&self, mailbox_id: i64, subscribed: bool) -> Result<(), StoreError>;
    /// Appends messages all at once (one transaction); returns their UIDs.
    async fn append_messages(&self, messages: &[NewMessage]) -> Result<Vec<u32>, StoreError>;
    /// The messages of a folder in UID order.
    async fn list_messages(&self, mailbox_id: i64) -> Result<Vec<MessageMeta>, StoreError>;
    /// The messages of a folder whose UIDs are in `first..=last`, in UID order.
    async fn messages_between(
        &self,
        mailbox_id: i64,
        first: u32,
        last: u32,
    ) -> Result<Vec<MessageMeta>, StoreError>;
    /// The UIDs of a folder's messages, ascending, and its highest modseq, read together.
    async fn folder_uids(&self, mailbox_id: i64) -> Result<(Vec<u32>, u64), StoreError>;
    /// The UIDs, ascending, of a folder's messages that have every flag of `with` and none
    /// of `without` (compared without regard to ASCII case).
    async fn uids_by_flags(
        &self,
        mailbox_id: i64,
        with: &[String],
        without: &[String],
    ) -> Result<Vec<u32>, StoreError>;
    /// What changed in a folder after modification sequence `since`.
    async fn changes_since(&self, mailbox_id: i64, since: u64) -> Result<MailboxDelta, StoreError>;
    /// The sealed body of one message.
    async fn message_sealed(
        &self,
        mailbox_id: i64,
        uid: u32,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// The sealed bodies of the messages whose UIDs are in `first..=last`, in UID order.
    async fn messages_sealed(
        &self,
        mailbox_id: i64,
        first: u32,
        last: u32,
    ) -> Result<Vec<(u32, Vec<u8>)>, StoreError>;
    /// The sealed summaries kept for the messages whose UIDs are in `first..=last`, in UID
    /// order (messages without one yet are absent).
    async fn summaries_sealed(
        &self,
        mailbox_id: i64,
        first: u32,
        last: u32,
    ) -> Result<Vec<(u32, Vec<u8>)>, StoreError>;
    /// Keeps sealed summaries of messages (one transaction).
    async fn set_summaries(
        &self,
        mailbox_id: i64,
        summaries: &[(u32, Vec<u8>)],
    ) -> Result<(), StoreError>;
    /// The sealed original of one message, when one was kept (decrypted S/MIME).
    async fn message_original(
        &self,
        mailbox_id: i64,
        uid: u32,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Replaces the flags of messages (one transaction, one new modification sequence each);
    /// returns (UID, modseq) for the messages that still exist.
    async fn store_flags(
        &self,
        mailbox_id: i64,
        updates: &[(u32, String)],
    ) -> Result<Vec<(u32, u64)>, StoreError>;
    /// Removes messages (one transaction), remembering their UIDs as expunged.
    async fn delete_messages(&self, mailbox_id: i64, uids: &[u32]) -> Result<(), StoreError>;
    /// Copies messages to another folder of the same account, removing them from the source
    /// when `remove` (MOVE), in one transaction; returns (source UID, new UID) pairs.
    async fn copy_messages(
        &self,
        from: i64,
        uids: &[u32],
        to: i64,
        remove: bool,
    ) -> Result<Vec<(u32, u32)>, StoreError>;

    /// The per-folder grants of a folder: (grantee address, RFC 4314 letters).
    async fn folder_acl(&self, mailbox_id: i64) -> Result<Vec<(String, String)>, StoreError>;
    /// Grants `rights` on a folder to an account, or withdraws its grant (None).
    async fn set_folder_acl(
        &self,
        mailbox_id: i64,
        account_id: i64,
        rights: Option<&str>,
    ) -> Result<(), StoreError>;
    /// What others granted this account: mailbox-wide delegations and per-folder grants.
    async fn grants_to(&self, account_id: i64) -> Result<Vec<Grant>, StoreError>;
}
