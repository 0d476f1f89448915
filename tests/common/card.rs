//! Cards for the tests that log in with one: Dr Carte's mailbox, cards issued by the TEST
//! PKI, and SASL EXTERNAL from python (imaplib, smtplib, poplib), curl and `openssl s_client`.

use super::*;

pub const CARD_USER: &str = "dr.carte@hopital.test";
pub const CABINET: &str = "cabinet.carte@hopital.test";

/// Runs `protocol`'s EXTERNAL login with the card `cert`/`key` (and `authzid`): "OK ..."
/// or "NO ...".
pub fn external(
    server: &TestServer,
    protocol: &str,
    cert: &Path,
    key: &Path,
    authzid: &str,
) -> String {
    let script = r#"
import imaplib, poplib, smtplib, ssl, sys, base64
protocol, port, cert, key, authzid = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl._create_unverified_context()
ctx.load_cert_chain(cert, key)
try:
    if protocol == "imap":
        m = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx, timeout=20)
        caps = m.capabilities
        m.authenticate('EXTERNAL', lambda _: authzid.encode())
        print("OK", " ".join(caps))
    elif protocol == "smtp":
        s = smtplib.SMTP('127.0.0.1', port, timeout=20)
        s.starttls(context=ctx)
        s.ehlo()
        s.auth('EXTERNAL', lambda challenge=None: authzid)
        print("OK", s.esmtp_features.get('auth', ''))
    else:
        m = poplib.POP3_SSL('127.0.0.1', port, context=ctx, timeout=20)
        ir = base64.b64encode(authzid.encode()).decode() or '='
        print("OK", m._shortcmd('AUTH EXTERNAL ' + ir).decode())
except Exception as e:
    print("NO", e)
"#;
    let port = match protocol {
        "imap" => server.ports.imaps,
        "smtp" => server.ports.submission,
        _ => server.ports.pop3s,
    };
    let out = python(
        script,
        &[protocol, &port.to_string(), path(cert), path(key), authzid],
    );
    assert!(out.status.success(), "{}", show(&out));
    stdout(&out).trim().to_string()
}

/// Dr Carte's mailbox: idNat 810001234567, no password (card only).
pub fn add_card_user(server: &TestServer) {
    server.cli_ok(&[
        "user",
        "add",
        CARD_USER,
        "--idnat",
        "810001234567",
        "--no-password",
    ]);
}

/// An authentication card of `idnat` issued by the TEST PKI into `out` (`extra`: e.g.
/// `--expired`).
pub struct Card {
    pub issued: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn issue_card(server: &TestServer, idnat: &str, out: &Path, extra: &[&str]) -> Card {
    let mut args = vec![
        "pki",
        "issue-person",
        "--idnat",
        idnat,
        "--surname",
        "MARTIN",
        "--given-name",
        "ALICE",
        "--use",
        "auth",
        "--out",
        path(out),
    ];
    args.extend_from_slice(extra);
    Card {
        issued: server.cli_ok(&args),
        cert: out.join(format!("{idnat}-auth.pem")),
        key: out.join(format!("{idnat}-auth.key")),
    }
}

/// curl's IMAP login with AUTH=EXTERNAL and the card `cert`/`key` (none: no card) on
/// `port` (implicit TLS), naming `mailbox` as the authorization identity.
pub fn curl_card(port: u16, mailbox: &str, card: Option<(&Path, &Path)>) -> Output {
    let url = format!("imaps://127.0.0.1:{port}/INBOX");
    let mut args = vec![
        "--login-options",
        "AUTH=EXTERNAL",
        "-u",
        mailbox,
        "-X",
        "NOOP",
        &url,
    ];
    if let Some((cert, key)) = card {
        args.extend_from_slice(&["--cert", path(cert), "--key", path(key)]);
    }
    curl(&args)
}

/// `openssl s_client` with the card on `port` (implicit TLS), speaking IMAP by hand:
/// AUTHENTICATE EXTERNAL then LOGOUT. Returns what the server said (empty when the
/// handshake failed).
pub fn s_client_card(port: u16, cert: &Path, key: &Path) -> String {
    require("openssl");
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-cert", path(cert), "-key", path(key), "-quiet", "-ign_eof"]);
    let out = run_with_stdin(cmd, "a AUTHENTICATE EXTERNAL =\r\nb LOGOUT\r\n");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
