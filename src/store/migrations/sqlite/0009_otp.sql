-- The one-time-code second factor (TOTP, RFC 6238) of a mailbox: its secret sealed under the
-- key-encryption key and bound to the mailbox (NULL until enrolled), the last time step
-- accepted (a code is never accepted twice), and whether the administrator requires it.
CREATE TABLE account_otp (
    account_id  INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    secret      BLOB,
    last_step   INTEGER NOT NULL DEFAULT 0,
    required    INTEGER NOT NULL DEFAULT 0,
    enrolled_at INTEGER
);
