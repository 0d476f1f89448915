//! Pro Santé Connect: access tokens (JWT, RS256) the test signs with its own key pair, as the
//! PSC realm would, checked by SASL XOAUTH2 and OAUTHBEARER from python's imaplib and
//! smtplib: a valid token opens the holder's mailbox (SubjectNameID = idNat); expired, wrong
//! issuer, wrong audience, bad signature, missing claim and too weak a level are each refused
//! with their reason in the audit trail, after the RFC 7628 error challenge.

mod common;

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;

const ISSUER: &str = "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet";
const AUDIENCE: &str = "mssante-hopital-test";
const DOCTOR: &str = "dr.psc@hopital.test";
const IDNAT: &str = "810001234567";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// An RSA key pair in `dir`, and its JWKS (kid `psc-test`).
fn key_pair(dir: &Path, name: &str) -> String {
    openssl(dir, &["genrsa", "-out", &format!("{name}.key"), "2048"]);
    let modulus = String::from_utf8_lossy(&openssl(
        dir,
        &["rsa", "-in", &format!("{name}.key"), "-noout", "-modulus"],
    ))
    .trim()
    .trim_start_matches("Modulus=")
    .to_string();
    let n: Vec<u8> = (0..modulus.len() / 2)
        .filter_map(|i| u8::from_str_radix(&modulus[2 * i..2 * i + 2], 16).ok())
        .collect();
    format!(
        r#"{{"keys":[{{"kty":"RSA","kid":"psc-test","use":"sig","alg":"RS256","n":"{}","e":"AQAB"}}]}}"#,
        URL_SAFE_NO_PAD.encode(n)
    )
}

/// A JWT with `claims`, signed RS256 by `dir/<key>.key` with openssl.
fn token(dir: &Path, key: &str, claims: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT","kid":"psc-test"}"#);
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
    std::fs::write(dir.join("input.txt"), &input).expect("input");
    let signature = openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-sign",
            &format!("{key}.key"),
            "input.txt",
        ],
    );
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn claims(exp: i64, iss: &str, aud: &str, extra: &str) -> String {
    format!(
        r#"{{"iss":"{iss}","exp":{exp},"iat":{},"nbf":{},"aud":["{aud}"],"acr":"eidas1","typ":"Bearer"{extra}}}"#,
        now() - 10,
        now() - 10
    )
}

/// A login with `mechanism` over `protocol`: "OK", or "NO" with the challenges seen.
fn login(server: &TestServer, protocol: &str, mechanism: &str, token: &str) -> String {
    let script = r#"
import imaplib, smtplib, ssl, sys
protocol, port, mechanism, user, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
if mechanism == 'XOAUTH2':
    response = 'user=%s\x01auth=Bearer %s\x01\x01' % (user, token)
else:
    response = 'n,a=%s,\x01host=127.0.0.1\x01port=%d\x01auth=Bearer %s\x01\x01' % (user, port, token)
seen = []
ctx = ssl._create_unverified_context()
try:
    if protocol == 'imap':
        m = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx, timeout=20)
        def answer(challenge):
            if challenge:
                seen.append(challenge.decode())
                return b'\x01'
            return response.encode()
        m.authenticate(mechanism, answer)
    else:
        s = smtplib.SMTP('127.0.0.1', port, timeout=20)
        s.starttls(context=ctx)
        s.ehlo()
        def answer(challenge=None):
            if challenge:
                seen.append(challenge.decode())
                return '\x01'
            return response
        s.auth(mechanism, answer)
    print("OK")
except Exception as e:
    print("NO", e, seen)
"#;
    let port = if protocol == "imap" {
        server.ports.imaps
    } else {
        server.ports.submission
    };
    let out = python(
        script,
        &[protocol, &port.to_string(), mechanism, DOCTOR, token],
    );
    assert!(out.status.success(), "{}", show(&out));
    stdout(&out).trim().to_string()
}

