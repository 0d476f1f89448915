//! The crate against real S/MIME agents. `openssl cms`: what the crate encrypts and signs,
//! openssl decrypts and verifies; what openssl makes (GCM and CBC, OAEP and PKCS#1, PSS and
//! PKCS#1, SHA-256 and SHA-1), the crate decrypts and verifies or refuses by name. gpgsm
//! (GnuPG 2.2, no GCM, OAEP or PSS): the legacy options both ways.

#[path = "../../tests/common/gpgsm.rs"]
mod gpgsm;
#[path = "../../tests/common/openssl_cli.rs"]
mod openssl_cli;
mod support;

use gpgsm::Gpgsm;
use openssl_cli::openssl;
use support::{Pki, text};

use mssante_smime::{
    EncryptOptions, Failure, SignatureScheme, SmimeError, Trust, Verdict, decrypt, encrypt, mime,
    opaque_content, sign, verify,
};
use openssl::pkey::PKey;
use openssl::x509::X509;

const ENTITY: &[u8] =
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nCompte rendu: glyc\xc3\xa9mie normale.\r\n";

#[test]
fn what_the_crate_encrypts_openssl_decrypts_in_both_modes() {
    let pki = Pki::new("TEST AC");
    let alice = pki.issue("alice", "alice@hopital.test", 2048);
    for (options, structure, transport) in [
        (EncryptOptions::default(), "authEnvelopedData", "rsaesOaep"),
        (
            EncryptOptions::legacy(),
            "pkcs7-envelopedData",
            "rsaEncryption",
        ),
    ] {
        let sealed = encrypt(ENTITY, std::slice::from_ref(&alice.cert), options).expect("encrypt");
        let file = pki.write("sealed.p7m", &sealed);
        let printed = String::from_utf8_lossy(&openssl(
            pki.dir.path(),
            &["cms", "-cmsout", "-print", "-in", text(&file)],
        ))
        .to_string();
        assert!(
            printed.contains(structure) && printed.contains(transport),
            "{printed}"
        );
        let clear = openssl(
            pki.dir.path(),
            &[
                "cms",
                "-decrypt",
                "-binary",
                "-in",
                text(&file),
                "-inkey",
                "alice.key",
                "-recip",
                "alice.pem",
            ],
        );
        assert_eq!(clear, ENTITY);
    }
    let weak = pki.issue("weak", "weak@hopital.test", 1024);
    assert_eq!(
        encrypt(ENTITY, &[weak.cert], EncryptOptions::default()),
        Err(SmimeError::WeakKey(1024))
    );
}

#[test]
fn what_openssl_encrypts_the_crate_decrypts_with_current_or_past_keys() {
    let pki = Pki::new("TEST AC");
    let old = pki.issue("old", "alice@hopital.test", 2048);
    let current = pki.issue("current", "alice@hopital.test", 2048);
    let entity = pki.write("entity.txt", ENTITY);
    let seal = |recip: &str, extra: &[&str]| {
        let mut args = vec![
            "cms",
            "-encrypt",
            "-binary",
            "-crlfeol",
            "-in",
            text(&entity),
            "-recip",
            recip,
        ];
        args.extend(extra);
        openssl(pki.dir.path(), &args)
    };
    let oaep = [
        "-keyopt",
        "rsa_padding_mode:oaep",
        "-keyopt",
        "rsa_oaep_md:sha256",
    ];
    let gcm_oaep: Vec<&str> = [&["-aes-256-gcm"][..], &oaep[..]].concat();
    let keys = [old, current];
    for (message, key) in [
        (seal("current.pem", &gcm_oaep), 1),
        (seal("current.pem", &["-aes-256-cbc"]), 1),
        (seal("old.pem", &["-aes-256-cbc"]), 0),
    ] {
        let opened = decrypt(&message, &keys, 1 << 20).expect("decrypt");
        assert_eq!(opened.entity, ENTITY);
        assert_eq!(opened.key, key, "the key that opened it is named");
    }
    let for_current = seal("current.pem", &["-aes-256-cbc"]);
    assert_eq!(
        decrypt(&for_current, &keys[..1], 1 << 20),
        Err(SmimeError::NoMatchingKey)
    );
    assert_eq!(
        decrypt(&for_current, &keys, 10),
        Err(SmimeError::TooLarge(10))
    );
    let des3 = seal("current.pem", &["-des3"]);
    assert!(
        matches!(decrypt(&des3, &keys, 1 << 20), Err(SmimeError::WeakAlgorithm(ref w)) if w.starts_with("3DES")),
        "3DES refused by name"
    );
    let truncated = &for_current[..for_current.len() / 2];
    assert!(matches!(
        decrypt(truncated, &keys, 1 << 20),
        Err(SmimeError::Malformed(_))
    ));
}

