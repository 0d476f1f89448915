-- The original of a message the server transformed for its reader (an S/MIME message
-- decrypted with the mailbox's escrowed key): kept, sealed like the message, as legal proof.
ALTER TABLE messages ADD COLUMN original BLOB;
