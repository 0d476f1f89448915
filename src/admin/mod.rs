//! The administration commands (`domain`, `user`, `pki`, `trust`, `audit`; `queue` in its
//! own file). They work on the store
//! directly, so they also work while `serve` runs; each change lands in the audit trail.

use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::app::{App, CliError};
use crate::audit::{Audit, Outcome};
use crate::auth::{normalize_address, password};
use crate::pki::{Issued, PersonRequest};
use crate::store::{AccountKind, NewAccount};

pub mod delegation;
pub mod devices;
pub mod directory;
pub mod keys;
pub mod message;
pub mod otp;
pub mod queue;

pub(crate) async fn audit(app: &App, event: &str, detail: &str) -> Result<(), CliError> {
    let actor = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "admin".into());
    Audit::new(app.store.clone())
        .record(event, &actor, "cli", Outcome::Ok, detail)
        .await
        .map_err(|e| CliError::new(format!("audit trail: {e}")))
}

/// The mailbox an address (as typed) names, or a clear error.
pub(crate) async fn mailbox(app: &App, text: &str) -> Result<crate::store::Account, CliError> {
    let address = address(text)?;
    app.store
        .db()
        .find_account(&address)
        .await?
        .ok_or_else(|| CliError::new(format!("no mailbox {address}")))
}

/// A domain name in its A-label (ASCII) form, or a clear error.
pub fn domain_ascii(name: &str) -> Result<String, CliError> {
    mssante_directory::whitelist::a_label(name)
        .map_err(|why| CliError::new(format!("{name:?} is not a valid domain name: {why}")))
}

/// A mailbox address, lower case with an A-label domain, or a clear error.
pub fn address(text: &str) -> Result<String, CliError> {
    let text = normalize_address(text);
    let (local, domain) = text
        .rsplit_once('@')
        .ok_or_else(|| CliError::new(format!("{text:?} is not an address (local@domain)")))?;
    if local.is_empty()
        || local.len() > 64
        || local
            .bytes()
            .any(|b| b <= b' ' || b"<>()[]\\,;:\"@".contains(&b))
    {
        return Err(CliError::new(format!(
            "{text:?}: the part before @ is not valid"
        )));
    }
    Ok(format!("{local}@{}", domain_ascii(domain)?))
}

fn idnat(text: &str) -> Result<String, CliError> {
    let ok = text.len() >= 2
        && text.starts_with(|c: char| c.is_ascii_digit())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '/');
    if !ok {
        return Err(CliError::new(format!(
            "{text:?} is not an idNat: a type digit then the identifier (8 + RPPS, 0 + ADELI, 3 + FINESS/id)"
        )));
    }
    Ok(text.to_string())
}

/// A password from the first line of standard input.
pub fn password_from_stdin() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::new(format!("reading the password: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(CliError::new(
            "the password read from standard input is empty",
        ));
    }
    Ok(password)
}

async fn hash(secret: String) -> Result<String, CliError> {
    tokio::task::spawn_blocking(move || password::hash(&secret))
        .await
        .map_err(|e| CliError::new(e.to_string()))?
        .map_err(CliError::new)
}

/// `domain add`.
pub async fn domain_add(app: &App, name: &str) -> Result<(), CliError> {
    let name = domain_ascii(name)?;
    app.store.db().add_domain(&name).await?;
    audit(app, "domain.add", &name).await?;
    println!("domain {name} added");
    Ok(())
}

/// `domain list`.
pub async fn domain_list(app: &App) -> Result<(), CliError> {
    for d in app.store.db().list_domains().await? {
        println!("{d}");
    }
    Ok(())
}

/// `domain remove`.
pub async fn domain_remove(app: &App, name: &str) -> Result<(), CliError> {
    let name = domain_ascii(name)?;
    app.store.db().remove_domain(&name).await?;
    audit(app, "domain.remove", &name).await?;
    println!("domain {name} removed");
    Ok(())
}

/// What `user add` was told.
pub struct UserAdd {
    /// Address.
    pub address: String,
    /// Read the password from stdin.
    pub password_stdin: bool,
    /// No password at all (card / Pro Santé Connect only).
    pub no_password: bool,
    /// Owner idNat.
    pub idnat: Option<String>,
    /// Mailbox type.
    pub kind: AccountKind,
    /// Display name.
    pub name: Option<String>,
    /// Require a one-time code for password logins from the start.
    pub require_otp: bool,
}

