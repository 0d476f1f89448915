//! The directory side of a mailbox as the store keeps it: its profile (what the national
//! directory shows beyond address, type, idNat and name) and the outbox of mailboxes whose
//! entry must be published again. The publishing itself: `crate::directory`.

/// What the directory shows of a mailbox beyond its account row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryProfile {
    /// Owner's surname.
    pub surname: Option<String>,
    /// Owner's given name.
    pub given_name: Option<String>,
    /// FINESS or SIRET of the structure.
    pub structure_id: Option<String>,
    /// Profession code (ANS nomenclature).
    pub profession_code: Option<String>,
    /// Service of the structure.
    pub service: Option<String>,
    /// Free description.
    pub description: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Person responsible (not for PER).
    pub responsible: Option<String>,
    /// Accepts results and letters by secure messaging instead of paper.
    pub dematerialisation: bool,
    /// Red list: never in the directory's public view.
    pub red_list: bool,
}

/// A mailbox waiting for its directory entry to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPublication {
    /// Order of the change.
    pub seq: i64,
    /// The mailbox.
    pub address: String,
    /// Unix time of the change.
    pub queued_at: i64,
    /// Failed attempts so far.
    pub attempts: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}
