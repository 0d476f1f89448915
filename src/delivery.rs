//! The delivery pipeline: where accepted mail goes. Today: local mailboxes, committed before
//! the SMTP reply. The trust-space checks, S/MIME in and out, relay and the outbound queue
//! join here (SMTP and S/MIME issues), so that every message travels the same road.

use crate::store::{Account, Store, StoreError};

/// What a recipient address is to this server.
#[derive(Debug)]
pub enum Recipient {
    /// A local mailbox that can receive.
    Local(Account),
    /// A local mailbox that is suspended.
    Suspended,
    /// In a served domain, but no such mailbox.
    UnknownMailbox,
    /// Not a domain served here.
    NotLocal,
}

/// Decides where mail goes and puts it there.
#[derive(Clone)]
pub struct Delivery {
    store: Store,
}

impl Delivery {
    /// The pipeline on this store.
    pub fn new(store: Store) -> Delivery {
        Delivery { store }
    }

    /// Classifies a recipient address (already lower-cased).
    pub async fn recipient(&self, address: &str) -> Result<Recipient, StoreError> {
        if let Some(account) = self.store.db().find_account(address).await? {
            return Ok(if account.suspended {
                Recipient::Suspended
            } else {
                Recipient::Local(account)
            });
        }
        let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
        let served = self
            .store
            .db()
            .list_domains()
            .await?
            .iter()
            .any(|d| d == domain);
        Ok(if served {
            Recipient::UnknownMailbox
        } else {
            Recipient::NotLocal
        })
    }

    /// Delivers one message to local mailboxes; Ok means committed for all of them.
    pub async fn deliver_local(
        &self,
        recipients: &[Account],
        message: &[u8],
    ) -> Result<(), StoreError> {
        self.store.deliver(recipients, message).await
    }
}
