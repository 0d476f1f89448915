//! A hospital's own MTA behind the operator: Postfix from Debian, in a temp dir with its own
//! IGC-Santé TEST certificate, relays the hospital's mail (chu.test) through the mssante MX
//! and receives the hospital's mail from it, over mutual TLS in both directions.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A Postfix instance (`postfix -c DIR`) listening on `port`, relaying everything it is given
/// to `relayhost` over TLS with `cert`, and storing mail for chu.test in a maildir.
struct Postfix {
    etc: PathBuf,
    maildir: PathBuf,
    log: PathBuf,
    port: u16,
}

impl Postfix {
    fn start(root: &Path, cert: &Path, key: &Path, ca: &Path, relayhost: u16) -> Postfix {
        require("postfix");
        let (etc, queue, data, mail) = (
            root.join("etc"),
            root.join("queue"),
            root.join("data"),
            root.join("mail"),
        );
        for dir in [&etc, &queue, &data, &mail] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        // Postfix's daemons run as the postfix user: they must reach the queue.
        let mut dir = root.to_path_buf();
        while dir != Path::new("/") && dir != std::env::temp_dir() {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            dir.pop();
        }
        chown(&data, "postfix");
        chown(&mail, "nobody");
        let port = free_port();
        let log = root.join("maillog");
        let main = format!(
            "compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
maillog_file = {log}
maillog_file_prefixes = {root}
myhostname = mx.chu.test
mydomain = chu.test
myorigin = chu.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_host_lookup = native
relayhost = [127.0.0.1]:{relayhost}
smtp_tls_security_level = encrypt
smtp_tls_cert_file = {cert}
smtp_tls_key_file = {key}
smtp_tls_CAfile = {ca}
smtpd_tls_security_level = may
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_CAfile = {ca}
smtpd_tls_ask_ccert = yes
smtpd_tls_received_header = yes
virtual_mailbox_domains = chu.test
virtual_mailbox_base = {mail}
virtual_mailbox_maps = static:maildir/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
biff = no
",
            queue = path(&queue),
            data = path(&data),
            log = path(&log),
            root = path(root),
            cert = path(cert),
            key = path(key),
            ca = path(ca),
            mail = path(&mail),
        );
        std::fs::write(etc.join("main.cf"), main).expect("main.cf");
        let mut master = format!("127.0.0.1:{port} inet n - n - - smtpd\n");
        for service in [
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "tlsmgr unix - - n 1000? 1 tlsmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "virtual unix - n n - - virtual",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ] {
            master += service;
            master.push('\n');
        }
        std::fs::write(etc.join("master.cf"), master).expect("master.cf");
        let postfix = Postfix {
            etc,
            maildir: mail.join("maildir"),
            log,
            port,
        };
        let out = postfix.run("start");
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

fn chown(dir: &Path, user: &str) {
    let out = run_with_stdin(
        {
            let mut c = Command::new("chown");
            c.arg(user).arg(dir);
            c
        },
        "",
    );
    assert!(out.status.success(), "{}", show(&out));
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
    let out = submit(
        &server,
        PASSWORD,
        &["--to", "dr.house@chu.test", "--body", "marker-to-chu"],
    );
    assert!(stdout(&out).contains("queued as"), "{}", show(&out));
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

    // Only the configured MTA speaks for chu.test; a peer without a certificate, nobody.
    let out = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", server.ports.mx),
        "--tls",
        "--tls-cert",
        path(&certs.join("mx.other.test.pem")),
        "--tls-key",
        path(&certs.join("mx.other.test.key")),
        "--from",
        "dr.house@chu.test",
        "--to",
        USER,
    ]);
    assert!(
        stdout(&out).contains("550 5.7.1 certificate DN does not match the relay host of chu.test"),
        "{}",
        show(&out)
    );
    let out = swaks(&[
        "--server",
        &format!("127.0.0.1:{}", server.ports.mx),
        "--tls",
        "--from",
        "dr.house@chu.test",
        "--to",
        USER,
    ]);
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
