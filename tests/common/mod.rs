//! What the integration tests share: a real `mssante` process on free loopback ports in a
//! temporary data directory, the CLI, and the Debian clients (swaks, curl, python, openssl)
//! that talk to it.
//!
//! Every test starts its own server and stops it (SIGTERM, then kill on drop); nothing is
//! sent anywhere but 127.0.0.1.

#![allow(dead_code)] // each test binary uses its own part of this module

pub mod card;
pub mod gpgsm;
pub mod imap;
pub mod openssl_cli;
pub mod operators;
mod server;
pub mod slapd;

pub use openssl_cli::openssl;
pub use server::TestServer;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mssante");

/// The domain and mailbox every test server gets.
pub const DOMAIN: &str = "hopital.test";
/// A mailbox of [`DOMAIN`].
pub const USER: &str = "alice.martin@hopital.test";
/// Its password.
pub const PASSWORD: &str = "correct horse battery staple";

/// A port nobody uses right now, below Linux's ephemeral range (32768-60999): clients'
/// outgoing connections take ephemeral ports, and one could otherwise hold a test server's
/// port while the server restarts.
pub fn free_port() -> u16 {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // One seed per test process: successive calls then walk a permutation of the range, so
    // parallel tests never get the same port before one of them binds it.
    static SEED: OnceLock<u32> = OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        std::process::id().wrapping_mul(7919)
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
    });
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20000 + (seed.wrapping_add(n.wrapping_mul(104_729)) % 12000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between 20000 and 32000")
}

/// Fails the test with a useful message when a Debian client is missing.
pub fn require(program: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is missing: ./scripts/test installs the packages the tests need"
    );
}

/// Sends a signal by name to a process.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Waits until something accepts connections on a loopback port.
pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a command with the given standard input, capturing the output.
pub fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    let text = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    out
}

/// A command's output, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Has the TEST PKI of `server` issue alice (idNat 810001234567) a person certificate for
/// `usage` with `email` into `dir` (and a PKCS#12 with `p12_password`); returns the path of
/// the files without their extension (`.pem`, `.key`, `.p12`).
pub fn issue_person(
    server: &TestServer,
    usage: &str,
    email: &str,
    dir: &Path,
    p12_password: Option<&str>,
) -> PathBuf {
    issue_person_serial(server, usage, email, dir, p12_password).0
}

/// [`issue_person`], and the certificate's serial (to revoke it).
pub fn issue_person_serial(
    server: &TestServer,
    usage: &str,
    email: &str,
    dir: &Path,
    p12_password: Option<&str>,
) -> (PathBuf, String) {
    let mut args = vec![
        "pki",
        "issue-person",
        "--idnat",
        "810001234567",
        "--surname",
        "MARTIN",
        "--given-name",
        "ALICE",
        "--use",
        usage,
        "--email",
        email,
        "--out",
        path(dir),
    ];
    if let Some(p) = p12_password {
        args.extend(["--p12-password", p]);
    }
    let issued = server.cli_ok(&args);
    (
        dir.join(format!("810001234567-{usage}")),
        issued_serial(&issued),
    )
}

/// A throwaway self-signed RSA-2048 certificate `<stem>.pem` with key `<stem>.key` in `dir`
/// (an outside CA, a stranger's certificate).
pub fn self_signed(dir: &Path, stem: &str, subject: &str) {
    let (key, cert) = (format!("{stem}.key"), format!("{stem}.pem"));
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &cert,
            "-days", "3", "-subj", subject,
        ],
    );
}

/// TLS material from files (a localhost certificate of the TEST PKI, its bundle as client
/// anchors) with these CRL files of the TEST PKI and CRL URLs, read again every second.
pub fn tls_from_files(server: &TestServer, crl_files: &[&str], crl_urls: &[String]) {
    let certs = server.dir.path().join("certs");
    server.cli_ok(&[
        "pki",
        "issue-server",
        "localhost",
        "--organisation",
        "OPERATEUR",
        "--out",
        path(&certs),
    ]);
    let pki = server.data.join("pki");
    let list = |items: Vec<String>| {
        items
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    server.add_config(&format!(
        "[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\nclient_trust_anchors = [\"{}\"]\ncrls = [{}]\ncrl_urls = [{}]\ncrl_refresh_secs = 1\n",
        path(&certs.join("localhost.pem")),
        path(&certs.join("localhost.key")),
        path(&pki.join("ca-bundle.pem")),
        list(crl_files.iter().map(|f| path(&pki.join(f)).to_string()).collect()),
        list(crl_urls.to_vec()),
    ));
}

/// Runs a python3 script (with `args` as sys.argv[1:]); returns its output.
pub fn python(script: &str, args: &[&str]) -> Output {
    require("python3");
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).args(args);
    run_with_stdin(cmd, "")
}

/// Submits a message with swaks; returns its output.
pub fn swaks(args: &[&str]) -> Output {
    require("swaks");
    let mut cmd = Command::new("swaks");
    cmd.args(["--timeout", "30"]).args(args);
    run_with_stdin(cmd, "")
}

