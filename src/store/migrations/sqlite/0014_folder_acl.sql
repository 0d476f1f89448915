-- Per-folder access rights (RFC 4314 SETACL): who besides the owner may do what in one
-- folder. Mailbox-wide delegations (0004) apply to every folder on top of these.
CREATE TABLE folder_acl (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    rights     TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, account_id)
);
CREATE INDEX folder_acl_account ON folder_acl (account_id);
