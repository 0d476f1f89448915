//! Hostile input through the real listeners, before TLS and before login: lines that once
//! made a parser loop until memory ran out, literals that would hold megabytes for a client
//! nobody knows, over-long lines that left the client waiting, slow clients that held a port
//! (a byte every few seconds), clients that never log in, and one address holding every
//! slot. Each gets its protocol's answer, and the server goes on serving everyone else.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// Lines that reached the extension tokenizer's loop (an empty atom on `)` or a control
/// octet, never consumed) in any state, before and after STARTTLS.
const LOOPERS: &[&str] = &[
    "SEARCH )",
    "UID SEARCH )",
    "LIST )",
    "SETACL \u{1}",
    "DELETEACL )",
    "GETACL )",
    "LISTRIGHTS ) )",
    "MYRIGHTS )",
];

/// A python IMAP client over implicit TLS: sends each argument as a command line (tagged
/// t0, t1, ...) and prints the tagged reply of each.
const TLS_LINES: &str = r#"
import socket, ssl, sys
ctx = ssl._create_unverified_context()
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=20))
f = s.makefile('rb')
f.readline()
for i, line in enumerate(sys.argv[2:]):
    tag = 't%d' % i
    s.sendall(('%s %s\r\n' % (tag, line)).encode())
    while True:
        reply = f.readline().decode('utf-8', 'replace')
        if not reply or reply.startswith(tag + ' '):
            print(reply.strip(), flush=True)
            break
"#;

