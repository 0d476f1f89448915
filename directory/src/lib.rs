//! mssante-directory: the national directory and the ANS formats. Today: the whitelist of
//! the trust space (`listeblanchemssante.xml`) and operator DNs; LDAP publication and the
//! daily public extract come with the directory issue.
//!
//! This crate knows nothing of sessions or storage: it parses and compares.

pub mod dn;
pub mod whitelist;

pub use dn::{DistinguishedName, DnError};
pub use whitelist::{TrustedDomain, Whitelist, WhitelistError};