#[test]
fn a_pro_sante_connect_token_opens_the_holders_mailbox() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let jwks = d.join("jwks.json");
    std::fs::write(&jwks, key_pair(d, "psc")).expect("jwks");
    key_pair(d, "impostor");
    let mut server = TestServer::new(&format!(
        "[auth.psc]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_file = \"{}\"\nmin_acr = \"eidas1\"\n",
        path(&jwks)
    ));
    server.cli_ok(&["user", "add", DOCTOR, "--idnat", IDNAT, "--no-password"]);
    server.start();

    let subject = format!(r#","SubjectNameID":"{IDNAT}""#);
    let good = token(d, "psc", &claims(now() + 300, ISSUER, AUDIENCE, &subject));
    assert_eq!(login(&server, "imap", "XOAUTH2", &good), "OK");
    assert_eq!(login(&server, "imap", "OAUTHBEARER", &good), "OK");
    assert_eq!(login(&server, "smtp", "XOAUTH2", &good), "OK");

    let refused = [
        token(d, "psc", &claims(now() - 3600, ISSUER, AUDIENCE, &subject)),
        token(
            d,
            "psc",
            &claims(now() + 300, "https://other.example", AUDIENCE, &subject),
        ),
        token(
            d,
            "psc",
            &claims(now() + 300, ISSUER, "another-client", &subject),
        ),
        token(
            d,
            "impostor",
            &claims(now() + 300, ISSUER, AUDIENCE, &subject),
        ),
        token(d, "psc", &claims(now() + 300, ISSUER, AUDIENCE, "")),
        "not.a.token".to_string(),
        // The holder's ID token (Keycloak's typ ID), not an access token for this server.
        token(
            d,
            "psc",
            &claims(now() + 300, ISSUER, AUDIENCE, &subject).replace("\"Bearer\"", "\"ID\""),
        ),
        // A level that only ends like one.
        token(
            d,
            "psc",
            &claims(now() + 300, ISSUER, AUDIENCE, &subject).replace("eidas1", "noteidas3"),
        ),
    ];
    for bad in &refused {
        let said = login(&server, "imap", "XOAUTH2", bad);
        assert!(
            said.starts_with("NO") && said.contains("invalid_token"),
            "{said}"
        );
    }
    let said = login(&server, "smtp", "OAUTHBEARER", &refused[0]);
    assert!(
        said.starts_with("NO") && said.contains("invalid_token"),
        "{said}"
    );

    // A refused token names nobody (its claims cannot be trusted): the reasons are in the tail.
    let trail = server.cli_ok(&["audit", "tail", "-n", "30"]);
    for reason in [
        "token expired",
        "wrong issuer",
        "wrong audience",
        "bad signature",
        "missing claim SubjectNameID",
        "malformed token",
        "not an access token",
        "authentication level noteidas3 below the minimum",
    ] {
        assert!(trail.contains(reason), "{reason} in:\n{trail}");
    }
    let mine = server.cli_ok(&["audit", "show", "--user", DOCTOR]);
    assert!(
        mine.contains(&format!("Pro Santé Connect: idNat {IDNAT}")),
        "{mine}"
    );
    assert_eq!(server.stop(), 0);
}

#[test]
fn a_weak_level_is_refused_and_a_missing_key_file_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let jwks = d.join("jwks.json");
    std::fs::write(&jwks, key_pair(d, "psc")).expect("jwks");
    let mut server = TestServer::new(&format!(
        "[auth.psc]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_file = \"{}\"\nmin_acr = \"eidas2\"\n",
        path(&jwks)
    ));
    server.cli_ok(&["user", "add", DOCTOR, "--idnat", IDNAT, "--no-password"]);
    server.start();
    let subject = format!(r#","SubjectNameID":"{IDNAT}""#);
    let eidas1 = token(d, "psc", &claims(now() + 300, ISSUER, AUDIENCE, &subject));
    assert!(login(&server, "imap", "XOAUTH2", &eidas1).starts_with("NO"));
    let trail = server.cli_ok(&["audit", "tail", "-n", "5"]);
    assert!(
        trail.contains("authentication level eidas1 below the minimum"),
        "{trail}"
    );
    assert_eq!(server.stop(), 0);

    let broken = TestServer::bare(
        "[auth.psc]\nissuer = \"x\"\naudience = \"y\"\njwks_file = \"/nonexistent/jwks.json\"\n",
    );
    let out = broken.cli(&["user", "list"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("auth.psc.jwks_file"), "{}", show(&out));
}

#[test]
fn the_keys_can_come_from_the_realms_https_endpoint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let www = d.join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("certs.json"), key_pair(d, "psc")).expect("jwks");
    let port = free_port();
    let mut server = TestServer::new("");
    let pki = server.data.join("pki");
    let tls = d.join("tls");
    server.cli_ok(&[
        "pki",
        "issue-server",
        "127.0.0.1",
        "--organisation",
        "REALM",
        "--out",
        path(&tls),
    ]);
    server.add_config(&format!(
        "[auth.psc]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_url = \"https://127.0.0.1:{port}/certs.json\"\nca_file = \"{}\"\n",
        path(&pki.join("ca-bundle.pem"))
    ));
    server.cli_ok(&["user", "add", DOCTOR, "--idnat", IDNAT, "--no-password"]);
    // The realm's certs endpoint: python's http.server behind TLS, on loopback.
    let script = r#"
import functools, http.server, ssl, sys
port, root, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
httpd = http.server.HTTPServer(('127.0.0.1', port), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
httpd.serve_forever()
"#;
    let mut realm = std::process::Command::new("python3")
        .args(["-c", script, &port.to_string(), path(&www)])
        .arg(tls.join("127.0.0.1.pem"))
        .arg(tls.join("127.0.0.1.key"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 https server");
    wait_for_port(port);
    server.start();
    let subject = format!(r#","SubjectNameID":"{IDNAT}""#);
    let good = token(d, "psc", &claims(now() + 300, ISSUER, AUDIENCE, &subject));
    let said = login(&server, "imap", "OAUTHBEARER", &good);
    let _ = realm.kill();
    let _ = realm.wait();
    assert_eq!(said, "OK", "{}", server.log());
    assert_eq!(server.stop(), 0);
}
