//! Two operators on one machine: operator A (hopital.test) and operator B (b.test), each a
//! real `mssante serve` with its own IGC-Santé TEST certificate from one shared TEST PKI,
//! routes to each other's MX, and one whitelist naming both. Mail goes out through the
//! queue over mutual TLS, failures come back as RFC 3464 reports, and a peer that is down or
//! shows the wrong certificate keeps the mail queued, sealed at rest.

mod common;

use std::path::Path;

use common::operators::*;
use common::*;

#[test]
fn two_operators_exchange_mail_and_failures_come_back_as_reports() {
    let mut ops = operators("", FindB::Route);
    ops.a.start();
    ops.b.start();

    alice_sends(&ops.a, BOB, "rendez-vous marker-a-to-b");
    let got = wait_for(30, "alice's message at bob's", || {
        message_with(&inbox(&ops.b, BOB, BOB_PASSWORD), "marker-a-to-b").cloned()
    });
    assert!(got.contains("by mx.a.test (mssante) with ESMTPSA"), "{got}");
    assert!(
        got.contains("by mx.b.test (mssante) with ESMTPS (version=TLSv1.3"),
        "B's MX took it over TLS 1.3:\n{got}"
    );

    // Bob answers from operator B.
    let out = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", ops.b.ports.submission),
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        BOB,
        "--auth-password",
        BOB_PASSWORD,
        "--from",
        BOB,
        "--to",
        USER,
        "--body",
        "reponse marker-b-to-a",
    ]);
    assert!(stdout(&out).contains("queued as"), "{}", show(&out));
    wait_for(30, "bob's answer at alice's", || {
        message_with(&inbox(&ops.a, USER, PASSWORD), "marker-b-to-a").cloned()
    });

    // An unknown mailbox at B: refused at RCPT there, reported to alice here.
    alice_sends(&ops.a, "nobody@b.test", "lost marker-unknown");
    let report = wait_for(30, "the failure report", || {
        message_with(
            &inbox(&ops.a, USER, PASSWORD),
            "Final-Recipient: rfc822; nobody@b.test",
        )
        .cloned()
    });
    // From a domain A serves (alice's), so that another operator's MX takes it.
    let from_line = format!("From: Mail Delivery System <MAILER-DAEMON@{DOMAIN}>");
    for expected in [
        from_line.as_str(),
        "report-type=delivery-status",
        "Action: failed",
        "Status: 5.1.1",
        "Remote-MTA: dns; 127.0.0.1",
        "Diagnostic-Code: smtp; 550 5.1.1 Mailbox <nobody@b.test> does not exist",
        "Content-Type: text/rfc822-headers",
        "Subject: consultation",
    ] {
        assert!(
            report.contains(expected),
            "{expected:?} missing in:\n{report}"
        );
    }
    assert!(
        !report.contains("lost marker-unknown"),
        "headers only by default:\n{report}"
    );
    wait_for(10, "an empty queue", || {
        ops.a
            .cli_ok(&["queue", "list"])
            .contains("the queue is empty")
            .then_some(())
    });

    // NOTIFY=SUCCESS travels with the message: B delivers and reports, A (seeing B offer DSN)
    // does not report "relayed" itself.
    let script = r#"
