//! IMAP4rev1: the foundation's path (CAPABILITY, STARTTLS, LOGIN, AUTHENTICATE, LIST,
//! STATUS, SELECT/EXAMINE, FETCH and UID FETCH of whole messages, CLOSE, LOGOUT). The IMAP
//! issue builds the full server on imap-codec; the listener, auth and store plumbing stay.

mod command;
mod session;

use std::sync::Arc;

use async_trait::async_trait;

use crate::listener::{Connection, ReadError, Service};
use crate::server::ServerContext;

/// The IMAP protocol for the listener framework.
pub struct ImapService {
    ctx: Arc<ServerContext>,
}

impl ImapService {
    /// An IMAP service on this context.
    pub fn new(ctx: Arc<ServerContext>) -> ImapService {
        ImapService { ctx }
    }
}

#[async_trait]
impl Service for ImapService {
    fn name(&self) -> &'static str {
        "imap"
    }

    fn busy_reply(&self) -> &'static [u8] {
        b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n"
    }

    async fn serve(&self, conn: &mut Connection) -> Result<(), ReadError> {
        session::Session::new(&self.ctx, conn).run().await
    }
}
