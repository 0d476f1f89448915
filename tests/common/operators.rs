//! Two operators on one machine, for the tests that send mail between them: operator A
//! (hopital.test, with alice) and operator B (b.test, with bob), each a real `mssante
//! serve` with its own IGC-Santé TEST certificate from A's TEST PKI (CRLs read again every
//! second), one whitelist naming both, and a way for A to find B's MX.

use super::*;

pub const BOB: &str = "bob@b.test";
pub const BOB_PASSWORD: &str = "bob's long password";

/// Operator A (hopital.test with alice) and B (b.test with bob), configured for each other,
/// not started. A's TEST PKI issues both certificates.
pub struct Operators {
    pub a: TestServer,
    pub b: TestServer,
    pub dn_a: String,
    pub dn_b: String,
    /// The serial of B's certificate, to revoke it.
    pub serial_b: String,
}

/// How A finds B's MX.
pub enum FindB {
    /// A static route to B's MX port.
    Route,
    /// DNS MX records, from the name server on this loopback port.
    Dns(u16),
}

pub fn operators(queue_a: &str, find_b: FindB) -> Operators {
    let a = TestServer::new("");
    let b = TestServer::bare("");
    let certs = a.dir.path().join("operators");
    let issue = |host: &str, org: &str| {
        a.cli_ok(&[
            "pki",
            "issue-server",
            host,
            "--organisation",
            org,
            "--out",
            path(&certs),
        ])
    };
    let dn_a = issued_subject(&issue("mx.a.test", "OPERATEUR A"));
    let issued_b = issue("mx.b.test", "OPERATEUR B");
    let (dn_b, serial_b) = (issued_subject(&issued_b), issued_serial(&issued_b));
    let pki = a.data.join("pki");
    let tls = |host: &str| {
        format!(
            "[tls]\ncertificate = \"{cert}\"\nprivate_key = \"{key}\"\nclient_trust_anchors = [\"{bundle}\"]\ncrls = [\"{root}\", \"{org}\", \"{per}\"]\ncrl_refresh_secs = 1\n",
            cert = path(&certs.join(format!("{host}.pem"))),
            key = path(&certs.join(format!("{host}.key"))),
            bundle = path(&pki.join("ca-bundle.pem")),
            root = path(&pki.join("root.crl")),
            org = path(&pki.join("organisations.crl")),
            per = path(&pki.join("personnes.crl")),
        )
    };
    let hop_b = match find_b {
        FindB::Route => format!(
            "[[route]]\ndomain = \"b.test\"\nhost = \"127.0.0.1:{}\"\n",
            b.ports.mx
        ),
        FindB::Dns(port) => format!(
            "[dns]\nnameservers = [\"127.0.0.1:{port}\"]\nmx_port = {}\n",
            b.ports.mx
        ),
    };
    a.add_config(&format!(
        "hostname = \"mx.a.test\"\n{}\n[queue]\nretry_first_secs = 1\nretry_max_secs = 2\n{queue_a}\n{hop_b}",
        tls("mx.a.test"),
    ));
    b.add_config(&format!(
        "hostname = \"mx.b.test\"\n{}\n[queue]\nretry_first_secs = 1\nretry_max_secs = 2\n[[route]]\ndomain = \"hopital.test\"\nhost = \"127.0.0.1:{}\"\n",
        tls("mx.b.test"),
        a.ports.mx
    ));
    b.cli_ok(&["domain", "add", "b.test"]);
    b.cli_stdin_ok(&["user", "add", BOB, "--password-stdin"], BOB_PASSWORD);
    let ops = Operators {
        a,
        b,
        dn_a,
        dn_b,
        serial_b,
    };
    ops.whitelist(&ops.dn_b);
    ops
}

impl Operators {
    /// Both operators import a whitelist where b.test is operated by `dn_for_b`.
    pub fn whitelist(&self, dn_for_b: &str) {
        for server in [&self.a, &self.b] {
            let file = server.dir.path().join("liste.xml");
            std::fs::write(
                &file,
                whitelist_xml(&[("hopital.test", &self.dn_a), ("b.test", dn_for_b)]),
            )
            .expect("write whitelist");
            server.cli_ok(&["trust", "import", path(&file)]);
        }
    }
}

pub fn alice_sends(a: &TestServer, to: &str, body: &str) {
    let out = submit(
        a,
        PASSWORD,
        &[
            "--to",
            to,
            "--header",
            "Subject: consultation",
            "--body",
            body,
        ],
    );
    assert!(
        stdout(&out).contains("250 2.0.0 Message accepted for delivery, queued as"),
        "{}",
        show(&out)
    );
}

pub fn message_with<'m>(messages: &'m [String], marker: &str) -> Option<&'m String> {
    messages.iter().find(|m| m.contains(marker))
}
