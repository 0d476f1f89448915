-- The encryption certificates of correspondents at other operators, by address: what
-- outbound S/MIME encrypts to until the national directory provides them.
CREATE TABLE correspondent_certificates (
    address     TEXT PRIMARY KEY,
    certificate BLOB NOT NULL,
    added_at    INTEGER NOT NULL
);
