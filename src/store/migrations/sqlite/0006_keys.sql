-- Key escrow: each mailbox's S/MIME key pairs, for encryption and for signature. The private
-- key is PKCS#8 DER sealed under the key-encryption key, bound to the mailbox and the use; a
-- key made by `key csr` is 'pending' until its certificate is installed. A renewed key stays
-- as 'past', so mail encrypted to it remains readable.
CREATE TABLE mailbox_keys (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    usage       TEXT NOT NULL CHECK (usage IN ('encryption', 'signature')),
    state       TEXT NOT NULL CHECK (state IN ('pending', 'current', 'past')),
    sealed_key  BLOB NOT NULL,
    public_key  BLOB NOT NULL,
    certificate BLOB,
    chain       BLOB NOT NULL DEFAULT x'',
    created_at  INTEGER NOT NULL
);
CREATE INDEX mailbox_keys_account ON mailbox_keys (account_id, usage, state);
