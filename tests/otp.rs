//! The one-time-code second factor with oathtool (Debian's TOTP generator, what an
//! authenticator app computes): `mssante user otp enroll` prints the otpauth URI and a QR
//! code; the code is typed after the password in a stock POP3 client; the current and the
//! previous step count, each code once; a mailbox or a whole domain can be required to use
//! one; the secret is never readable at rest.

mod common;

use std::process::Command;

use common::*;

const CAROL: &str = "carol@autre.test";
const CAROL_PASSWORD: &str = "carol's long password";
const BOB: &str = "bob.durand@hopital.test";
const BOB_PASSWORD: &str = "bob's own long password";

/// Logs in over POP3S with python's poplib: "OK", or "NO" and the server's words.
fn login(server: &TestServer, user: &str, password: &str) -> String {
    let script = r#"
import poplib, ssl, sys
ctx = ssl._create_unverified_context()
m = poplib.POP3_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)
m.user(sys.argv[2])
try:
    m.pass_(sys.argv[3])
    print("OK")
    m.quit()
except poplib.error_proto as e:
    print("NO", e)
"#;
    let out = python(script, &[&server.ports.pop3s.to_string(), user, password]);
    assert!(out.status.success(), "{}", show(&out));
    stdout(&out).trim().to_string()
}

/// Waits, if the current 30-second step ends within 10 seconds, for the next one: the
/// checks on "the previous step" and "the current step" then happen within one step (a
/// login takes about a second; one that straddled the turn would see other steps).
fn fresh_step() {
    let into = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
        % 30.0;
    if into > 20.0 {
        std::thread::sleep(std::time::Duration::from_secs_f64(30.0 - into + 0.2));
    }
}

/// oathtool's code for `secret` (base32) at `when` ("now", "30 seconds ago").
fn oathtool(secret: &str, when: &str) -> String {
    require("oathtool");
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "-N", when, secret])
        .output()
        .expect("run oathtool");
    assert!(out.status.success(), "{}", show(&out));
    stdout(&out).trim().to_string()
}

