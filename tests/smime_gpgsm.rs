//! gpgsm (GnuPG's S/MIME, Debian's gpgsm 2.2) as the correspondent's mail client, through
//! the server both ways: what gpgsm signs (detached or opaque) and encrypts reaches the
//! doctor clear with a valid signature; what the server signs and encrypts for a peer listed in `[smime]
//! legacy_domains`, as it went on the wire, gpgsm decrypts and verifies.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::gpgsm::{Gpgsm, fingerprint};
use common::operators::*;
use common::*;

/// `der` as a base64 body, 76 columns.
fn base64_lines(der: &[u8]) -> String {
    let text = STANDARD.encode(der);
    text.as_bytes()
        .chunks(76)
        .map(|line| format!("{}\r\n", String::from_utf8_lossy(line)))
        .collect()
}

#[test]
fn what_gpgsm_signs_and_encrypts_reaches_the_doctor_clear_with_a_valid_signature() {
    require("gpgsm");
    let mut server = TestServer::new("");
    let dir = server.dir.path().to_path_buf();
    let pki = server.data.join("pki");
    // Alice's escrowed encryption certificate, and her signature key in her own client.
    let encryption = dir.join("alice-encryption.pem");
    std::fs::write(&encryption, server.cli_ok(&["key", "cert", USER])).expect("cert");
    let signature = issue_person(&server, "signature", USER, &dir, None);
    let (sig_cert, sig_key) = (
        signature.with_extension("pem"),
        signature.with_extension("key"),
    );
    let gpgsm = Gpgsm::new(
        &[&pki.join("root.pem")],
        &[&pki.join("personnes.pem"), &encryption],
        Some((&sig_cert, &sig_key)),
    );
    server.start();

    // Sign (detached), then encrypt the multipart/signed entity, as a mail client does.
    let entity =
        "Content-Type: text/plain; charset=utf-8\r\n\r\nmarker-gpgsm: tension normale.\r\n";
    std::fs::write(dir.join("entity.txt"), entity).expect("entity");
    gpgsm.run_with_passphrase(&[
        "-u",
        &fingerprint(&sig_cert),
        "-b",
        "-o",
        path(&dir.join("entity.sig")),
        "--sign",
        path(&dir.join("entity.txt")),
    ]);
    let sig = std::fs::read(dir.join("entity.sig")).expect("signature");
    let signed = format!(
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; \
         micalg=sha-256; boundary=\"gpgsm\"\r\n\r\n--gpgsm\r\n{entity}\r\n--gpgsm\r\n\
         Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--gpgsm--\r\n",
        base64_lines(&sig)
    );
    std::fs::write(dir.join("signed.txt"), &signed).expect("signed");
    gpgsm.run(
        &[
            "--cipher-algo",
            "AES256",
            "-r",
            &fingerprint(&encryption),
            "-o",
            path(&dir.join("message.p7m")),
            "--encrypt",
            path(&dir.join("signed.txt")),
        ],
        b"",
    );
    // Signed opaque (the content inside the signature), then encrypted.
    gpgsm.run_with_passphrase(&[
        "-u",
        &fingerprint(&sig_cert),
        "-o",
        path(&dir.join("opaque.der")),
        "--sign",
        path(&dir.join("entity.txt")),
    ]);
    let opaque = format!(
        "Content-Type: application/pkcs7-mime; smime-type=signed-data; name=\"smime.p7m\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}",
        base64_lines(&std::fs::read(dir.join("opaque.der")).expect("gpgsm output"))
    );
    std::fs::write(dir.join("opaque.txt"), opaque).expect("opaque");
    gpgsm.run(
        &[
            "--cipher-algo",
            "AES256",
            "-r",
            &fingerprint(&encryption),
            "-o",
            path(&dir.join("opaque.p7m")),
            "--encrypt",
            path(&dir.join("opaque.txt")),
        ],
        b"",
    );
    for (subject, file) in [
        ("gpgsm-detached", "message.p7m"),
        ("gpgsm-opaque", "opaque.p7m"),
    ] {
        let enveloped = std::fs::read(dir.join(file)).expect("gpgsm output");
        let message = format!(
            "From: {USER}\r\nTo: {USER}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
             Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}",
            base64_lines(&enveloped)
        );
        let eml = dir.join(format!("{subject}.eml"));
        std::fs::write(&eml, message).expect("message");
        let out = submit(
            &server,
            PASSWORD,
            &["--to", USER, "--data", &format!("@{}", path(&eml))],
        );
        assert!(stdout(&out).contains("250 2.0.0"), "{}", show(&out));
    }

    let got = wait_for(30, "the two gpgsm messages", || {
        let mail = inbox(&server, USER, PASSWORD);
        (mail.len() == 2).then_some(mail)
    });
    for message in got {
        assert!(
            message.contains("X-MSSante-Encryption: decrypted")
                && message.contains("X-MSSante-Signature: valid; signer=810001234567")
                && message.contains("marker-gpgsm: tension normale.")
                && !message.contains("pkcs7-mime"),
            "{message}"
        );
    }
    assert_eq!(server.stop(), 0);
}

