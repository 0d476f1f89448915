//! The README's first command, exactly as a newcomer runs it: `mssante serve` with no config
//! and no flags, in an empty folder, on the real dev ports (10000 + the standard port). The
//! banner's own password and commands must work.
//!
//! This is the only test on the fixed dev ports; it fails with a clear message if a dev
//! server of yours already holds them.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

const DEV_PORTS: [u16; 8] = [10025, 10587, 10465, 10143, 10993, 10110, 10995, 10443];
const DEMO: &str = "jean.dupont@demo.mssante.test";

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_without_anything_prints_credentials_that_work() {
    for port in DEV_PORTS {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} is already in use (a dev server of yours?): stop it to run this test"
        );
    }
    let folder = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(BIN)
        .arg("serve")
        .current_dir(folder.path())
        .env_remove("MSSANTE_CONFIG")
        .env_remove("MSSANTE_DATA")
        .env_remove("MSSANTE_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let pid = child.id();
    let mut server = Killed(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut banner = String::new();
    while !banner.contains("curl -k") {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no banner in 60 s; so far:\n{banner}"));
        banner += &line;
        banner.push('\n');
    }
    let password = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("password"))
        .map(|p| p.trim().to_string())
        .expect("the banner shows the demo password");
    assert!(banner.contains(DEMO), "{banner}");
    assert!(
        banner.contains("port 10993") || banner.contains("port 10143"),
        "IMAP settings:\n{banner}"
    );
    assert!(
        banner.contains("port 10587") || banner.contains("port 10465"),
        "SMTP settings:\n{banner}"
    );
    assert!(
        folder
            .path()
            .join("mssante-data")
            .join("mssante.db")
            .exists()
    );

    // The swaks line of the banner, as printed.
    let swaks_line = banner
        .lines()
        .skip_while(|l| !l.contains("swaks --server"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .replace('\\', " ");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{swaks_line} --body 'Premier message de test'"))
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "the banner's swaks line:\n{swaks_line}\n{}",
        show(&out)
    );

    let creds = format!("{DEMO}:{password}");
    let out = curl(&["imaps://127.0.0.1:10993/INBOX;UID=1", "-u", &creds]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Premier message de test"),
        "{}",
        show(&out)
    );
    let out = curl(&["pop3s://127.0.0.1:10995/1", "-u", &creds]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Premier message de test"),
        "{}",
        show(&out)
    );
    let out = curl(&["https://127.0.0.1:10443/health"]);
    assert!(out.status.success(), "{}", show(&out));
    let out = curl(&[&format!(
        "https://127.0.0.1:10443/mail/config-v1.1.xml?emailaddress={DEMO}"
    )]);
    let xml = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        xml.contains("<incomingServer type=\"imap\">") && xml.contains("10993"),
        "{xml}"
    );

    signal(pid, "TERM");
    let status = server.0.wait().expect("wait");
    assert!(status.success(), "clean stop: {status:?}");

    // The second start prints no password and keeps the mail.
    let again = Command::new(BIN)
        .arg("serve")
        .current_dir(folder.path())
        .env_remove("MSSANTE_CONFIG")
        .env_remove("MSSANTE_DATA")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = again.id();
    let mut again = Killed(again);
    let mut first = String::new();
    let mut reader = BufReader::new(again.0.stdout.take().expect("stdout"));
    while !first.contains("SMTP") {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).expect("read") > 0,
            "exited:\n{first}"
        );
        first += &line;
    }
    assert!(
        !first.contains(&password),
        "the password is shown only once"
    );
    let out = curl(&["pop3s://127.0.0.1:10995/1", "-u", &creds]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Premier message"),
        "{}",
        show(&out)
    );
    signal(pid, "TERM");
    assert!(again.0.wait().expect("wait").success());
}
