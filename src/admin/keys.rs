//! `mssante key`: the S/MIME keys a mailbox holds in escrow. Import a PKCS#12 (the form
//! IGC-Santé delivers software certificates), make a key and its CSR, install the
//! certificate, list, and export for lawful recovery (with a reason, audited). Private keys
//! go to the store sealed; nothing here writes one in clear except an export the operator
//! asked for, into a file only they can read.

use std::path::Path;

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509Ref, X509ReqBuilder};

use super::{address, audit, mailbox, password_from_stdin, pkcs12, write_private};
use crate::app::{App, CliError};
use crate::store::{Account, KeyState, KeyUse, StoredKey};

fn crypto(what: &str) -> impl Fn(openssl::error::ErrorStack) -> CliError + '_ {
    move |e| CliError::new(format!("{what}: {e}"))
}

/// Refuses keys that are not RSA of at least 2048 bits.
fn check_key(key: &PKey<Private>, file: &str) -> Result<(), CliError> {
    match key.rsa() {
        Ok(rsa) if rsa.size() * 8 >= mssante_smime::MIN_RSA_BITS => Ok(()),
        Ok(rsa) => Err(CliError::new(format!(
            "{file}: RSA key of {} bits; at least 2048 required",
            rsa.size() * 8
        ))),
        Err(_) => Err(CliError::new(format!("{file}: not an RSA key"))),
    }
}

/// The use a certificate is made for: key encipherment means encryption, else signature.
fn use_of(cert: &X509Ref) -> KeyUse {
    let der = cert.to_der().unwrap_or_default();
    let encipherment = x509_parser::parse_x509_certificate(&der)
        .ok()
        .and_then(|(_, c)| {
            c.key_usage()
                .ok()
                .flatten()
                .map(|k| k.value.key_encipherment())
        })
        .unwrap_or(false);
    if encipherment {
        KeyUse::Encryption
    } else {
        KeyUse::Signature
    }
}

/// The certificate must name the mailbox when it names any address.
fn check_address(cert: &X509Ref, address: &str, file: &str) -> Result<(), CliError> {
    let emails = mssante_smime::certificate_emails(cert);
    if emails.is_empty() || emails.iter().any(|e| e == address) {
        Ok(())
    } else {
        Err(CliError::new(format!(
            "{file}: the certificate is for {}, not {address}",
            emails.join(", ")
        )))
    }
}

fn chain_der(chain: &[X509]) -> Result<Vec<u8>, CliError> {
    let mut out = Vec::new();
    for c in chain {
        out.extend(c.to_der().map_err(crypto("chain"))?);
    }
    Ok(out)
}

/// `key import ADDRESS --pkcs12 FILE [--use U] [--password-stdin]`.
pub async fn import(
    app: &App,
    address_text: &str,
    file: &Path,
    usage: Option<KeyUse>,
    password_stdin: bool,
) -> Result<(), CliError> {
    let account = mailbox(app, address_text).await?;
    let name = file.display().to_string();
    let der = std::fs::read(file).map_err(|e| CliError::new(format!("{name}: {e}")))?;
    let password = if password_stdin {
        password_from_stdin()?
    } else {
        String::new()
    };
    let parsed = openssl::pkcs12::Pkcs12::from_der(&der)
        .and_then(|p| p.parse2(&password))
        .map_err(|_| {
            CliError::new(format!(
                "{name}: not a PKCS#12 file, or the wrong password (give it with --password-stdin)"
            ))
        })?;
    let (Some(key), Some(cert)) = (parsed.pkey, parsed.cert) else {
        return Err(CliError::new(format!(
            "{name}: the PKCS#12 holds no key with its certificate"
        )));
    };
    check_key(&key, &name)?;
    let public = cert.public_key().map_err(crypto(&name))?;
    if !public.public_eq(&key) {
        return Err(CliError::new(format!(
            "{name}: the certificate is not the key's"
        )));
    }
    check_address(&cert, &account.address, &name)?;
    let usage = usage.unwrap_or_else(|| use_of(&cert));
    let chain: Vec<X509> = parsed
        .ca
        .map(|s| s.into_iter().collect())
        .unwrap_or_default();
    let pkcs8 = zeroize::Zeroizing::new(key.private_key_to_pkcs8().map_err(crypto(&name))?);
    let spki = public.public_key_to_der().map_err(crypto(&name))?;
    let cert_der = cert.to_der().map_err(crypto(&name))?;
    let id = app
        .store
        .add_key(
            &account,
            usage,
            &pkcs8,
            spki,
            Some((cert_der, chain_der(&chain)?)),
        )
        .await?;
    let subject = crate::pki::subject_line(&cert);
    audit(
        app,
        "key.import",
        &format!("{} {usage} key {id}: {subject}", account.address),
    )
    .await?;
    println!(
        "{usage} key {id} of {} is now current: {subject}",
        account.address
    );
    // The directory publishes the encryption certificate.
    super::directory::changed(app, &account.address).await
}

