//! The command line as an administrator meets it: bad configurations refused with the file,
//! line and key (exit 2), a busy port or a second server refused in one line, administration
//! before the first start and while the server runs, `--help` on every command.

mod common;

use std::process::Output;

use common::*;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one line `mssante` printed on stderr (log lines aside).
fn error_line(out: &Output) -> String {
    let text = stderr(out);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("mssante: "))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{}", show(out));
    lines[0].to_string()
}

/// `mssante serve` on this config file and data directory, run to its end.
fn serve_with(config: &std::path::Path, data: &std::path::Path) -> Output {
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--config")
        .arg(config)
        .arg("--data")
        .arg(data)
        .arg("serve");
    run_with_stdin(cmd, "")
}

/// Runs `serve` on a config made of `text` and returns the refusal.
fn refused_config(text: &str) -> (Output, String, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, text).expect("write");
    let out = serve_with(&config, &dir.path().join("data"));
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit 2 expected:\n{}",
        show(&out)
    );
    let line = error_line(&out);
    assert!(
        line.contains(&config.display().to_string()),
        "names the file: {line}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing created before the config is accepted"
    );
    (out, line, config, dir)
}

#[test]
fn unknown_key_is_refused_with_file_line_and_key() {
    let (_, line, _, _) = refused_config("mode = \"dev\"\n\n[limits]\nmax_mesage_size = 1000\n");
    assert!(line.contains("line 4"), "{line}");
    assert!(line.contains("max_mesage_size"), "{line}");
}

#[test]
fn wrong_type_is_refused_with_file_line_and_key() {
    let (_, line, _, _) = refused_config("mode = \"dev\"\nshutdown_grace_secs = \"soon\"\n");
    assert!(line.contains("line 2"), "{line}");
    assert!(line.contains("`shutdown_grace_secs`"), "{line}");
}

#[test]
fn broken_toml_is_refused_with_its_line() {
    let (_, line, _, _) = refused_config("mode = \"dev\"\n\nhostname = mail.hopital.test\n");
    assert!(line.contains("line 3"), "{line}");
}

#[test]
fn missing_certificate_file_is_refused() {
    let (_, line, _, _) = refused_config(
        "mode = \"dev\"\n[tls]\ncertificate = \"nowhere/cert.pem\"\nprivate_key = \"nowhere/key.pem\"\n",
    );
    assert!(line.contains("line 3"), "{line}");
    assert!(line.contains("`tls.certificate`"), "{line}");
    assert!(line.contains("nowhere/cert.pem"), "{line}");
}

