//! SMTP under bad and unusual input, on real TLS sessions: bare LF and NUL refused (no
//! smuggling through `\n.\n`), 8-bit headers and addresses without SMTPUTF8, SIZE, BDAT
//! chunks, 10,000 pipelined recipients, garbage; and durability: what got a 250 survives
//! `kill -9`, what did not is nowhere.

mod common;

use common::*;

/// A python client on the implicit-TLS submission port, logged in as [`USER`]: sends
/// `payload` (hex on stdin; after EHLO and AUTH) and prints every reply line until the server closes or is
/// silent for `quiet` seconds. Optionally `kill` is a pid to SIGKILL right after sending.
const CLIENT: &str = r#"
import base64, socket, ssl, sys, time
port, user, password, quiet = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
payload = bytes.fromhex(sys.stdin.read())
ctx = ssl._create_unverified_context()
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port)))
f = s.makefile('rb')
def line():
    l = f.readline()
    sys.stdout.write(l.decode('utf-8', 'replace'))
    return l
line()
s.sendall(b'EHLO client.test\r\n')
while line()[3:4] == b'-': pass
token = base64.b64encode(b'\0' + user.encode() + b'\0' + password.encode())
s.sendall(b'AUTH PLAIN ' + token + b'\r\n')
line()
s.sendall(payload)
s.settimeout(quiet)
try:
    while line(): pass
except (socket.timeout, TimeoutError, ssl.SSLError, ConnectionError):
    pass
"#;

