-- Device credentials: a long random app password per device (Thunderbird at the office, a
-- phone), made after a strong login, so stock clients need neither the real password nor a
-- one-time code. Only the SHA-256 of the app password is kept (128 random bits need no slow
-- hash). Each keeps its last use; a blocked one fails at once, open sessions included.
CREATE TABLE devices (
    id                 INTEGER PRIMARY KEY,
    account_id         INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    secret_hash        BLOB NOT NULL UNIQUE,
    created_at         INTEGER NOT NULL,
    blocked            INTEGER NOT NULL DEFAULT 0,
    last_used_at       INTEGER,
    last_used_from     TEXT,
    last_used_protocol TEXT,
    UNIQUE (account_id, name)
);

-- Pairing codes: a phone is paired by typing (or scanning) a short code, valid two
-- minutes and once, instead of an app password. Only the code's SHA-256 is kept.
CREATE TABLE device_pairings (
    code_hash  BLOB PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0
);
