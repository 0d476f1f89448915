-- The outbound queue: mail accepted for other operators and relayed hospitals, kept until
-- every recipient is delivered or has failed. Bodies are sealed under the queue's data key.
CREATE TABLE queue_messages (
    id             INTEGER PRIMARY KEY,
    created_at     INTEGER NOT NULL,
    sender         TEXT NOT NULL,              -- '' for a delivery report (never reported on)
    envelope_id    TEXT,                       -- RFC 3461 ENVID
    ret_full       INTEGER NOT NULL DEFAULT 0, -- RFC 3461 RET=FULL
    smtputf8       INTEGER NOT NULL DEFAULT 0,
    size           INTEGER NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_attempt   INTEGER NOT NULL,
    delay_notified INTEGER NOT NULL DEFAULT 0,
    sealed         BLOB NOT NULL
);
CREATE INDEX queue_messages_due ON queue_messages (next_attempt);

CREATE TABLE queue_recipients (
    message_id INTEGER NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
    address    TEXT NOT NULL,
    notify     INTEGER NOT NULL DEFAULT 0,   -- RFC 3461 NOTIFY, see store::queue::Notify
    orcpt      TEXT,                         -- RFC 3461 ORCPT
    state      TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    last_reply TEXT NOT NULL DEFAULT '',
    remote_mta TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (message_id, address)
);

-- Quota per mailbox owner, in bytes (NULL: the configured default).
ALTER TABLE accounts ADD COLUMN quota_bytes INTEGER;
