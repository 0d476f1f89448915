//! Device credentials: `mssante device add` makes an app password for Thunderbird or a
//! phone (it stands for the password and the one-time code); each device shows its last
//! use; a blocked device fails at once, even an IMAP session already open; the app password
//! is never readable at rest.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::*;

const DEVICE: &str = "Thunderbird cabinet";

/// IMAP LOGIN over IMAPS with python's imaplib: "OK" or "NO".
fn imap_login(server: &TestServer, user: &str, password: &str) -> String {
    let script = r#"
import imaplib, ssl, sys
ctx = ssl._create_unverified_context()
m = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ctx, timeout=20)
try:
    m.login(sys.argv[2], sys.argv[3])
    print("OK")
    m.logout()
except imaplib.IMAP4.error as e:
    print("NO", e)
"#;
    let out = python(script, &[&server.ports.imaps.to_string(), user, password]);
    assert!(out.status.success(), "{}", show(&out));
    stdout(&out).trim().to_string()
}

#[test]
fn a_device_logs_in_with_its_app_password_until_it_is_blocked() {
    let mut server = TestServer::new("");
    // Alice has a second factor: her password alone does not open the mailbox.
    server.cli_ok(&["user", "otp", "enroll", USER]);
    let added = server.cli_ok(&["device", "add", USER, DEVICE]);
    let app_password = added
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no app password in:\n{added}"))
        .trim()
        .to_string();
    assert_eq!(app_password.len(), 27, "{added}");
    let again = server.cli(&["device", "add", USER, DEVICE]);
    assert_eq!(again.status.code(), Some(1), "{}", show(&again));
    assert!(show(&again).contains("exists already"), "{}", show(&again));
    server.start();

    assert!(imap_login(&server, USER, PASSWORD).starts_with("NO"));
    assert_eq!(imap_login(&server, USER, &app_password), "OK");
    let listed = server.cli_ok(&["device", "list", USER]);
    assert!(
        listed.contains(DEVICE)
            && listed.contains("active")
            && listed.contains("from 127.0.0.1 (imap)"),
        "{listed}"
    );

    // An open session: NOOP works, then the device is blocked, and the next command ends it.
    let script = r#"
import imaplib, ssl, sys
ctx = ssl._create_unverified_context()
m = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ctx, timeout=20)
m.login(sys.argv[2], sys.argv[3])
print(m.noop()[0], flush=True)
sys.stdin.readline()
try:
    print(m.noop()[0], flush=True)
except imaplib.IMAP4.abort as e:
    print("ABORT", e, flush=True)
"#;
    let mut session = Command::new("python3")
        .args([
            "-c",
            script,
            &server.ports.imaps.to_string(),
            USER,
            &app_password,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(session.stdout.take().expect("stdout")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(first, "OK");
    server.cli_ok(&["device", "block", USER, DEVICE]);
    session
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("tell the session");
    let second = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(
        second.starts_with("ABORT") && second.contains("withdrawn"),
        "{second}"
    );
    assert!(session.wait().expect("python").success());

    // Blocked: refused at login too; let in again; removed: gone.
    assert!(imap_login(&server, USER, &app_password).starts_with("NO"));
    server.cli_ok(&["device", "block", USER, DEVICE, "--lift"]);
    assert_eq!(imap_login(&server, USER, &app_password), "OK");
    server.cli_ok(&["device", "remove", USER, DEVICE]);
    assert!(imap_login(&server, USER, &app_password).starts_with("NO"));
    let trail = server.cli_ok(&["audit", "show", "--user", USER]);
    for expected in [
        "device.add",
        "device.block",
        "device \"Thunderbird cabinet\"",
        "is blocked",
    ] {
        assert!(trail.contains(expected), "{expected} in:\n{trail}");
    }
    assert_eq!(server.stop(), 0);

    for file in files_under(&server.data) {
        let bytes = std::fs::read(&file).expect("read");
        assert!(
            !contains(&bytes, app_password.as_bytes()),
            "app password readable in {}",
            file.display()
        );
    }
}

#[test]
fn a_phone_pairs_with_a_code_that_works_once() {
    let mut server = TestServer::new("");
    let said = server.cli_ok(&["device", "pair", USER, "téléphone"]);
    let code = said
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no code in:\n{said}"))
        .trim()
        .to_string();
    assert_eq!(code.len(), 11, "{said}");
    server.start();
    let url = format!("https://127.0.0.1:{}/devices/pair", server.ports.https);
    let post = |body: &str| stdout(&curl(&["-w", "\n%{http_code}", "--data", body, &url]));
    // Typed in lower case without the dash: still the code.
    let typed = code.replace('-', "").to_lowercase();
    let answer = post(&format!("code={typed}"));
    assert!(answer.ends_with("200"), "{answer}");
    let app_password = answer
        .split("\"app_password\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no app password in {answer}"))
        .to_string();
    assert!(
        answer.contains(&format!("\"address\":\"{USER}\""))
            && answer.contains("\"device\":\"téléphone\"")
            && answer.contains(&format!("\"port\":{}", server.ports.imaps)),
        "{answer}"
    );
    assert_eq!(imap_login(&server, USER, &app_password), "OK");
    // Once only; a wrong code is refused the same way.
    assert!(post(&format!("code={code}")).ends_with("403"));
    assert!(post("code=AAAAA-BBBBB").ends_with("403"));
    assert!(post("nothing").ends_with("400"));
    assert!(
        server
            .cli_ok(&["device", "list", USER])
            .contains("téléphone")
    );
    let trail = server.cli_ok(&["audit", "tail", "-n", "20"]);
    assert!(
        trail.contains("device.pairing") && trail.contains("device.pair "),
        "{trail}"
    );
    assert_eq!(server.stop(), 0);
}