/// `user add`: with a password from stdin, none, or a generated one printed once.
pub async fn user_add(app: &App, req: UserAdd) -> Result<(), CliError> {
    let address = address(&req.address)?;
    let idnat = req.idnat.as_deref().map(idnat).transpose()?;
    let (hash_value, shown) = match (req.password_stdin, req.no_password) {
        (true, _) => (Some(hash(password_from_stdin()?).await?), None),
        (false, true) => (None, None),
        (false, false) => {
            let generated = password::generate().map_err(CliError::new)?;
            (Some(hash(generated.clone()).await?), Some(generated))
        }
    };
    let account = NewAccount {
        address: address.clone(),
        kind: req.kind,
        idnat,
        display_name: req.name,
        password_hash: hash_value,
    };
    app.store.create_account(&account).await?;
    audit(app, "user.add", &format!("{address} type={}", req.kind)).await?;
    println!("mailbox {address} ({}) created", req.kind);
    let created = app
        .store
        .db()
        .find_account(&address)
        .await?
        .ok_or_else(|| CliError::new(format!("mailbox {address} vanished")))?;
    if req.require_otp {
        app.store.require_otp(&created, true).await?;
        audit(app, "otp.require", &address).await?;
        println!("password logins need a one-time code: `mssante user otp enroll {address}`");
    }
    if app.config.mode == crate::config::Mode::Dev {
        keys::escrow_test_keys(app, &created).await?;
    }
    directory::changed(app, &address).await?;
    if let Some(p) = shown {
        println!(
            "password: {p}   (shown once; change it with `mssante user passwd {address} --password-stdin`)"
        );
    }
    Ok(())
}

/// `user list`.
pub async fn user_list(app: &App) -> Result<(), CliError> {
    let accounts = app.store.db().list_accounts().await?;
    println!(
        "{:<40} {:<4} {:<14} {:<10} {:<8} NAME",
        "ADDRESS", "TYPE", "IDNAT", "STATUS", "PASSWORD"
    );
    for a in accounts {
        println!(
            "{:<40} {:<4} {:<14} {:<10} {:<8} {}",
            a.address,
            a.kind,
            a.idnat.as_deref().unwrap_or("-"),
            if a.suspended { "suspended" } else { "active" },
            if a.password_hash.is_some() {
                "yes"
            } else {
                "no"
            },
            a.display_name.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// `user passwd`.
pub async fn user_passwd(app: &App, address_text: &str, from_stdin: bool) -> Result<(), CliError> {
    let address = address(address_text)?;
    let (secret, shown) = if from_stdin {
        (password_from_stdin()?, false)
    } else {
        (password::generate().map_err(CliError::new)?, true)
    };
    let h = hash(secret.clone()).await?;
    app.store.db().set_password_hash(&address, Some(&h)).await?;
    audit(app, "user.passwd", &address).await?;
    println!("password of {address} changed");
    if shown {
        println!("password: {secret}   (shown once)");
    }
    Ok(())
}

/// `user suspend` (or lift a suspension).
pub async fn user_suspend(app: &App, address_text: &str, lift: bool) -> Result<(), CliError> {
    let address = address(address_text)?;
    app.store.db().set_suspended(&address, !lift).await?;
    audit(
        app,
        if lift {
            "user.reinstate"
        } else {
            "user.suspend"
        },
        &address,
    )
    .await?;
    println!(
        "{address} {}",
        if lift { "reinstated" } else { "suspended" }
    );
    Ok(())
}

/// `user remove`.
pub async fn user_remove(app: &App, address_text: &str) -> Result<(), CliError> {
    let address = address(address_text)?;
    app.store.db().remove_account(&address).await?;
    audit(app, "user.remove", &address).await?;
    println!("mailbox {address} and its mail removed");
    directory::changed(app, &address).await
}

/// Writes a file only its owner may read (private keys, PKCS#12).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| CliError::new(format!("{}: {e}", path.display())))
}

/// A PKCS#12 (DER) of a key, its certificate and chain, protected by `password`.
pub(crate) fn pkcs12(
    name: &str,
    key: &openssl::pkey::PKeyRef<openssl::pkey::Private>,
    cert: &openssl::x509::X509Ref,
    chain: &[openssl::x509::X509],
    password: &str,
) -> Result<Vec<u8>, CliError> {
    let fail = |e: openssl::error::ErrorStack| CliError::new(format!("PKCS#12: {e}"));
    let mut stack = openssl::stack::Stack::new().map_err(fail)?;
    for c in chain {
        stack.push(c.clone()).map_err(fail)?;
    }
    openssl::pkcs12::Pkcs12::builder()
        .name(name)
        .pkey(key)
        .cert(cert)
        .ca(stack)
        .build2(password)
        .and_then(|p| p.to_der())
        .map_err(fail)
}

/// Writes `<stem>.pem` (certificate and chain), `<stem>.key` (0600) and optionally
/// `<stem>.p12` into `out`.
fn write_issued(
    issued: &Issued,
    out: &Path,
    stem: &str,
    p12_password: Option<&str>,
) -> Result<(), CliError> {
    let io = |path: &Path, e: std::io::Error| CliError::new(format!("{}: {e}", path.display()));
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let mut pem = issued
        .cert
        .to_pem()
        .map_err(|e| CliError::new(e.to_string()))?;
    for c in &issued.chain {
        pem.extend(c.to_pem().map_err(|e| CliError::new(e.to_string()))?);
    }
    let cert_path = out.join(format!("{stem}.pem"));
    std::fs::write(&cert_path, &pem).map_err(|e| io(&cert_path, e))?;
    let key_path = out.join(format!("{stem}.key"));
    let key_pem = issued
        .key
        .private_key_to_pem_pkcs8()
        .map_err(|e| CliError::new(e.to_string()))?;
    write_private(&key_path, &key_pem)?;
    println!(
        "certificate: {}\nprivate key: {}",
        cert_path.display(),
        key_path.display()
    );
    if let Some(pass) = p12_password {
        let p12 = pkcs12(stem, &issued.key, &issued.cert, &issued.chain, pass)?;
        let p12_path = out.join(format!("{stem}.p12"));
        write_private(&p12_path, &p12)?;
        println!("PKCS#12:     {}", p12_path.display());
    }
    let serial = issued
        .cert
        .serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_string()));
    println!("serial:      {}", serial.unwrap_or_default());
    // The form a whitelist's DNCertificatOperateur takes (most specific first).
    println!(
        "subject:     {}",
        crate::pki::subject_line(&issued.cert)
            .split(", ")
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(",")
    );
    Ok(())
}

