//! The server under test: a data directory with its config file on free loopback ports, at
//! most one `mssante serve` running on it, stopped (SIGTERM, then kill on drop) by the test.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;

/// The ports of one test server, by listener.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub mx: u16,
    pub submission: u16,
    pub submissions: u16,
    pub imap: u16,
    pub imaps: u16,
    pub pop3: u16,
    pub pop3s: u16,
    pub https: u16,
}

impl Ports {
    fn free() -> Ports {
        Ports {
            mx: free_port(),
            submission: free_port(),
            submissions: free_port(),
            imap: free_port(),
            imaps: free_port(),
            pop3: free_port(),
            pop3s: free_port(),
            https: free_port(),
        }
    }
}

/// A data directory with its config file, and at most one running server on it.
pub struct TestServer {
    /// Holds the config file and the data directory; removed on drop.
    pub dir: tempfile::TempDir,
    /// The data directory.
    pub data: PathBuf,
    /// The config file.
    pub config: PathBuf,
    /// Where each protocol listens.
    pub ports: Ports,
    child: Option<Child>,
    /// Lines the server printed on stdout (the banner).
    pub stdout: Vec<String>,
    stderr_path: PathBuf,
}

impl TestServer {
    /// A dev-mode config on free ports, with `extra` TOML appended; the domain and mailbox
    /// of [`USER`] are created with the CLI, before any `serve`.
    pub fn new(extra: &str) -> TestServer {
        let server = TestServer::bare(extra);
        server.cli_ok(&["domain", "add", DOMAIN]);
        server.cli_stdin_ok(&["user", "add", USER, "--password-stdin"], PASSWORD);
        server
    }

    /// Like [`TestServer::new`], with `listener_extra` added to every `[[listener]]` table.
    pub fn with_listener_options(extra: &str, listener_extra: &str) -> TestServer {
        let server = TestServer::bare_with(extra, listener_extra);
        server.cli_ok(&["domain", "add", DOMAIN]);
        server.cli_stdin_ok(&["user", "add", USER, "--password-stdin"], PASSWORD);
        server
    }

    /// The same, without domain or mailbox.
    pub fn bare(extra: &str) -> TestServer {
        TestServer::bare_with(extra, "")
    }

    /// A production config (no TEST PKI, no domain, no mailbox): the test adds `kek_file`
    /// and the `[tls]` material production requires before the first command.
    pub fn production(extra: &str) -> TestServer {
        let server = TestServer::bare(extra);
        let text = std::fs::read_to_string(&server.config).expect("read config");
        let text = text.replacen("mode = \"dev\"", "mode = \"production\"", 1);
        std::fs::write(&server.config, text).expect("write config");
        server
    }

    fn bare_with(extra: &str, listener_extra: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let config = dir.path().join("mssante.toml");
        let ports = Ports::free();
        let listeners = [
            ("mx", ports.mx, "starttls"),
            ("submission", ports.submission, "starttls"),
            ("submission", ports.submissions, "implicit"),
            ("imap", ports.imap, "starttls"),
            ("imap", ports.imaps, "implicit"),
            ("pop3", ports.pop3, "starttls"),
            ("pop3", ports.pop3s, "implicit"),
            ("https", ports.https, "implicit"),
        ];
        let mut text = format!("mode = \"dev\"\nshutdown_grace_secs = 10\n{extra}\n");
        for (protocol, port, tls) in listeners {
            text += &format!(
                "\n[[listener]]\nprotocol = \"{protocol}\"\nbind = \"127.0.0.1:{port}\"\ntls = \"{tls}\"\n{listener_extra}\n"
            );
        }
        std::fs::write(&config, text).expect("write config");
        let stderr_path = dir.path().join("serve.log");
        TestServer {
            dir,
            data,
            config,
            ports,
            child: None,
            stdout: Vec::new(),
            stderr_path,
        }
    }

    /// A `mssante` command on this config and data directory (not yet run).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--data")
            .arg(&self.data)
            .args(args)
            .env("MSSANTE_LOG", "info")
            .env_remove("MSSANTE_CONFIG")
            .env_remove("MSSANTE_DATA");
        cmd
    }

    /// Runs a CLI command with `stdin` as its input.
    pub fn cli_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run_with_stdin(self.command(args), stdin)
    }

    /// Runs a CLI command with no input.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_stdin(args, "")
    }

    /// Runs a CLI command that must succeed; returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        self.cli_stdin_ok(args, "")
    }

    /// Runs a CLI command with input that must succeed; returns its stdout.
    pub fn cli_stdin_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.cli_stdin(args, stdin);
        assert!(
            out.status.success(),
            "mssante {args:?} failed:\n{}",
            show(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `serve` and waits until every listener accepts connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(&self.stderr_path).expect("log file");
        let mut child = self
            .command(&["serve"])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn mssante serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        // The banner comes after every socket is bound; production prints none, its
        // `server.start` audit record comes after the sockets too.
        let production = std::fs::read_to_string(&self.config)
            .is_ok_and(|c| c.contains("mode = \"production\""));
        loop {
            if production && self.log().contains("event=\"server.start\"") {
                break;
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let done = line.starts_with("  SMTP") || line.contains("swaks --server");
                    self.stdout.push(line);
                    if done {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("mssante serve exited at start:\n{}", self.log())
                }
            }
            assert!(
                Instant::now() < deadline,
                "mssante serve did not start in 60 s:\n{}",
                self.log()
            );
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        wait_for_port(self.ports.https);
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status code.
    pub fn stop(&mut self) -> i32 {
        let mut child = self.child.take().expect("server is running");
        signal(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("mssante serve ignored SIGTERM for 30 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// Whether `serve` has exited (and its status code); once it has, it may be started again.
    pub fn exited(&mut self) -> Option<i32> {
        let child = self.child.as_mut()?;
        let status = child.try_wait().expect("wait")?;
        self.child = None;
        Some(status.code().unwrap_or(-1))
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Adds TOML to the config file, before the first `[[listener]]` (top-level keys first,
    /// then tables). Takes effect at the next start.
    pub fn add_config(&self, toml: &str) {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        let text = text.replacen("\n[[listener]]", &format!("\n{toml}\n\n[[listener]]"), 1);
        std::fs::write(&self.config, text).expect("write config");
    }

    /// Imports a whitelist of these (domain, operator DN) pairs as the trust space.
    pub fn import_whitelist(&self, domains: &[(&str, &str)]) {
        let file = self.dir.path().join(format!("liste-{}.xml", free_port()));
        std::fs::write(&file, whitelist_xml(domains)).expect("write whitelist");
        self.cli_ok(&["trust", "import", path(&file)]);
    }

    /// The TEST root CA, for clients that verify the server.
    pub fn ca_file(&self) -> PathBuf {
        self.data.join("pki").join("ca-bundle.pem")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
