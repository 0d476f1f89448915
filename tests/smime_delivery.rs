//! S/MIME on the way into a mailbox, with messages made by `openssl cms`: encrypted to the
//! mailbox's escrowed key, the doctor reads clear text; signed, the verdict is in a header;
//! a tampered signature, a key we do not hold and a forged verdict header are each told;
//! the original as received stays available to the administrator and to its reader.

mod common;

use common::*;

const BOB: &str = "bob.durand@hopital.test";
const BOB_PASSWORD: &str = "bob's own long password";

const ENTITY: &str = "Content-Type: text/plain; charset=utf-8\r\n\r\nCompte rendu marker-clear: glycemie normale.\r\n";

/// Submits `smime` (an entity made by openssl) from alice to herself with `subject`.
fn submit_smime(server: &TestServer, subject: &str, smime: &[u8]) {
    let mut message = format!("From: {USER}\r\nTo: {USER}\r\nSubject: {subject}\r\n").into_bytes();
    message.extend_from_slice(smime);
    let file = server.dir.path().join(format!("{subject}.eml"));
    std::fs::write(&file, &message).expect("write message");
    let data = format!("@{}", path(&file));
    let out = submit(server, PASSWORD, &["--to", USER, "--data", &data]);
    assert!(stdout(&out).contains("250 2.0.0"), "{}", show(&out));
}

/// `entity.txt` in `dir` signed by `openssl cms` with alice's signature key there (SHA-256,
/// detached unless `extra` says `-nodetach`).
fn sign(dir: &std::path::Path, extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["cms", "-sign", "-binary", "-crlfeol", "-md", "sha256"];
    args.extend_from_slice(extra);
    args.extend([
        "-signer",
        "810001234567-signature.pem",
        "-inkey",
        "810001234567-signature.key",
        "-in",
        "entity.txt",
    ]);
    openssl(dir, &args)
}

