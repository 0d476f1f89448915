-- The MSSanté trust space: the ANS whitelist, replaced whole by `mssante trust import`.
CREATE TABLE trust_domains (
    domain          TEXT PRIMARY KEY,   -- A-label, lower case
    operator_dn     TEXT NOT NULL,      -- as written in the whitelist
    operator_key    TEXT NOT NULL,      -- the DN normalised for comparison
    description     TEXT NOT NULL DEFAULT '',
    support_contact TEXT NOT NULL DEFAULT '',
    updated         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX trust_domains_operator ON trust_domains (operator_key);
