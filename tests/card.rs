//! Logging in with a CPS card: the TLS client certificate (here from the TEST PKI's
//! PERSONNES branch, as a card would present it) and SASL EXTERNAL over IMAP (python's
//! imaplib), SMTP submission (smtplib) and POP3; the idNat of the certificate's multi-valued
//! RDN picks the mailbox, the authorization identity picks among several; no password is
//! ever asked; every decision is audited.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::card::*;
use common::*;

#[test]
fn a_card_opens_its_holders_mailbox_without_a_password() {
    let mut server = TestServer::new("");
    let dir = server.dir.path().to_path_buf();
    add_card_user(&server);
    let card = issue_person(&server, "auth", CARD_USER, &dir, None);
    let (cert, key) = (card.with_extension("pem"), card.with_extension("key"));
    // A card whose holder has no mailbox here.
    let stranger = issue_card(&server, "810009999999", &dir.join("stranger"), &[]);
    let (stranger_cert, stranger_key) = (stranger.cert, stranger.key);
    server.start();

    let imap = external(&server, "imap", &cert, &key, "");
    assert!(
        imap.starts_with("OK") && imap.contains("AUTH=EXTERNAL"),
        "{imap}"
    );
    let smtp = external(&server, "smtp", &cert, &key, "");
    assert!(
        smtp.starts_with("OK") && smtp.contains("EXTERNAL"),
        "{smtp}"
    );
    let pop3 = external(&server, "pop3", &cert, &key, "");
    assert!(pop3.starts_with("OK +OK"), "{pop3}");
    assert!(external(&server, "imap", &stranger_cert, &stranger_key, "").starts_with("NO"));

    // A second mailbox of the same professional: the authorization identity chooses.
    server.cli_ok(&[
        "user",
        "add",
        CABINET,
        "--idnat",
        "810001234567",
        "--no-password",
    ]);
    assert!(external(&server, "imap", &cert, &key, "").starts_with("NO"));
    assert!(external(&server, "imap", &cert, &key, CABINET).starts_with("OK"));
    assert!(external(&server, "imap", &cert, &key, USER).starts_with("NO"));

    let trail = server.cli_ok(&["audit", "tail", "-n", "40"]);
    for expected in [
        "certificate: idNat 810001234567",
        "no mailbox belongs to this idNat",
        "several mailboxes belong to this idNat",
        &format!("not authorized to act as {USER}"),
    ] {
        assert!(trail.contains(expected), "{expected} in:\n{trail}");
    }
    assert_eq!(server.stop(), 0);
}

#[test]
fn a_replacement_doctors_card_opens_the_inbox_delegated_to_them_with_its_rights() {
    let mut server = TestServer::new("");
    let dir = server.dir.path().to_path_buf();
    add_card_user(&server);
    let card = issue_card(&server, "810001234567", &dir.join("card"), &[]);
    server.start();
    let out = submit(
        &server,
        PASSWORD,
        &["--to", USER, "--body", "marker-delegated"],
    );
    assert!(stdout(&out).contains("250 2.0.0"), "{}", show(&out));
    // Dr Carte stands in for alice this week: read rights on her mailbox, no more.
    server.cli_ok(&["delegation", "add", USER, CARD_USER, "--rights", "lr"]);

    // IMAP: alice's INBOX, read-only (no right to keep the seen state).
    let script = r#"
import imaplib, ssl, sys
port, cert, key, authzid = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl._create_unverified_context()
ctx.load_cert_chain(cert, key)
m = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx, timeout=20)
m.authenticate('EXTERNAL', lambda _: authzid.encode())
# SELECT by hand: imaplib raises on a READ-ONLY answer to SELECT, and it is what we check.
typ, data = m._simple_command('SELECT', 'INBOX')
m.state, m.is_readonly = 'SELECTED', True
print("SELECT", typ, data[-1].decode())
typ, data = m.fetch('1', '(BODY[])')
print("BODY", data[0][1].decode(errors='replace'))
typ, data = m.fetch('1', '(FLAGS)')
print("FLAGS", data[0].decode())
m.logout()
"#;
    let imap = python(
        script,
        &[
            &server.ports.imaps.to_string(),
            path(&card.cert),
            path(&card.key),
            USER,
        ],
    );
    let said = stdout(&imap);
    assert!(imap.status.success(), "{}", show(&imap));
    assert!(
        said.contains("SELECT OK [READ-ONLY]") && said.contains("marker-delegated"),
        "{said}"
    );
    assert!(
        said.contains("FLAGS 1 (FLAGS ()"),
        "reading did not mark the message seen:\n{said}"
    );
    // POP3: her maildrop; SMTP: the card user may submit, acting for her.
    let pop3 = external(&server, "pop3", &card.cert, &card.key, USER);
    assert!(pop3.starts_with("OK +OK Maildrop has 1 messages"), "{pop3}");
    assert!(external(&server, "smtp", &card.cert, &card.key, USER).starts_with("OK"));

    // Once the delegation ends, the same card no longer opens it.
    server.cli_ok(&["delegation", "remove", USER, CARD_USER]);
    assert!(external(&server, "imap", &card.cert, &card.key, USER).starts_with("NO"));
    let trail = server.cli_ok(&["audit", "show", "--user", CARD_USER]);
    assert!(
        trail.contains("login.delegated") && trail.contains(&format!("{USER} with rights lr")),
        "{trail}"
    );
    assert_eq!(server.stop(), 0);
}

