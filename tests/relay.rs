//! A hospital's own MTA behind the operator: Postfix from Debian, in a temp dir with its own
//! IGC-Santé TEST certificate, relays the hospital's mail (chu.test) through the mssante MX
//! and receives the hospital's mail from it, over mutual TLS in both directions.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A Postfix instance (`scripts/postfix-instance`) listening on `port`, relaying what it is
/// given to our MX over TLS with its certificate, and storing mail for chu.test in a maildir.
struct Postfix {
    etc: PathBuf,
    maildir: PathBuf,
    log: PathBuf,
    port: u16,
}

impl Postfix {
    /// Starts `scripts/postfix-instance` in `root` for chu.test, relaying to `relayhost`.
    fn start(root: &Path, cert: &Path, key: &Path, ca: &Path, relayhost: u16) -> Postfix {
        require("postfix");
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postfix-instance");
        let mut cmd = Command::new(script);
        cmd.arg(root)
            .arg(port.to_string())
            .args([cert, key, ca])
            .args(["chu.test", &relayhost.to_string()])
            // Like many hospital MTAs, this one offers neither DSN nor 8BITMIME.
            .env(
                "POSTFIX_MAIN_EXTRA",
                "smtpd_discard_ehlo_keywords = dsn, 8bitmime",
            );
        let out = run_with_stdin(cmd, "");
        let postfix = Postfix {
            etc: root.join("etc"),
            maildir: root.join("mail").join("maildir"),
            log: root.join("maillog"),
            port,
        };
        assert!(
            out.status.success(),
            "postfix start:\n{}\n{}",
            show(&out),
            postfix.log()
        );
        wait_for_port(port);
        postfix
    }

    fn run(&self, verb: &str) -> std::process::Output {
        let mut cmd = Command::new("postfix");
        cmd.arg("-c").arg(&self.etc).arg(verb);
        run_with_stdin(cmd, "")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every message delivered to chu.test so far.
    fn delivered(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = self.run("stop");
    }
}

#[test]
fn postfix_relays_a_hospital_domain_through_the_mx_in_both_directions() {
    let mut server = TestServer::new("");
    let certs = server.dir.path().join("chu");
    let issued = server.cli_ok(&[
        "pki",
        "issue-server",
        "mx.chu.test",
        "--organisation",
        "CHU TEST",
        "--out",
        path(&certs),
    ]);
    let chu_dn = issued_subject(&issued);
    let stranger = server.cli_ok(&[
        "pki",
        "issue-server",
        "mx.other.test",
        "--out",
        path(&certs),
    ]);
    assert!(stranger.contains("subject:"));
    let closed = free_port();
    server.import_whitelist(&[("far.test", "CN=mx.far.test,O=Far,C=FR")]);
    // Postfix needs our MX port, and we need its port: start Postfix first.
    let postfix = Postfix::start(
        &server.dir.path().join("postfix"),
        &certs.join("mx.chu.test.pem"),
        &certs.join("mx.chu.test.key"),
        &server.data.join("pki").join("ca-bundle.pem"),
        server.ports.mx,
    );
    server.add_config(&format!(
        "[[relay_domain]]\ndomain = \"chu.test\"\nhost = \"127.0.0.1:{}\"\ncertificate_dn = \"{chu_dn}\"\n\n[[route]]\ndomain = \"far.test\"\nhost = \"127.0.0.1:{closed}\"\n",
        postfix.port
    ));
    server.start();

    // The hospital's mail system hands Postfix a message for a mailbox here and one for
    // another operator: Postfix relays both through our MX with its certificate.
    let out = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", postfix.port),
        "--from",
        "dr.house@chu.test",
        "--to",
        &format!("{USER},confrere@far.test"),
        "--body",
        "relayed marker-from-chu",
    ]);
    assert!(
        stdout(&out).contains("250 2.0.0 Ok: queued"),
        "{}",
        show(&out)
    );
    let got = wait_for(30, "the hospital's message in alice's INBOX", || {
        inbox(&server, USER, PASSWORD)
            .into_iter()
            .find(|m| m.contains("marker-from-chu"))
    });
    assert!(got.contains("by mx.chu.test (Postfix)"), "{got}");
    assert!(
        got.contains("with ESMTPS (version=TLSv1.3"),
        "{got}\n{}",
        postfix.log()
    );
    let queued = wait_for(10, "the relayed recipient in the queue", || {
        let list = server.cli_ok(&["queue", "list"]);
        list.contains("-> confrere@far.test").then_some(list)
    });
    assert!(queued.contains("dr.house@chu.test"), "{queued}");

    // Mail for the hospital goes to Postfix, which sees our certificate verified.
    // The sender asks for a success report; Postfix offers no DSN, so we report "relayed".
    let script = r#"
