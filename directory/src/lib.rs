//! mssante-directory: the national directory and the ANS formats: the whitelist of the trust
//! space (`listeblanchemssante.xml`), operator DNs, mailbox entries under mssante's LDAP
//! schema (`config/mssante-directory.schema`), the LDAP client that publishes and looks
//! them up, and the ANS daily public extract.
//!
//! This crate knows nothing of sessions or storage: it parses, compares and talks LDAP.

pub mod dn;
pub mod entry;
pub mod extract;
pub mod import;
pub mod ldap;
pub mod whitelist;

pub use dn::{DistinguishedName, DnError};
pub use entry::{Entry, MailboxType};
pub use extract::{ExtractReader, RowError};
pub use import::{ImportError, ImportReport, import_extract};
pub use ldap::{DirectoryConfig, DirectoryError, DirectorySession, Published};
pub use whitelist::{TrustedDomain, Whitelist, WhitelistError};