import smtplib, ssl, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
s.starttls(context=ssl._create_unverified_context())
s.login(sys.argv[2], sys.argv[3])
msg = 'From: %s\r\nSubject: accuse\r\n\r\nmarker-notify-success\r\n' % sys.argv[2]
s.sendmail(sys.argv[2], [sys.argv[4]], msg, mail_options=['ENVID=ACK1'], rcpt_options=['NOTIFY=SUCCESS,FAILURE'])
s.quit()
"#;
    let port = ops.a.ports.submission.to_string();
    let out = python(script, &[&port, USER, PASSWORD, BOB]);
    assert!(out.status.success(), "{}", show(&out));
    let success = wait_for(30, "the success report from B", || {
        message_with(&inbox(&ops.a, USER, PASSWORD), "Action: delivered").cloned()
    });
    assert!(
        success.contains("Reporting-MTA: dns; mx.b.test"),
        "{success}"
    );
    assert!(
        success.contains(&format!("Final-Recipient: rfc822; {BOB}")),
        "{success}"
    );
    assert!(success.contains("Original-Envelope-Id: ACK1"), "{success}");
    assert!(success.contains("Status: 2.0.0"), "{success}");
    assert!(
        !inbox(&ops.a, USER, PASSWORD)
            .iter()
            .any(|m| m.contains("Action: relayed")),
        "B offers DSN: A must not report on its behalf"
    );

    // Operator B may put only its own domains in From: and Sender: (the envelope is not
    // enough): not ours, not with a null sender either. Its own mail, and its MTA's reports
    // (MAILER-DAEMON@mx.b.test, a subdomain), pass.
    let certs = ops.a.dir.path().join("operators");
    let b_cert = certs.join("mx.b.test.pem");
    for (envelope, header, expected) in [
        (
            BOB,
            format!("From: {USER}"),
            format!("550 5.7.1 From: <{USER}>"),
        ),
        (
            "<>",
            format!("From: {USER}"),
            format!("550 5.7.1 From: <{USER}>"),
        ),
        (
            BOB,
            format!("Sender: {USER}"),
            format!("550 5.7.1 Sender: <{USER}>"),
        ),
        (BOB, format!("From: {BOB}"), "250 2.0.0".to_string()),
        (
            "<>",
            "From: MAILER-DAEMON@mx.b.test".to_string(),
            "250 2.0.0".to_string(),
        ),
    ] {
        let out = send_mx(
            &ops.a,
            Some(&b_cert),
            &[
                "--from",
                envelope,
                "--to",
                USER,
                "--header",
                &header,
                "--body",
                "forgery-check",
            ],
        );
        assert!(
            stdout(&out).contains(&expected),
            "{envelope} {header}: {}",
            show(&out)
        );
    }
    let trail = ops.a.cli_ok(&["audit", "tail", "-n", "40"]);
    assert!(trail.contains("mx.refused"), "{trail}");
    // The reader sees who really handed the message over.
    let honest = wait_for(30, "B's honest message", || {
        message_with(&inbox(&ops.a, USER, PASSWORD), "forgery-check").cloned()
    });
    assert!(honest.contains("(certificate "), "{honest}");

    // B's MX is no open relay: operator B may not send b.test mail through A back to b.test.
    let out = send_mx(
        &ops.a,
        Some(&certs.join("mx.b.test.pem")),
        &["--from", BOB, "--to", "someone@b.test"],
    );
    assert!(
        stdout(&out)
            .contains("550 5.7.1 Relaying denied: <someone@b.test> is not served by this operator"),
        "{}",
        show(&out)
    );
    assert_eq!(ops.a.stop(), 0);
    assert_eq!(ops.b.stop(), 0);
}