#[test]
fn external_without_a_card_is_refused_and_not_offered() {
    let mut server = TestServer::new("");
    server.start();
    let script = r#"
import imaplib, ssl, sys
m = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ssl._create_unverified_context(), timeout=20)
print(" ".join(m.capabilities))
try:
    m.authenticate('EXTERNAL', lambda _: b'')
    print("OK")
except imaplib.IMAP4.error as e:
    print("NO", e)
"#;
    let out = python(script, &[&server.ports.imaps.to_string()]);
    let said = stdout(&out);
    assert!(
        !said.contains("AUTH=EXTERNAL") && said.contains("AUTH=PLAIN"),
        "{said}"
    );
    assert!(
        said.contains("NO") && said.contains("client certificate"),
        "{said}"
    );
    assert_eq!(server.stop(), 0);
}

#[test]
fn an_app_logs_in_with_its_bound_certificate_and_bad_cards_fail_at_the_handshake() {
    const APP: &str = "logiciel.cabinet@hopital.test";
    let mut server = TestServer::new("");
    let dir = server.dir.path().to_path_buf();
    server.cli_ok(&["user", "add", APP, "--type", "APP", "--no-password"]);
    add_card_user(&server);
    let software = dir.join("software");
    server.cli_ok(&[
        "pki",
        "issue-server",
        "logiciel.cabinet.test",
        "--organisation",
        "CABINET",
        "--out",
        path(&software),
    ]);
    let (app_cert, app_key) = (
        software.join("logiciel.cabinet.test.pem"),
        software.join("logiciel.cabinet.test.key"),
    );
    // A card revoked before the server reads its CRLs, and a card from an unknown CA.
    let revoked = issue_card(&server, "810001234567", &dir.join("revoked"), &[]);
    let serial = issued_serial(&revoked.issued);
    server.cli_ok(&["pki", "revoke", &serial]);
    self_signed(&dir, "stranger", "/C=FR/CN=810001234567+SN=MARTIN+GN=ALICE");
    let expired = issue_card(
        &server,
        "810001234567",
        &dir.join("expired"),
        &["--expired"],
    );
    server.start();

    // The software certificate names no person: refused until bound to the APP mailbox.
    let unbound = external(&server, "imap", &app_cert, &app_key, "");
    assert!(unbound.starts_with("NO"), "{unbound}");
    server.cli_ok(&["user", "cert", "bind", APP, path(&app_cert)]);
    assert!(external(&server, "imap", &app_cert, &app_key, "").starts_with("OK"));
    assert!(external(&server, "smtp", &app_cert, &app_key, APP).starts_with("OK"));
    assert!(external(&server, "imap", &app_cert, &app_key, USER).starts_with("NO"));
    server.cli_ok(&["user", "cert", "unbind", APP]);
    assert!(external(&server, "imap", &app_cert, &app_key, "").starts_with("NO"));

    // Revoked, expired and unknown-CA cards never get past the handshake.
    assert!(external(&server, "imap", &expired.cert, &expired.key, "").starts_with("NO"));
    assert!(external(&server, "imap", &revoked.cert, &revoked.key, "").starts_with("NO"));
    let (stranger_cert, stranger_key) = (dir.join("stranger.pem"), dir.join("stranger.key"));
    assert!(external(&server, "imap", &stranger_cert, &stranger_key, "").starts_with("NO"));

    let trail = server.cli_ok(&["audit", "tail", "-n", "40"]);
    for expected in [
        "not a person certificate, and bound to no mailbox",
        "cert.bind",
        "tls.refused",
    ] {
        assert!(trail.contains(expected), "{expected} in:\n{trail}");
    }
    assert!(trail.matches("tls.refused").count() >= 3, "{trail}");
    assert_eq!(server.stop(), 0);
}

