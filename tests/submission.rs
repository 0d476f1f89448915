//! Submission as practice software meets it: From: must be the authenticated user, a missing
//! Message-ID or Date is added, and the X-MSS-* headers of the MSSanté client referential
//! arrive byte for byte.

mod common;

use common::*;

fn submit_file(server: &TestServer, message: &str) -> std::process::Output {
    let file = server
        .dir
        .path()
        .join(format!("message-{}.eml", free_port()));
    std::fs::write(&file, message).expect("write");
    submit(
        server,
        PASSWORD,
        &["--to", USER, "--data", file.to_str().expect("utf-8")],
    )
}

fn fetch(server: &TestServer, uid: u32) -> String {
    let out = curl(&[
        &format!("imaps://127.0.0.1:{}/INBOX;UID={uid}", server.ports.imaps),
        "-u",
        &format!("{USER}:{PASSWORD}"),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn from_must_be_the_user_and_missing_headers_are_added() {
    let mut server = TestServer::new("");
    server.start();

    let forged = format!("From: directeur@hopital.test\r\nTo: {USER}\r\nSubject: x\r\n\r\nx\r\n");
    let out = submit_file(&server, &forged);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("550 5.7.1 From: <directeur@hopital.test> is not an address of"),
        "{}",
        show(&out)
    );
    let out = submit_file(&server, &format!("To: {USER}\r\nSubject: x\r\n\r\nx\r\n"));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("550 5.6.0"),
        "{}",
        show(&out)
    );

    // Practice software that sets neither Message-ID nor Date, with referential headers.
    let bare = format!(
        "From: \"Dr Alice MARTIN\" <{USER}>\r\nTo: {USER}\r\nSubject: CR consultation\r\nX-MSS-NIL: LPS-Test/2.1 (build 42)\r\nX-MSS-INS:  O\r\nX-MSS-MES: FIN\r\n\r\nCompte rendu.\r\n"
    );
    let out = submit_file(&server, &bare);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("250 2.0.0"),
        "{}",
        show(&out)
    );
    let stored = fetch(&server, 1);
    assert_eq!(stored.matches("\r\nMessage-ID: <").count(), 1, "{stored}");
    assert_eq!(stored.matches("\r\nDate: ").count(), 1, "{stored}");
    assert!(stored.contains("@localhost>"), "{stored}");
    for header in [
        "X-MSS-NIL: LPS-Test/2.1 (build 42)\r\n",
        "X-MSS-INS:  O\r\n",
        "X-MSS-MES: FIN\r\n",
    ] {
        assert!(stored.contains(header), "{header:?} changed:\n{stored}");
    }

    // A complete message gets no second Message-ID or Date.
    let complete = format!(
        "From: {USER}\r\nTo: {USER}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\nMessage-ID: <cr-1@lps.test>\r\nSubject: y\r\n\r\ny\r\n"
    );
    let out = submit_file(&server, &complete);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("250 2.0.0"),
        "{}",
        show(&out)
    );
    let stored = fetch(&server, 2);
    assert_eq!(stored.matches("Message-ID:").count(), 1, "{stored}");
    assert!(stored.contains("Message-ID: <cr-1@lps.test>"), "{stored}");
    assert_eq!(stored.matches("Date:").count(), 1, "{stored}");
    assert_eq!(server.stop(), 0);
}

const SECRETARIAT: &str = "secretariat@hopital.test";
const BOB: &str = "bob.durand@hopital.test";

/// Alice submits with `from` as envelope sender and From: header, to [`BOB`].
fn send_as(server: &TestServer, from: &str) -> String {
    let header = format!("From: {from}");
    let out = submit(
        server,
        PASSWORD,
        &["--from", from, "--to", BOB, "--header", &header],
    );
    stdout(&out)
}

