-- What IMAP reads of a message most (its header block and MIME structure), sealed like the
-- message, filled the first time a client asks: later syncs open a few hundred octets
-- instead of the whole message.
ALTER TABLE messages ADD COLUMN summary BLOB;