#[test]
fn what_the_server_sends_a_legacy_peer_gpgsm_decrypts_and_verifies() {
    require("gpgsm");
    let mut ops = operators("[smime]\nlegacy_domains = [\"B.test\"]\n", FindB::Route);
    let b_dir = ops.b.dir.path().to_path_buf();
    let bob_cert = b_dir.join("bob-encryption.pem");
    std::fs::write(&bob_cert, ops.b.cli_ok(&["key", "cert", BOB])).expect("bob's certificate");
    ops.a.cli_ok(&["cert", "add", BOB, path(&bob_cert)]);
    // Bob's key leaves B's escrow the audited way, for his own gpgsm.
    let p12 = b_dir.join("bob.p12");
    ops.b.cli_stdin_ok(
        &[
            "key",
            "export",
            BOB,
            "--reason",
            "poste du Dr Bob",
            "--out",
            path(&p12),
        ],
        "pw",
    );
    let bob_pem = b_dir.join("bob.pem");
    openssl(
        &b_dir,
        &[
            "pkcs12",
            "-in",
            path(&p12),
            "-passin",
            "pass:pw",
            "-nodes",
            "-out",
            path(&bob_pem),
        ],
    );
    let (pki_a, pki_b) = (ops.a.data.join("pki"), ops.b.data.join("pki"));
    let gpgsm = Gpgsm::new(
        &[&pki_a.join("root.pem"), &pki_b.join("root.pem")],
        &[&pki_a.join("personnes.pem"), &pki_b.join("personnes.pem")],
        Some((&bob_pem, &bob_pem)),
    );
    ops.a.start();
    ops.b.start();

    alice_sends(&ops.a, BOB, "secret medical marker-legacy");
    let got = wait_for(30, "alice's message at bob's", || {
        message_with(&inbox(&ops.b, BOB, BOB_PASSWORD), "marker-legacy").cloned()
    });
    assert!(
        got.contains("X-MSSante-Encryption: decrypted")
            && got.contains("X-MSSante-Signature: valid; signer="),
        "{got}"
    );
    // What went on the wire, as B kept it: S/MIME only.
    let original = b_dir.join("original.eml");
    ops.b.cli_ok(&[
        "message",
        "original",
        BOB,
        "1",
        "--reason",
        "test",
        "--out",
        path(&original),
    ]);
    let wire = String::from_utf8(std::fs::read(&original).expect("original")).expect("7-bit");
    assert!(
        wire.contains("application/pkcs7-mime") && !wire.contains("marker-legacy"),
        "{wire}"
    );
    let (_, body) = wire.split_once("\r\n\r\n").expect("header and body");
    let der: String = body.split_whitespace().collect();
    let der = STANDARD.decode(der).expect("base64 body");
    std::fs::write(b_dir.join("wire.p7m"), der).expect("der");

    // gpgsm 2.2 reads only AES-CBC with RSA PKCS#1 v1.5: the legacy form was used.
    gpgsm.run_with_passphrase(&[
        "-o",
        path(&b_dir.join("clear.eml")),
        "--decrypt",
        path(&b_dir.join("wire.p7m")),
    ]);
    let clear =
        String::from_utf8(std::fs::read(b_dir.join("clear.eml")).expect("clear")).expect("7-bit");
    let boundary = clear
        .split("boundary=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("not multipart/signed: {clear}"));
    let parts: Vec<&str> = clear.split(&format!("--{boundary}")).collect();
    let [_, content, signature, ..] = parts.as_slice() else {
        panic!("two parts expected: {clear}");
    };
    // The signed content: between the delimiter's CRLF and the CRLF before the next one.
    let content = content
        .strip_prefix("\r\n")
        .and_then(|c| c.strip_suffix("\r\n"))
        .expect("CRLF around the content");
    assert!(content.contains("marker-legacy"), "{content}");
    let (_, sig_body) = signature.split_once("\r\n\r\n").expect("signature part");
    let sig: String = sig_body.split_whitespace().collect();
    std::fs::write(b_dir.join("content.txt"), content.as_bytes()).expect("content");
    std::fs::write(
        b_dir.join("content.sig"),
        STANDARD.decode(sig).expect("base64 signature"),
    )
    .expect("sig");
    let said = gpgsm.run(
        &[
            "--verify",
            path(&b_dir.join("content.sig")),
            path(&b_dir.join("content.txt")),
        ],
        b"",
    );
    let said = String::from_utf8_lossy(&said);
    assert!(said.contains("Good signature"), "{said}");
    assert_eq!(ops.a.stop(), 0);
    assert_eq!(ops.b.stop(), 0);
}
