//! `mssante user otp`: the one-time-code second factor of a mailbox (TOTP, `auth::totp`).
//! `enroll` makes a new secret and shows it as an `otpauth://` URI and a QR code (terminal,
//! and SVG for the portal or a printed letter); the professional scans it with an
//! authenticator app and from then on types the 6-digit code right after the password.
//! `require` makes the code mandatory even before enrolment; `remove` forgets the secret.

use std::path::Path;

use qrcode::QrCode;
use qrcode::render::{svg, unicode};

use super::{audit, mailbox, write_private};
use crate::app::{App, CliError};
use crate::auth::totp;

/// `user otp enroll ADDRESS [--svg FILE]`.
pub async fn enroll(app: &App, address_text: &str, svg_out: Option<&Path>) -> Result<(), CliError> {
    let account = mailbox(app, address_text).await?;
    let mut secret = zeroize::Zeroizing::new(vec![0u8; totp::SECRET_LEN]);
    openssl::rand::rand_bytes(&mut secret)
        .map_err(|e| CliError::new(format!("random secret: {e}")))?;
    let domain = account.address.rsplit_once('@').map_or("", |(_, d)| d);
    let uri = zeroize::Zeroizing::new(totp::uri(
        &format!("MSSante {domain}"),
        &account.address,
        &secret,
    ));
    let code = QrCode::new(uri.as_bytes()).map_err(|e| CliError::new(format!("QR code: {e}")))?;
    if let Some(file) = svg_out {
        let image = code
            .render::<svg::Color<'_>>()
            .min_dimensions(256, 256)
            .build();
        write_private(file, image.as_bytes())?;
    }
    app.store.enroll_otp(&account, &secret).await?;
    audit(app, "otp.enroll", &account.address).await?;
    let terminal = code
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .build();
    println!("{terminal}");
    println!("{}", uri.as_str());
    println!(
        "Scan this with an authenticator app. From now on {} logs in with the 6-digit code\n\
         typed right after the password (password123456); each code works once.",
        account.address
    );
    if let Some(file) = svg_out {
        println!(
            "QR code also written to {} (keep it private)",
            file.display()
        );
    }
    Ok(())
}

/// `user otp remove ADDRESS`.
pub async fn remove(app: &App, address_text: &str) -> Result<(), CliError> {
    let account = mailbox(app, address_text).await?;
    app.store.remove_otp(&account).await?;
    audit(app, "otp.remove", &account.address).await?;
    let state = app.store.otp(&account).await?;
    println!(
        "{}: one-time code secret removed{}",
        account.address,
        if state.required {
            " (a code is still required: password logins fail until a new enrolment)"
        } else {
            ""
        }
    );
    Ok(())
}

/// `user otp require ADDRESS [--lift]`.
pub async fn require(app: &App, address_text: &str, lift: bool) -> Result<(), CliError> {
    let account = mailbox(app, address_text).await?;
    app.store.require_otp(&account, !lift).await?;
    let event = if lift {
        "otp.require.lift"
    } else {
        "otp.require"
    };
    audit(app, event, &account.address).await?;
    println!(
        "{}: a one-time code is {} for password logins",
        account.address,
        if lift {
            "no longer required"
        } else {
            "required"
        }
    );
    Ok(())
}
