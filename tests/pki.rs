//! The TEST PKI as other software sees it: `openssl` verifies the chains and CRLs it
//! publishes, person certificates carry `{CN=idNat + SN + GN}` and the TEST product category,
//! and the MX port takes mail only from a peer with a valid, unrevoked operator certificate.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn openssl(args: &[&str]) -> Output {
    require("openssl");
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    run_with_stdin(cmd, "")
}

/// Issues Alice MARTIN's card certificate (idNat 810001234567) into `out`.
fn issue_card(server: &TestServer, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["pki", "issue-person", "--idnat", "810001234567"];
    args.extend([
        "--surname",
        "MARTIN",
        "--given-name",
        "ALICE",
        "--out",
        path(out),
    ]);
    args.extend_from_slice(extra);
    server.cli_ok(&args)
}

#[test]
fn person_certificates_verify_with_openssl_until_revoked() {
    let server = TestServer::bare("");
    let out_dir = server.dir.path().join("cards");
    let issued = issue_card(
        &server,
        &out_dir,
        &["--use", "auth", "--p12-password", "1234"],
    );
    let cert = out_dir.join("810001234567-auth.pem");
    let pki = server.data.join("pki");

    // Subject: the multi-valued RDN and the TEST hierarchy.
    let text = openssl(&[
        "x509",
        "-in",
        path(&cert),
        "-noout",
        "-subject",
        "-issuer",
        "-text",
        "-nameopt",
        "RFC2253",
    ]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("CN=810001234567+SN=MARTIN+GN=ALICE")
            || text.contains("GN=ALICE+SN=MARTIN+CN=810001234567")
            || text.contains("CN=810001234567+GN=ALICE+SN=MARTIN"),
        "{text}"
    );
    assert!(
        text.contains("CN=TEST AC IGC-SANTE FORT PERSONNES"),
        "{text}"
    );
    assert!(text.contains("OU=IGC-SANTE TEST"), "{text}");
    assert!(
        text.contains("1.2.250.1.71.1.2.5"),
        "ANS product category:\n{text}"
    );
    assert!(text.contains("TLS Web Client Authentication"), "{text}");

    // The chain and the CRLs, checked by openssl.
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", "-CAfile"];
        let root = pki.join("root.pem");
        let inter = pki.join("personnes.pem");
        args.push(path(&root));
        args.extend(["-untrusted", path(&inter)]);
        args.extend_from_slice(extra);
        args.push(path(&cert));
        openssl(&args)
    };
    let out = verify(&[]);
    assert!(out.status.success(), "{}", show(&out));
    let crl_all = server.dir.path().join("crls.pem");
    let crls = || {
        let mut all = Vec::new();
        for f in ["root.crl", "personnes.crl"] {
            let der = std::fs::read(pki.join(f)).expect("crl");
            let pem = openssl(&[
                "crl",
                "-inform",
                "DER",
                "-in",
                path(&pki.join(f)),
                "-outform",
                "PEM",
            ]);
            assert!(
                pem.status.success(),
                "{f}: {} bytes\n{}",
                der.len(),
                show(&pem)
            );
            all.extend(pem.stdout);
        }
        std::fs::write(&crl_all, all).expect("write");
    };
    crls();
    let out = verify(&["-crl_check_all", "-CRLfile", path(&crl_all)]);
    assert!(out.status.success(), "{}", show(&out));

    // The PKCS#12 opens with its password, as a browser or a card tool would.
    let p12 = out_dir.join("810001234567-auth.p12");
    let out = openssl(&[
        "pkcs12",
        "-in",
        path(&p12),
        "-passin",
        "pass:1234",
        "-nokeys",
        "-noenc",
    ]);
    assert!(out.status.success(), "{}", show(&out));

    // Revoked: the rewritten CRL says so.
    server.cli_ok(&["pki", "revoke", &issued_serial(&issued)]);
    crls();
    let out = verify(&["-crl_check_all", "-CRLfile", path(&crl_all)]);
    assert!(
        !out.status.success(),
        "revoked certificate still verifies:\n{}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("revoked")
            || String::from_utf8_lossy(&out.stderr).contains("revoked"),
        "{}",
        show(&out)
    );
    assert!(server.cli_ok(&["pki", "show"]).contains("revoked"));
}

