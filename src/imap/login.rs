//! Authentication in IMAP: LOGIN and AUTHENTICATE (with SASL-IR) on the SASL layer that
//! SMTP and POP3 share; the authorization identity may name a mailbox delegated to the user.

use super::input::MAX_LINE_BEFORE_LOGIN;
use super::session::{Reply, Session};
use crate::auth::{AuthError, Credentials, Mechanism, Rights, converse};
use crate::listener::ReadError;

impl Session<'_> {
    /// LOGIN.
    pub(super) async fn login(&mut self, credentials: Credentials) -> Result<Reply, ReadError> {
        if self.conn.tls().is_none() {
            return Ok(Reply::no("[PRIVACYREQUIRED] STARTTLS first"));
        }
        self.finish_auth(credentials).await
    }

    /// AUTHENTICATE, `initial` being the SASL-IR response in base64 (`=` when empty).
    pub(super) async fn authenticate(
        &mut self,
        mechanism: &str,
        initial: Option<String>,
    ) -> Result<Reply, ReadError> {
        if self.conn.tls().is_none() {
            return Ok(Reply::no("[PRIVACYREQUIRED] STARTTLS first"));
        }
        let Some(mechanism) = Mechanism::parse(mechanism) else {
            return Ok(Reply::no("Unsupported authentication mechanism"));
        };
        match converse(
            self.conn,
            mechanism,
            initial.as_deref(),
            "+ ",
            MAX_LINE_BEFORE_LOGIN,
        )
        .await?
        {
            Ok(credentials) => self.finish_auth(credentials).await,
            Err(e) => Ok(Reply::bad(e.to_string())),
        }
    }

    async fn finish_auth(&mut self, credentials: Credentials) -> Result<Reply, ReadError> {
        let source = format!("imap {}", self.conn.peer);
        let bearer = matches!(credentials, Credentials::Bearer { .. });
        match self.ctx.auth.authenticate(credentials, &source).await {
            Ok(login) => {
                tracing::info!(user = %login.account.address, "authenticated");
                let (user, rights, person) = match login.delegated {
                    Some((mailbox, rights)) => (mailbox, rights, Some(login.account)),
                    None => (login.account, Rights::ALL, None),
                };
                // Accounts made before the special-use folders existed get them now.
                if let Err(e) = self.ctx.store.ensure_default_folders(user.id).await {
                    tracing::warn!(error = %e, "could not create the default folders");
                }
                self.conn.authenticated();
                self.user = Some(user);
                self.person = person;
                self.rights = rights;
                self.device = login.device.map(|(id, _)| id);
                Ok(Reply::ok(format!(
                    "[CAPABILITY {}] Logged in",
                    self.capabilities()
                )))
            }
            Err(AuthError::Unavailable) => {
                Ok(Reply::no("[UNAVAILABLE] Temporary failure, try again"))
            }
            Err(_) => {
                if bearer {
                    crate::auth::bearer_refused(self.conn, "+ ", MAX_LINE_BEFORE_LOGIN).await?;
                }
                Ok(Reply::no("[AUTHENTICATIONFAILED] Authentication failed"))
            }
        }
    }
}
