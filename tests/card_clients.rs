//! Cards from the command-line clients an administrator tries first: curl (IMAP with
//! `AUTH=EXTERNAL`) and `openssl s_client`. A valid card logs in; revoked, expired and
//! unknown-CA cards fail at the handshake; a card whose ANS product category says TEST is
//! refused by a production server, with the reason in the audit trail.

mod common;

use std::path::Path;

use common::card::*;
use common::*;

/// Whether curl and s_client both log in with the card `cert`/`key`.
fn both_log_in(server: &TestServer, cert: &Path, key: &Path) -> (bool, bool) {
    let port = server.ports.imaps;
    let curl_ok = curl_card(port, CARD_USER, Some((cert, key)))
        .status
        .success();
    let said = s_client_card(port, cert, key);
    (curl_ok, said.contains("a OK"))
}

#[test]
fn curl_and_s_client_log_in_with_a_valid_card_and_never_with_a_bad_one() {
    require("curl");
    require("openssl");
    let mut server = TestServer::new("");
    let dir = server.dir.path().to_path_buf();
    add_card_user(&server);
    let valid = issue_card(&server, "810001234567", &dir.join("valid"), &[]);
    let revoked = issue_card(&server, "810001234567", &dir.join("revoked"), &[]);
    server.cli_ok(&["pki", "revoke", &issued_serial(&revoked.issued)]);
    let expired = issue_card(
        &server,
        "810001234567",
        &dir.join("expired"),
        &["--expired"],
    );
    self_signed(&dir, "stranger", "/C=FR/CN=810001234567+SN=MARTIN+GN=ALICE");
    server.start();

    // curl names the mailbox as the authorization identity; no password anywhere.
    assert_eq!(both_log_in(&server, &valid.cert, &valid.key), (true, true));
    let out = curl_card(server.ports.imaps, CARD_USER, None);
    assert!(!out.status.success(), "no card, no login:\n{}", show(&out));
    let stranger = (dir.join("stranger.pem"), dir.join("stranger.key"));
    for (what, cert, key) in [
        ("revoked", &revoked.cert, &revoked.key),
        ("expired", &expired.cert, &expired.key),
        ("unknown CA", &stranger.0, &stranger.1),
    ] {
        assert_eq!(
            both_log_in(&server, cert, key),
            (false, false),
            "the {what} card is refused"
        );
    }
    let trail = server.cli_ok(&["audit", "tail", "-n", "40"]);
    assert!(
        trail.matches("tls.refused").count() >= 6,
        "each refused handshake is traced:\n{trail}"
    );
    assert_eq!(server.stop(), 0);
}

/// An operator's own CA (not IGC-Santé TEST, so production accepts it as an anchor) with a
/// localhost certificate and two cards of Dr Carte's: one marked TEST by its ANS product
/// category (0x80), one not.
fn recette_pki(dir: &Path) {
    let ext = "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
        [server]\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n\
        [card]\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n\
        [test_card]\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n\
        1.2.250.1.71.1.2.5=DER:02:02:00:80\n";
    std::fs::write(dir.join("ext.cnf"), ext).expect("extensions");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3",
            "-subj",
            "/C=FR/O=OPERATEUR/CN=AC RECETTE",
            "-extensions",
            "ca",
            "-config",
            "ext.cnf",
        ],
    );
    for (stem, subject, section) in [
        ("localhost", "/C=FR/O=OPERATEUR/CN=localhost", "server"),
        ("card", "/C=FR/CN=810001234567+SN=MARTIN+GN=ALICE", "card"),
        (
            "test-card",
            "/C=FR/CN=810001234567+SN=MARTIN+GN=ALICE",
            "test_card",
        ),
    ] {
        let (key, csr, cert) = (
            format!("{stem}.key"),
            format!("{stem}.csr"),
            format!("{stem}.pem"),
        );
        openssl(
            dir,
            &[
                "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr,
                "-subj", subject,
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &cert,
                "-extfile",
                "ext.cnf",
                "-extensions",
                section,
            ],
        );
    }
    openssl(dir, &["rand", "-out", "kek.key", "32"]);
    std::fs::set_permissions(
        dir.join("kek.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("KEK mode");
}

#[test]
fn a_production_server_refuses_a_test_card() {
    require("curl");
    require("openssl");
    let mut server = TestServer::production("");
    let dir = server.dir.path().to_path_buf();
    recette_pki(&dir);
    let file = |name: &str| path(&dir.join(name)).to_string();
    server.add_config(&format!(
        "kek_file = \"{}\"\n[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\nclient_trust_anchors = [\"{}\"]\n",
        file("kek.key"),
        file("localhost.pem"),
        file("localhost.key"),
        file("ca.pem"),
    ));
    server.cli_ok(&["domain", "add", DOMAIN]);
    add_card_user(&server);
    server.start();

    let (card, test_card) = (
        (dir.join("card.pem"), dir.join("card.key")),
        (dir.join("test-card.pem"), dir.join("test-card.key")),
    );
    assert_eq!(both_log_in(&server, &card.0, &card.1), (true, true));
    assert_eq!(
        both_log_in(&server, &test_card.0, &test_card.1),
        (false, false),
        "a TEST card is refused in production"
    );
    let said = s_client_card(server.ports.imaps, &test_card.0, &test_card.1);
    assert!(said.contains("a NO"), "told at EXTERNAL:\n{said}");
    let trail = server.cli_ok(&["audit", "tail", "-n", "20"]);
    assert!(
        trail.contains("a TEST certificate is refused in production"),
        "{trail}"
    );
    assert_eq!(server.stop(), 0);
}
