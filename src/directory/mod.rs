//! The national directory (`[directory]`), glue between the server and the directory
//! crate: publishing the operator's mailboxes (`publish`) and looking up other operators'
//! recipients: their existence, their certificates for outbound S/MIME (`lookup`).

use std::sync::Arc;
use std::time::Duration;

use mssante_directory::{DirectoryConfig, MailboxType};

use crate::config::DirectorySettings;
use crate::store::AccountKind;

mod lookup;
mod publish;

pub use lookup::{DirectoryLookup, Known};
pub use publish::{Drained, PublishError, Publisher, SyncReport};

pub(crate) fn mailbox_type(kind: AccountKind) -> MailboxType {
    match kind {
        AccountKind::Per => MailboxType::Per,
        AccountKind::Org => MailboxType::Org,
        AccountKind::App => MailboxType::App,
        AccountKind::Cab => MailboxType::Cab,
    }
}

/// The LDAP connection settings of `[directory]`.
pub(crate) fn connection(settings: &DirectorySettings) -> Result<DirectoryConfig, String> {
    let file = settings.bind_password_file.get_ref();
    let password = std::fs::read_to_string(file)
        .map_err(|e| format!("directory.bind_password_file {}: {e}", file.display()))?;
    let tls = if settings.plain() {
        None
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let anchors = crate::tls::read_certificates(&settings.ca_file)
            .map_err(|e| format!("directory.ca_file: {e}"))?;
        roots.add_parsable_certificates(anchors);
        let config = crate::tls::fetch::verifying_client(roots).map_err(|e| e.to_string())?;
        Some(Arc::new(config))
    };
    Ok(DirectoryConfig {
        url: settings.url.get_ref().clone(),
        base_dn: settings.base_dn.clone(),
        bind_dn: Some(settings.bind_dn.clone()),
        bind_password: password.trim().to_string(),
        tls,
        starttls: settings.starttls,
        timeout: Duration::from_secs(settings.timeout_secs.max(1)),
    })
}