/// `key csr ADDRESS --use U [--out FILE]`: a new key, escrowed at once, and its CSR.
pub async fn csr(
    app: &App,
    address_text: &str,
    usage: KeyUse,
    out: Option<&Path>,
) -> Result<(), CliError> {
    let account = mailbox(app, address_text).await?;
    let key = crate::blocking::run(|| {
        openssl::rsa::Rsa::generate(2048)
            .and_then(PKey::from_rsa)
            .map_err(crypto("key generation"))
    })
    .await?;
    let request = csr_for(&key, &account.address).map_err(crypto("CSR"))?;
    let pkcs8 = zeroize::Zeroizing::new(key.private_key_to_pkcs8().map_err(crypto("key"))?);
    let spki = key.public_key_to_der().map_err(crypto("key"))?;
    let id = app
        .store
        .add_key(&account, usage, &pkcs8, spki, None)
        .await?;
    audit(
        app,
        "key.csr",
        &format!("{} {usage} key {id} (pending)", account.address),
    )
    .await?;
    match out {
        Some(path) => {
            std::fs::write(path, &request)
                .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
            println!(
                "{usage} key {id} of {} waits for its certificate; CSR written to {}",
                account.address,
                path.display()
            );
        }
        None => print!("{}", String::from_utf8_lossy(&request)),
    }
    Ok(())
}

fn csr_for(key: &PKey<Private>, address: &str) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let mut name = openssl::x509::X509NameBuilder::new()?;
    name.append_entry_by_text("CN", address)?;
    let mut builder = X509ReqBuilder::new()?;
    builder.set_subject_name(&name.build())?;
    builder.set_pubkey(key)?;
    let mut extensions = openssl::stack::Stack::new()?;
    let san = openssl::x509::extension::SubjectAlternativeName::new()
        .email(address)
        .build(&builder.x509v3_context(None))?;
    extensions.push(san)?;
    builder.add_extensions(&extensions)?;
    builder.sign(key, MessageDigest::sha256())?;
    builder.build().to_pem()
}

/// `key install ADDRESS CERT`: the certificate (PEM, chain after it) of a pending key.
pub async fn install(app: &App, address_text: &str, file: &Path) -> Result<(), CliError> {
    let account = mailbox(app, address_text).await?;
    let name = file.display().to_string();
    let pem = std::fs::read(file).map_err(|e| CliError::new(format!("{name}: {e}")))?;
    let certs = X509::stack_from_pem(&pem)
        .map_err(|_| CliError::new(format!("{name}: not a PEM certificate file")))?;
    let Some((cert, chain)) = certs.split_first() else {
        return Err(CliError::new(format!("{name}: no certificate in the file")));
    };
    check_address(cert, &account.address, &name)?;
    let public = cert.public_key().map_err(crypto(&name))?;
    let spki = public.public_key_to_der().map_err(crypto(&name))?;
    let installed = app
        .store
        .install_certificate(
            &account,
            &spki,
            cert.to_der().map_err(crypto(&name))?,
            chain_der(chain)?,
        )
        .await?;
    let subject = crate::pki::subject_line(cert);
    audit(
        app,
        "key.install",
        &format!(
            "{} {} key {}: {subject}",
            account.address, installed.usage, installed.id
        ),
    )
    .await?;
    println!(
        "{} key {} of {} is now current: {subject}",
        installed.usage, installed.id, account.address
    );
    super::directory::changed(app, &account.address).await
}