#[test]
fn mail_to_another_operator_is_signed_and_encrypted_for_the_sender() {
    // A requires encryption: a recipient without a certificate is reported, not sent to.
    let mut ops = operators("[smime]\noutbound = \"require\"\n", FindB::Route);
    let bob_cert = ops.b.dir.path().join("bob-encryption.pem");
    std::fs::write(&bob_cert, ops.b.cli_ok(&["key", "cert", BOB])).expect("bob's certificate");
    let added = ops.a.cli_ok(&["cert", "add", BOB, path(&bob_cert)]);
    assert!(
        added.contains(&format!("mail to {BOB} will be encrypted")),
        "{added}"
    );
    ops.a.start();
    ops.b.start();

    alice_sends(
        &ops.a,
        &format!("{BOB},carol@b.test"),
        "secret medical marker-protected",
    );
    let got = wait_for(30, "alice's protected message at bob's", || {
        message_with(&inbox(&ops.b, BOB, BOB_PASSWORD), "marker-protected").cloned()
    });
    // B could only say "decrypted" if it arrived encrypted, to bob's escrowed key.
    assert!(got.contains("X-MSSante-Encryption: decrypted"), "{got}");
    assert!(
        got.contains("X-MSSante-Signature: valid; signer=")
            && got.contains("Subject: consultation"),
        "{got}"
    );
    let report = wait_for(30, "the report for carol", || {
        message_with(&inbox(&ops.a, USER, PASSWORD), "Action: failed").cloned()
    });
    assert!(
        report.contains("Final-Recipient: rfc822; carol@b.test")
            && report.contains("Status: 5.7.1")
            && report.contains("no S/MIME certificate is known for this recipient"),
        "{report}"
    );
    assert_eq!(ops.a.stop(), 0);
    assert_eq!(ops.b.stop(), 0);
    // Each escrowed key's use is in its operator's audit trail, naming the key (its
    // certificate's serial, as `key list` shows it), and both chains hold.
    let serial_of = |server: &TestServer, address: &str, usage: &str| {
        let listed = server.cli_ok(&["key", "list", address]);
        let line = listed
            .lines()
            .find(|l| l.contains(usage) && l.contains("current"))
            .unwrap_or_default()
            .to_string();
        line.split_whitespace()
            .nth(3)
            .unwrap_or_default()
            .to_string()
    };
    for (server, address, usage, event) in [
        (&ops.a, USER, "signature", "key.sign"),
        (&ops.b, BOB, "encryption", "key.decrypt"),
    ] {
        let serial = serial_of(server, address, usage);
        let trail = server.cli_ok(&["audit", "show", "--user", address]);
        let uses: Vec<&str> = trail.lines().filter(|l| l.contains(event)).collect();
        assert!(
            uses.len() == 1 && uses[0].contains(&format!("certificate serial {serial}")),
            "{event} of {address}'s key {serial}:\n{trail}"
        );
        assert!(server.cli_ok(&["audit", "verify"]).contains("intact"));
    }
}

/// dnsmasq from Debian as the DNS of the test: authoritative for *.test on a loopback port,
/// nothing forwarded anywhere.
struct Dns {
    child: std::process::Child,
    port: u16,
}

impl Dns {
    fn start(records: &[&str]) -> Dns {
        require("dnsmasq");
        let port = free_port();
        let child = std::process::Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--pid-file=",
                "--user=",
                "--local=/test/",
                "--log-facility=-",
                "--log-queries",
                &format!("--port={port}"),
            ])
            .args(records)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start dnsmasq");
        wait_for_port(port);
        Dns { child, port }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_queue_follows_the_dns_mx_records_of_the_recipient_domain() {
    // b.test: two MX records, the preferred one with no address, the other B's MX.
    // nx.test is in the trust space but not in DNS at all.
    let dns = Dns::start(&[
        "--mx-host=b.test,mx1.b.test,10",
        "--mx-host=b.test,mx2.b.test,20",
        "--host-record=mx2.b.test,127.0.0.1",
    ]);
    let mut ops = operators("", FindB::Dns(dns.port));
    ops.a.import_whitelist(&[
        ("hopital.test", &ops.dn_a),
        ("b.test", &ops.dn_b),
        ("nx.test", &ops.dn_b),
    ]);
    ops.a.start();
    ops.b.start();

    alice_sends(&ops.a, BOB, "par le DNS marker-via-mx");
    let got = wait_for(
        30,
        "alice's message at bob's, through the MX records",
        || message_with(&inbox(&ops.b, BOB, BOB_PASSWORD), "marker-via-mx").cloned(),
    );
    assert!(got.contains("by mx.b.test (mssante) with ESMTPS"), "{got}");

    alice_sends(&ops.a, "ghost@nx.test", "nulle part marker-nx");
    let report = wait_for(
        30,
        "the failure report for a domain DNS does not know",
        || message_with(&inbox(&ops.a, USER, PASSWORD), "Action: failed").cloned(),
    );
    assert!(
        report.contains("Status: 5.1.2") && report.contains("domain nx.test does not exist"),
        "{report}"
    );
    assert_eq!(ops.a.stop(), 0);
    assert_eq!(ops.b.stop(), 0);
}