#[test]
fn lines_that_looped_get_bad_and_the_server_goes_on() {
    let mut server = TestServer::new("");
    server.start();
    // Cleartext, before STARTTLS: the port anyone can reach.
    let mut imap = Raw::connect(server.ports.imap);
    assert!(imap.line().starts_with("* OK"));
    for (i, line) in LOOPERS.iter().enumerate() {
        let reply = imap.ask(&format!("a{i} {line}"));
        assert!(reply.starts_with(&format!("a{i} BAD")), "{line:?}: {reply}");
    }
    assert!(imap.ask("z NOOP").starts_with("z OK"));

    // Implicit TLS, then logged in: the same lines, in every state.
    let login = format!("LOGIN {USER} \"{PASSWORD}\"");
    let mut args = vec![server.ports.imaps.to_string()];
    args.extend(LOOPERS.iter().map(|l| l.to_string()));
    args.push(login);
    args.push("SELECT INBOX".into());
    args.extend(LOOPERS.iter().map(|l| l.to_string()));
    args.push("NOOP".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = python(TLS_LINES, &args);
    let replies: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(replies.len(), LOOPERS.len() * 2 + 3, "{}", show(&out));
    for (i, reply) in replies.iter().enumerate() {
        let expected = if i == LOOPERS.len() || i == LOOPERS.len() + 1 || i == replies.len() - 1 {
            "OK"
        } else {
            "BAD"
        };
        assert!(
            reply.starts_with(&format!("t{i} {expected}")),
            "line {i}: {reply}"
        );
    }
    assert_eq!(server.exited(), None, "the server died");
    assert_eq!(server.stop(), 0);
}

#[test]
fn before_login_a_literal_carries_a_credential_not_a_message() {
    let mut server = TestServer::new("");
    server.start();
    let mut imap = Raw::connect(server.ports.imap);
    assert!(imap.line().starts_with("* OK"));
    // 26 MB announced: refused at once, nothing asked for, nothing held.
    let reply = imap.ask("a1 LOGIN {26000000}");
    assert!(reply.starts_with("a1 BAD [TOOBIG]"), "{reply}");
    // Just over the limit before login (8 KiB by default), and a non-synchronising one.
    let reply = imap.ask("a2 LOGIN {8193}");
    assert!(reply.starts_with("a2 BAD [TOOBIG]"), "{reply}");
    // A credential-sized literal is asked for as usual.
    assert_eq!(imap.ask("a3 LOGIN {5}"), "+ Ready for literal data");
    let reply = imap.ask("alice x");
    assert!(reply.starts_with("a3 "), "{reply}");
    let reply = imap.ask("a4 LOGIN {9000+}");
    assert!(reply.starts_with("* BYE [TOOBIG]"), "{reply}");
    assert_eq!(imap.rest(), "", "closed after the BYE");
    assert_eq!(server.stop(), 0);
}

#[test]
fn an_over_long_line_gets_a_tagged_answer() {
    let mut server = TestServer::new("");
    server.start();
    let mut imap = Raw::connect(server.ports.imap);
    assert!(imap.line().starts_with("* OK"));
    let long = "x".repeat(100_000);
    let reply = imap.ask(&format!("a1 LOGIN user \"{long}\""));
    assert_eq!(reply, "a1 BAD [TOOBIG] Command line too long");
    assert!(imap.ask("a2 NOOP").starts_with("a2 OK"));
    assert_eq!(server.stop(), 0);
}

/// Sends `bytes` one at a time, `gap` apart, until the server closes or answers; returns
/// what it said and when.
fn trickle(stream: &mut TcpStream, bytes: &[u8], gap: Duration) -> (String, Duration) {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let mut said = Vec::new();
    let mut buf = [0u8; 512];
    for byte in bytes.iter().cycle() {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        let wait = Instant::now() + gap;
        while Instant::now() < wait {
            match stream.read(&mut buf) {
                Ok(0) => {
                    return (
                        String::from_utf8_lossy(&said).into_owned(),
                        started.elapsed(),
                    );
                }
                Ok(n) => said.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never cut off");
    }
    (
        String::from_utf8_lossy(&said).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_slow_client_is_cut_off_whatever_it_trickles() {
    let mut server = TestServer::new("[limits]\ncommand_timeout_secs = 2\nmin_data_rate = 1000\n");
    server.start();
    let gap = Duration::from_millis(300);

    // IMAP: a command line at a byte every 300 ms (the idle timeout is 30 minutes).
    let mut imap = TcpStream::connect(("127.0.0.1", server.ports.imap)).expect("connect");
    let (said, took) = trickle(&mut imap, b"a1 NOOP NOOP NOOP NOOP NOOP", gap);
    assert!(
        said.contains("* BYE Autologout; command not received in time"),
        "{said}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");

    // POP3 and SMTP command lines.
    let mut pop = TcpStream::connect(("127.0.0.1", server.ports.pop3)).expect("connect");
    let (said, _) = trickle(&mut pop, b"CAPAAAAAAAAAAAAAAAAAAAAAAA", gap);
    assert!(
        said.contains("-ERR Command not received in time, closing"),
        "{said}"
    );
    let mut smtp = TcpStream::connect(("127.0.0.1", server.ports.mx)).expect("connect");
    let (said, _) = trickle(&mut smtp, b"EHLO slow.example.slow.example.slow", gap);
    assert!(said.contains("421 4.4.2"), "{said}");
    assert!(said.contains("command not received in time"), "{said}");

    // HTTPS: a request head one header at a time (over TLS, each line well within the
    // idle timeout): cut off once the head's time is over.
    let script = r#"
import socket, ssl, sys, time
ctx = ssl._create_unverified_context()
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=20))
start = time.time()
s.sendall(b'GET /health HTTP/1.1\r\n')
try:
    for i in range(40):
        time.sleep(0.3)
        s.sendall(b'X-Slow: %d\r\n' % i)
    print('never cut off')
except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
    print('cut off after %.1f s' % (time.time() - start))
"#;
    let out = python(script, &[&server.ports.https.to_string()]);
    assert!(stdout(&out).starts_with("cut off after"), "{}", show(&out));

    // Someone else is served meanwhile and after.
    let mut other = Raw::connect(server.ports.imap);
    assert!(other.line().starts_with("* OK"));
    assert!(other.ask("b NOOP").starts_with("b OK"));
    assert_eq!(server.stop(), 0);
}

#[test]
fn smtp_data_must_keep_the_minimum_rate() {
    let mut server = TestServer::new("[limits]\ncommand_timeout_secs = 2\nmin_data_rate = 1000\n");
    server.start();
    // Submission over implicit TLS, logged in, then DATA at a few octets a second.
    let script = r#"
import smtplib, ssl, sys, time
ctx = ssl._create_unverified_context()
s = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)
s.login(sys.argv[2], sys.argv[3])
s.mail(sys.argv[2]); s.rcpt(sys.argv[2])
code, _ = s.docmd('DATA')
assert code == 354, code
start = time.time()
try:
    for i in range(60):
        s.send(b'Subject: slow %d\r\n' % i)
        time.sleep(0.3)
    print('never cut off')
except (smtplib.SMTPServerDisconnected, BrokenPipeError, ConnectionResetError, ssl.SSLError):
    print('cut off after %.1f s' % (time.time() - start))
"#;
    let out = python(
        script,
        &[&server.ports.submissions.to_string(), USER, PASSWORD],
    );
    assert!(stdout(&out).starts_with("cut off after"), "{}", show(&out));
    assert!(
        server.log().contains("command not received in time"),
        "{}",
        server.log()
    );
    // The half message was not kept.
    assert!(inbox(&server, USER, PASSWORD).is_empty());
    assert_eq!(server.stop(), 0);
}

#[test]
fn a_client_that_does_not_log_in_is_closed_at_the_login_deadline() {
    let mut server = TestServer::new("[limits]\nlogin_timeout_secs = 2\n");
    server.start();
    let started = Instant::now();
    let mut imap = Raw::connect(server.ports.imap);
    assert!(imap.line().starts_with("* OK"));
    // Busy, never idle: NOOPs keep the idle timer at zero, not the login deadline.
    let mut bye = String::new();
    for i in 0..40 {
        let reply = imap.ask(&format!("n{i} NOOP"));
        if reply.starts_with("* BYE") {
            bye = reply;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(bye, "* BYE Autologout; no login in time");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    // A client that logs in is not concerned.
    let script = r#"
import imaplib, ssl, sys, time
ctx = ssl._create_unverified_context()
m = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ctx)
m.login(sys.argv[2], sys.argv[3])
time.sleep(3)
print(m.noop()[0])
"#;
    let out = python(script, &[&server.ports.imaps.to_string(), USER, PASSWORD]);
    assert_eq!(stdout(&out).trim(), "OK", "{}", show(&out));
    assert_eq!(server.stop(), 0);
}

#[test]
fn one_address_holds_few_unauthenticated_connections_across_listeners() {
    let mut server = TestServer::new("[limits]\nmax_unauthenticated_per_address = 3\n");
    server.start();
    std::thread::sleep(Duration::from_millis(300)); // start()'s own probe leaves its slot
    let mut held = Vec::new();
    for port in [server.ports.imap, server.ports.pop3, server.ports.mx] {
        let mut conn = Raw::connect(port);
        let greeting = conn.line();
        assert!(!greeting.contains("Too many"), "{greeting}");
        held.push(conn);
    }
    // The fourth, on any listener, gets that listener's busy reply and is closed.
    let mut fourth = Raw::connect(server.ports.submission);
    assert_eq!(
        fourth.line(),
        "421 4.3.2 Too many connections, try again later"
    );
    assert_eq!(fourth.rest(), "");
    let mut fifth = Raw::connect(server.ports.pop3);
    assert!(
        fifth
            .line()
            .starts_with("-ERR [SYS/TEMP] Too many connections")
    );

    // One leaves: its place is free again.
    held.pop();
    std::thread::sleep(Duration::from_millis(300));
    let mut again = Raw::connect(server.ports.pop3);
    assert!(again.line().starts_with("+OK"));
    drop(again);
    std::thread::sleep(Duration::from_millis(300));

    // Logged-in sessions do not count: three logged-in clients, then a new one gets in.
    let script = r#"
import imaplib, ssl, sys, time
ctx = ssl._create_unverified_context()
ms = []
for i in range(3):
    m = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ctx)
    m.login(sys.argv[2], sys.argv[3])
    ms.append(m)
print('logged in', len(ms), flush=True)
time.sleep(3)
"#;
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args([&server.ports.imaps.to_string(), USER, PASSWORD])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().expect("stdout")),
        &mut line,
    )
    .expect("read");
    assert_eq!(line.trim(), "logged in 3");
    let mut fresh = Raw::connect(server.ports.imap);
    assert!(
        fresh.line().starts_with("* OK"),
        "a logged-in session holds no place"
    );
    let _ = child.wait();
    assert!(
        server
            .log()
            .contains("too many connections not logged in from this address")
    );
    assert_eq!(server.stop(), 0);
}
