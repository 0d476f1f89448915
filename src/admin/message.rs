//! `mssante message original`: the original, as received, of a message the server decrypted
//! for its reader: the legal proof of what was sent, for the administrator, with a reason
//! that lands in the audit trail.

use std::path::Path;

use super::{address, audit, write_private};
use crate::app::{App, CliError};

/// `message original ADDRESS UID --reason TEXT --out FILE`.
pub async fn original(
    app: &App,
    address_text: &str,
    uid: u32,
    reason: &str,
    out: &Path,
) -> Result<(), CliError> {
    if reason.trim().len() < 3 {
        return Err(CliError::new(
            "reading an original needs its reason (--reason \"...\"): it goes to the audit trail",
        ));
    }
    let address = address(address_text)?;
    let db = app.store.db();
    let account = db
        .find_account(&address)
        .await?
        .ok_or_else(|| CliError::new(format!("no mailbox {address}")))?;
    let inbox = db
        .mailbox(account.id, "INBOX", false)
        .await?
        .ok_or_else(|| CliError::new(format!("{address} has no INBOX")))?;
    let original = app
        .store
        .read_original(&account, inbox.id, uid)
        .await?
        .ok_or_else(|| {
            CliError::new(format!(
                "message {uid} of {address} has no original: it was stored as received"
            ))
        })?;
    audit(
        app,
        "message.original",
        &format!("{address} UID {uid} to {}; reason: {reason}", out.display()),
    )
    .await?;
    write_private(out, &original)?;
    println!(
        "original of message {uid} of {address} written to {} (audited)",
        out.display()
    );
    Ok(())
}
