//! Dev mode's conveniences: TLS from the TEST PKI (whose CRLs the server publishes and
//! re-reads), and on the very first start a demo domain and mailbox with the settings to
//! type into Thunderbird.

use openssl::x509::X509;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer,
};

use crate::app::{App, CliError};
use crate::auth::password;
use crate::pki::TestPki;
use crate::store::{AccountKind, NewAccount, StoreError};
use crate::tls::TlsMaterial;
use crate::web::ClientSettings;

/// The demo domain created on the first dev start.
pub const DEMO_DOMAIN: &str = "demo.mssante.test";
/// The demo mailbox (a PER mailbox of a fictitious doctor).
pub const DEMO_ADDRESS: &str = "jean.dupont@demo.mssante.test";
const DEMO_IDNAT: &str = "899700367917";

fn der(cert: &X509) -> Result<CertificateDer<'static>, CliError> {
    cert.to_der()
        .map(CertificateDer::from)
        .map_err(|e| CliError::new(e.to_string()))
}

/// TLS material from the TEST PKI: this host's server certificate, the three TEST CAs as
/// client-certificate anchors, and fresh CRLs. The CRL files `App::open` writes to
/// `<data>/pki/` (and `pki revoke` rewrites) are read again every `[tls] crl_refresh_secs`,
/// so a certificate revoked while the server runs is refused from the next refresh on.
pub async fn tls_material(app: &App, pki: &TestPki) -> Result<TlsMaterial, CliError> {
    let server = pki
        .server_identity(&app.store, &app.config.hostname)
        .await?;
    let mut chain = vec![der(&server.cert)?];
    for c in &server.chain {
        chain.push(der(c)?);
    }
    let key = server
        .key
        .private_key_to_pkcs8()
        .map_err(|e| CliError::new(e.to_string()))?;
    let mut client_anchors = Vec::new();
    let mut crl_files = Vec::new();
    for name in ["root", "organisations", "personnes"] {
        if let Some(c) = pki.ca_cert(name) {
            client_anchors.push(der(c)?);
            crl_files.push(app.pki_dir().join(format!("{name}.crl")));
        }
    }
    let crls = pki
        .crls(&app.store)
        .await?
        .into_iter()
        .map(|(_, d)| CertificateRevocationListDer::from(d))
        .collect();
    Ok(TlsMaterial {
        chain,
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        client_anchors,
        crls,
        crl_files,
        crl_urls: Vec::new(),
    })
}

/// Dev mode is its own CRL publication point: every `every`, the TEST PKI's CRLs are made
/// again from its register and written to `dir`, where the refresh reads them. They are
/// valid 7 days; without this, a dev server left running a week without a CLI command (each
/// rewrites them) would refuse every card.
pub async fn republish_crls(
    store: crate::store::Store,
    dir: std::path::PathBuf,
    every: std::time::Duration,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await; // The files are fresh at start (App::open wrote them).
    loop {
        ticks.tick().await;
        let written = match TestPki::load_or_create(&store).await {
            Ok(pki) => pki.write_public_files(&store, &dir).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "the TEST PKI's CRLs could not be written again");
        }
    }
}

/// Creates the demo domain and mailbox once per data directory; returns its password the
/// one time it is created.
pub async fn bootstrap_demo(app: &App) -> Result<Option<String>, CliError> {
    if !app
        .store
        .db()
        .put_setting("dev.demo", b"created", true)
        .await?
    {
        return Ok(None);
    }
    match app.store.db().add_domain(DEMO_DOMAIN).await {
        Ok(()) | Err(StoreError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let secret = password::generate().map_err(CliError::new)?;
    let to_hash = secret.clone();
    let hash = tokio::task::spawn_blocking(move || password::hash(&to_hash))
        .await
        .map_err(|e| CliError::new(e.to_string()))?
        .map_err(CliError::new)?;
    let account = NewAccount {
        address: DEMO_ADDRESS.into(),
        kind: AccountKind::Per,
        idnat: Some(DEMO_IDNAT.into()),
        display_name: Some("Jean DUPONT".into()),
        password_hash: Some(hash),
    };
    match app.store.create_account(&account).await {
        Ok(_) => {
            // Like every dev mailbox, the demo one gets its S/MIME keys from the TEST PKI.
            if let Some(created) = app.store.db().find_account(DEMO_ADDRESS).await? {
                crate::admin::keys::escrow_test_keys(app, &created).await?;
            }
            Ok(Some(secret))
        }
        // Someone made it by hand first: leave it alone.
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What dev mode prints at start: where things are, and on the first start the demo
/// credentials with the Thunderbird settings.
pub fn banner(app: &App, demo_password: Option<&str>) -> String {
    let settings = ClientSettings::from_config(&app.config);
    let data = app.data_dir.display();
    let mut out =
        format!("\nmssante is running in dev mode: loopback only, TEST PKI, data in {data}\n");
    let endpoint = |e: &Option<crate::web::Endpoint>| {
        e.as_ref().map_or("(no listener)".to_string(), |e| {
            format!(
                "server {}  port {}  {}",
                e.host,
                e.port,
                if e.implicit_tls {
                    "SSL/TLS"
                } else {
                    "STARTTLS"
                }
            )
        })
    };
    match demo_password {
        Some(pw) => {
            out += &format!(
                "\nDemo mailbox (the password is shown this once):\n  address   {DEMO_ADDRESS}\n  password  {pw}\n"
            );
            out += &format!(
                "\nThunderbird: Account Settings > Account Actions > Add Mail Account, then \"Configure manually\":\n  \
                 Incoming  IMAP  {}  Normal password  username {DEMO_ADDRESS}\n  \
                 Outgoing  SMTP  {}  Normal password  username {DEMO_ADDRESS}\n  \
                 The certificate comes from the TEST PKI: confirm the security exception Thunderbird offers,\n  \
                 or import {data}/pki/root.pem under Settings > Privacy & Security > Certificates > Authorities.\n",
                endpoint(&settings.imap),
                endpoint(&settings.submission),
            );
            if let (Some(sub), Some(imap)) = (&settings.submission, &settings.imap) {
                let tls = if sub.implicit_tls { "--tlsc" } else { "--tls" };
                out += &format!(
                    "\nTry it from a shell:\n  swaks --server {}:{} {tls} --auth PLAIN --auth-user {DEMO_ADDRESS} --auth-password '{pw}' \\\n        \
                     --from {DEMO_ADDRESS} --to {DEMO_ADDRESS}\n  curl -k \"imaps://{}:{}/INBOX;UID=1\" -u '{DEMO_ADDRESS}:{pw}'\n",
                    sub.host, sub.port, imap.host, imap.port
                );
                if let Some(pop3) = settings.pop3.as_ref().filter(|p| p.implicit_tls) {
                    out += &format!(
                        "  curl -k \"pop3s://{}:{}/1\" -u '{DEMO_ADDRESS}:{pw}'\n",
                        pop3.host, pop3.port
                    );
                }
            }
        }
        None => {
            out += &format!(
                "  IMAP {}\n  SMTP {}\n  (The demo mailbox {DEMO_ADDRESS}, if kept, has the password printed at the first start;\n   \
                 set a new one with: mssante user passwd {DEMO_ADDRESS} --password-stdin)\n",
                endpoint(&settings.imap),
                endpoint(&settings.submission)
            );
        }
    }
    out
}
