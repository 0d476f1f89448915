-- Flags, sizes and modseqs are read far more often than bodies; in the messages table they
-- sit in the same rows as the sealed bodies, and a column stored after a large blob costs a
-- walk over the blob's overflow pages. These indexes cover them, and the summaries (0015) move
-- to a table of their own for the same reason.
CREATE INDEX messages_meta ON messages (mailbox_id, uid, internal_date, size, flags, modseq);
-- The same for "what changed since modseq N" (catching up, QRESYNC).
DROP INDEX messages_modseq;
CREATE INDEX messages_changes ON messages (mailbox_id, modseq, uid, internal_date, size, flags);
CREATE TABLE message_summaries (
    mailbox_id INTEGER NOT NULL,
    uid        INTEGER NOT NULL,
    summary    BLOB NOT NULL,
    PRIMARY KEY (mailbox_id, uid),
    FOREIGN KEY (mailbox_id, uid) REFERENCES messages (mailbox_id, uid) ON DELETE CASCADE
);
INSERT INTO message_summaries (mailbox_id, uid, summary)
    SELECT mailbox_id, uid, summary FROM messages WHERE summary IS NOT NULL;
ALTER TABLE messages DROP COLUMN summary;