#[test]
fn what_the_crate_signs_openssl_verifies_with_pss_or_pkcs1() {
    let pki = Pki::new("TEST AC");
    let alice = pki.issue("alice", "alice@hopital.test", 2048);
    for (scheme, algorithm) in [
        (SignatureScheme::Pkcs1v15Sha256, "sha256WithRSAEncryption"),
        (SignatureScheme::PssSha256, "rsassaPss"),
    ] {
        let signed = sign(ENTITY, &alice.key, &alice.cert, &[], scheme).expect("sign");
        let file = pki.write("signed.eml", &signed);
        // Without -binary: openssl canonicalises the part it reads to CRLF, as signed.
        let content = openssl(
            pki.dir.path(),
            &[
                "cms",
                "-verify",
                "-CAfile",
                "ca.pem",
                "-purpose",
                "smimesign",
                "-in",
                text(&file),
            ],
        );
        assert_eq!(content, ENTITY);
        // openssl's own view of the signature algorithm.
        let p7s = signed
            .split(|b| *b == b'\n')
            .skip_while(|l| !l.starts_with(b"Content-Type: application/pkcs7-signature"))
            .skip(4)
            .take_while(|l| !l.starts_with(b"\r") && !l.starts_with(b"--"))
            .flat_map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
            .collect::<Vec<u8>>();
        let b64 = pki.write("sig.b64", &p7s);
        let der = openssl(pki.dir.path(), &["base64", "-d", "-A", "-in", text(&b64)]);
        let der_file = pki.write("sig.der", &der);
        let printed = String::from_utf8_lossy(&openssl(
            pki.dir.path(),
            &[
                "cms",
                "-cmsout",
                "-print",
                "-inform",
                "DER",
                "-in",
                text(&der_file),
            ],
        ))
        .to_string();
        assert!(printed.contains(algorithm), "{printed}");
        let trust = Trust::new(&[pki.ca()], &[]).expect("trust");
        assert!(matches!(verify(&signed, &trust), Verdict::Valid(_)));
    }
}

/// A multipart/signed message with the last octet of its signature's DER changed.
fn with_altered_signature(signed: &[u8]) -> Vec<u8> {
    let (header, body) = mime::split_entity(signed);
    let content_type = mime::field(header, "content-type").expect("content type");
    let boundary = mime::parameter(&content_type, "boundary").expect("boundary");
    let (_, part) = mime::signed_parts(body, &boundary).expect("parts");
    let encoded = mime::split_entity(part).1;
    let mut der = mime::base64_body(encoded).expect("base64");
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let text = String::from_utf8_lossy(signed);
    let encoded = String::from_utf8_lossy(encoded);
    let encoded = encoded.trim_end();
    assert!(text.contains(encoded));
    text.replace(
        encoded,
        String::from_utf8_lossy(&mime::base64_lines(&der)).trim_end(),
    )
    .into_bytes()
}

