-- UIDVALIDITY of a new folder: the creation second, but always above every value handed out
-- before, so a folder deleted and made again within one second never gets its old
-- UIDVALIDITY back with UIDs restarting at 1.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value)
    SELECT 'uidvalidity', COALESCE(MAX(uidvalidity), 0) FROM mailboxes;