#[test]
fn a_card_revoked_while_the_server_runs_is_refused_after_the_next_crl_refresh() {
    let mut server = TestServer::new("");
    let dir = server.dir.path().to_path_buf();
    add_card_user(&server);
    // TLS from files, so that the CRLs are files the server reads again every second.
    tls_from_files(
        &server,
        &["root.crl", "organisations.crl", "personnes.crl"],
        &[],
    );
    let pki = server.data.join("pki");
    let first = issue_card(&server, "810001234567", &dir.join("first"), &[]);
    let second = issue_card(&server, "810001234567", &dir.join("second"), &[]);
    let issued = first.issued.clone();
    let ((cert, key), (other_cert, other_key)) =
        ((first.cert, first.key), (second.cert, second.key));
    server.start();
    assert!(external(&server, "imap", &cert, &key, "").starts_with("OK"));
    // Clients that keep their TLS session, as mail clients do, to come back with it: the
    // session resumes (the card is not asked to sign again)...
    let mut resumer = TlsResumer::connect(server.ports.imaps, &cert, &key);
    let mut returning = TlsResumer::connect(server.ports.imaps, &cert, &key);
    let back = returning.reconnect();
    assert!(back.starts_with("accepted reused=True b'* OK"), "{back}");

    // Revoked while the server runs: refused once the CRLs are read again.
    let serial = issued_serial(&issued);
    server.cli_ok(&["pki", "revoke", &serial]);
    wait_for(15, "the revocation to take effect", || {
        external(&server, "imap", &cert, &key, "")
            .starts_with("NO")
            .then_some(())
    });
    // ...but not once the card is revoked: a resumed session's certificate is checked again.
    let again = resumer.reconnect();
    assert!(again.starts_with("refused"), "{again}");
    assert!(external(&server, "imap", &other_cert, &other_key, "").starts_with("OK"));

    // A CRL file that cannot be read: the last valid CRLs stay in force, the admin is told.
    let good = std::fs::read(pki.join("personnes.crl")).expect("CRL");
    std::fs::write(pki.join("personnes.crl"), "not a CRL").expect("spoil the CRL");
    wait_for(15, "the failed refresh in the log", || {
        server.log().contains("CRL refresh failed").then_some(())
    });
    assert!(external(&server, "imap", &cert, &key, "").starts_with("NO"));
    assert!(external(&server, "imap", &other_cert, &other_key, "").starts_with("OK"));
    // (The CLI, like `serve`, refuses a configuration whose CRL cannot be read.)
    std::fs::write(pki.join("personnes.crl"), good).expect("restore the CRL");
    assert_eq!(server.stop(), 0);
    let trail = server.cli_ok(&["audit", "tail", "-n", "200"]);
    assert!(
        trail.contains("CRLs refreshed")
            && trail.contains("refresh failed, the last valid CRLs stay in force")
            && trail.contains("resumed session, checked again")
            && trail.contains("tls.refused")
            && trail.contains("resumed session of"),
        "{trail}"
    );
}

#[test]
fn in_dev_mode_a_card_revoked_with_the_cli_is_refused_by_the_running_server() {
    // Dev mode's TLS comes from the TEST PKI; `pki revoke` rewrites its CRL files, which
    // the running server reads again at each refresh.
    let mut server = TestServer::new("");
    server.add_config("[tls]\ncrl_refresh_secs = 1\n");
    let dir = server.dir.path().to_path_buf();
    add_card_user(&server);
    let card = issue_card(&server, "810001234567", &dir.join("card"), &[]);
    let other = issue_card(&server, "810001234567", &dir.join("other"), &[]);
    server.start();
    assert!(external(&server, "imap", &card.cert, &card.key, "").starts_with("OK"));
    server.cli_ok(&["pki", "revoke", &issued_serial(&card.issued)]);
    wait_for(15, "the revocation to take effect", || {
        external(&server, "imap", &card.cert, &card.key, "")
            .starts_with("NO")
            .then_some(())
    });
    assert!(external(&server, "imap", &other.cert, &other.key, "").starts_with("OK"));
    // The dev server is its own CRL publication point: it makes its CRLs again (they are
    // valid a week), so a spoiled file does not last.
    let crl = server.data.join("pki").join("personnes.crl");
    std::fs::write(&crl, "not a CRL").expect("spoil the CRL");
    wait_for(15, "the CRL made again", || {
        std::fs::read(&crl)
            .ok()
            .filter(|der| der.first() == Some(&0x30))
            .map(|_| ())
    });
    assert!(external(&server, "imap", &card.cert, &card.key, "").starts_with("NO"));
    assert!(external(&server, "imap", &other.cert, &other.key, "").starts_with("OK"));
    assert_eq!(server.stop(), 0);
}

