//! `mssante device`: per-device credentials of a mailbox (`auth::device`). `add` prints the
//! new app password once, to type into Thunderbird or a phone instead of the password and
//! the one-time code; `list` shows each device's last use; `block` makes it fail at once,
//! open sessions included; `remove` forgets it. `user cert bind` ties an APP mailbox's
//! software certificate to it.

use std::path::Path;

use super::{audit, mailbox};
use crate::app::{App, CliError};
use crate::auth::device;
use crate::store::StoreError;

/// `device add ADDRESS NAME`.
pub async fn add(app: &App, address_text: &str, name: &str) -> Result<(), CliError> {
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(CliError::new(
            "a device needs a name (\"Thunderbird cabinet\")",
        ));
    }
    let account = mailbox(app, address_text).await?;
    let password = device::new_app_password().map_err(|e| CliError::new(format!("random: {e}")))?;
    match app
        .store
        .db()
        .add_device(account.id, name, &device::hash(&password))
        .await
    {
        Ok(_) => {}
        Err(StoreError::Conflict(why)) => {
            return Err(CliError::new(format!("{}: {why}", account.address)));
        }
        Err(e) => return Err(e.into()),
    }
    audit(app, "device.add", &format!("{} {name:?}", account.address)).await?;
    println!(
        "app password for {name:?} of {} (shown once):",
        account.address
    );
    println!("{password}");
    println!("type it in the mail client instead of the password; no one-time code is needed");
    Ok(())
}

/// `device pair ADDRESS NAME`: a pairing code for a phone, valid two minutes and once.
pub async fn pair(app: &App, address_text: &str, name: &str) -> Result<(), CliError> {
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(CliError::new("a device needs a name (\"téléphone\")"));
    }
    let account = mailbox(app, address_text).await?;
    let db = app.store.db();
    if db.devices(account.id).await?.iter().any(|d| d.name == name) {
        return Err(CliError::new(format!(
            "{}: a device named {name:?} exists already",
            account.address
        )));
    }
    let code = device::new_pairing_code().map_err(|e| CliError::new(format!("random: {e}")))?;
    let expires = chrono::Utc::now().timestamp() + device::PAIRING_SECONDS;
    db.add_pairing(account.id, name, &device::pairing_hash(&code), expires)
        .await?;
    audit(
        app,
        "device.pairing",
        &format!("{} {name:?}", account.address),
    )
    .await?;
    let settings = crate::web::ClientSettings::from_config(&app.config);
    println!("pairing code for {name:?} of {}: {code}", account.address);
    println!(
        "valid {} seconds, once: the phone posts code={code} to https://{}/devices/pair",
        device::PAIRING_SECONDS,
        settings
            .imap
            .map_or(app.config.hostname.clone(), |e| e.host)
    );
    Ok(())
}

/// `device list ADDRESS`.
pub async fn list(app: &App, address_text: &str) -> Result<(), CliError> {
    let account = mailbox(app, address_text).await?;
    let devices = app.store.db().devices(account.id).await?;
    if devices.is_empty() {
        println!("{} has no device credential", account.address);
    }
    let time = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default()
    };
    for d in devices {
        let last = match &d.last_used {
            Some((at, from, protocol)) => {
                format!("last used {} from {from} ({protocol})", time(*at))
            }
            None => "never used".to_string(),
        };
        println!(
            "{:<28} {:<8} made {}  {last}",
            d.name,
            if d.blocked { "BLOCKED" } else { "active" },
            time(d.created_at)
        );
    }
    Ok(())
}

/// `device block ADDRESS NAME [--lift]`.
pub async fn block(app: &App, address_text: &str, name: &str, lift: bool) -> Result<(), CliError> {
    let account = mailbox(app, address_text).await?;
    if !app
        .store
        .db()
        .set_device_blocked(account.id, name, !lift)
        .await?
    {
        return Err(CliError::new(format!(
            "{} has no device {name:?}",
            account.address
        )));
    }
    let event = if lift {
        "device.unblock"
    } else {
        "device.block"
    };
    audit(app, event, &format!("{} {name:?}", account.address)).await?;
    println!(
        "{name:?} of {} is {}",
        account.address,
        if lift {
            "active again"
        } else {
            "blocked (open sessions end at their next command)"
        }
    );
    Ok(())
}

/// `device remove ADDRESS NAME`.
pub async fn remove(app: &App, address_text: &str, name: &str) -> Result<(), CliError> {
    let account = mailbox(app, address_text).await?;
    if !app.store.db().remove_device(account.id, name).await? {
        return Err(CliError::new(format!(
            "{} has no device {name:?}",
            account.address
        )));
    }
    audit(
        app,
        "device.remove",
        &format!("{} {name:?}", account.address),
    )
    .await?;
    println!("{name:?} of {} removed", account.address);
    Ok(())
}

/// `user cert bind ADDRESS CERT.pem`: an APP mailbox's software certificate, for SASL
/// EXTERNAL (bound by its SHA-256 fingerprint; it names no person).
pub async fn bind_certificate(app: &App, address_text: &str, file: &Path) -> Result<(), CliError> {
    let account = mailbox(app, address_text).await?;
    let name = file.display().to_string();
    let pem = std::fs::read(file).map_err(|e| CliError::new(format!("{name}: {e}")))?;
    let cert = openssl::x509::X509::from_pem(&pem)
        .map_err(|_| CliError::new(format!("{name}: not a PEM certificate")))?;
    let der = cert
        .to_der()
        .map_err(|e| CliError::new(format!("{name}: {e}")))?;
    if let Some(reason) = crate::pki::unusable_now(&der) {
        return Err(CliError::new(format!("{name}: {reason}")));
    }
    let subject = crate::pki::subject_line(&cert);
    let fingerprint = device::hash_bytes(&der);
    app.store
        .db()
        .bind_certificate(account.id, &fingerprint, &subject)
        .await?;
    let hex: String = fingerprint.iter().map(|b| format!("{b:02X}")).collect();
    audit(
        app,
        "cert.bind",
        &format!("{} {subject} SHA-256 {hex}", account.address),
    )
    .await?;
    println!(
        "{} logs in with SASL EXTERNAL over {subject} (SHA-256 {hex})",
        account.address
    );
    Ok(())
}

/// `user cert unbind ADDRESS`.
pub async fn unbind_certificates(app: &App, address_text: &str) -> Result<(), CliError> {
    let account = mailbox(app, address_text).await?;
    let n = app.store.db().unbind_certificates(account.id).await?;
    audit(app, "cert.unbind", &format!("{} ({n})", account.address)).await?;
    println!("{}: {n} certificate(s) unbound", account.address);
    Ok(())
}