#[test]
fn what_openssl_signs_the_crate_verifies_or_refuses_with_the_reason() {
    let pki = Pki::new("TEST AC");
    pki.issue("alice", "alice@hopital.test", 2048);
    let entity = pki.write("entity.txt", ENTITY);
    let sign_with = |md: &str, extra: &[&str]| {
        let mut args = vec![
            "cms",
            "-sign",
            "-binary",
            "-crlfeol",
            "-signer",
            "alice.pem",
            "-inkey",
            "alice.key",
            "-md",
            md,
            "-in",
            text(&entity),
        ];
        args.extend(extra);
        let mut message = b"From: Alice MARTIN <Alice@hopital.test>\r\n".to_vec();
        message.extend(openssl(pki.dir.path(), &args));
        message
    };
    let trust = Trust::new(&[pki.ca()], &[pki.crl()]).expect("trust");
    let pss = sign_with("sha256", &["-keyopt", "rsa_padding_mode:pss"]);
    match verify(&pss, &trust) {
        Verdict::Valid(signer) => {
            assert_eq!(signer.idnat.as_deref(), Some("899700367917"));
            assert_eq!(signer.name, "ALICE MARTIN");
            assert_eq!(signer.emails, vec!["alice@hopital.test".to_string()]);
        }
        other => panic!("expected valid: {other:?}"),
    }
    let pkcs1 = sign_with("sha256", &[]);
    assert!(matches!(verify(&pkcs1, &trust), Verdict::Valid(_)));
    // Opaque signing (the content inside the SignedData), as gpgsm and Outlook may send.
    let opaque = sign_with("sha256", &["-nodetach"]);
    assert!(
        String::from_utf8_lossy(&opaque).contains("smime-type=signed-data"),
        "{}",
        String::from_utf8_lossy(&opaque)
    );
    assert!(matches!(verify(&opaque, &trust), Verdict::Valid(_)));
    assert_eq!(opaque_content(&opaque).as_deref(), Some(ENTITY));
    assert_eq!(opaque_content(&pkcs1), None);

    let tampered = String::from_utf8_lossy(&pkcs1).replace("normale", "anormale");
    assert_eq!(
        verify(tampered.as_bytes(), &trust),
        Verdict::Invalid(Failure::Tampered)
    );
    // The signature value (the DER's last octets) altered, PKCS#1 and PSS alike.
    for signed in [&pkcs1, &pss] {
        let forged = with_altered_signature(signed);
        assert_eq!(
            verify(&forged, &trust),
            Verdict::Invalid(Failure::BadSignature)
        );
    }
    let other_from =
        String::from_utf8_lossy(&pkcs1).replace("Alice@hopital.test", "bob@hopital.test");
    assert_eq!(
        verify(other_from.as_bytes(), &trust),
        Verdict::Invalid(Failure::FromMismatch {
            from: "bob@hopital.test".into()
        })
    );
    assert!(matches!(
        verify(&sign_with("sha1", &[]), &trust),
        Verdict::Invalid(Failure::WeakAlgorithm(ref w)) if w.starts_with("SHA-1")
    ));
    let stranger = Pki::new("OTHER AC");
    let elsewhere = Trust::new(&[stranger.ca()], &[]).expect("trust");
    assert_eq!(
        verify(&pkcs1, &elsewhere),
        Verdict::Invalid(Failure::UnknownCa)
    );
    let revoked = Trust::new(&[pki.ca()], &[pki.revoke("alice")]).expect("trust");
    assert_eq!(verify(&pkcs1, &revoked), Verdict::Invalid(Failure::Revoked));
    assert!(matches!(
        verify(&pkcs1[..pkcs1.len() - 300], &trust),
        Verdict::Invalid(Failure::Malformed(_))
    ));
    assert!(matches!(
        verify(ENTITY, &trust),
        Verdict::Invalid(Failure::Malformed(_))
    ));
}

#[test]
fn gpgsm_and_the_crate_read_each_other() {
    let pki = Pki::new("TEST AC");
    let alice = pki.issue("alice", "alice@hopital.test", 2048);
    let gpgsm = Gpgsm::new(
        &[&pki.path("ca.pem")],
        &[],
        Some((&pki.path("alice.pem"), &pki.path("alice.key"))),
    );
    let entity = pki.write("entity.txt", ENTITY);

    // gpgsm encrypts (AES-256-CBC, PKCS#1 v1.5, BER): the crate decrypts.
    let der_file = pki.path("from-gpgsm.der");
    gpgsm.run(
        &[
            "--cipher-algo",
            "AES256",
            "-r",
            "alice@hopital.test",
            "-o",
            text(&der_file),
            "--encrypt",
            text(&entity),
        ],
        b"",
    );
    let mut message = b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\
        Content-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    message.extend(mime::base64_lines(
        &std::fs::read(&der_file).expect("gpgsm output"),
    ));
    let keys = [alice];
    assert_eq!(
        decrypt(&message, &keys, 1 << 20).expect("decrypt").entity,
        ENTITY
    );

    // gpgsm signs (detached, SHA-256): the crate verifies.
    let sig_file = pki.path("from-gpgsm.sig");
    gpgsm.run_with_passphrase(&[
        "-u",
        "alice@hopital.test",
        "-b",
        "-o",
        text(&sig_file),
        "--sign",
        text(&entity),
    ]);
    let mut signed = b"From: alice@hopital.test\r\nContent-Type: multipart/signed; \
        protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=b\r\n\r\n--b\r\n"
        .to_vec();
    signed.extend(ENTITY);
    signed.extend(
        b"\r\n--b\r\nContent-Type: application/pkcs7-signature\r\n\
        Content-Transfer-Encoding: base64\r\n\r\n",
    );
    signed.extend(mime::base64_lines(
        &std::fs::read(&sig_file).expect("gpgsm signature"),
    ));
    signed.extend(b"\r\n--b--\r\n");
    let trust = Trust::new(&[pki.ca()], &[]).expect("trust");
    match verify(&signed, &trust) {
        Verdict::Valid(signer) => assert_eq!(signer.emails, vec!["alice@hopital.test".to_string()]),
        other => panic!("gpgsm's signature: {other:?}"),
    }

    // The crate encrypts with the legacy options: gpgsm decrypts.
    let sealed = encrypt(
        ENTITY,
        std::slice::from_ref(&keys[0].cert),
        EncryptOptions::legacy(),
    )
    .expect("encrypt");
    let (_, body) = mime::split_entity(&sealed);
    let der = mime::base64_body(body).expect("base64");
    let ours = pki.write("from-crate.der", &der);
    let clear =
        gpgsm.run_with_passphrase(&["-o", text(&pki.path("clear.txt")), "--decrypt", text(&ours)]);
    assert!(!clear.is_empty());
    assert_eq!(std::fs::read(pki.path("clear.txt")).expect("clear"), ENTITY);

    // The crate signs with PKCS#1 v1.5: gpgsm verifies.
    let ours = sign(
        ENTITY,
        &keys[0].key,
        &keys[0].cert,
        &[],
        SignatureScheme::Pkcs1v15Sha256,
    )
    .expect("sign");
    let (header, body) = mime::split_entity(&ours);
    let boundary = mime::parameter(
        &mime::field(header, "content-type").expect("type"),
        "boundary",
    )
    .expect("boundary");
    let (content, signature) = mime::signed_parts(body, &boundary).expect("parts");
    let (_, sig_body) = mime::split_entity(signature);
    let sig = pki.write("crate.sig", &mime::base64_body(sig_body).expect("base64"));
    let content = pki.write("crate.content", content);
    let said = gpgsm.run(&["--verify", text(&sig), text(&content)], b"");
    assert!(
        String::from_utf8_lossy(&said).contains("Good signature"),
        "{}",
        String::from_utf8_lossy(&said)
    );
}