fn session(server: &TestServer, payload: &[u8], quiet: &str) -> String {
    let port = server.ports.submissions.to_string();
    let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c")
        .arg(CLIENT)
        .args([&port, USER, PASSWORD, quiet]);
    let out = run_with_stdin(cmd, &hex);
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn envelope(extra_mail: &str) -> String {
    format!("MAIL FROM:<{USER}>{extra_mail}\r\nRCPT TO:<{USER}>\r\n")
}

/// A server whose trust space has far.test, routed to a closed loopback port.
fn far_server() -> TestServer {
    let closed = free_port();
    let server = TestServer::new(&format!(
        "[[route]]\ndomain = \"far.test\"\nhost = \"127.0.0.1:{closed}\"\n"
    ));
    server.import_whitelist(&[("far.test", "CN=mx.far.test,O=Far,C=FR")]);
    server
}

fn stored(server: &TestServer) -> Vec<String> {
    inbox(server, USER, PASSWORD)
}

#[test]
fn bad_content_is_refused_whole_and_the_session_goes_on() {
    let mut server = TestServer::new("[limits]\nmax_message_size = 100000\n");
    server.start();
    let header = format!("From: {USER}\r\nSubject: test\r\n\r\n");

    // Bare LF: "\n.\n" does not end the data (no smuggled second message), and the whole
    // message is refused once the real end comes.
    let smuggle = format!(
        "{}DATA\r\n{header}first\n.\nMAIL FROM:<{USER}>\nRCPT TO:<{USER}>\nDATA\nsmuggled-marker\n.\r\n.\r\nNOOP\r\nQUIT\r\n",
        envelope("")
    );
    let t = session(&server, smuggle.as_bytes(), "5");
    assert!(t.contains("554 5.6.0 Bare LF in the message"), "{t}");
    assert!(
        t.contains("250 2.0.0 OK\r\n221 2.0.0 Bye"),
        "the session goes on:\n{t}"
    );

    // Bare CR: "\r.\r" is a line end to some MTAs; refused as bare LF is.
    let cr = format!(
        "{}DATA\r\n{header}first\r.\rsmuggled-cr-marker\r\n.\r\nNOOP\r\nQUIT\r\n",
        envelope("")
    );
    let t = session(&server, cr.as_bytes(), "5");
    assert!(t.contains("554 5.6.0 Bare CR in the message"), "{t}");
    assert!(t.contains("250 2.0.0 OK\r\n221 2.0.0 Bye"), "{t}");

    let nul = format!("{}DATA\r\n{header}a\0b\r\n.\r\nQUIT\r\n", envelope(""));
    let t = session(&server, nul.as_bytes(), "5");
    assert!(
        t.contains("554 5.6.0 The message contains NUL characters"),
        "{t}"
    );

    // 8-bit headers need SMTPUTF8; with it, the same message is taken.
    let utf8 = "Subject: compte rendu d'échographie\r\n";
    let plain = format!(
        "{}DATA\r\nFrom: {USER}\r\n{utf8}\r\nbody\r\n.\r\nQUIT\r\n",
        envelope("")
    );
    let t = session(&server, plain.as_bytes(), "5");
    assert!(
        t.contains("554 5.6.7 8-bit characters in the headers need SMTPUTF8"),
        "{t}"
    );
    let with = format!(
        "{}DATA\r\nFrom: {USER}\r\n{utf8}\r\nutf8-marker\r\n.\r\nQUIT\r\n",
        envelope(" SMTPUTF8")
    );
    let t = session(&server, with.as_bytes(), "5");
    assert!(t.contains("250 2.0.0 Message accepted"), "{t}");
    let t = session(
        &server,
        format!("MAIL FROM:<{USER}>\r\nRCPT TO:<médecin@hopital.test>\r\nQUIT\r\n").as_bytes(),
        "5",
    );
    assert!(
        t.contains("553 5.6.7 A non-ASCII address needs the SMTPUTF8 parameter"),
        "{t}"
    );

    // SIZE: announced too big, refused at MAIL; sent too big, read to the end and refused.
    let t = session(
        &server,
        format!("MAIL FROM:<{USER}> SIZE=200000\r\nQUIT\r\n").as_bytes(),
        "5",
    );
    assert!(
        t.contains("552 5.3.4 Message size exceeds the fixed limit"),
        "{t}"
    );
    let big = "x".repeat(998) + "\r\n";
    let data = format!(
        "{}DATA\r\n{header}{}.\r\nNOOP\r\nQUIT\r\n",
        envelope(""),
        big.repeat(200)
    );
    let t = session(&server, data.as_bytes(), "10");
    assert!(
        t.contains("552 5.3.4 Message size exceeds the fixed limit\r\n250 2.0.0 OK"),
        "{t}"
    );

    // Garbage, pipelined: one error each, then a normal end.
    let t = session(
        &server,
        b"\x01\x02garbage\r\nMAIL\r\nRCPT TO:<\r\nBDAT x\r\nQUIT\r\n",
        "5",
    );
    assert_eq!(t.matches("\r\n5").count(), 4, "{t}");
    assert!(t.ends_with("221 2.0.0 Bye\r\n"), "{t}");

    let messages = stored(&server);
    assert_eq!(messages.len(), 1, "only the SMTPUTF8 message was stored");
    assert!(messages[0].contains("utf8-marker"));
    assert!(!messages[0].contains("smuggled-marker"));
    assert!(
        server.log().contains("message accepted"),
        "{}",
        server.log()
    );
    assert_eq!(server.stop(), 0);
}

#[test]
fn bdat_chunks_make_one_message_and_refusals_keep_the_session_in_step() {
    let mut server = TestServer::new("[limits]\nmax_message_size = 5000\n");
    server.start();
    let part1 = format!("From: {USER}\r\nSubject: chunks\r\n\r\nfirst half, ");
    let part2 = "second half bdat-marker\r\n";
    let payload = format!(
        "BDAT 5\r\nhelloNOOP\r\n{}BDAT {}\r\n{part1}BDAT {} LAST\r\n{part2}QUIT\r\n",
        envelope(""),
        part1.len(),
        part2.len()
    );
    let t = session(&server, payload.as_bytes(), "5");
    assert!(
        t.contains("503 5.5.1 Need MAIL before BDAT\r\n250 2.0.0 OK"),
        "{t}"
    );
    assert!(
        t.contains(&format!("250 2.0.0 {} octets received", part1.len())),
        "{t}"
    );
    assert!(t.contains("250 2.0.0 Message accepted"), "{t}");

    // Over the limit across chunks: read, dropped, 552 at LAST; the next command is a command.
    let chunk = "y".repeat(3000);
    let payload = format!(
        "{}BDAT 3000\r\n{chunk}BDAT 3000 LAST\r\n{chunk}NOOP\r\nQUIT\r\n",
        envelope("")
    );
    let t = session(&server, payload.as_bytes(), "5");
    assert!(
        t.contains("552 5.3.4 Message size exceeds the fixed limit\r\n250 2.0.0 OK"),
        "{t}"
    );

    let messages = stored(&server);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains("first half, second half bdat-marker"),
        "{}",
        messages[0]
    );
    assert_eq!(server.stop(), 0);
}