#[test]
fn mx_takes_mail_only_from_a_valid_operator_certificate() {
    let mut server = TestServer::new("");
    let peer_dir = server.dir.path().join("operator2");
    let issued = server.cli_ok(&[
        "pki",
        "issue-server",
        "mx.operateur2.test",
        "--out",
        path(&peer_dir),
    ]);
    let cert = peer_dir.join("mx.operateur2.test.pem");
    server.import_whitelist(&[("operateur2.test", &issued_subject(&issued))]);
    server.start();
    let marker = format!("INTEROPERABILITE{}", std::process::id());
    let send = |server: &TestServer, with_cert: bool| {
        send_mx(
            server,
            with_cert.then_some(cert.as_path()),
            &[
                "--from",
                "secretariat@operateur2.test",
                "--to",
                USER,
                "--body",
                &marker,
            ],
        )
    };

    let out = send(&server, false);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("530 5.7.1"),
        "{}",
        show(&out)
    );

    let out = send(&server, true);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("250 2.0.0"),
        "{}",
        show(&out)
    );
    let got = curl(&[
        &format!("imaps://127.0.0.1:{}/INBOX;UID=1", server.ports.imaps),
        "-u",
        &format!("{USER}:{PASSWORD}"),
    ]);
    let got = String::from_utf8_lossy(&got.stdout).into_owned();
    assert!(got.contains(&marker), "{got}");
    assert!(
        got.contains("TLS"),
        "Received header names the TLS version:\n{got}"
    );
    assert_eq!(server.stop(), 0);

    // Revoked, then restarted (CRLs are read at start): the handshake is refused and audited.
    server.cli_ok(&["pki", "revoke", &issued_serial(&issued)]);
    server.start();
    let out = send(&server, true);
    assert!(
        !out.status.success(),
        "revoked operator accepted:\n{}",
        show(&out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("250 2.0.0"),
        "{}",
        show(&out)
    );
    assert_eq!(server.stop(), 0);
    let trail = server.cli_ok(&["audit", "tail", "-n", "50"]);
    assert!(trail.contains("tls.refused"), "{trail}");
    assert!(
        trail
            .lines()
            .any(|l| l.contains("tls.client_certificate") && l.contains("CN=mx.operateur2.test")),
        "the accepted operator is traced:\n{trail}"
    );
}

#[test]
fn one_port_serves_card_users_and_password_users() {
    let mut server = TestServer::new("");
    let cards = server.dir.path().join("cards");
    issue_card(&server, &cards, &[]);
    server.start();
    let url = format!("imaps://127.0.0.1:{}/INBOX", server.ports.imaps);
    let creds = format!("{USER}:{PASSWORD}");
    let cert = cards.join("810001234567-auth.pem");
    let key = cards.join("810001234567-auth.key");
    let with_card = curl(&[
        &url,
        "-u",
        &creds,
        "--cert",
        path(&cert),
        "--key",
        path(&key),
        "-X",
        "NOOP",
    ]);
    assert!(with_card.status.success(), "{}", show(&with_card));
    let without = curl(&[&url, "-u", &creds, "-X", "NOOP"]);
    assert!(without.status.success(), "{}", show(&without));
    // A certificate from outside the trust anchors is refused at the handshake.
    let stranger = server.dir.path().join("stranger");
    std::fs::create_dir(&stranger).expect("mkdir");
    let made = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-noenc",
        "-subj",
        "/CN=intrus",
        "-days",
        "1",
        "-keyout",
        path(&stranger.join("k.pem")),
        "-out",
        path(&stranger.join("c.pem")),
    ]);
    assert!(made.status.success(), "{}", show(&made));
    let refused = curl(&[
        &url,
        "-u",
        &creds,
        "--cert",
        path(&stranger.join("c.pem")),
        "--key",
        path(&stranger.join("k.pem")),
        "-X",
        "NOOP",
    ]);
    assert!(!refused.status.success(), "{}", show(&refused));
    assert_eq!(server.stop(), 0);
    let trail = server.cli_ok(&["audit", "tail", "-n", "50"]);
    assert!(
        trail
            .lines()
            .any(|l| l.contains("tls.client_certificate") && l.contains("810001234567")),
        "{trail}"
    );
    assert!(trail.contains("tls.refused"), "{trail}");
}
