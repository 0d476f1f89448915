//! mssante-smime: S/MIME (CMS) encryption, decryption, signature and verification on the
//! professional's behalf, and the key-escrow model of MSSanté.
//!
//! This crate knows nothing of sessions or storage: it takes MIME entities, keys and
//! certificates, and returns MIME entities and verdicts. Its API arrives with the S/MIME issue;
//! until then it is an empty member of the workspace, so the layout is in place.
