//! mssante-directory: publication of the operator's mailboxes to the national directory over
//! LDAP, recipient and certificate lookups, and the ANS formats (whitelist XML, the daily
//! public extract).
//!
//! This crate knows nothing of sessions or storage. Its API arrives with the directory issue;
//! until then it is an empty member of the workspace, so the layout is in place.
