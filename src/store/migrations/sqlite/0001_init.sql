-- mssante store, version 1. Message bodies and private keys are sealed (AES-256-GCM) before
-- they reach this database; nothing here is readable mail.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- Private keys and other secrets, each sealed under the key-encryption key.
CREATE TABLE secrets (
    name   TEXT PRIMARY KEY,
    sealed BLOB NOT NULL
);

CREATE TABLE domains (
    name       TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);

-- One row per mailbox owner (BAL): PER, ORG, APP or CAB.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    address       TEXT NOT NULL UNIQUE,
    domain        TEXT NOT NULL REFERENCES domains(name),
    kind          TEXT NOT NULL CHECK (kind IN ('PER', 'ORG', 'APP', 'CAB')),
    idnat         TEXT,
    display_name  TEXT,
    password_hash TEXT,
    suspended     INTEGER NOT NULL DEFAULT 0,
    dek_wrapped   BLOB NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE mailboxes (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uidnext     INTEGER NOT NULL DEFAULT 1,
    UNIQUE (account_id, name)
);

CREATE TABLE messages (
    mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid           INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,
    size          INTEGER NOT NULL,
    flags         TEXT NOT NULL DEFAULT '',
    sealed        BLOB NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);

-- Append-only; each row's hash covers the previous row's hash.
CREATE TABLE audit_log (
    seq     INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    event   TEXT NOT NULL,
    actor   TEXT NOT NULL,
    source  TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail  TEXT NOT NULL,
    hash    BLOB NOT NULL
);
