//! SMTP: one session type for the MX (other operators, port 25) and submission (users, 587
//! and 465). Commands are parsed by smtp-proto; this module holds the state and the policy.
//!
//! What is here is the foundation's path: EHLO, STARTTLS, AUTH PLAIN/LOGIN, MAIL, RCPT and
//! DATA to local mailboxes, each committed before the 250. The trust-space checks, BDAT, DSN,
//! relay and the outbound queue are the SMTP issue's.

mod client;
pub(crate) mod downgrade;
mod dsn;
mod message;
mod queue;
mod route;
mod session;
mod transaction;

pub use queue::QueueRunner;

use std::sync::Arc;

use async_trait::async_trait;

use crate::listener::{Connection, ReadError, Service};
use crate::server::ServerContext;

/// Which side of the operator this SMTP listener is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Mail from other operators of the trust space: TLS with a client certificate, no AUTH.
    Mx,
    /// Mail from the operator's users: TLS and AUTH required.
    Submission,
}

/// The SMTP protocol for the listener framework.
pub struct SmtpService {
    ctx: Arc<ServerContext>,
    role: Role,
}

impl SmtpService {
    /// An SMTP service in `role`.
    pub fn new(ctx: Arc<ServerContext>, role: Role) -> SmtpService {
        SmtpService { ctx, role }
    }
}

#[async_trait]
impl Service for SmtpService {
    fn name(&self) -> &'static str {
        match self.role {
            Role::Mx => "mx",
            Role::Submission => "submission",
        }
    }

    fn busy_reply(&self) -> &'static [u8] {
        b"421 4.3.2 Too many connections, try again later\r\n"
    }

    async fn serve(&self, conn: &mut Connection) -> Result<(), ReadError> {
        session::Session::new(&self.ctx, self.role, conn)
            .run()
            .await
    }
}
