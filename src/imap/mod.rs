//! IMAP4rev1 with the extensions Thunderbird, mbsync and webmail front-ends rely on. Commands
//! are decoded by imap-codec (`input.rs`); the session (`session.rs`) runs them against the
//! store through a per-folder view (`view.rs`) that turns other sessions' changes into the
//! untagged responses RFC 3501 allows. Message structure (`mime.rs`, `address.rs`) is read
//! from the stored bytes, never decoded, as IMAP wants.

mod access;
mod address;
mod cache;
#[cfg(test)]
mod corpus;
mod dispatch;
mod encode;
mod extension;
mod fetch;
mod folders;
mod input;
mod list;
mod login;
mod messages;
mod mime;
mod quota;
mod search;
mod searchres;
mod select;
mod session;
mod sort;
mod summaries;
mod thread;
mod transfer;
mod utf7;
mod view;

use std::sync::Arc;

use async_trait::async_trait;

use crate::listener::{Connection, ReadError, Service};
use crate::server::ServerContext;

pub use summaries::SummaryCache;

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
