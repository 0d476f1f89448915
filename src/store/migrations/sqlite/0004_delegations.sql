-- Delegations: a mailbox's owner lets another mailbox act for it (a replacement doctor, a
-- secretary, the members of an ORG mailbox). `send_as`: the delegate may send with this
-- mailbox as envelope sender and From:. `rights` is kept for IMAP ACLs (RFC 4314 letters).
CREATE TABLE delegations (
    mailbox_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    delegate_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    send_as     INTEGER NOT NULL DEFAULT 0,
    rights      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (mailbox_id, delegate_id)
);
CREATE INDEX delegations_delegate ON delegations (delegate_id);