/// Enrols `address`; returns the base32 secret of the URI it printed.
fn enroll(server: &TestServer, address: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["user", "otp", "enroll", address];
    args.extend_from_slice(extra);
    let printed = server.cli_ok(&args);
    let uri = printed
        .lines()
        .find(|l| l.starts_with("otpauth://totp/"))
        .unwrap_or_else(|| panic!("no otpauth URI in:\n{printed}"))
        .to_string();
    let secret = uri
        .split("secret=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .expect("secret parameter")
        .to_string();
    (secret, printed)
}

#[test]
fn the_code_after_the_password_is_the_second_factor() {
    require("oathtool");
    let mut server = TestServer::new("[auth]\nrequire_otp_domains = [\"Autre.test\"]\n");
    let dir = server.dir.path().to_path_buf();
    server.cli_ok(&["domain", "add", "autre.test"]);
    server.cli_stdin_ok(&["user", "add", CAROL, "--password-stdin"], CAROL_PASSWORD);
    let added = server.cli_stdin_ok(
        &["user", "add", BOB, "--password-stdin", "--require-otp"],
        BOB_PASSWORD,
    );
    assert!(added.contains("need a one-time code"), "{added}");
    let svg = dir.join("alice-otp.svg");
    let (secret, printed) = enroll(&server, USER, &["--svg", path(&svg)]);
    assert!(
        printed.contains("otpauth://totp/MSSante%20hopital.test:alice.martin@hopital.test?secret=")
            && printed.contains('█'),
        "URI and a terminal QR code:\n{printed}"
    );
    let image = std::fs::read_to_string(&svg).expect("SVG written");
    assert!(image.contains("<svg"), "{image}");
    server.start();

    // Alice: the password alone no longer opens the mailbox.
    assert!(login(&server, USER, PASSWORD).starts_with("NO"));
    // A code typed a moment before the step turned (the previous step) counts...
    fresh_step();
    let earlier = oathtool(&secret, "30 seconds ago");
    assert_eq!(login(&server, USER, &format!("{PASSWORD}{earlier}")), "OK");
    // ...so does the current one, once.
    let now = oathtool(&secret, "now");
    assert_eq!(login(&server, USER, &format!("{PASSWORD}{now}")), "OK");
    assert!(login(&server, USER, &format!("{PASSWORD}{now}")).starts_with("NO"));
    assert!(login(&server, USER, &format!("{PASSWORD}{earlier}")).starts_with("NO"));
    // A wrong code, or the right code after a wrong password, fails.
    let wrong = format!(
        "{:06}",
        (now.parse::<u32>().expect("digits") + 1) % 1_000_000
    );
    assert!(login(&server, USER, &format!("{PASSWORD}{wrong}")).starts_with("NO"));
    assert!(login(&server, USER, &format!("not the password{now}")).starts_with("NO"));

    // Bob is required to have a code and has none enrolled: refused until he enrols.
    assert!(login(&server, BOB, BOB_PASSWORD).starts_with("NO"));
    let (bob_secret, _) = enroll(&server, BOB, &[]);
    let code = oathtool(&bob_secret, "now");
    assert_eq!(login(&server, BOB, &format!("{BOB_PASSWORD}{code}")), "OK");
    server.cli_ok(&["user", "otp", "require", BOB, "--lift"]);
    server.cli_ok(&["user", "otp", "remove", BOB]);
    assert_eq!(login(&server, BOB, BOB_PASSWORD), "OK");

    // Carol's domain requires a code of everyone.
    assert!(login(&server, CAROL, CAROL_PASSWORD).starts_with("NO"));
    let (carol_secret, _) = enroll(&server, CAROL, &[]);
    let code = oathtool(&carol_secret, "now");
    assert_eq!(
        login(&server, CAROL, &format!("{CAROL_PASSWORD}{code}")),
        "OK"
    );

    // Every refusal is traced with its precise reason; enrolments too.
    let trail = server.cli_ok(&["audit", "tail", "-n", "100"]);
    for expected in [
        "one-time code missing, wrong or already used",
        "a one-time code is required and none is enrolled",
        "otp.enroll",
        "otp.require",
    ] {
        assert!(trail.contains(expected), "{expected} in:\n{trail}");
    }

    // One professional's records: `audit show --user --since`.
    let today = stdout(
        &Command::new("date")
            .args(["-u", "+%Y-%m-%d"])
            .output()
            .expect("date"),
    );
    let bobs = server.cli_ok(&["audit", "show", "--user", BOB, "--since", today.trim()]);
    assert!(
        bobs.contains("none is enrolled") && bobs.contains("otp.require") && !bobs.contains(USER),
        "{bobs}"
    );
    let future = server.cli_ok(&["audit", "show", "--user", BOB, "--since", "2999-01-01"]);
    assert!(future.contains("no audit record matches"), "{future}");
    let out = server.cli(&["audit", "show", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        show(&out).contains("--since \"yesterday\""),
        "{}",
        show(&out)
    );

    // The secret is sealed at rest: neither its base32 form nor its octets are readable.
    let out = python(
        "import base64, sys\ns = sys.argv[1]\nsys.stdout.write(base64.b32decode(s + '=' * (-len(s) % 8)).hex())",
        &[&secret],
    );
    let raw = hex_decode(stdout(&out).trim());
    assert_eq!(raw.len(), 20);
    for file in files_under(&server.data) {
        let bytes = std::fs::read(&file).expect("read");
        assert!(
            !contains(&bytes, secret.as_bytes()) && !contains(&bytes, &raw),
            "OTP secret readable in {}",
            file.display()
        );
    }
    assert_eq!(server.stop(), 0);
}

#[test]
fn a_bad_domain_in_the_policy_is_named_with_its_line() {
    let server = TestServer::bare("[auth]\nrequire_otp_domains = [\"not a domain\"]\n");
    let out = server.cli(&["user", "list"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let said = show(&out);
    assert!(said.contains("auth.require_otp_domains[0]"), "{said}");
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
        .collect()
}