/// Submits as [`USER`] on the STARTTLS submission port with AUTH PLAIN and this password;
/// `extra` adds the rest (`--to`, `--body`, `--data`, ...).
pub fn submit(server: &TestServer, password: &str, extra: &[&str]) -> Output {
    let target = format!("127.0.0.1:{}", server.ports.submission);
    let mut args = vec![
        "--server",
        &target,
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        USER,
    ];
    args.extend(["--auth-password", password, "--from", USER]);
    args.extend_from_slice(extra);
    swaks(&args)
}

/// Sends on the MX of `server` with STARTTLS as another operator: `cert` is the PEM
/// certificate whose key sits next to it (`.key`), None for no client certificate; `args`
/// add the rest (`--from`, `--to`, `--body`, ...).
pub fn send_mx(server: &TestServer, cert: Option<&Path>, args: &[&str]) -> Output {
    let target = format!("127.0.0.1:{}", server.ports.mx);
    let key = cert.map(|c| c.with_extension("key"));
    let mut all = vec!["--server", &target, "--tls"];
    if let (Some(cert), Some(key)) = (cert, &key) {
        all.extend(["--tls-cert", path(cert), "--tls-key", path(key)]);
    }
    all.extend_from_slice(args);
    swaks(&all)
}

/// Runs curl (silent, errors shown, TEST certificate accepted); returns its output.
pub fn curl(args: &[&str]) -> Output {
    require("curl");
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--max-time", "30", "-k"])
        .args(args);
    run_with_stdin(cmd, "")
}

/// A plain TCP client for the tests that speak a protocol by hand.
pub struct Raw {
    reader: BufReader<TcpStream>,
}

impl Raw {
    /// Connects to a loopback port.
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Raw {
            reader: BufReader::new(stream),
        }
    }

    /// One line from the server, without its CRLF; "" at end of stream.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read a line");
        line.trim_end_matches(['\r', '\n']).to_string()
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("send");
    }

    /// Sends a line (CRLF added) and returns the next line of the reply.
    pub fn ask(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.line()
    }

    /// Everything until the server closes the connection.
    pub fn rest(&mut self) -> String {
        let mut rest = String::new();
        let _ = self.reader.read_to_string(&mut rest);
        rest
    }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// A path as a command argument (test paths are UTF-8).
pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// What a command printed on stdout.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A whitelist file in the ANS format listing these (domain, operator DN) pairs.
pub fn whitelist_xml(domains: &[(&str, &str)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListeBlanche xmlns=\"https://listeblanche.mssante.fr/schema\" DateDeGeneration=\"2026-11-23T06:00:00\">\n",
    );
    for (name, dn) in domains {
        xml += &format!(
            "  <Domaine>\n    <Nom>{name}</Nom>\n    <Description>test</Description>\n    <DNCertificatOperateur>{dn}</DNCertificatOperateur>\n    <ResponsableContact>rssi@{name}</ResponsableContact>\n    <SupportContact>support@{name}</SupportContact>\n    <DateMAJ>2026-11-01</DateMAJ>\n  </Domaine>\n"
        );
    }
    xml + "</ListeBlanche>\n"
}

/// Every message of a mailbox's INBOX over POP3S (nothing deleted), oldest first.
pub fn inbox(server: &TestServer, user: &str, password: &str) -> Vec<String> {
    let script = r#"
import poplib, ssl, sys
ctx = ssl._create_unverified_context()
m = poplib.POP3_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)
m.user(sys.argv[2])
m.pass_(sys.argv[3])
count, _ = m.stat()
for i in range(1, count + 1):
    resp, lines, octets = m.retr(i)
    sys.stdout.write(b'\r\n'.join(lines).decode('utf-8', 'replace'))
    sys.stdout.write('\n=====END=====\n')
m.quit()
"#;
    let port = server.ports.pop3s.to_string();
    let out = python(script, &[&port, user, password]);
    assert!(out.status.success(), "POP3 fetch failed:\n{}", show(&out));
    String::from_utf8_lossy(&out.stdout)
        .split("\n=====END=====\n")
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// Waits up to `secs` seconds for `check` to return Some; panics with `what` otherwise.
pub fn wait_for<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "waited {secs} s for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `subject:` line that `mssante pki issue-*` prints.
pub fn issued_subject(issue_output: &str) -> String {
    issue_output
        .lines()
        .find_map(|l| l.strip_prefix("subject:"))
        .map(|s| s.trim().to_string())
        .expect("the subject is printed")
}

/// The serial a `pki issue-*` command printed (`serial: ...`), for `pki revoke`.
pub fn issued_serial(issue_output: &str) -> String {
    issue_output
        .lines()
        .find_map(|l| l.strip_prefix("serial:"))
        .map(|s| s.trim().to_string())
        .expect("the serial is printed")
}
