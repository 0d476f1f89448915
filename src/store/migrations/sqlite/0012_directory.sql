-- What the national directory shows of a mailbox beyond its address, type, idNat and
-- display name (those are in accounts): one row per mailbox that has any.
CREATE TABLE directory_profiles (
    account_id        INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    surname           TEXT,
    given_name        TEXT,
    structure_id      TEXT,
    profession_code   TEXT,
    service           TEXT,
    description       TEXT,
    phone             TEXT,
    responsible       TEXT,
    dematerialisation INTEGER NOT NULL DEFAULT 0,
    red_list          INTEGER NOT NULL DEFAULT 0
);

-- Mailboxes whose directory entry must be brought up to date, in the order they changed.
-- Only the address is kept: the publisher writes what the mailbox says when it runs (or
-- removes the entry of a mailbox that no longer exists). A failure leaves the row, and the
-- ones after it, for the next attempt.
CREATE TABLE directory_outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    address    TEXT NOT NULL,
    queued_at  INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