#[test]
fn expired_and_short_keyed_signers_get_their_own_verdict() {
    let pki = Pki::new("TEST AC");
    pki.issue("alice", "alice@hopital.test", 2048);
    pki.issue("short", "alice@hopital.test", 1024);
    // Alice's key in a certificate whose validity ended a month ago.
    let read = |file: &str| std::fs::read(pki.path(file)).expect("read");
    let key = PKey::private_key_from_pem(&read("alice.key")).expect("key");
    let ca_key = PKey::private_key_from_pem(&read("ca.key")).expect("ca key");
    let ca = pki.ca();
    let mut builder = openssl::x509::X509Builder::new().expect("builder");
    builder.set_version(2).expect("version");
    let serial = openssl::bn::BigNum::from_u32(99)
        .and_then(|b| b.to_asn1_integer())
        .expect("serial");
    builder.set_serial_number(&serial).expect("serial");
    let alice_cert = X509::from_pem(&read("alice.pem")).expect("cert");
    builder
        .set_subject_name(alice_cert.subject_name())
        .expect("subject");
    builder.set_issuer_name(ca.subject_name()).expect("issuer");
    builder.set_pubkey(&key).expect("key");
    let day = 24 * 3600;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let at = |t: i64| openssl::asn1::Asn1Time::from_unix(t).expect("time");
    builder
        .set_not_before(&at(now - 400 * day))
        .expect("not before");
    builder
        .set_not_after(&at(now - 35 * day))
        .expect("not after");
    let eku = openssl::x509::extension::ExtendedKeyUsage::new()
        .email_protection()
        .build()
        .expect("eku");
    let san = openssl::x509::extension::SubjectAlternativeName::new()
        .email("alice@hopital.test")
        .build(&builder.x509v3_context(Some(&ca), None))
        .expect("san");
    builder.append_extension(eku).expect("eku");
    builder.append_extension(san).expect("san");
    builder
        .sign(&ca_key, openssl::hash::MessageDigest::sha256())
        .expect("sign");
    let expired = builder.build();
    let trust = Trust::new(&[ca], &[]).expect("trust");
    let signed = sign(ENTITY, &key, &expired, &[], SignatureScheme::PssSha256).expect("sign");
    assert_eq!(verify(&signed, &trust), Verdict::Invalid(Failure::Expired));

    // A 1024-bit signer, as openssl makes it: refused for its key size.
    let entity = pki.write("entity.txt", ENTITY);
    let mut short = b"From: alice@hopital.test\r\n".to_vec();
    short.extend(openssl(
        pki.dir.path(),
        &[
            "cms",
            "-sign",
            "-binary",
            "-crlfeol",
            "-md",
            "sha256",
            "-signer",
            "short.pem",
            "-inkey",
            "short.key",
            "-in",
            text(&entity),
        ],
    ));
    assert_eq!(
        verify(&short, &trust),
        Verdict::Invalid(Failure::WeakKey(1024))
    );
}
