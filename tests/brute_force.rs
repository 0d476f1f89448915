//! The brute-force brake against a loop of wrong IMAP logins: answers slow down, the
//! attacking address is blocked for a while, the doctor logging in from another address
//! still gets in, and the attacker's address itself is let in again once the block ends:
//! nothing can lock a doctor out for good. Every step is in the audit trail and the log.

mod common;

use common::*;

/// One IMAP LOGIN over implicit TLS from source address `from`; the tagged answer.
fn login_from(server: &TestServer, from: &str, user: &str, password: &str) -> String {
    let script = r#"
import socket, ssl, sys
port, source, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
raw = socket.create_connection(('127.0.0.1', port), timeout=30, source_address=(source, 0))
tls = ssl._create_unverified_context().wrap_socket(raw)
lines = tls.makefile('rb')
lines.readline()
quote = lambda s: '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'
tls.sendall(('a LOGIN %s %s\r\n' % (quote(user), quote(password))).encode())
while True:
    line = lines.readline().decode()
    if not line or line.startswith('a '):
        print(line.strip())
        break
"#;
    let out = python(
        script,
        &[&server.ports.imaps.to_string(), from, user, password],
    );
    assert!(out.status.success(), "{}", show(&out));
    stdout(&out).trim().to_string()
}

#[test]
fn a_login_loop_slows_down_and_blocks_the_address_never_the_doctor() {
    let mut server = TestServer::new(
        "[auth]\nfailure_delay_ms = 100\nmax_failure_delay_secs = 1\nblock_after_failures = 6\nblock_secs = 3\n",
    );
    server.start();
    for attempt in 0..6 {
        let answer = login_from(&server, "127.0.0.1", USER, &format!("guess {attempt}"));
        assert!(answer.starts_with("a NO"), "attempt {attempt}: {answer}");
    }
    // Blocked: even the right password from that address is refused, unchecked.
    assert!(login_from(&server, "127.0.0.1", USER, PASSWORD).starts_with("a NO"));
    // The doctor, from another address, gets in.
    assert!(login_from(&server, "127.0.0.2", USER, PASSWORD).starts_with("a OK"));
    // The block is temporary.
    std::thread::sleep(std::time::Duration::from_millis(3500));
    assert!(login_from(&server, "127.0.0.1", USER, PASSWORD).starts_with("a OK"));

    let trail = server.cli_ok(&["audit", "tail", "-n", "50"]);
    assert!(
        trail.contains("answered after") && trail.contains("source address blocked for"),
        "{trail}"
    );
    assert_eq!(server.stop(), 0);
    let log = server.log();
    assert!(
        log.contains("login slowed after repeated failures")
            && log.contains("source address blocked after repeated login failures"),
        "{log}"
    );
}