/// `key list ADDRESS`.
pub async fn list(app: &App, address_text: &str) -> Result<(), CliError> {
    let account = mailbox(app, address_text).await?;
    let keys = app.store.keys(&account).await?;
    if keys.is_empty() {
        println!("{} holds no key", account.address);
        return Ok(());
    }
    println!(
        "{:<5} {:<11} {:<8} {:<20} {:<25} SUBJECT",
        "ID", "USE", "STATE", "SERIAL", "NOT AFTER"
    );
    for k in keys {
        let cert = k
            .certificate
            .as_deref()
            .and_then(|d| X509::from_der(d).ok());
        let (serial, not_after, subject) = cert
            .map(|c| {
                (
                    crate::pki::serial_hex(&c).unwrap_or_else(|_| "?".into()),
                    c.not_after().to_string(),
                    crate::pki::subject_line(&c),
                )
            })
            .unwrap_or_else(|| {
                let none = || "-".to_string();
                (none(), none(), "(waiting for its certificate)".into())
            });
        println!(
            "{:<5} {:<11} {:<8} {serial:<20} {not_after:<25} {subject}",
            k.id,
            k.usage,
            k.state.as_str()
        );
    }
    Ok(())
}

/// `key export ADDRESS --reason TEXT --out FILE [--key ID] --password-stdin`: a PKCS#12
/// for lawful recovery, audited with its reason.
pub async fn export(
    app: &App,
    address_text: &str,
    reason: &str,
    out: &Path,
    key_id: Option<i64>,
) -> Result<(), CliError> {
    if reason.trim().len() < 3 {
        return Err(CliError::new(
            "an export needs its reason (--reason \"requisition n° ...\"): it goes to the audit trail",
        ));
    }
    let account = mailbox(app, address_text).await?;
    let keys = app.store.keys(&account).await?;
    let chosen: Option<&StoredKey> = match key_id {
        Some(id) => keys.iter().find(|k| k.id == id),
        None => keys
            .iter()
            .find(|k| k.usage == KeyUse::Encryption && k.state == KeyState::Current),
    };
    let Some(key) = chosen.filter(|k| k.certificate.is_some()) else {
        return Err(CliError::new(format!(
            "{} has no such key with a certificate (see `mssante key list {}`)",
            account.address, account.address
        )));
    };
    let password = password_from_stdin()?;
    let pkcs8 = app.store.open_key(&account, key).await?;
    let private = PKey::private_key_from_pkcs8(&pkcs8).map_err(crypto("stored key"))?;
    let cert = X509::from_der(key.certificate.as_deref().unwrap_or_default())
        .map_err(crypto("stored certificate"))?;
    let chain = mssante_smime::certificates_from_der(&key.chain)
        .ok_or_else(|| CliError::new("stored chain: invalid certificate"))?;
    let p12 = pkcs12(&account.address, &private, &cert, &chain, &password)?;
    // Audited before the file exists: an export that cannot be traced does not happen.
    audit(
        app,
        "key.export",
        &format!(
            "{} {} key {} to {}; reason: {reason}",
            account.address,
            key.usage,
            key.id,
            out.display()
        ),
    )
    .await?;
    write_private(out, &p12)?;
    println!(
        "{} key {} of {} exported to {} (audited)",
        key.usage,
        key.id,
        account.address,
        out.display()
    );
    Ok(())
}

