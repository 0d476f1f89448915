//! POP3 (RFC 1939, CAPA RFC 2449, STLS RFC 2595, SASL RFC 5034) on the INBOX, for practice
//! software and clients that download and delete.
//!
//! - The maildrop is the INBOX, locked for the session: a second POP3 session on it gets
//!   `-ERR [IN-USE]`. IMAP sessions are not locked out; they see POP3 deletions as expunges.
//! - DELE only marks; the marked messages go at QUIT (the UPDATE state), before `+OK`. A
//!   dropped connection deletes nothing.
//! - UIDL is `UIDVALIDITY.UID`: stable across sessions, never reused.
//! - A delegated mailbox opens with the login name `user*mailbox` and the user's own
//!   password, or with the SASL authorization identity; its rights come from the delegation
//!   (`r` to read, `t` and `e` to delete).

mod command;
mod maildrop;
mod session;

pub use maildrop::MaildropLocks;

use std::sync::Arc;

use async_trait::async_trait;

use crate::listener::{Connection, ReadError, Service};
use crate::server::ServerContext;

/// The POP3 protocol for the listener framework.
pub struct Pop3Service {
    ctx: Arc<ServerContext>,
}

impl Pop3Service {
    /// A POP3 service on this context.
    pub fn new(ctx: Arc<ServerContext>) -> Pop3Service {
        Pop3Service { ctx }
    }
}

#[async_trait]
impl Service for Pop3Service {
    fn name(&self) -> &'static str {
        "pop3"
    }

    fn busy_reply(&self) -> &'static [u8] {
        b"-ERR [SYS/TEMP] Too many connections, try again later\r\n"
    }

    async fn serve(&self, conn: &mut Connection) -> Result<(), ReadError> {
        session::Session::new(&self.ctx, conn).run().await
    }
}
