//! Key escrow through the CLI: PKCS#12 import (as IGC-Santé delivers software certificates)
//! with renewal keeping the old key, a CSR answered by an outside CA, the lawful-recovery
//! export (refused without a reason, audited), and no private key readable at rest.

mod common;

use common::*;

const P12_PASSWORD: &str = "mot de passe du PKCS#12";

/// Issues an S/MIME certificate for alice from the TEST PKI; returns the PKCS#12 path and
/// the private key file.
fn issue(server: &TestServer, usage: &str, email: &str, out: &str) -> (String, String) {
    let dir = server.dir.path().join(out);
    let stem = issue_person(server, usage, email, &dir, Some(P12_PASSWORD));
    (
        format!("{}.p12", stem.display()),
        format!("{}.key", stem.display()),
    )
}

#[test]
fn pkcs12_import_renewal_csr_install_and_audited_export() {
    let server = TestServer::new("");
    let (first_p12, first_key) = issue(&server, "encryption", USER, "first");
    let (second_p12, _) = issue(&server, "encryption", USER, "second");

    // Dev mode gave alice TEST PKI keys at `user add`: keys 1 (encryption) and 2 (signature).
    let dev = server.cli_ok(&["key", "list", USER]);
    assert_eq!(dev.matches("current").count(), 2, "{dev}");
    assert!(
        dev.contains("encryption") && dev.contains("signature"),
        "{dev}"
    );

    // Import, then a renewal: the replaced keys stay, as past, to read old mail.
    let import = |p12: &str, password: &str| {
        server.cli_stdin(
            &["key", "import", USER, "--pkcs12", p12, "--password-stdin"],
            password,
        )
    };
    let out = import(&first_p12, P12_PASSWORD);
    assert!(
        stdout(&out).contains("encryption key 3 of"),
        "{}",
        show(&out)
    );
    assert!(import(&second_p12, P12_PASSWORD).status.success());
    let listed = server.cli_ok(&["key", "list", USER]);
    let line = |id: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_default()
            .to_string()
    };
    for past in ["1 ", "3 "] {
        assert!(
            line(past).contains("encryption") && line(past).contains("past"),
            "{listed}"
        );
    }
    assert!(
        line("4 ").contains("encryption") && line("4 ").contains("current"),
        "{listed}"
    );
    assert!(listed.contains("CN=810001234567"), "{listed}");

    // Wrong password, another person's certificate: refused, naming the file.
    let bad = import(&first_p12, "wrong");
    assert!(!bad.status.success());
    assert!(
        show(&bad).contains(&first_p12) && show(&bad).contains("wrong password"),
        "{}",
        show(&bad)
    );
    let (someone_p12, _) = issue(&server, "encryption", "bob@hopital.test", "bob");
    let bad = import(&someone_p12, P12_PASSWORD);
    assert!(
        show(&bad).contains("the certificate is for bob@hopital.test"),
        "{}",
        show(&bad)
    );

    // A key made here: its CSR goes to an outside CA, the certificate comes back.
    let dir = server.dir.path();
    let csr = dir.join("alice.csr");
    server.cli_ok(&[
        "key",
        "csr",
        USER,
        "--use",
        "signature",
        "--out",
        path(&csr),
    ]);
    assert!(server.cli_ok(&["key", "list", USER]).contains("pending"));
    self_signed(dir, "ca", "/CN=OUTSIDE CA");
    std::fs::write(
        dir.join("ext"),
        format!("keyUsage=critical,digitalSignature,nonRepudiation\nsubjectAltName=email:{USER}\n"),
    )
    .expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "alice.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3",
            "-extfile",
            "ext",
            "-out",
            "alice-sign.pem",
        ],
    );
    let installed = server.cli_ok(&["key", "install", USER, path(&dir.join("alice-sign.pem"))]);
    assert!(installed.contains("signature key 5 of"), "{installed}");
    let again = server.cli(&["key", "install", USER, path(&dir.join("alice-sign.pem"))]);
    assert!(show(&again).contains("no pending key"), "{}", show(&again));

    // Export: refused without a reason; with one, a PKCS#12 holding the very key imported.
    let p12 = dir.join("recovery.p12");
    let refused = server.cli_stdin(
        &[
            "key",
            "export",
            USER,
            "--reason",
            "",
            "--out",
            path(&p12),
            "--key",
            "3",
        ],
        "export password",
    );
    assert!(
        show(&refused).contains("needs its reason"),
        "{}",
        show(&refused)
    );
    assert!(!p12.exists());
    server.cli_stdin_ok(
        &[
            "key",
            "export",
            USER,
            "--reason",
            "réquisition judiciaire n° 42",
            "--out",
            path(&p12),
            "--key",
            "3",
        ],
        "export password",
    );
    let exported = openssl(
        dir,
        &[
            "pkcs12",
            "-in",
            path(&p12),
            "-passin",
            "pass:export password",
            "-nocerts",
            "-nodes",
        ],
    );
    let modulus = |pem: &[u8]| {
        let file = dir.join("k.pem");
        std::fs::write(&file, pem).expect("write");
        openssl(dir, &["rsa", "-in", path(&file), "-noout", "-modulus"])
    };
    let original = std::fs::read(&first_key).expect("original key");
    assert_eq!(modulus(&exported), modulus(&original));
    let trail = server.cli_ok(&["audit", "tail", "-n", "50"]);
    for event in ["key.import", "key.csr", "key.install", "key.export"] {
        assert!(trail.contains(event), "{event} missing:\n{trail}");
    }
    assert!(trail.contains("réquisition judiciaire n° 42"), "{trail}");

    // The private keys are nowhere readable in the data directory.
    let der = openssl(dir, &["pkey", "-in", &first_key, "-outform", "DER"]);
    let secret_part = &der[der.len() - 60..der.len() - 20];
    for file in files_under(&server.data) {
        let bytes = std::fs::read(&file).expect("read");
        assert!(
            !contains(&bytes, secret_part),
            "private key in {}",
            file.display()
        );
        assert!(
            !contains(&bytes, b"PRIVATE KEY"),
            "PEM key in {}",
            file.display()
        );
    }
}
