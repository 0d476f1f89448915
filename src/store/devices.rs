//! Device credentials as the store keeps them (the `devices` table): a name, the SHA-256 of
//! the app password, blocked or not, and the last use. Made and checked by `auth`.

/// One device of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Row id: what an open session remembers to notice a block.
    pub id: i64,
    /// The mailbox's own name for it ("Thunderbird cabinet", "téléphone").
    pub name: String,
    /// Unix time it was made.
    pub created_at: i64,
    /// Blocked devices fail at once.
    pub blocked: bool,
    /// The last login with it: Unix time, source address, protocol.
    pub last_used: Option<(i64, String, String)>,
}
