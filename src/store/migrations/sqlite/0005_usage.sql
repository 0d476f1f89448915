-- Octets stored per mailbox owner, kept by triggers so a quota check is one row read
-- instead of a sum over every message.
ALTER TABLE accounts ADD COLUMN used_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE accounts SET used_bytes = (
    SELECT coalesce(sum(m.size), 0) FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id
    WHERE b.account_id = accounts.id
);
CREATE TRIGGER messages_usage_insert AFTER INSERT ON messages BEGIN
    UPDATE accounts SET used_bytes = used_bytes + NEW.size
    WHERE id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id);
END;
CREATE TRIGGER messages_usage_delete AFTER DELETE ON messages BEGIN
    UPDATE accounts SET used_bytes = used_bytes - OLD.size
    WHERE id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id);
END;
