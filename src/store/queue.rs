//! The outbound queue as the store keeps it: a message with its envelope, and one row per
//! recipient that records how far its delivery went.

use std::fmt;
use std::str::FromStr;

/// RFC 3461 NOTIFY: when the sender wants a delivery report for a recipient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notify {
    /// NOTIFY=SUCCESS.
    pub success: bool,
    /// NOTIFY=FAILURE.
    pub failure: bool,
    /// NOTIFY=DELAY.
    pub delay: bool,
    /// NOTIFY=NEVER.
    pub never: bool,
}

impl Notify {
    /// What RFC 3461 4.1 lets a server assume when NOTIFY is absent: failures, delays.
    pub const DEFAULT: Notify = Notify {
        success: false,
        failure: true,
        delay: true,
        never: false,
    };

    /// The bits stored in the database.
    pub fn bits(self) -> i64 {
        i64::from(self.success)
            | i64::from(self.failure) << 1
            | i64::from(self.delay) << 2
            | i64::from(self.never) << 3
    }

    /// From the stored bits.
    pub fn from_bits(bits: i64) -> Notify {
        Notify {
            success: bits & 1 != 0,
            failure: bits & 2 != 0,
            delay: bits & 4 != 0,
            never: bits & 8 != 0,
        }
    }

    /// The NOTIFY parameter value, or None for the default.
    pub fn parameter(self) -> Option<String> {
        if self == Notify::DEFAULT {
            return None;
        }
        if self.never {
            return Some("NEVER".into());
        }
        let words: Vec<&str> = [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, w)| *w)
        .collect();
        Some(words.join(","))
    }
}

/// Where a recipient's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientState {
    /// Still to be delivered.
    Pending,
    /// The next hop accepted it.
    Delivered,
    /// Refused for good, or expired; reported to the sender.
    Failed,
}

impl RecipientState {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientState::Pending => "pending",
            RecipientState::Delivered => "delivered",
            RecipientState::Failed => "failed",
        }
    }
}

impl FromStr for RecipientState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(RecipientState::Pending),
            "delivered" => Ok(RecipientState::Delivered),
            "failed" => Ok(RecipientState::Failed),
            other => Err(format!("unknown recipient state {other:?}")),
        }
    }
}

impl fmt::Display for RecipientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recipient of an envelope, with its RFC 3461 parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeRecipient {
    /// The address, lower-case domain.
    pub address: String,
    /// When to report.
    pub notify: Notify,
    /// ORCPT as given (`rfc822;addr`), kept for the report.
    pub orcpt: Option<String>,
}

/// An SMTP envelope as it reaches the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Reverse path; empty for a delivery report.
    pub sender: String,
    /// RFC 3461 ENVID.
    pub envelope_id: Option<String>,
    /// RFC 3461 RET=FULL (else headers only).
    pub ret_full: bool,
    /// The message needs SMTPUTF8 from the next hop.
    pub smtputf8: bool,
    /// The recipients to deliver to.
    pub recipients: Vec<EnvelopeRecipient>,
}

/// A recipient row of a queued message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecipient {
    /// The recipient and its DSN parameters.
    pub recipient: EnvelopeRecipient,
    /// How far its delivery went.
    pub state: RecipientState,
    /// The last reply or error seen for it.
    pub last_reply: String,
    /// The MTA that gave that reply.
    pub remote_mta: String,
}

/// A queued message, without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// Queue id.
    pub id: i64,
    /// When it was accepted, seconds since the epoch.
    pub created_at: i64,
    /// Reverse path; empty for a delivery report.
    pub sender: String,
    /// RFC 3461 ENVID.
    pub envelope_id: Option<String>,
    /// RFC 3461 RET=FULL.
    pub ret_full: bool,
    /// Needs SMTPUTF8.
    pub smtputf8: bool,
    /// Size of the message in octets.
    pub size: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due, seconds since the epoch.
    pub next_attempt: i64,
    /// Whether the sender was already told of a delay.
    pub delay_notified: bool,
    /// Every recipient, in the order given.
    pub recipients: Vec<QueuedRecipient>,
}

/// A sealed message to queue.
#[derive(Debug, Clone)]
pub struct NewQueued {
    /// The envelope.
    pub envelope: Envelope,
    /// Size of the clear message.
    pub size: u64,
    /// The body sealed under the queue key.
    pub sealed: Vec<u8>,
    /// Seconds since the epoch.
    pub now: i64,
}

/// Everything one accepted message writes, committed together: the copies for local
/// mailboxes, the queue entry for the other recipients, and the audit records of the keys
/// used on it (so a key use costs no commit of its own).
#[derive(Debug, Clone, Default)]
pub struct Accepted {
    /// Sealed copies for local mailboxes.
    pub local: Vec<super::NewMessage>,
    /// The queue entry, when some recipients are elsewhere.
    pub queued: Option<NewQueued>,
    /// Audit records (escrowed keys used to decrypt or sign this message).
    pub audit: Vec<super::AuditRecord>,
}

/// What a committed [`Accepted`] became.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// The queue id, when something was queued.
    pub queue_id: Option<i64>,
    /// The UIDs of the local copies, in order.
    pub uids: Vec<u32>,
}

/// The outcome of one delivery attempt, to record.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// Recipients whose state changed or who got a new reply: (address, state, reply, MTA).
    pub recipients: Vec<(String, RecipientState, String, String)>,
    /// Attempts made, this one included.
    pub attempts: u32,
    /// When to try again (ignored when nothing is pending any more).
    pub next_attempt: i64,
    /// Whether the sender has now been told of a delay.
    pub delay_notified: bool,
}
