//! A throwaway national directory for a test: `scripts/dev-directory` (Debian's slapd with
//! mssante's schema) on a free loopback port in a temporary directory, stopped on drop.
//! Shared by the server's tests and the directory crate's (`#[path]`), so it stands alone.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The base DN the tests use.
pub const BASE_DN: &str = "dc=mssante,dc=test";

/// A running slapd.
pub struct Slapd {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its ldaps:// port, when started with a certificate.
    pub ldaps_port: Option<u16>,
    /// Its data directory (secrets, slapd.conf, the database).
    pub dir: tempfile::TempDir,
    /// The TLS arguments of scripts/dev-directory, kept for a restart.
    tls_args: Vec<String>,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("free port");
    listener.local_addr().expect("address").port()
}

fn spawn(port: u16, dir: &Path, tls_args: &[String]) -> Child {
    Command::new(repository_root().join("scripts/dev-directory"))
        .args(["--port", &port.to_string(), "--dir"])
        .arg(dir)
        .args(tls_args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run scripts/dev-directory")
}

fn repository_root() -> PathBuf {
    // The server's tests run in the repository root, the directory crate's in directory/.
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if here.join("scripts/dev-directory").exists() {
        here
    } else {
        here.parent().map(Path::to_path_buf).unwrap_or(here)
    }
}

impl Slapd {
    /// Starts one and waits until it answers; panics (naming what is missing) when slapd
    /// is not installed.
    pub fn start() -> Slapd {
        Slapd::start_with(Vec::new(), None)
    }

    /// Also listening with TLS (ldaps://, and StartTLS on the plain port) with this
    /// certificate and key (PEM).
    pub fn start_tls(cert: &Path, key: &Path) -> Slapd {
        let ldaps = free_port();
        let args = vec![
            "--ldaps-port".to_string(),
            ldaps.to_string(),
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
        ];
        Slapd::start_with(args, Some(ldaps))
    }

    fn start_with(tls_args: Vec<String>, ldaps_port: Option<u16>) -> Slapd {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut slapd = Slapd {
            child: spawn(port, dir.path(), &tls_args),
            port,
            ldaps_port,
            dir,
            tls_args,
        };
        slapd.wait_until_up();
        slapd
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let ports = [Some(self.port), self.ldaps_port];
        while ports
            .iter()
            .flatten()
            .any(|p| TcpStream::connect(("127.0.0.1", *p)).is_err())
        {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("scripts/dev-directory exited ({status}): is slapd installed?");
            }
            assert!(Instant::now() < deadline, "slapd did not start in 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The operator's bind DN.
    pub fn admin_dn(&self) -> String {
        format!("cn=admin,{BASE_DN}")
    }

    /// The file holding the operator's password.
    pub fn admin_secret_file(&self) -> PathBuf {
        self.dir.path().join("admin.secret")
    }

    /// The operator's password.
    pub fn admin_password(&self) -> String {
        std::fs::read_to_string(self.admin_secret_file()).expect("admin secret")
    }

    /// Runs ldapsearch on the base (anonymous: the public view; `as_reader`: the
    /// authorised reader's) with `filter` and `attrs`; returns its LDIF (-LLL).
    pub fn ldapsearch(&self, as_reader: bool, filter: &str, attrs: &[&str]) -> String {
        let mut cmd = Command::new("ldapsearch");
        cmd.args([
            "-x",
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-H",
            &self.url(),
            "-b",
            BASE_DN,
        ]);
        if as_reader {
            cmd.args(["-D", &format!("cn=reader,{BASE_DN}"), "-y"])
                .arg(self.dir.path().join("reader.secret"));
        }
        let out = cmd
            .arg(filter)
            .args(attrs)
            .output()
            .expect("run ldapsearch");
        assert!(
            out.status.success(),
            "ldapsearch {filter}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Freezes slapd (SIGSTOP): connections are accepted by the kernel, never answered.
    /// Returns once every thread of slapd is stopped: `kill` returns when the signal is
    /// queued, and on a busy machine another thread could still answer a request before
    /// the stop reaches it.
    pub fn freeze(&self) {
        self.signal("STOP");
        let tasks = PathBuf::from(format!("/proc/{}/task", self.pid()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !every_thread_stopped(&tasks) {
            assert!(Instant::now() < deadline, "slapd did not stop in 10 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lets a frozen slapd go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn pid(&self) -> String {
        let pid = std::fs::read_to_string(self.dir.path().join("slapd.pid")).expect("slapd.pid");
        pid.trim().to_string()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} slapd");
    }

    /// Stops slapd (and the script); the data stays until drop, so [`Slapd::restart`]
    /// brings the same directory back.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        // The script's slapd: wait until its port is closed.
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the same directory again on the same port.
    pub fn restart(&mut self) {
        self.child = spawn(self.port, self.dir.path(), &self.tls_args);
        self.wait_until_up();
    }
}

/// Whether every thread listed under `/proc/PID/task` is in the stopped state (`T`).
fn every_thread_stopped(tasks: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(tasks) else {
        return false;
    };
    entries.flatten().all(|task| {
        // The state follows the command name in parentheses, which may hold spaces.
        std::fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| {
                let after = stat.rsplit_once(')')?.1;
                after.split_whitespace().next().map(|state| state == "T")
            })
            .unwrap_or(false)
    })
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.thaw_quietly();
        self.stop();
    }
}

impl Slapd {
    fn thaw_quietly(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("slapd.pid")) {
            let _ = Command::new("kill").args(["-CONT", pid.trim()]).status();
        }
    }
}