import smtplib, ssl, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
s.starttls(context=ssl._create_unverified_context())
s.login(sys.argv[2], sys.argv[3])
msg = 'From: %s\r\nSubject: pour le CHU\r\n\r\nmarker-to-chu\r\n' % sys.argv[2]
s.sendmail(sys.argv[2], ['dr.house@chu.test'], msg, rcpt_options=['NOTIFY=SUCCESS'])
# 8-bit text: converted to quoted-printable for a hop without 8BITMIME.
msg = ('From: %s\r\nSubject: accents\r\nContent-Type: text/plain; charset=utf-8\r\n'
       'Content-Transfer-Encoding: 8bit\r\n\r\nmarker-8bit glycémie normale\r\n' % sys.argv[2])
s.sendmail(sys.argv[2], ['dr.house@chu.test'], msg.encode(), mail_options=['BODY=8BITMIME'])
# 8-bit signed content: converting it would break the signature, so it comes back.
msg = ('From: %s\r\nSubject: marker-signed\r\n'
       'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=s\r\n\r\n'
       '--s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsigné\r\n--s--\r\n' % sys.argv[2])
s.sendmail(sys.argv[2], ['dr.house@chu.test'], msg.encode(), mail_options=['BODY=8BITMIME'])
s.quit()
"#;
    let port = server.ports.submission.to_string();
    let out = python(script, &[&port, USER, PASSWORD]);
    assert!(out.status.success(), "{}", show(&out));
    let delivered = wait_for(30, "the message in the hospital's maildir", || {
        postfix
            .delivered()
            .into_iter()
            .find(|m| m.contains("marker-to-chu"))
    });
    assert!(
        delivered.contains("Issuer \"TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS\" (verified OK)"),
        "Postfix verified our client certificate:\n{delivered}"
    );
    let relayed = wait_for(30, "the relayed report", || {
        inbox(&server, USER, PASSWORD)
            .into_iter()
            .find(|m| m.contains("Action: relayed"))
    });
    assert!(
        relayed.contains("Final-Recipient: rfc822; dr.house@chu.test"),
        "{relayed}"
    );
    assert!(relayed.contains("Remote-MTA: dns; 127.0.0.1"), "{relayed}");
    let converted = wait_for(30, "the 8-bit message in the hospital's maildir", || {
        postfix
            .delivered()
            .into_iter()
            .find(|m| m.contains("marker-8bit"))
    });
    assert!(converted.is_ascii(), "{converted}");
    assert!(
        converted.contains("Content-Transfer-Encoding: quoted-printable")
            && converted.contains("marker-8bit glyc=C3=A9mie normale")
            && !converted.contains("Content-Transfer-Encoding: 8bit"),
        "{converted}"
    );
    let returned = wait_for(30, "the report for the signed 8-bit message", || {
        inbox(&server, USER, PASSWORD)
            .into_iter()
            .find(|m| m.contains("Status: 5.6.3"))
    });
    assert!(
        returned.contains("Subject: marker-signed")
            && returned.contains("cannot be made 7-bit: signed content"),
        "{returned}"
    );
    assert!(
        !postfix
            .delivered()
            .iter()
            .any(|m| m.contains("marker-signed"))
    );

    // Only the configured MTA speaks for chu.test; a peer without a certificate, nobody.
    let out = send_mx(
        &server,
        Some(&certs.join("mx.other.test.pem")),
        &["--from", "dr.house@chu.test", "--to", USER],
    );
    assert!(
        stdout(&out).contains("550 5.7.1 certificate DN does not match the relay host of chu.test"),
        "{}",
        show(&out)
    );
    let out = send_mx(
        &server,
        None,
        &["--from", "dr.house@chu.test", "--to", USER],
    );
    assert!(
        stdout(&out)
            .contains("530 5.7.1 A client certificate of the MSSanté trust space is required"),
        "{}",
        show(&out)
    );
    assert_eq!(server.stop(), 0);
    let trail = server.cli_ok(&["audit", "tail", "-n", "50"]);
    assert!(trail.contains("mx.refused"), "{trail}");
}
