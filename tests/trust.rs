//! The trust space: `mssante trust import` replaces the whitelist atomically and says what
//! changed, a bad file changes nothing, and the MX accepts a sender only from its domain's
//! operator, refusing the rest in a postmaster's words and in the audit trail.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

#[test]
fn import_reports_changes_and_a_bad_file_changes_nothing() {
    let server = TestServer::bare("");
    let file = server.dir.path().join("listeblanchemssante.xml");
    let dn_a = "CN=smtp.op-a.fr,OU=31598513500187,O=Operateur A,ST=Paris (75),C=FR";
    let dn_b = "CN=smtp.op-b.fr,OU=11111111111111,O=Operateur B,ST=Lyon (69),C=FR";
    std::fs::write(
        &file,
        whitelist_xml(&[
            ("ch-exemple.fr", dn_a),
            ("clinique-évry.fr", dn_a),
            ("cabinet.fr", dn_b),
        ]),
    )
    .expect("write");
    let report = server.cli_ok(&["trust", "import", path(&file)]);
    assert!(report.contains("3 domains: 3 added, 0 removed"), "{report}");
    assert!(
        report.contains("+ xn--clinique-vry-"),
        "IDN as A-label:\n{report}"
    );

    // The next list drops one domain and moves another to a new operator.
    std::fs::write(
        &file,
        whitelist_xml(&[("ch-exemple.fr", dn_a), ("cabinet.fr", dn_a)]),
    )
    .expect("write");
    let report = server.cli_ok(&["trust", "import", path(&file)]);
    assert!(
        report.contains("2 domains: 0 added, 1 removed, 1 with a new operator"),
        "{report}"
    );
    assert!(report.contains("- xn--clinique-vry-"), "{report}");
    assert!(report.contains("~ cabinet.fr"), "{report}");

    // Broken files: refused with the file and the line; the list stays as it was.
    let before = server.cli_ok(&["trust", "list"]);
    let good = whitelist_xml(&[("nouveau.fr", dn_b)]);
    let broken = [
        (good.replace("<Nom>nouveau.fr</Nom>", ""), "line 3"),
        (good.replace("</ListeBlanche>", ""), "not well-formed"),
        (
            good.replace("CN=smtp.op-b.fr,", "n'importe quoi,"),
            "DNCertificatOperateur",
        ),
        (
            good.replace("nouveau.fr", "pas un domaine"),
            "not a domain name",
        ),
        (
            "<ListeBlanche xmlns=\"https://listeblanche.mssante.fr/schema\"/>".to_string(),
            "no <Domaine>",
        ),
    ];
    for (text, expected) in broken {
        std::fs::write(&file, &text).expect("write");
        let out = server.cli(&["trust", "import", path(&file)]);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(path(&file)), "names the file: {err}");
        assert!(err.contains(expected), "says `{expected}`: {err}");
        assert!(err.contains("nothing was changed"), "{err}");
        assert_eq!(
            server.cli_ok(&["trust", "list"]),
            before,
            "the list changed"
        );
    }
    let out = server.cli(&["trust", "import", "/nonexistent/liste.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(server.cli_ok(&["trust", "list"]), before);

    let trail = server.cli_ok(&["audit", "tail", "-n", "20"]);
    assert_eq!(trail.matches("trust.import").count(), 2, "{trail}");
}

/// Sends one message to the MX as the holder of `cert`, from `from`.
fn send_mx_as(server: &TestServer, cert: &Path, from: &str) -> Output {
    send_mx(
        server,
        Some(cert),
        &["--from", from, "--to", USER, "--body", "compte rendu"],
    )
}

#[test]
fn the_mx_takes_mail_only_from_the_sender_domain_operator() {
    let mut server = TestServer::new("");
    let peers = server.dir.path().join("peers");
    let issued = server.cli_ok(&["pki", "issue-server", "mx.op2.test", "--out", path(&peers)]);
    let op2 = issued_subject(&issued);
    let list = server.dir.path().join("liste.xml");
    std::fs::write(
        &list,
        whitelist_xml(&[
            ("op2.test", &op2),
            ("clinique-évry.test", &op2),
            ("autre.test", "CN=mx.autre.test,O=Autre,C=FR"),
        ]),
    )
    .expect("write");
    server.cli_ok(&["trust", "import", path(&list)]);
    server.start();
    let cert = peers.join("mx.op2.test.pem");

    let out = send_mx_as(&server, &cert, "secretariat@op2.test");
    assert!(
        stdout(&out).contains("250 2.0.0"),
        "listed domain, right operator:\n{}",
        show(&out)
    );
    let idn = mssante_directory_a_label("clinique-évry.test");
    let out = send_mx_as(&server, &cert, &format!("dr.x@{idn}"));
    assert!(
        stdout(&out).contains("250 2.0.0"),
        "IDN domain:\n{}",
        show(&out)
    );
    // A bounce: null sender, From: its MTA (in a domain of the operator).
    let out = send_mx(
        &server,
        Some(&cert),
        &[
            "--from",
            "<>",
            "--header",
            "From: MAILER-DAEMON@mx.op2.test",
            "--to",
            USER,
            "--body",
            "bounce",
        ],
    );
    assert!(
        stdout(&out).contains("250 2.0.0"),
        "bounce from a known operator:\n{}",
        show(&out)
    );

    let out = send_mx_as(&server, &cert, "someone@inconnu.test");
    assert!(
        stdout(&out)
            .contains("550 5.7.1 sender domain inconnu.test is not in the MSSanté trust space"),
        "{}",
        show(&out)
    );
    let out = send_mx_as(&server, &cert, "someone@autre.test");
    assert!(
        stdout(&out).contains("550 5.7.1 certificate DN does not match the operator of autre.test"),
        "{}",
        show(&out)
    );
    assert_eq!(server.stop(), 0);
    let trail = server.cli_ok(&["audit", "tail", "-n", "50"]);
    assert_eq!(trail.matches("mx.refused").count(), 2, "{trail}");
    assert!(trail.contains("inconnu.test"), "{trail}");

    // With the DN policy off, the listed domain of another operator passes.
    let config = std::fs::read_to_string(&server.config).expect("read");
    std::fs::write(
        &server.config,
        config.replacen(
            "\n[[listener]]",
            "\n[trust]\nrequire_operator_dn = false\n\n[[listener]]",
            1,
        ),
    )
    .expect("write");
    server.start();
    let out = send_mx_as(&server, &cert, "someone@autre.test");
    assert!(stdout(&out).contains("250 2.0.0"), "{}", show(&out));
    let out = send_mx_as(&server, &cert, "someone@inconnu.test");
    assert!(
        stdout(&out).contains("550 5.7.1"),
        "still in the trust space only:\n{}",
        show(&out)
    );
    assert_eq!(server.stop(), 0);
}

/// The A-label of a domain, computed by the same library as the server.
fn mssante_directory_a_label(domain: &str) -> String {
    mssante_directory::whitelist::a_label(domain).expect("valid domain")
}