#[test]
fn mail_waits_sealed_while_the_peer_is_down_or_shows_the_wrong_certificate() {
    let mut ops = operators("delay_notice_secs = 2\n", FindB::Route);
    ops.a.start();

    // B is down: the message waits, and alice hears of the delay once.
    alice_sends(&ops.a, BOB, "patient marker-waiting");
    let listing = wait_for(20, "a connection failure in the queue", || {
        let list = ops.a.cli_ok(&["queue", "list"]);
        list.contains("cannot connect to 127.0.0.1").then_some(list)
    });
    assert!(listing.contains(&format!("-> {BOB}: ")), "{listing}");
    let delay = wait_for(20, "the delay report", || {
        message_with(&inbox(&ops.a, USER, PASSWORD), "Action: delayed").cloned()
    });
    assert!(delay.contains("Will-Retry-Until: "), "{delay}");
    assert!(
        delay.contains(&format!("Final-Recipient: rfc822; {BOB}")),
        "{delay}"
    );
    for file in files_under(&ops.a.data) {
        let bytes = std::fs::read(&file).expect("read");
        assert!(
            !contains(&bytes, b"marker-waiting"),
            "queued message readable in {}",
            file.display()
        );
    }

    // B comes up, but the whitelist names another operator for b.test: refused, audited.
    ops.whitelist("CN=mx.b.test,OU=00000000000000,O=SOMEONE ELSE,ST=Paris (75),C=FR");
    ops.b.start();
    ops.a.cli_ok(&["queue", "retry", "--all"]);
    let listing = wait_for(20, "the DN refusal in the queue", || {
        let list = ops.a.cli_ok(&["queue", "list"]);
        list.contains("is not the operator of the domain")
            .then_some(list)
    });
    assert!(listing.contains("O=operateur b"), "{listing}");
    let trail = ops.a.cli_ok(&["audit", "tail", "-n", "100"]);
    assert!(trail.contains("queue.peer_refused"), "{trail}");

    // The list is fixed: the next retry delivers, and only one delay report was sent.
    ops.whitelist(&ops.dn_b.clone());
    ops.a.cli_ok(&["queue", "retry", "--all"]);
    wait_for(30, "the message at bob's", || {
        message_with(&inbox(&ops.b, BOB, BOB_PASSWORD), "marker-waiting").cloned()
    });
    wait_for(10, "an empty queue", || {
        ops.a
            .cli_ok(&["queue", "list"])
            .contains("the queue is empty")
            .then_some(())
    });
    let delays = inbox(&ops.a, USER, PASSWORD)
        .iter()
        .filter(|m| m.contains("Action: delayed"))
        .count();
    assert_eq!(delays, 1);
    assert_eq!(ops.a.stop(), 0);
    assert_eq!(ops.b.stop(), 0);
}

#[test]
fn a_peer_revoked_while_the_server_runs_is_refused_after_the_next_crl_refresh() {
    let mut ops = operators("", FindB::Route);
    ops.a.start();
    ops.b.start();
    alice_sends(&ops.a, BOB, "patient marker-before");
    wait_for(30, "the first message at bob's", || {
        message_with(&inbox(&ops.b, BOB, BOB_PASSWORD), "marker-before").cloned()
    });

    // B's certificate is revoked while A runs: once A reads its CRLs again, B's MX no
    // longer passes A's check and the next message waits in the queue.
    ops.a.cli_ok(&["pki", "revoke", &ops.serial_b]);
    wait_for(15, "A's CRL refresh", || {
        ops.a
            .cli_ok(&["audit", "tail", "-n", "50"])
            .contains("CRLs refreshed")
            .then_some(())
    });
    alice_sends(&ops.a, BOB, "patient marker-after");
    let listing = wait_for(20, "the refusal in the queue", || {
        let list = ops.a.cli_ok(&["queue", "list"]);

        list.to_ascii_lowercase()
            .contains("revoked")
            .then_some(list)
    });
    assert!(listing.contains(&format!("-> {BOB}: ")), "{listing}");
    assert!(
        message_with(&inbox(&ops.b, BOB, BOB_PASSWORD), "marker-after").is_none(),
        "delivered to a revoked peer"
    );
    // A came back with the TLS session of its first delivery (B says so), and its check of
    // B's certificate was made again all the same.
    let trail_b = ops.b.cli_ok(&["audit", "tail", "-n", "100"]);
    assert!(
        trail_b.contains("resumed session, checked again"),
        "{trail_b}"
    );
    assert_eq!(ops.a.stop(), 0);
    assert_eq!(ops.b.stop(), 0);
}