#[test]
fn ten_thousand_pipelined_recipients_get_ten_thousand_replies() {
    let mut server = far_server();
    server.start();
    let mut payload = format!("MAIL FROM:<{USER}>\r\n");
    for i in 0..10_000 {
        payload += &format!("RCPT TO:<patient{i}@far.test>\r\n");
    }
    payload += &format!("DATA\r\nFrom: {USER}\r\n\r\nmany\r\n.\r\nQUIT\r\n");
    let t = session(&server, payload.as_bytes(), "30");
    assert_eq!(
        t.matches("250 2.1.5 Recipient OK").count(),
        100,
        "the default limit"
    );
    assert_eq!(t.matches("452 4.5.3 Too many recipients").count(), 9_900);
    assert!(
        t.contains("queued as"),
        "{}",
        &t[t.len().saturating_sub(500)..]
    );
    let queued = server.cli_ok(&["queue", "list"]);
    assert_eq!(queued.matches("-> patient").count(), 100, "{queued}");
    assert_eq!(server.stop(), 0);
}

#[test]
fn what_got_a_250_survives_kill_9_and_what_did_not_is_nowhere() {
    let mut server = far_server();
    server.start();

    // Killed in the middle of DATA, the client still connected: nothing may appear.
    let partial = format!(
        "{}DATA\r\nFrom: {USER}\r\n\r\nhalf-marker\r\n",
        envelope("")
    );
    let mut client = std::process::Command::new("python3")
        .arg("-c")
        .arg(CLIENT)
        .args([&server.ports.submissions.to_string(), USER, PASSWORD, "30"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let hex: String = partial.bytes().map(|b| format!("{b:02x}")).collect();
    std::io::Write::write_all(&mut client.stdin.take().expect("stdin"), hex.as_bytes())
        .expect("payload");
    let replies = std::io::BufReader::new(client.stdout.take().expect("stdout"));
    let in_data = std::io::BufRead::lines(replies)
        .map_while(Result::ok)
        .any(|line| line.starts_with("354"));
    assert!(in_data, "the client never reached DATA");
    signal(server.pid(), "KILL");
    while server.exited().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = client.wait();
    server.start();
    assert!(stored(&server).is_empty());

    // Accepted, then killed at once: the local copy and the queue entry are both there.
    let full = format!(
        "MAIL FROM:<{USER}>\r\nRCPT TO:<{USER}>\r\nRCPT TO:<dr@far.test>\r\nDATA\r\nFrom: {USER}\r\n\r\nkept-marker\r\n.\r\n"
    );
    let t = session(&server, full.as_bytes(), "2");
    assert!(t.contains("queued as"), "{t}");
    signal(server.pid(), "KILL");
    while server.exited().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let queued = server.cli_ok(&["queue", "list"]);
    assert!(queued.contains("-> dr@far.test"), "{queued}");
    server.start();
    let messages = stored(&server);
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("kept-marker"));
    assert_eq!(server.stop(), 0);
}