/// `python3 -m http.server` on a loopback port, serving `dir`: a CA's CRL publication point.
struct CrlPublisher(std::process::Child);

impl CrlPublisher {
    fn start(dir: &Path, port: u16) -> CrlPublisher {
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        wait_for_port(port);
        CrlPublisher(child)
    }
}

impl Drop for CrlPublisher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn crls_published_over_http_are_fetched_at_start_and_at_each_refresh() {
    let mut server = TestServer::new("");
    let dir = server.dir.path().to_path_buf();
    add_card_user(&server);
    let pki = server.data.join("pki");
    let port = free_port();
    // The PERSONNES CRL only over HTTP; the other two from files.
    tls_from_files(
        &server,
        &["root.crl", "organisations.crl"],
        &[format!("http://127.0.0.1:{port}/personnes.crl")],
    );
    let card = issue_card(&server, "810001234567", &dir.join("card"), &[]);
    let (issued, cert, key) = (card.issued, card.cert, card.key);
    let publisher = CrlPublisher::start(&pki, port);
    server.start();
    assert!(external(&server, "imap", &cert, &key, "").starts_with("OK"));

    server.cli_ok(&["pki", "revoke", &issued_serial(&issued)]);
    wait_for(15, "the revocation fetched over HTTP", || {
        external(&server, "imap", &cert, &key, "")
            .starts_with("NO")
            .then_some(())
    });
    // The publication point goes down: the last valid CRL stays in force.
    drop(publisher);
    wait_for(15, "the failed fetch in the log", || {
        server.log().contains("CRL refresh failed").then_some(())
    });
    assert!(external(&server, "imap", &cert, &key, "").starts_with("NO"));
    assert_eq!(server.stop(), 0);
    let trail = server.cli_ok(&["audit", "tail", "-n", "30"]);
    assert!(
        trail.contains("CRLs refreshed") && trail.contains("personnes.crl"),
        "{trail}"
    );
}

/// A python client that opened an IMAPS connection with a card and kept its TLS session,
/// and on request connects again offering that session.
struct TlsResumer {
    child: Child,
    lines: BufReader<std::process::ChildStdout>,
}

impl TlsResumer {
    const SCRIPT: &str = r#"
import socket, ssl, sys
port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl._create_unverified_context()
ctx.load_cert_chain(cert, key)
def connect(session=None):
    s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=10), session=session)
    greeting = s.recv(1000)  # the session ticket comes with it in TLS 1.3
    return s, greeting
s, greeting = connect()
session = s.session
s.close()
print("connected", greeting[:4], flush=True)
sys.stdin.readline()
try:
    s, greeting = connect(session)
    if not greeting.startswith(b"* OK"):
        raise Exception("closed before the greeting (reused=%s)" % s.session_reused)
    print("accepted reused=%s %r" % (s.session_reused, greeting[:20]), flush=True)
except Exception as e:
    print("refused", e, flush=True)
"#;

    fn connect(port: u16, cert: &Path, key: &Path) -> TlsResumer {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(Self::SCRIPT)
            .args([&port.to_string(), path(cert), path(key)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        lines.read_line(&mut first).expect("first connection");
        assert!(first.starts_with("connected b'* OK"), "{first}");
        TlsResumer { child, lines }
    }

    /// Connects again with the kept session: "accepted ..." or "refused ...".
    fn reconnect(&mut self) -> String {
        if let Some(stdin) = self.child.stdin.as_mut() {
            stdin.write_all(b"go\n").expect("tell python");
        }
        let mut line = String::new();
        self.lines.read_line(&mut line).expect("second connection");
        line
    }
}

impl Drop for TlsResumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
