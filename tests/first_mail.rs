//! A newcomer's first mail, end to end with real clients: swaks submits over STARTTLS and
//! implicit TLS, curl, python's imaplib and poplib read it back, a restart keeps it, and
//! nothing readable is left in the data directory.

mod common;

use common::*;

const READ_IMAP: &str = r#"
import imaplib, ssl, sys
port, user, password, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the TEST certificate names the host, not 127.0.0.1
m = imaplib.IMAP4("127.0.0.1", port)
m.starttls(ssl_context=ctx)
print("TLS", m.sock.version())
typ, _ = m.login(user, password)
assert typ == "OK", typ
typ, data = m.select("INBOX")
print("EXISTS", data[0].decode())
typ, data = m.fetch("1", "(UID RFC822)")
assert typ == "OK", (typ, data)
sys.stdout.write(data[0][1].decode())
m.logout()
"#;

const READ_POP3: &str = r#"
import poplib, ssl, sys
port, user, password, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
p = poplib.POP3("127.0.0.1", port)
p.stls(context=ctx)
p.user(user)
p.pass_(password)
count, size = p.stat()
print("STAT", count, size)
resp, lines, octets = p.retr(1)
sys.stdout.write("\n".join(l.decode() for l in lines))
p.quit()
"#;

#[test]
fn submit_read_restart_and_nothing_readable_at_rest() {
    let mut server = TestServer::new("");
    server.start();
    let marker = format!("PALIMPSESTE{}", std::process::id());

    // Submission on the STARTTLS port with AUTH PLAIN, as the README shows.
    let body = format!("Bonjour, {marker} est le mot du jour.");
    let out = submit(
        &server,
        PASSWORD,
        &[
            "--to",
            USER,
            "--header",
            "Subject: compte rendu",
            "--body",
            &body,
        ],
    );
    assert!(out.status.success(), "swaks:\n{}", show(&out));
    assert!(stdout(&out).contains("250 2.0.0"), "{}", show(&out));

    // curl over implicit-TLS IMAP and POP3.
    let imaps = format!("imaps://127.0.0.1:{}/INBOX;UID=1", server.ports.imaps);
    let creds = format!("{USER}:{PASSWORD}");
    let out = curl(&[&imaps, "-u", &creds]);
    assert!(out.status.success(), "curl imaps:\n{}", show(&out));
    assert!(stdout(&out).contains(&marker), "{}", show(&out));
    assert!(stdout(&out).contains("Received: from"), "{}", show(&out));

    let pop3s = format!("pop3s://127.0.0.1:{}/1", server.ports.pop3s);
    let out = curl(&[&pop3s, "-u", &creds]);
    assert!(out.status.success(), "curl pop3s:\n{}", show(&out));
    assert!(stdout(&out).contains(&marker), "{}", show(&out));

    // python over the STARTTLS ports, verifying the TEST chain.
    let ca = server.ca_file();
    let ca = ca.to_str().expect("utf-8 path");
    let out = python(
        READ_IMAP,
        &[&server.ports.imap.to_string(), USER, PASSWORD, ca],
    );
    assert!(out.status.success(), "imaplib:\n{}", show(&out));
    let text = stdout(&out);
    assert!(text.contains("EXISTS 1"), "{text}");
    assert!(text.contains(&marker), "{text}");
    assert!(
        text.contains("TLSv1.3") || text.contains("TLSv1.2"),
        "{text}"
    );

    let out = python(
        READ_POP3,
        &[&server.ports.pop3.to_string(), USER, PASSWORD, ca],
    );
    assert!(out.status.success(), "poplib:\n{}", show(&out));
    assert!(stdout(&out).contains("STAT 1"), "{}", show(&out));
    assert!(stdout(&out).contains(&marker), "{}", show(&out));

    // Implicit TLS submission with AUTH LOGIN: a second message.
    let out = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", server.ports.submissions),
        "--tlsc",
        "--auth",
        "LOGIN",
        "--auth-user",
        USER,
        "--auth-password",
        PASSWORD,
        "--from",
        USER,
        "--to",
        USER,
        "--body",
        &format!("second {marker}"),
    ]);
    assert!(out.status.success(), "swaks --tlsc:\n{}", show(&out));

    assert_eq!(server.stop(), 0, "clean stop:\n{}", server.log());
    // Every log line of a session carries its session id.
    let log = server.log();
    let logins: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("event=\"login\""))
        .collect();
    assert!(logins.len() >= 4, "logins logged:\n{log}");
    assert!(logins.iter().all(|l| l.contains("session{id=")), "{log}");

    // Nothing readable at rest: no body, no password, no PEM private key.
    for path in files_under(&server.data) {
        let bytes = std::fs::read(&path).expect("read");
        let name = path.display();
        assert!(
            !contains(&bytes, marker.as_bytes()),
            "{name} holds the body"
        );
        assert!(
            !contains(&bytes, PASSWORD.as_bytes()),
            "{name} holds the password"
        );
        assert!(!contains(&bytes, b"PRIVATE KEY"), "{name} holds a PEM key");
    }
    let kek = server.data.join("kek.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&kek).expect("kek").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "kek.key mode");

    // A restart keeps the mailbox and both messages.
    server.start();
    let out = curl(&[&imaps, "-u", &creds]);
    assert!(
        stdout(&out).contains(&marker),
        "after restart:\n{}",
        show(&out)
    );
    let out = curl(&[
        &format!("pop3s://127.0.0.1:{}/", server.ports.pop3s),
        "-u",
        &creds,
    ]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        stdout(&out).lines().count(),
        2,
        "two messages listed:\n{}",
        show(&out)
    );
    assert_eq!(server.stop(), 0);

    // The audit trail saw the logins and is intact.
    let trail = server.cli_ok(&["audit", "tail", "-n", "200"]);
    assert!(trail.contains("login"), "{trail}");
    let verify = server.cli_ok(&["audit", "verify"]);
    assert!(verify.contains("audit trail intact"), "{verify}");
}

#[test]
fn wrong_password_and_unknown_recipient_are_refused() {
    let mut server = TestServer::new("");
    server.start();
    let sub = format!("127.0.0.1:{}", server.ports.submission);
    let out = submit(&server, "not the password", &["--to", USER]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("535 5.7.8"), "{}", show(&out));

    let out = submit(&server, PASSWORD, &["--to", "nobody@hopital.test"]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("550 5.1.1"), "{}", show(&out));

    // Without TLS the submission port refuses AUTH.
    let out = swaks(&[
        "--server",
        &sub,
        "--auth",
        "PLAIN",
        "--auth-user",
        USER,
        "--auth-password",
        PASSWORD,
        "--from",
        USER,
        "--to",
        USER,
    ]);
    assert!(!out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        !text.contains("235 ") && !text.contains("250 2.0.0"),
        "authenticated or accepted without TLS:\n{text}"
    );

    let creds = format!("{USER}:wrong");
    let out = curl(&[
        &format!("imaps://127.0.0.1:{}/INBOX", server.ports.imaps),
        "-u",
        &creds,
    ]);
    assert!(!out.status.success(), "{}", show(&out));
    server.stop();
    let trail = server.cli_ok(&["audit", "tail", "-n", "50"]);
    assert!(trail.contains("refused"), "{trail}");
}