#[test]
fn a_delegate_may_send_as_the_mailbox_only_with_the_send_as_right() {
    let mut server = TestServer::new("");
    server.cli_ok(&["user", "add", SECRETARIAT, "--type", "ORG", "--no-password"]);
    server.cli_stdin_ok(&["user", "add", BOB, "--password-stdin"], "bob's password");
    server.start();

    let t = send_as(&server, SECRETARIAT);
    assert!(
        t.contains(&format!(
            "550 5.7.1 Sender <{SECRETARIAT}> is not an address of {USER} nor delegated to it"
        )),
        "{t}"
    );
    server.cli_ok(&["delegation", "add", SECRETARIAT, USER]);
    assert!(
        send_as(&server, SECRETARIAT).contains("550 5.7.1"),
        "reading is not sending"
    );
    let added = server.cli_ok(&["delegation", "add", SECRETARIAT, USER, "--send-as"]);
    assert!(added.contains("may send as it"), "{added}");
    let t = send_as(&server, SECRETARIAT);
    assert!(t.contains("250 2.0.0 Message accepted"), "{t}");
    // The envelope is the delegated mailbox, but the From: header may not be a third party's.
    let out = submit(
        &server,
        PASSWORD,
        &[
            "--from",
            SECRETARIAT,
            "--to",
            BOB,
            "--header",
            &format!("From: {BOB}"),
        ],
    );
    assert!(
        stdout(&out).contains(&format!(
            "550 5.7.1 From: <{BOB}> is not an address of {USER}"
        )),
        "{}",
        show(&out)
    );
    // Two From: fields (readers show the first, a check of the last would pass), a spaced
    // field name, and a third party as Sender: are refused too.
    for (header, refusal) in [
        (
            format!("From: {BOB}\r\nFrom: {USER}"),
            "550 5.6.0 The message has more than one From: field",
        ),
        (
            format!("From : {BOB}\r\nFrom: {USER}"),
            "550 5.6.0 The message has more than one From: field",
        ),
        (
            format!("Sender: {BOB}\r\nFrom: {USER}"),
            "550 5.7.1 Sender: <",
        ),
    ] {
        let data = server.dir.path().join("forged.eml");
        // Not first: swaks drops a first line that starts with "From " (an mbox separator).
        let message = format!("Subject: forged\r\n{header}\r\nTo: {BOB}\r\n\r\nbody\r\n");
        std::fs::write(&data, message).expect("write");
        let out = submit(&server, PASSWORD, &["--to", BOB, "--data", path(&data)]);
        assert!(stdout(&out).contains(refusal), "{header}: {}", show(&out));
    }
    let list = server.cli_ok(&["delegation", "list"]);
    assert!(list.contains(SECRETARIAT) && list.contains("yes"), "{list}");

    // A suspended mailbox cannot be sent as, and a withdrawn delegation is gone at once.
    server.cli_ok(&["user", "suspend", SECRETARIAT]);
    assert!(send_as(&server, SECRETARIAT).contains("550 5.7.1"));
    server.cli_ok(&["user", "suspend", SECRETARIAT, "--lift"]);
    assert!(send_as(&server, SECRETARIAT).contains("250 2.0.0"));
    server.cli_ok(&["delegation", "remove", SECRETARIAT, USER]);
    assert!(send_as(&server, SECRETARIAT).contains("550 5.7.1"));
    let bad = server.cli(&["delegation", "remove", SECRETARIAT, USER]);
    assert!(!bad.status.success(), "{}", show(&bad));
    assert_eq!(server.stop(), 0);
    let trail = server.cli_ok(&["audit", "tail", "-n", "30"]);
    assert_eq!(trail.matches("delegation.add").count(), 2, "{trail}");
    assert!(trail.contains("delegation.remove"), "{trail}");
}

#[test]
fn a_full_mailbox_says_so_at_rcpt() {
    let mut server = TestServer::new("");
    server.cli_stdin_ok(&["user", "add", BOB, "--password-stdin"], "bob's password");
    let set = server.cli_ok(&["user", "quota", BOB, "1K"]);
    assert!(set.contains("1024 octets"), "{set}");
    let bad = server.cli(&["user", "quota", BOB, "lots"]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("\"lots\" is not a size"),
        "{}",
        show(&bad)
    );
    server.start();
    let body = "x".repeat(2000);
    let out = submit(&server, PASSWORD, &["--to", BOB, "--body", &body]);
    assert!(
        stdout(&out).contains("250 2.0.0"),
        "under quota when it arrives:\n{}",
        show(&out)
    );
    let out = submit(&server, PASSWORD, &["--to", BOB, "--body", "more"]);
    assert!(
        stdout(&out).contains(&format!("452 4.2.2 Mailbox <{BOB}> is full")),
        "{}",
        show(&out)
    );

    // Room again, but a message announced bigger than what is left is refused for good.
    server.cli_ok(&["user", "quota", BOB, "1M"]);
    let script = r#"
import smtplib, ssl, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
s.starttls(context=ssl._create_unverified_context())
s.login(sys.argv[2], sys.argv[3])
print(s.mail(sys.argv[2], ['SIZE=2000000']))
print(s.rcpt(sys.argv[4]))
s.quit()
"#;
    let port = server.ports.submission.to_string();
    let out = python(script, &[&port, USER, PASSWORD, BOB]);
    assert!(
        stdout(&out).contains("(552, b'5.2.2 This message would exceed the quota of"),
        "{}",
        show(&out)
    );
    assert_eq!(server.stop(), 0);
}

#[test]
fn a_bare_postmaster_reaches_the_postmaster_mailbox() {
    let mut server = TestServer::new("");
    server.start();
    let out = submit(
        &server,
        PASSWORD,
        &["--to", "Postmaster", "--body", "hello"],
    );
    assert!(
        stdout(&out).contains("550 5.1.1 Mailbox <postmaster> does not exist"),
        "{}",
        show(&out)
    );
    server.cli_stdin_ok(
        &[
            "user",
            "add",
            "postmaster@hopital.test",
            "--type",
            "ORG",
            "--password-stdin",
        ],
        "pm password",
    );
    let out = submit(
        &server,
        PASSWORD,
        &["--to", "Postmaster", "--body", "marker-postmaster"],
    );
    assert!(
        stdout(&out).contains("250 2.0.0 Message accepted"),
        "{}",
        show(&out)
    );
    let got = inbox(&server, "postmaster@hopital.test", "pm password");
    assert!(
        got.iter().any(|m| m.contains("marker-postmaster")),
        "{got:?}"
    );
    assert_eq!(server.stop(), 0);
}