/// `pki issue-person`.
pub async fn pki_issue_person(
    app: &App,
    req: PersonRequest,
    out: &Path,
    p12: Option<&str>,
) -> Result<(), CliError> {
    let pki = app.test_pki().await?;
    idnat(&req.idnat)?;
    let stem = format!(
        "{}-{}",
        req.idnat.replace('/', "_"),
        format!("{:?}", req.usage).to_lowercase()
    );
    let issued = pki.issue_person(&app.store, &req).await?;
    audit(
        app,
        "pki.issue",
        &format!("person {} {:?}", req.idnat, req.usage),
    )
    .await?;
    write_issued(&issued, out, &stem, p12)
}

/// `pki issue-server`.
pub async fn pki_issue_server(
    app: &App,
    host: &str,
    organisation: &str,
    out: &Path,
    p12: Option<&str>,
) -> Result<(), CliError> {
    let pki = app.test_pki().await?;
    let issued = pki.issue_server(&app.store, host, organisation).await?;
    audit(app, "pki.issue", &format!("server {host}")).await?;
    write_issued(&issued, out, host, p12)
}

/// `pki revoke`: marks the certificate revoked and rewrites the CRL files.
pub async fn pki_revoke(app: &App, serial: &str) -> Result<(), CliError> {
    let pki = app.test_pki().await?;
    let record = pki.revoke(&app.store, serial).await?;
    pki.write_public_files(&app.store, &app.pki_dir()).await?;
    audit(
        app,
        "pki.revoke",
        &format!("{} {}", record.serial_hex, record.subject),
    )
    .await?;
    println!(
        "revoked {} ({}); CRLs rewritten in {}",
        record.serial_hex,
        record.subject,
        app.pki_dir().display()
    );
    println!("a running server reads CRLs at start: restart it to apply");
    Ok(())
}

