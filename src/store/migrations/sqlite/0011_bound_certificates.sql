-- Software certificates bound to a mailbox by fingerprint: an APP mailbox (practice
-- software, a hospital system) logs in with SASL EXTERNAL over its own certificate, which
-- names no person.
CREATE TABLE bound_certificates (
    fingerprint BLOB PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    subject     TEXT NOT NULL,
    bound_at    INTEGER NOT NULL
);