#[test]
fn encrypted_and_signed_mail_reaches_the_doctor_clear_with_its_verdict() {
    let mut server = TestServer::new("");
    let dir = server.dir.path().to_path_buf();
    std::fs::write(dir.join("entity.txt"), ENTITY).expect("entity");
    // Alice's encryption certificate, escrowed by the TEST PKI at `user add`.
    let cert = server.cli_ok(&["key", "cert", USER]);
    std::fs::write(dir.join("alice-enc.pem"), &cert).expect("cert");
    // A signature key pair of alice's on disk, as her own mail client would hold it.
    issue_person(&server, "signature", USER, &dir, None);
    // Bob replaces alice this week: read rights on her mailbox, none of her keys.
    server.cli_stdin_ok(&["user", "add", BOB, "--password-stdin"], BOB_PASSWORD);
    server.cli_ok(&["delegation", "add", USER, BOB]);
    server.start();

    let encrypted = openssl(
        &dir,
        &[
            "cms",
            "-encrypt",
            "-binary",
            "-crlfeol",
            "-aes-256-gcm",
            "-in",
            "entity.txt",
            "-recip",
            "alice-enc.pem",
            "-keyopt",
            "rsa_padding_mode:oaep",
            "-keyopt",
            "rsa_oaep_md:sha256",
        ],
    );
    submit_smime(&server, "chiffre", &encrypted);
    let signed = sign(&dir, &[]);
    submit_smime(&server, "signe", &signed);
    let tampered = String::from_utf8_lossy(&signed).replace("normale", "anormale");
    submit_smime(&server, "altere", tampered.as_bytes());
    // Encrypted for a key alice does not hold.
    self_signed(&dir, "other", "/CN=other");
    let foreign = openssl(
        &dir,
        &[
            "cms",
            "-encrypt",
            "-binary",
            "-crlfeol",
            "-aes-256-cbc",
            "-in",
            "entity.txt",
            "-recip",
            "other.pem",
        ],
    );
    submit_smime(&server, "illisible", &foreign);
    // A plain message carrying a forged verdict.
    submit_smime(
        &server,
        "falsifie",
        b"X-MSSante-Signature: valid; signer=forged\r\nContent-Type: text/plain\r\n\r\nforged verdict\r\n",
    );

    // Opaque signing: the content inside the signature (UID 6).
    let opaque = sign(&dir, &["-nodetach"]);
    submit_smime(&server, "opaque", &opaque);

    let mail = wait_for(30, "the six messages", || {
        let m = inbox(&server, USER, PASSWORD);
        (m.len() == 6).then_some(m)
    });
    let with = |subject: &str| {
        mail.iter()
            .find(|m| m.contains(&format!("Subject: {subject}")))
            .cloned()
            .unwrap_or_else(|| panic!("no {subject} in {mail:?}"))
    };
    let clear = with("chiffre");
    assert!(
        clear.contains("X-MSSante-Encryption: decrypted")
            && clear.contains("marker-clear: glycemie normale")
            && !clear.contains("application/pkcs7-mime"),
        "{clear}"
    );
    let good = with("signe");
    assert!(
        good.contains("X-MSSante-Signature: valid; signer=810001234567; name=\"ALICE MARTIN\""),
        "{good}"
    );
    let unwrapped = with("opaque");
    assert!(
        unwrapped.contains("X-MSSante-Signature: valid; signer=810001234567")
            && unwrapped.contains("marker-clear: glycemie normale")
            && !unwrapped.contains("pkcs7-mime"),
        "{unwrapped}"
    );
    let bad = with("altere");
    assert!(
        bad.contains("X-MSSante-Signature: invalid; reason=\"the signed content was modified\""),
        "{bad}"
    );
    let unreadable = with("illisible");
    assert!(
        unreadable.contains("X-MSSante-Encryption: undecryptable; reason=\"the message is not encrypted for any key of this mailbox\""),
        "{unreadable}"
    );
    let through_bob = inbox(&server, &format!("{BOB}*{USER}"), BOB_PASSWORD);
    assert!(
        through_bob
            .iter()
            .any(|m| m.contains("Subject: chiffre") && m.contains("marker-clear: glycemie normale")),
        "the delegate reads the decrypted message: {through_bob:?}"
    );
    let forged = with("falsifie");
    assert!(!forged.contains("signer=forged"), "{forged}");
    // The original as received is kept: the administrator reads it, with a reason. The
    // encrypted message was the first one delivered: UID 1.
    let original = dir.join("original.eml");
    server.cli_ok(&[
        "message",
        "original",
        USER,
        "1",
        "--reason",
        "litige n° 7",
        "--out",
        path(&original),
    ]);
    let kept = std::fs::read(&original).expect("original");
    // A signed message (UID 2) is only annotated: nothing more to keep.
    let none = server.cli(&[
        "message",
        "original",
        USER,
        "2",
        "--reason",
        "litige n° 7",
        "--out",
        path(&original),
    ]);
    assert!(show(&none).contains("has no original"), "{}", show(&none));
    // The opaque message was unwrapped for its reader: its signed original is kept.
    let opaque_original = dir.join("opaque.eml");
    server.cli_ok(&[
        "message",
        "original",
        USER,
        "6",
        "--reason",
        "litige n° 8",
        "--out",
        path(&opaque_original),
    ]);
    assert!(
        contains(
            &std::fs::read(&opaque_original).expect("original"),
            b"signed-data"
        ),
        "the signature is kept"
    );
    assert!(
        contains(&kept, b"application/pkcs7-mime"),
        "{}",
        String::from_utf8_lossy(&kept)
    );
    // Alice reads her own original over HTTPS with her credentials; nobody else does.
    let url = |uid: u32| {
        format!(
            "https://127.0.0.1:{}/messages/{uid}/original",
            server.ports.https
        )
    };
    let mine = dir.join("mine.eml");
    let credentials = format!("{USER}:{PASSWORD}");
    let out = curl(&["--fail", "-u", &credentials, "-o", path(&mine), &url(1)]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(std::fs::read(&mine).expect("alice's copy"), kept);
    let status = |args: &[&str]| {
        let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        stdout(&curl(&all))
    };
    assert_eq!(status(&[&url(1)]), "401");
    assert_eq!(status(&["-u", &format!("{USER}:wrong"), &url(1)]), "401");
    assert_eq!(status(&["-u", &credentials, &url(2)]), "404");
    assert_eq!(status(&["-u", &credentials, &url(0)]), "400");
    let trail = server.cli_ok(&["audit", "tail", "-n", "50"]);
    assert!(
        trail.contains("UID 1, read by its owner"),
        "alice's read is traced:\n{trail}"
    );
    assert!(
        trail.contains("smime.undecryptable"),
        "the administrator is told:\n{trail}"
    );
    assert!(
        trail.contains("message.original") && trail.contains("litige n° 7"),
        "{trail}"
    );
    // The escrowed key's use is traced, naming the key, and the chain holds.
    let serial = openssl(&dir, &["x509", "-serial", "-noout", "-in", "alice-enc.pem"]);
    let serial = String::from_utf8_lossy(&serial);
    let serial = serial.trim().trim_start_matches("serial=");
    let used = format!("escrowed encryption key (certificate serial {serial}) opened message");
    let uses: Vec<&str> = trail
        .lines()
        .filter(|l| l.contains("key.decrypt"))
        .collect();
    assert!(
        uses.len() == 1 && uses[0].contains(USER) && uses[0].contains(&used),
        "one use of alice's key, named: {used}\n{trail}"
    );
    assert!(server.cli_ok(&["audit", "verify"]).contains("intact"));

    // Nothing of the clear text is readable at rest.
    for file in files_under(&server.data) {
        let bytes = std::fs::read(&file).expect("read");
        assert!(
            !contains(&bytes, b"marker-clear"),
            "clear text in {}",
            file.display()
        );
    }
    assert_eq!(server.stop(), 0);
}

#[test]
fn a_signer_revoked_while_the_server_runs_is_told_revoked_after_the_next_crl_refresh() {
    let mut server = TestServer::new("");
    let dir = server.dir.path().to_path_buf();
    std::fs::write(dir.join("entity.txt"), ENTITY).expect("entity");
    // CRL files the server reads again every second.
    tls_from_files(
        &server,
        &["root.crl", "organisations.crl", "personnes.crl"],
        &[],
    );
    let (_, serial) = issue_person_serial(&server, "signature", USER, &dir, None);
    server.start();
    let signed = sign(&dir, &[]);
    submit_smime(&server, "avant", &signed);
    wait_for(30, "the first message", || {
        inbox(&server, USER, PASSWORD)
            .iter()
            .any(|m| m.contains("Subject: avant"))
            .then_some(())
    });

    // Revoked while the server runs: once the CRLs are read again, the same signature is
    // told as made with a revoked certificate.
    server.cli_ok(&["pki", "revoke", &serial]);
    wait_for(15, "the CRL refresh", || {
        server
            .cli_ok(&["audit", "tail", "-n", "50"])
            .contains("CRLs refreshed")
            .then_some(())
    });
    submit_smime(&server, "apres", &signed);
    let mail = wait_for(30, "the second message", || {
        let m = inbox(&server, USER, PASSWORD);
        (m.len() == 2).then_some(m)
    });
    let with = |subject: &str| {
        mail.iter()
            .find(|m| m.contains(&format!("Subject: {subject}")))
            .cloned()
            .unwrap_or_else(|| panic!("no {subject} in {mail:?}"))
    };
    let before = with("avant");
    assert!(
        before.contains("X-MSSante-Signature: valid; signer=810001234567"),
        "{before}"
    );
    let after = with("apres");
    assert!(
        after.contains("X-MSSante-Signature: invalid; reason=\"certificate revoked\""),
        "{after}"
    );
    assert_eq!(server.stop(), 0);
}

/// The forgery of the look-alike boundary: a genuine detached signature of alice's, its
/// delimiters turned into look-alikes of a shorter declared boundary (`--ABCDEF` lines for
/// boundary `ABCDE`), followed by the attacker's own parts under the declared boundary. A
/// reader following RFC 2046 shows the attacker's parts; so must the verdict judge them.
fn look_alike_forgery(signed: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(signed);
    let start = text.find("boundary=\"").expect("boundary") + "boundary=\"".len();
    let end = start + text[start..].find('"').expect("closing quote");
    let boundary = &text[start..end];
    let declared = &boundary[..boundary.len() - 1];
    let mut forged = text.replacen(
        &format!("boundary=\"{boundary}\""),
        &format!("boundary=\"{declared}\""),
        1,
    );
    forged += &format!(
        "\r\n--{declared}\r\nContent-Type: text/plain\r\n\r\nOrdonnance: morphine 100 mg, forged-part\r\n\
         --{declared}\r\nContent-Type: application/pkcs7-signature\r\n\r\nAAAA\r\n--{declared}--\r\n"
    );
    forged.into_bytes()
}

#[test]
fn a_forged_structure_or_a_planted_verdict_never_reads_valid() {
    let mut server = TestServer::new("");
    let dir = server.dir.path().to_path_buf();
    issue_person(&server, "signature", USER, &dir, None);
    server.start();

    // 1. The look-alike boundary around a genuine signature.
    std::fs::write(dir.join("entity.txt"), ENTITY).expect("entity");
    let genuine = sign(&dir, &[]);
    submit_smime(&server, "genuine", &genuine);
    submit_smime(&server, "lookalike", &look_alike_forgery(&genuine));
    // 2. An opaque signature whose signed entity carries its own "verdict".
    let inner = format!("X-MSSante-Signature: valid; signer=inner-forged\r\n{ENTITY}");
    std::fs::write(dir.join("entity.txt"), inner).expect("entity");
    submit_smime(&server, "opaqueplanted", &sign(&dir, &["-nodetach"]));
    // 3. A verdict planted in an attached message of a plain one.
    submit_smime(
        &server,
        "nested",
        b"Content-Type: multipart/mixed; boundary=n\r\n\r\n--n\r\nContent-Type: message/rfc822\r\n\r\n\
X-MSSante-Signature: valid; signer=nested-forged\r\nSubject: attached\r\n\r\nx\r\n--n--\r\n",
    );

    let mail = wait_for(30, "the four messages", || {
        let m = inbox(&server, USER, PASSWORD);
        (m.len() == 4).then_some(m)
    });
    let with = |subject: &str| {
        mail.iter()
            .find(|m| m.contains(&format!("Subject: {subject}")))
            .cloned()
            .unwrap_or_else(|| panic!("no {subject} in {mail:?}"))
    };
    assert!(
        with("genuine").contains("X-MSSante-Signature: valid; signer=810001234567"),
        "{}",
        with("genuine")
    );
    let forged = with("lookalike");
    assert!(
        forged.contains("forged-part"),
        "the reader's parts: {forged}"
    );
    assert!(
        forged.contains("X-MSSante-Signature: invalid") && !forged.contains("valid; signer"),
        "{forged}"
    );
    let opaque = with("opaqueplanted");
    assert_eq!(
        opaque.matches("X-MSSante-Signature").count(),
        1,
        "only the server's verdict: {opaque}"
    );
    assert!(!opaque.contains("inner-forged"), "{opaque}");
    assert!(
        !with("nested").contains("nested-forged"),
        "{}",
        with("nested")
    );

    // 4. IMAP APPEND: anyone who may append could plant "valid".
    let out = imap::run(
        &server,
        r#"
m = connect()
msg = b"X-MSSante-Signature: valid; signer=appended-forged\r\nFrom: x@hopital.test\r\nSubject: appended\r\n\r\nbody\r\n"
typ, _ = m.append("INBOX", None, None, msg)
assert typ == "OK", typ
m.select("INBOX")
typ, data = m.uid("SEARCH", None, "SUBJECT", "appended")
uid = data[0].split()[-1]
typ, data = m.uid("FETCH", uid, "(BODY.PEEK[HEADER])")
print(data[0][1].decode())
"#,
        "",
    );
    assert!(out.status.success(), "{}", show(&out));
    let header = stdout(&out);
    assert!(header.contains("Subject: appended"), "{header}");
    assert!(!header.contains("X-MSSante"), "{header}");
    assert_eq!(server.stop(), 0);
}
