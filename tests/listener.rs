//! The listener framework under real clients: SIGTERM lets an in-flight transaction finish,
//! connection limits and idle timeouts answer in each protocol's words, bad input gets a
//! protocol error and the session goes on, STARTTLS refuses injected plaintext, and only
//! TLS 1.2 and 1.3 are spoken.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const IN_FLIGHT: &str = r#"
import smtplib, ssl, sys
port, user, password, marker = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=30)
s.ehlo("client.test")
s.login(user, password)
s.mail(user)
s.rcpt(user)
code, _ = s.docmd("DATA")
assert code == 354, code
s.send(("From: " + user + "\r\nSubject: drain\r\n\r\nfirst half\r\n").encode())
print("IN-DATA", flush=True)
sys.stdin.readline()
s.send(("second half " + marker + "\r\n.\r\n").encode())
code, msg = s.getreply()
print("DATA-REPLY", code, msg.decode(), flush=True)
try:
    code, msg = s.docmd("NOOP")
    print("AFTER", code, msg.decode(), flush=True)
except smtplib.SMTPServerDisconnected:
    print("AFTER closed", flush=True)
"#;

#[test]
fn sigterm_lets_the_transaction_in_flight_finish() {
    let mut server = TestServer::new("");
    server.start();
    let marker = format!("VESPERTILION{}", std::process::id());
    let mut client = Command::new("python3")
        .arg("-c")
        .arg(IN_FLIGHT)
        .args([
            &server.ports.submissions.to_string(),
            USER,
            PASSWORD,
            &marker,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(client.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "IN-DATA", "client did not reach DATA");

    signal(server.pid(), "TERM");
    // New connections are no longer taken while the old one finishes.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", server.ports.imaps)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        server.exited(),
        None,
        "the server left before the transaction ended"
    );

    let mut stdin = client.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("write");
    let mut rest = String::new();
    for _ in 0..2 {
        out.read_line(&mut rest).expect("read");
    }
    let _ = client.wait();
    assert!(rest.contains("DATA-REPLY 250"), "{rest}");
    assert!(
        rest.contains("AFTER 421") || rest.contains("AFTER closed"),
        "{rest}"
    );
    assert_eq!(server.stop(), 0, "{}", server.log());

    // The message acknowledged during the drain is there after a restart.
    server.start();
    let out = curl(&[
        &format!("imaps://127.0.0.1:{}/INBOX;UID=1", server.ports.imaps),
        "-u",
        &format!("{USER}:{PASSWORD}"),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&marker),
        "{}",
        show(&out)
    );
    assert_eq!(server.stop(), 0);
}

#[test]
fn connection_limit_and_idle_timeout() {
    let mut server =
        TestServer::with_listener_options("", "max_connections = 1\nidle_timeout_secs = 2");
    server.start();
    std::thread::sleep(Duration::from_millis(300)); // start()'s own probe leaves its slot

    let mut first = Raw::connect(server.ports.pop3);
    assert!(first.line().starts_with("+OK"));
    let mut second = Raw::connect(server.ports.pop3);
    assert_eq!(
        second.line(),
        "-ERR [SYS/TEMP] Too many connections, try again later"
    );
    assert_eq!(second.rest(), "", "closed after the busy reply");

    // The first one, silent, is closed after its idle timeout; its slot is free again.
    let started = Instant::now();
    assert_eq!(first.line(), "-ERR Idle for too long, closing");
    assert!(started.elapsed() >= Duration::from_secs(1), "too early");
    std::thread::sleep(Duration::from_millis(200));
    let mut third = Raw::connect(server.ports.pop3);
    assert!(third.line().starts_with("+OK"));
    drop(third);
    std::thread::sleep(Duration::from_millis(200));

    let mut smtp = Raw::connect(server.ports.mx);
    assert!(smtp.line().starts_with("220 "));
    let bye = smtp.line();
    assert!(bye.starts_with("421 4.4.2"), "{bye}");
    drop(smtp);
    std::thread::sleep(Duration::from_millis(200));

    let mut imap = Raw::connect(server.ports.imap);
    assert!(imap.line().starts_with("* OK"));
    assert!(imap.line().starts_with("* BYE"), "IMAP autologout");
    assert_eq!(server.stop(), 0);
}

#[test]
fn bad_input_gets_a_protocol_error_and_the_session_goes_on() {
    let mut server = TestServer::new("");
    server.start();
    let long = "A".repeat(100_000);

    let mut smtp = Raw::connect(server.ports.mx);
    assert!(smtp.line().starts_with("220 "));
    assert!(smtp.ask("EHLO client.test").starts_with("250"));
    while !smtp.line().starts_with("250 ") {}
    assert_eq!(smtp.ask(&long), "500 5.5.2 Line too long");
    assert_eq!(smtp.ask("FROBNICATE"), "500 5.5.1 Unknown command");
    assert!(smtp.ask("MAIL FROM:<broken").starts_with("501 5."));
    let garbage = smtp.ask("\u{1}\u{2}\u{7f}ÿ");
    assert!(garbage.starts_with("500 5."), "{garbage}");
    assert!(
        smtp.ask("MAIL FROM:<a@hopital.test>")
            .starts_with("530 5.7.0"),
        "TLS first"
    );
    assert_eq!(smtp.ask("NOOP"), "250 2.0.0 OK");
    assert_eq!(smtp.ask("QUIT"), "221 2.0.0 Bye");

    let mut imap = Raw::connect(server.ports.imap);
    assert!(imap.line().starts_with("* OK"));
    assert_eq!(
        imap.ask(&format!("a1 {long}")),
        "a1 BAD [TOOBIG] Command line too long",
        "answered with the tag: the client is not left waiting"
    );
    assert!(imap.ask("a2 FROBNICATE").starts_with("a2 BAD"));
    assert!(imap.ask("a3 LOGIN \"unterminated").starts_with("a3 BAD"));
    let login = imap.ask(&format!("a4 LOGIN {USER} \"{PASSWORD}\""));
    assert!(
        login.starts_with("a4 NO") || login.starts_with("a4 BAD"),
        "cleartext LOGIN refused: {login}"
    );
    assert!(imap.ask("a5 NOOP").starts_with("a5 OK"));
    assert!(imap.ask("a6 LOGOUT").starts_with("* BYE"));

    let mut pop = Raw::connect(server.ports.pop3);
    assert!(pop.line().starts_with("+OK"));
    assert_eq!(pop.ask(&long), "-ERR Line too long");
    assert!(pop.ask("FROBNICATE").starts_with("-ERR"));
    assert!(pop.ask("RETR 1").starts_with("-ERR"), "not logged in");
    assert!(
        pop.ask("USER x").starts_with("-ERR"),
        "cleartext USER refused before STLS"
    );
    assert!(pop.ask("QUIT").starts_with("+OK"));

    // Still serving, nothing crashed.
    assert_eq!(server.exited(), None);
    assert_eq!(server.stop(), 0);
}

#[test]
fn starttls_refuses_plaintext_injected_before_the_handshake() {
    let mut server = TestServer::new("");
    server.start();
    let mut smtp = Raw::connect(server.ports.submission);
    assert!(smtp.line().starts_with("220 "));
    smtp.ask("EHLO client.test");
    while !smtp.line().starts_with("250 ") {}
    smtp.send(b"STARTTLS\r\nRSET\r\n");
    assert!(smtp.line().starts_with("220 2.0.0"));
    let rest = smtp.rest();
    assert!(
        !rest.contains("250"),
        "the injected command was answered: {rest}"
    );

    let mut pop = Raw::connect(server.ports.pop3);
    assert!(pop.line().starts_with("+OK"));
    pop.send(b"STLS\r\nCAPA\r\n");
    assert!(pop.line().starts_with("+OK"));
    let rest = pop.rest();
    assert!(
        !rest.contains("+OK"),
        "the injected command was answered: {rest}"
    );
    assert_eq!(server.stop(), 0);
}

#[test]
fn only_tls_1_2_and_1_3_are_spoken() {
    require("openssl");
    let mut server = TestServer::new("");
    server.start();
    let target = format!("127.0.0.1:{}", server.ports.imaps);
    let ca = server.ca_file();
    let handshake = |version: &str| {
        let mut cmd = Command::new("openssl");
        cmd.args([
            "s_client", "-connect", &target, version, "-brief", "-ign_eof",
        ])
        .args(["-verify_return_error", "-CAfile"])
        .arg(&ca);
        run_with_stdin(cmd, "a1 LOGOUT\r\n")
    };
    for version in ["-tls1_2", "-tls1_3"] {
        let out = handshake(version);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("* OK"), "{version}:\n{text}");
    }
    let out = handshake("-tls1_1");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("* OK"), "TLS 1.1 must be refused:\n{text}");
    assert_eq!(server.stop(), 0);
}