/// `pki show`.
pub async fn pki_show(app: &App) -> Result<(), CliError> {
    let pki = app.test_pki().await?;
    for name in ["root", "organisations", "personnes"] {
        if let Some(cert) = pki.ca_cert(name) {
            println!("{name:<14} {}", crate::pki::subject_line(cert));
        }
    }
    println!(
        "public files:  {} (CA certificates, ca-bundle.pem, CRLs)",
        app.pki_dir().display()
    );
    println!(
        "\n{:<34} {:<14} {:<11} {:<8} SUBJECT",
        "SERIAL", "CA", "PROFILE", "STATUS"
    );
    for r in pki.issued(&app.store).await? {
        let status = if r.revoked_at == 0 {
            "valid"
        } else {
            "revoked"
        };
        println!(
            "{:<34} {:<14} {:<11} {:<8} {}",
            r.serial_hex, r.ca, r.profile, status, r.subject
        );
    }
    Ok(())
}

/// `audit verify`.
pub async fn audit_verify(app: &App) -> Result<(), CliError> {
    match Audit::new(app.store.clone()).verify().await? {
        Ok(n) => {
            println!("audit trail intact: {n} records");
            Ok(())
        }
        Err(b) => Err(CliError::new(format!(
            "audit trail broken at record {}: it was altered or removed",
            b.seq
        ))),
    }
}

/// `audit tail`.
pub async fn audit_tail(app: &App, n: u32) -> Result<(), CliError> {
    for (seq, r) in Audit::new(app.store.clone()).tail(n).await? {
        print_audit_record(seq, &r);
    }
    Ok(())
}

/// `audit show [--user ADDRESS] [--since DATE]`.
pub async fn audit_show(
    app: &App,
    user: Option<&str>,
    since: Option<&str>,
) -> Result<(), CliError> {
    let since = since
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&chrono::Utc))
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
                })
                .map_err(|_| {
                    CliError::new(format!(
                        "--since {text:?}: not a date (YYYY-MM-DD) nor an RFC 3339 time"
                    ))
                })
        })
        .transpose()?;
    let filter = crate::audit::Filter {
        user: user.map(crate::auth::normalize_address),
        since,
    };
    let records = Audit::new(app.store.clone()).select(&filter).await?;
    if records.is_empty() {
        println!("no audit record matches");
    }
    for (seq, r) in records {
        print_audit_record(seq, &r);
    }
    Ok(())
}

fn print_audit_record(seq: u64, r: &crate::store::AuditRecord) {
    println!(
        "{seq:>6} {} {:<14} {:<8} {:<30} {:<28} {}",
        r.at, r.event, r.outcome, r.actor, r.source, r.detail
    );
}

/// `trust import FILE` / `trust import-directory`: replaces the trust space with a
/// whitelist file (or the directory's list, `path` None) and says what changed.
pub async fn trust_import(app: &App, path: Option<&Path>) -> Result<(), CliError> {
    let diff = match path {
        Some(path) => crate::trust::import(&app.store, path).await,
        None => {
            let settings = app.config.directory.as_ref().ok_or_else(|| {
                CliError::new(
                    "no [directory] in the configuration: nowhere to read the trust space",
                )
            })?;
            let config = crate::directory::connection(settings).map_err(CliError::new)?;
            crate::trust::import_from_directory(&app.store, &config).await
        }
    }
    .map_err(|e| CliError::new(e.to_string()))?;
    let source = path.map_or_else(
        || "the national directory".to_string(),
        |p| p.display().to_string(),
    );
    let summary = format!(
        "{} domains: {} added, {} removed, {} with a new operator",
        diff.total,
        diff.added.len(),
        diff.removed.len(),
        diff.changed.len()
    );
    audit(app, "trust.import", &format!("{source}: {summary}")).await?;
    println!("trust space imported from {source}: {summary}");
    for (sign, list) in [
        ("+", &diff.added),
        ("-", &diff.removed),
        ("~", &diff.changed),
    ] {
        const SHOWN: usize = 50;
        for d in list.iter().take(SHOWN) {
            println!("  {sign} {d}");
        }
        if list.len() > SHOWN {
            println!("  {sign} ... and {} more", list.len() - SHOWN);
        }
    }
    Ok(())
}

/// `trust list`.
pub async fn trust_list(app: &App) -> Result<(), CliError> {
    for e in app.store.db().trust_entries().await? {
        println!("{:<40} {}", e.domain, e.operator_dn);
    }
    Ok(())
}
