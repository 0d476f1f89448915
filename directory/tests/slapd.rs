//! The LDAP client against a real slapd with mssante's schema (scripts/dev-directory):
//! publication (added, then updated with attributes removed), the red list kept out of the
//! public view, the certificate round trip, the entries of a domain, removal, and a
//! directory that is down or frozen answering with an error in time.

#[path = "../../tests/common/slapd.rs"]
mod slapd;

use std::time::{Duration, Instant};

use mssante_directory::{
    DirectoryConfig, DirectoryError, DirectorySession, Entry, MailboxType, Published,
};
use slapd::{BASE_DN, Slapd};

fn config(slapd: &Slapd) -> DirectoryConfig {
    DirectoryConfig {
        url: slapd.url(),
        base_dn: BASE_DN.into(),
        bind_dn: Some(slapd.admin_dn()),
        bind_password: slapd.admin_password(),
        tls: None,
        starttls: false,
        timeout: Duration::from_secs(2),
    }
}

/// A self-signed certificate (DER) made by openssl.
fn certificate(slapd: &Slapd) -> Vec<u8> {
    let dir = slapd.dir.path();
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=alice.martin@hopital.test", "-outform", "DER"])
        .arg("-keyout")
        .arg(dir.join("cert.key"))
        .arg("-out")
        .arg(dir.join("cert.der"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success());
    std::fs::read(dir.join("cert.der")).expect("certificate")
}

fn alice() -> Entry {
    let mut entry = Entry::new("alice.martin@hopital.test", MailboxType::Per);
    entry.owner_idnat = Some("810001234567".into());
    entry.display_name = Some("Dr Alice MARTIN".into());
    entry.surname = Some("MARTIN".into());
    entry.given_name = Some("Alice".into());
    entry.profession_code = Some("10".into());
    entry.phone = Some("+33 1 23 45 67 89".into());
    entry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_published_updated_read_back_and_removed() {
    let slapd = Slapd::start();
    let mut session = DirectorySession::open(&config(&slapd))
        .await
        .expect("bind as the operator");
    let mut entry = alice();
    // slapd checks the certificate's syntax: a real one (DER, binary, not UTF-8).
    entry.certificate = Some(certificate(&slapd));
    assert_eq!(
        session.publish(&entry).await.expect("add"),
        Published::Added
    );
    let mut red = Entry::new("confidentiel@hopital.test", MailboxType::Org);
    red.red_list = true;
    red.structure_id = Some("750712184".into());
    assert_eq!(session.publish(&red).await.expect("add"), Published::Added);
    let mut elsewhere = Entry::new("bob@autre.test", MailboxType::App);
    elsewhere.display_name = Some("Logiciel".into());
    session.publish(&elsewhere).await.expect("add");

    // Read back as written, certificate included.
    let found = session
        .find("Alice.Martin@hopital.test")
        .await
        .expect("search")
        .expect("found");
    assert_eq!(found, entry);

    // Changed: the phone goes, the service comes.
    entry.phone = None;
    entry.service = Some("Cardiologie".into());
    entry.certificate = None;
    assert_eq!(
        session.publish(&entry).await.expect("modify"),
        Published::Updated
    );
    let found = session.find(&entry.address).await.expect("search");
    assert_eq!(found.as_ref(), Some(&entry));

    // The public view never shows a red-list entry; the authorised reader does.
    let public = slapd.ldapsearch(false, "(mail=*@hopital.test)", &["mail"]);
    assert!(
        public.contains("alice.martin@hopital.test") && !public.contains("confidentiel"),
        "{public}"
    );
    let reader = slapd.ldapsearch(true, "(mail=*@hopital.test)", &["mail", "mssListeRouge"]);
    assert!(
        reader.contains("confidentiel@hopital.test") && reader.contains("mssListeRouge: O"),
        "{reader}"
    );

    // The entries of a domain, for sync.
    let ours = session
        .entries_of(&["hopital.test".to_string()])
        .await
        .expect("search");
    let mut addresses: Vec<&str> = ours.iter().map(|e| e.address.as_str()).collect();
    addresses.sort();
    assert_eq!(
        addresses,
        ["alice.martin@hopital.test", "confidentiel@hopital.test"]
    );

    assert!(session.remove(&red.address).await.expect("delete"));
    assert!(!session.remove(&red.address).await.expect("already gone"));
    assert_eq!(session.find(&red.address).await.expect("search"), None);
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_that_is_down_or_frozen_gives_an_error_in_time() {
    let mut slapd = Slapd::start();
    let config = config(&slapd);
    let mut wrong = config.clone();
    wrong.bind_password = "not the password".into();
    assert!(matches!(
        DirectorySession::open(&wrong).await,
        Err(DirectoryError::BindRefused { code: 49, .. })
    ));

    slapd.freeze();
    let started = Instant::now();
    let frozen = DirectorySession::open(&config).await;
    assert!(
        matches!(frozen, Err(DirectoryError::Timeout(_))),
        "{:?}",
        frozen.err()
    );
    assert!(started.elapsed() < Duration::from_secs(6));
    slapd.thaw();

    slapd.stop();
    assert!(matches!(
        DirectorySession::open(&config).await,
        Err(DirectoryError::Connection(_))
    ));
    slapd.restart();
    let mut session = DirectorySession::open(&config).await.expect("back");
    session.publish(&alice()).await.expect("publish");
}
