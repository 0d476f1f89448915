//! gpgsm (GnuPG's S/MIME tool, Debian's gpgsm 2.2) as a correspondent's mail client: a
//! throwaway GnuPG home that trusts one root CA and holds one person's key. Shared by the
//! server's tests and the smime crate's (`#[path]`), so it needs nothing but std, tempfile
//! and `openssl_cli.rs`.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::Path;
use std::process::{Command, Stdio};

use super::openssl_cli::openssl;

/// gpgsm options to read the passphrase from standard input.
const LOOPBACK: [&str; 4] = ["--pinentry-mode", "loopback", "--passphrase-fd", "0"];
/// The passphrase of the identity's key.
const PASSPHRASE: &[u8] = b"pw\n";

/// A GnuPG home in a temp dir; its agent is stopped on drop.
pub struct Gpgsm {
    home: tempfile::TempDir,
}

impl Gpgsm {
    /// Trusts the `roots` (PEM), knows the `others` certificates (intermediates,
    /// correspondents), and holds the key of `identity` (certificate and key, PEM) if given.
    pub fn new(roots: &[&Path], others: &[&Path], identity: Option<(&Path, &Path)>) -> Gpgsm {
        let home = tempfile::tempdir().expect("gnupg home");
        let h = home.path();
        std::fs::write(h.join("gpg-agent.conf"), "allow-loopback-pinentry\n").expect("conf");
        std::fs::write(
            h.join("gpgsm.conf"),
            "disable-crl-checks\ndisable-policy-checks\n",
        )
        .expect("conf");
        let trusted: String = roots
            .iter()
            .map(|root| format!("{} S\n", fingerprint(root)))
            .collect();
        std::fs::write(h.join("trustlist.txt"), trusted).expect("trust");
        let g = Gpgsm { home };
        for cert in roots.iter().chain(others) {
            g.run(&["--import", text(cert)], b"");
        }
        if let Some((cert, key)) = identity {
            // gpgsm 2.2 reads only the older PKCS#12 encryption (3DES, SHA-1 MAC).
            let p12 = g.home.path().join("identity.p12");
            openssl(
                Path::new("."),
                &[
                    "pkcs12",
                    "-export",
                    "-in",
                    text(cert),
                    "-inkey",
                    text(key),
                    "-out",
                    text(&p12),
                    "-passout",
                    "pass:pw",
                    "-keypbe",
                    "PBE-SHA1-3DES",
                    "-certpbe",
                    "PBE-SHA1-3DES",
                    "-macalg",
                    "sha1",
                ],
            );
            // gpgsm 2.2 under load was seen once to fail this import with the right
            // passphrase ("decryption failed" on the key bag); a second try is what its
            // user would do. The import is the correspondent's set-up, not what is tested.
            let import = ["--import", text(&p12)];
            let first = g.output(&[&LOOPBACK[..], &import[..]].concat(), PASSPHRASE);
            if !first.status.success() {
                g.run_with_passphrase(&import);
            }
        }
        g
    }

    /// Runs gpgsm in batch mode with `args`, `stdin` as input; stdout then stderr. Panics
    /// with gpgsm's words when it fails.
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let out = self.output(args, stdin);
        assert!(
            out.status.success(),
            "gpgsm {args:?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        [out.stdout, out.stderr].concat()
    }

    /// gpgsm's output, whether it succeeded or not.
    fn output(&self, args: &[&str], stdin: &[u8]) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new("gpgsm")
            .arg("--batch")
            .args(args)
            .env("GNUPGHOME", self.home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run gpgsm (apt-get install gpgsm)");
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin).expect("gpgsm stdin");
        }
        child.wait_with_output().expect("gpgsm")
    }

    /// [`Gpgsm::run`] for commands that use the private key (passphrase "pw").
    pub fn run_with_passphrase(&self, args: &[&str]) -> Vec<u8> {
        self.run(&[&LOOPBACK[..], args].concat(), PASSPHRASE)
    }
}

impl Drop for Gpgsm {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", self.home.path())
            .status();
    }
}

/// The SHA-1 fingerprint of a PEM certificate, as gpgsm takes it for `-r` and `-u`.
pub fn fingerprint(cert: &Path) -> String {
    let out = openssl(
        Path::new("."),
        &["x509", "-in", text(cert), "-noout", "-fingerprint", "-sha1"],
    );
    let out = String::from_utf8_lossy(&out);
    out.trim()
        .rsplit('=')
        .next()
        .unwrap_or_default()
        .replace(':', "")
}

fn text(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}