#[test]
fn an_expired_message_fails_with_a_report_and_reports_never_loop() {
    let closed = free_port();
    let server = TestServer::new("");
    // nowhere.test is another operator (a certificate from our TEST PKI), and chu.test a
    // relayed hospital; both unreachable (a closed loopback port).
    let certs = server.dir.path().join("peers");
    let issued = server.cli_ok(&[
        "pki",
        "issue-server",
        "mx.nowhere.test",
        "--out",
        path(&certs),
    ]);
    server.import_whitelist(&[("nowhere.test", &issued_subject(&issued))]);
    server.add_config(&format!(
        "[queue]\nretry_first_secs = 1\nretry_max_secs = 1\nlifetime_secs = 3\ndelay_notice_secs = 0\n[[route]]\ndomain = \"nowhere.test\"\nhost = \"127.0.0.1:{closed}\"\n[[relay_domain]]\ndomain = \"chu.test\"\nhost = \"127.0.0.1:{closed}\"\ncertificate_dn = \"CN=mx.chu.test,O=CHU,C=FR\"\n"
    ));
    let mut server = server;
    server.start();
    let out = submit(
        &server,
        PASSWORD,
        &["--to", "x@nowhere.test", "--body", "expires marker-expired"],
    );
    assert!(stdout(&out).contains("queued as"), "{}", show(&out));
    let queued = server.cli_ok(&["queue", "list"]);
    let id = queued
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("one queued message")
        .to_string();
    let shown = server.cli_ok(&["queue", "show", &id]);
    assert!(shown.contains(&format!("sender:        {USER}")), "{shown}");
    assert!(
        shown.contains("recipient:     x@nowhere.test [pending]"),
        "{shown}"
    );

    let report = wait_for(30, "the expiry report", || {
        message_with(&inbox(&server, USER, PASSWORD), "Action: failed").cloned()
    });
    assert!(report.contains("Status: 4.4.7"), "{report}");
    assert!(report.contains("delivery time expired"), "{report}");
    assert!(
        report.contains("Content-Type: text/rfc822-headers"),
        "{report}"
    );
    assert!(
        !report.contains("marker-expired"),
        "headers only by default"
    );

    // RFC 3461 on submission: RET=FULL returns the whole message; NOTIFY=NEVER, nothing.
    let script = r#"
import smtplib, ssl, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
s.starttls(context=ssl._create_unverified_context())
s.login(sys.argv[2], sys.argv[3])
me = sys.argv[2]
full = 'From: %s\r\nSubject: full\r\n\r\nbody marker-full\r\n' % me
never = 'From: %s\r\nSubject: subject-never\r\n\r\nquiet\r\n' % me
s.sendmail(me, ['a@nowhere.test'], full, mail_options=['RET=FULL', 'ENVID=QQ42'], rcpt_options=['NOTIFY=FAILURE'])
s.sendmail(me, ['b@nowhere.test'], never, rcpt_options=['NOTIFY=NEVER'])
s.quit()
"#;
    let port = server.ports.submission.to_string();
    let out = python(script, &[&port, USER, PASSWORD]);
    assert!(out.status.success(), "{}", show(&out));
    let full = wait_for(30, "the RET=FULL report", || {
        message_with(&inbox(&server, USER, PASSWORD), "marker-full").cloned()
    });
    assert!(full.contains("Content-Type: message/rfc822"), "{full}");
    assert!(full.contains("Original-Envelope-Id: QQ42"), "{full}");

    // A remote sender's failed message: the report goes back through the queue with a null
    // sender, fails in turn (unreachable), and ends there without a report of its own.
    let out = send_mx(
        &server,
        Some(&certs.join("mx.nowhere.test.pem")),
        &[
            "--from",
            "dr.remote@nowhere.test",
            "--to",
            "dr.house@chu.test",
        ],
    );
    assert!(stdout(&out).contains("queued as"), "{}", show(&out));
    wait_for(30, "the report to the remote sender in the queue", || {
        let list = server.cli_ok(&["queue", "list"]);
        list.contains("<> (delivery report)").then_some(())
    });
    wait_for(30, "an empty queue", || {
        server
            .cli_ok(&["queue", "list"])
            .contains("the queue is empty")
            .then_some(())
    });
    let messages = inbox(&server, USER, PASSWORD);
    assert_eq!(
        messages.len(),
        2,
        "two reports for alice, none for NOTIFY=NEVER"
    );
    assert!(!messages.iter().any(|m| m.contains("subject-never")));
    let log = server.log();
    assert_eq!(log.matches("report sent").count(), 3, "{log}");
    assert!(!log.contains("cannot receive a report"), "{log}");
    assert_eq!(server.stop(), 0);

    let missing = server.cli(&["queue", "show", "999999"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("queued message 999999 does not exist"),
        "{}",
        show(&missing)
    );
}

#[test]
fn the_two_operators_example_sets_up_as_its_readme_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/two-operators");
    for name in [
        "setup.sh",
        "operateur-a.toml",
        "operateur-b.toml",
        "listeblanche.xml",
    ] {
        std::fs::copy(example.join(name), dir.path().join(name)).expect("copy");
    }
    let mut setup = std::process::Command::new(dir.path().join("setup.sh"));
    setup.env("MSSANTE", BIN);
    let out = run_with_stdin(setup, "");
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("setup.sh: ready"), "{}", show(&out));
    let issued: Vec<String> = stdout(&out)
        .lines()
        .filter_map(|l| l.strip_prefix("subject:"))
        .map(|s| s.trim().to_string())
        .collect();
    for (config, domain) in [
        ("operateur-a.toml", "operateur-a.test"),
        ("operateur-b.toml", "operateur-b.test"),
    ] {
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("--config")
            .arg(dir.path().join(config))
            .args(["trust", "list"]);
        let out = run_with_stdin(cmd, "");
        assert!(out.status.success(), "{config}: {}", show(&out));
        assert!(
            stdout(&out).contains("O=OPERATEUR A") && stdout(&out).contains("O=OPERATEUR B"),
            "{}",
            show(&out)
        );
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("--config")
            .arg(dir.path().join(config))
            .args(["domain", "list"]);
        let out = run_with_stdin(cmd, "");
        assert!(stdout(&out).contains(domain), "{}", show(&out));
    }
    // Each operator holds the other doctor's encryption certificate.
    for (config, correspondent) in [
        ("operateur-a.toml", "dr.durand@operateur-b.test"),
        ("operateur-b.toml", "dr.martin@operateur-a.test"),
    ] {
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("--config")
            .arg(dir.path().join(config))
            .args(["cert", "list"]);
        let out = run_with_stdin(cmd, "");
        assert!(stdout(&out).contains(correspondent), "{}", show(&out));
    }
    // The DNs in the example's whitelist are exactly the ones the PKI issued.
    let whitelist = std::fs::read_to_string(dir.path().join("listeblanche.xml")).expect("read");
    assert_eq!(issued.len(), 2, "{issued:?}");
    for dn in &issued {
        assert!(
            whitelist.contains(&format!(
                "<DNCertificatOperateur>{dn}</DNCertificatOperateur>"
            )),
            "{dn} is not in the example's whitelist"
        );
    }
}