/// Dev mode: the TEST PKI issues a new mailbox its encryption and signature keys, escrowed
/// at once, so S/MIME works from the first message.
pub async fn escrow_test_keys(app: &App, account: &Account) -> Result<(), CliError> {
    use crate::pki::{PersonRequest, PersonUse};
    let pki = app.test_pki().await?;
    let local = account.address.split('@').next().unwrap_or_default();
    let (given_name, surname) = match account.display_name.as_deref().map(str::trim) {
        Some(name) if name.contains(' ') => {
            let (given, sur) = name.split_once(' ').unwrap_or((name, name));
            (given.to_string(), sur.to_string())
        }
        _ => match local.split_once('.') {
            Some((given, sur)) => (given.to_string(), sur.to_uppercase()),
            None => ("-".to_string(), local.to_uppercase()),
        },
    };
    // A structure mailbox has no idNat of its own: a TEST one of type 3 (structure).
    let idnat = account
        .idnat
        .clone()
        .unwrap_or_else(|| format!("3TEST{:06}", account.id));
    let profession = if account.kind == crate::store::AccountKind::Per {
        "Médecin"
    } else {
        "Structure"
    };
    for (usage, key_use) in [
        (PersonUse::Encryption, KeyUse::Encryption),
        (PersonUse::Signature, KeyUse::Signature),
    ] {
        let req = PersonRequest {
            idnat: idnat.clone(),
            surname: surname.clone(),
            given_name: given_name.clone(),
            profession: profession.to_string(),
            email: Some(account.address.clone()),
            usage,
            expired: false,
        };
        let issued = pki.issue_person(&app.store, &req).await?;
        let pkcs8 =
            zeroize::Zeroizing::new(issued.key.private_key_to_pkcs8().map_err(crypto("key"))?);
        let spki = issued.key.public_key_to_der().map_err(crypto("key"))?;
        let cert = issued.cert.to_der().map_err(crypto("certificate"))?;
        let chain = chain_der(&issued.chain)?;
        app.store
            .add_key(account, key_use, &pkcs8, spki, Some((cert, chain)))
            .await?;
    }
    audit(
        app,
        "key.issue",
        &format!("{} TEST PKI encryption and signature keys", account.address),
    )
    .await?;
    println!(
        "dev mode: TEST PKI encryption and signature keys escrowed for {}",
        account.address
    );
    Ok(())
}

/// `key cert ADDRESS [--use U]`: the current certificate of a use, PEM, for correspondents
/// and the directory.
pub async fn certificate(app: &App, address_text: &str, usage: KeyUse) -> Result<(), CliError> {
    let account = mailbox(app, address_text).await?;
    let keys = app.store.keys(&account).await?;
    let Some(der) = keys
        .iter()
        .find(|k| k.usage == usage && k.state == KeyState::Current)
        .and_then(|k| k.certificate.as_deref())
    else {
        return Err(CliError::new(format!(
            "{} has no current {usage} certificate",
            account.address
        )));
    };
    let pem = X509::from_der(der)
        .and_then(|c| c.to_pem())
        .map_err(crypto("stored certificate"))?;
    print!("{}", String::from_utf8_lossy(&pem));
    Ok(())
}

/// `cert add ADDRESS FILE`: a correspondent's encryption certificate (PEM), for outbound
/// S/MIME until the national directory provides them.
pub async fn correspondent_add(app: &App, address_text: &str, file: &Path) -> Result<(), CliError> {
    let address = address(address_text)?;
    let name = file.display().to_string();
    let pem = std::fs::read(file).map_err(|e| CliError::new(format!("{name}: {e}")))?;
    let cert = X509::from_pem(&pem)
        .map_err(|_| CliError::new(format!("{name}: not a PEM certificate")))?;
    let key = cert.public_key().map_err(crypto(&name))?;
    match key.rsa() {
        Ok(rsa) if rsa.size() * 8 >= mssante_smime::MIN_RSA_BITS => {}
        _ => {
            return Err(CliError::new(format!(
                "{name}: not an RSA key of at least 2048 bits"
            )));
        }
    }
    check_address(&cert, &address, &name)?;
    if let Some(reason) = crate::pki::unusable_now(&cert.to_der().map_err(crypto(&name))?) {
        return Err(CliError::new(format!("{name}: {reason}")));
    }
    app.store
        .db()
        .put_correspondent(&address, &cert.to_der().map_err(crypto(&name))?)
        .await?;
    let subject = crate::pki::subject_line(&cert);
    audit(app, "cert.add", &format!("{address}: {subject}")).await?;
    println!("mail to {address} will be encrypted to {subject}");
    Ok(())
}

/// `cert list`.
pub async fn correspondent_list(app: &App) -> Result<(), CliError> {
    let all = app.store.db().correspondents().await?;
    if all.is_empty() {
        println!("no correspondent certificate");
    }
    for (address, der) in all {
        let subject = X509::from_der(&der)
            .map(|c| crate::pki::subject_line(&c))
            .unwrap_or_else(|_| "(unreadable)".into());
        println!("{address:<40} {subject}");
    }
    Ok(())
}

/// `cert remove ADDRESS`.
pub async fn correspondent_remove(app: &App, address_text: &str) -> Result<(), CliError> {
    let address = address(address_text)?;
    app.store.db().remove_correspondent(&address).await?;
    audit(app, "cert.remove", &address).await?;
    println!("mail to {address} will no longer be encrypted");
    Ok(())
}