#[test]
fn unreadable_or_wrong_key_file_is_refused() {
    // Tests may run as root, who reads any file: a folder is what nobody can read as a key.
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate\n").expect("write");
    let text = format!(
        "mode = \"dev\"\n[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n",
        cert.display(),
        dir.path().display()
    );
    let (_, line, _, _) = refused_config(&text);
    assert!(
        line.contains("line 3") && line.contains("no PEM certificate"),
        "{line}"
    );

    let server = TestServer::bare("");
    server.cli_ok(&[
        "pki",
        "issue-server",
        "mx.autre.test",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let text = format!(
        "mode = \"dev\"\n[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n",
        dir.path().join("mx.autre.test.pem").display(),
        dir.path().display()
    );
    let (_, line, _, _) = refused_config(&text);
    assert!(line.contains("line 4"), "{line}");
    assert!(line.contains("`tls.private_key`"), "{line}");
}

#[test]
fn production_refuses_test_certificates_and_exposed_cleartext() {
    let server = TestServer::bare("");
    let out_dir = server.dir.path().join("issued");
    std::fs::create_dir(&out_dir).expect("mkdir");
    server.cli_ok(&[
        "pki",
        "issue-server",
        "mail.hopital.test",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("prod.toml");
    let port = free_port();
    std::fs::write(
        &config,
        format!(
            "hostname = \"mail.hopital.test\"\nkek_file = \"kek.key\"\n[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n\n[[listener]]\nprotocol = \"imap\"\nbind = \"127.0.0.1:{port}\"\ntls = \"implicit\"\n",
            out_dir.join("mail.hopital.test.pem").display(),
            out_dir.join("mail.hopital.test.key").display()
        ),
    )
    .expect("write");
    let out = serve_with(&config, &dir.path().join("data"));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        error_line(&out).contains("TEST certificate"),
        "{}",
        show(&out)
    );

    let (_, line, _, _) = refused_config(
        "kek_file = \"kek.key\"\n[[listener]]\nprotocol = \"pop3\"\nbind = \"0.0.0.0:11110\"\ntls = \"none\"\n",
    );
    assert!(
        line.contains("line 4") && line.contains("loopback"),
        "{line}"
    );
}

#[test]
fn port_in_use_gives_one_line_and_leaves_no_server() {
    let mut server = TestServer::new("");
    let squatter = std::net::TcpListener::bind(("127.0.0.1", server.ports.imaps)).expect("bind");
    let out = server.cli(&["serve"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let line = error_line(&out);
    assert!(
        line.contains(&format!("127.0.0.1:{}", server.ports.imaps)),
        "{line}"
    );
    assert!(line.to_lowercase().contains("in use"), "{line}");
    drop(squatter);
    // The port freed, the same data directory starts normally.
    server.start();
    assert_eq!(server.stop(), 0);
}

#[test]
fn second_server_on_the_same_data_dir_is_refused() {
    let mut server = TestServer::new("");
    server.start();
    let out = server.cli(&["serve"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let line = error_line(&out);
    assert!(line.contains("already running"), "{line}");
    // The first one still serves.
    let out = curl(&[
        &format!("pop3s://127.0.0.1:{}/", server.ports.pop3s),
        "-u",
        &format!("{USER}:{PASSWORD}"),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(server.stop(), 0);
}

#[test]
fn administration_before_the_first_start_and_while_running() {
    // TestServer::new made a domain and a mailbox before any serve: the data dir exists.
    let mut server = TestServer::new("");
    let list = server.cli_ok(&["user", "list"]);
    assert!(list.contains(USER), "{list}");
    assert!(
        server.data.join("pki").join("root.pem").exists(),
        "TEST PKI made at init"
    );

    server.start();
    // A mailbox added while the server runs can log in at once.
    let bob = "bob.durand@hopital.test";
    server.cli_stdin_ok(
        &[
            "user",
            "add",
            bob,
            "--password-stdin",
            "--idnat",
            "810001234567",
            "--name",
            "Bob DURAND",
        ],
        "mot de passe de bob\n",
    );
    let imaps = format!("imaps://127.0.0.1:{}/INBOX", server.ports.imaps);
    let out = curl(&[
        &imaps,
        "-u",
        &format!("{bob}:mot de passe de bob"),
        "-X",
        "NOOP",
    ]);
    assert!(out.status.success(), "{}", show(&out));

    // A suspended mailbox cannot log in; lifting the suspension restores it.
    server.cli_ok(&["user", "suspend", bob]);
    let out = curl(&[
        &imaps,
        "-u",
        &format!("{bob}:mot de passe de bob"),
        "-X",
        "NOOP",
    ]);
    assert!(
        !out.status.success(),
        "suspended login refused:\n{}",
        show(&out)
    );
    server.cli_ok(&["user", "suspend", bob, "--lift"]);

    // A new password takes effect at once.
    server.cli_stdin_ok(
        &["user", "passwd", bob, "--password-stdin"],
        "nouveau secret\n",
    );
    let out = curl(&[&imaps, "-u", &format!("{bob}:nouveau secret"), "-X", "NOOP"]);
    assert!(out.status.success(), "{}", show(&out));

    // Bad input to the CLI: one clear line, non-zero status.
    let out = server.cli_stdin(
        &["user", "add", "pas-une-adresse", "--password-stdin"],
        "x\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    error_line(&out);
    let out = server.cli_stdin(
        &["user", "add", "x@inconnu.test", "--password-stdin"],
        "x\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(error_line(&out).contains("inconnu.test"), "{}", show(&out));
    let out = server.cli_stdin(&["user", "add", bob, "--password-stdin"], "x\n");
    assert_eq!(out.status.code(), Some(1), "duplicate:\n{}", show(&out));

    server.cli_ok(&["user", "remove", bob]);
    assert!(!server.cli_ok(&["user", "list"]).contains(bob));
    assert_eq!(server.stop(), 0);

    // Every change is in the audit trail, and the trail is intact.
    let trail = server.cli_ok(&["audit", "tail", "-n", "100"]);
    for event in [
        "domain.add",
        "user.add",
        "user.suspend",
        "user.passwd",
        "user.remove",
    ] {
        assert!(trail.contains(event), "{event} missing:\n{trail}");
    }
    assert!(server.cli_ok(&["audit", "verify"]).contains("intact"));
}

#[test]
fn idn_domains_are_stored_as_a_labels() {
    let server = TestServer::bare("");
    server.cli_ok(&["domain", "add", "hôpital-évry.test"]);
    let list = server.cli_ok(&["domain", "list"]);
    assert!(list.contains("xn--"), "{list}");
    let out = server.cli(&["domain", "add", "hôpital-évry.test"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "duplicate domain:\n{}",
        show(&out)
    );
}

#[test]
fn every_command_has_help() {
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["domain"],
        &["domain", "add"],
        &["user"],
        &["user", "add"],
        &["user", "passwd"],
        &["user", "suspend"],
        &["pki"],
        &["pki", "issue-person"],
        &["pki", "issue-server"],
        &["pki", "revoke"],
        &["audit"],
    ];
    for args in commands {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(*args).arg("--help");
        let out = run_with_stdin(cmd, "");
        assert!(out.status.success(), "{args:?} --help:\n{}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
}
