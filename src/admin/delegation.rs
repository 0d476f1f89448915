//! `mssante delegation` and `mssante user quota`: who may act for a mailbox, and how much a
//! mailbox may hold. Both are audited.

use super::{address, audit};
use crate::app::{App, CliError};
use crate::auth::Rights;

/// `delegation add MAILBOX DELEGATE [--send-as] [--rights LETTERS]`.
pub async fn add(
    app: &App,
    mailbox: &str,
    delegate: &str,
    send_as: bool,
    rights: &str,
) -> Result<(), CliError> {
    let (mailbox, delegate) = (address(mailbox)?, address(delegate)?);
    if mailbox == delegate {
        return Err(CliError::new("a mailbox cannot be delegated to itself"));
    }
    let rights = Rights::parse(rights).map_err(|e| CliError::new(format!("--rights: {e}")))?;
    app.store
        .db()
        .grant_delegation(&mailbox, &delegate, send_as, &rights.to_string())
        .await?;
    let what = format!(
        " with rights {}{}",
        display_rights(&rights.to_string()),
        if send_as { ", may send as it" } else { "" }
    );
    audit(
        app,
        "delegation.add",
        &format!("{mailbox} -> {delegate}{what}"),
    )
    .await?;
    println!("{delegate} now acts for {mailbox}{what}");
    Ok(())
}

fn display_rights(rights: &str) -> &str {
    if rights.is_empty() { "(none)" } else { rights }
}

/// `delegation remove MAILBOX DELEGATE`.
pub async fn remove(app: &App, mailbox: &str, delegate: &str) -> Result<(), CliError> {
    let (mailbox, delegate) = (address(mailbox)?, address(delegate)?);
    app.store
        .db()
        .revoke_delegation(&mailbox, &delegate)
        .await?;
    audit(
        app,
        "delegation.remove",
        &format!("{mailbox} -> {delegate}"),
    )
    .await?;
    println!("{delegate} no longer acts for {mailbox}");
    Ok(())
}

/// `delegation list`.
pub async fn list(app: &App) -> Result<(), CliError> {
    let all = app.store.db().delegations().await?;
    if all.is_empty() {
        println!("no delegation");
        return Ok(());
    }
    println!(
        "{:<36} {:<36} {:<12} SEND AS",
        "MAILBOX", "DELEGATE", "RIGHTS"
    );
    for d in all {
        let send = if d.send_as { "yes" } else { "no" };
        let rights = display_rights(&d.rights);
        println!("{:<36} {:<36} {rights:<12} {send}", d.mailbox, d.delegate);
    }
    Ok(())
}

/// A size such as `500M`, `10G` or `1048576` (octets); `default` clears it.
pub fn parse_size(text: &str) -> Result<Option<u64>, CliError> {
    if text.eq_ignore_ascii_case("default") {
        return Ok(None);
    }
    let upper = text.trim().to_ascii_uppercase();
    let (digits, unit) = match upper.strip_suffix(['K', 'M', 'G', 'T']) {
        Some(d) => (d, upper.chars().last().unwrap_or('B')),
        None => (upper.as_str(), 'B'),
    };
    let shift = match unit {
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        _ => 0,
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .map(Some)
        .ok_or_else(|| {
            CliError::new(format!(
                "{text:?} is not a size: a number of octets, or with K, M, G or T (500M, 10G), or `default`"
            ))
        })
}

/// `user quota ADDRESS SIZE|default`.
pub async fn quota(app: &App, mailbox: &str, size: &str) -> Result<(), CliError> {
    let mailbox = address(mailbox)?;
    let bytes = parse_size(size)?;
    app.store.db().set_quota(&mailbox, bytes).await?;
    let shown = match bytes {
        Some(0) => "no limit".to_string(),
        Some(b) => format!("{b} octets"),
        None => format!("the default ({} octets)", app.config.limits.mailbox_quota),
    };
    audit(app, "user.quota", &format!("{mailbox}: {shown}")).await?;
    println!("quota of {mailbox}: {shown}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_read_as_an_operator_writes_them() {
        assert_eq!(parse_size("500M").ok(), Some(Some(500 << 20)));
        assert_eq!(parse_size("10g").ok(), Some(Some(10 << 30)));
        assert_eq!(parse_size("1024").ok(), Some(Some(1024)));
        assert_eq!(parse_size("default").ok(), Some(None));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
