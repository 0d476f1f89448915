//! Publishing the mailboxes to the national directory (slapd from Debian with mssante's
//! schema, started by scripts/dev-directory): every mailbox change is published, a red-list
//! mailbox leaves the public view, changes made while the directory is down wait in the
//! store and are published in order once it is back, and `directory sync` finds and
//! repairs drift. The searches are the ones Thunderbird's address book sends.

mod common;

use std::process::Command;

use common::slapd::{BASE_DN, Slapd};
use common::*;

const BOB: &str = "bob.durand@hopital.test";
const GONE: &str = "ephemere@hopital.test";

fn directory_config(slapd: &Slapd) -> String {
    format!(
        "[directory]\nurl = \"{}\"\nbase_dn = \"{BASE_DN}\"\nbind_dn = \"{}\"\nbind_password_file = \"{}\"\ntimeout_secs = 2\nretry_secs = 1\n",
        slapd.url(),
        slapd.admin_dn(),
        path(&slapd.admin_secret_file()),
    )
}

/// Runs an LDIF change as the operator (ldapmodify -a), behind mssante's back.
fn ldapmodify(slapd: &Slapd, ldif: &str) {
    let mut cmd = Command::new("ldapmodify");
    cmd.args([
        "-x",
        "-a",
        "-H",
        &slapd.url(),
        "-D",
        &slapd.admin_dn(),
        "-y",
    ])
    .arg(slapd.admin_secret_file());
    let out = run_with_stdin(cmd, ldif);
    assert!(out.status.success(), "ldapmodify:\n{}", show(&out));
}

#[test]
fn every_mailbox_change_reaches_the_directory_and_waits_when_it_is_down() {
    let mut slapd = Slapd::start();
    // `user add` (in TestServer::new) publishes alice at once, with her TEST PKI certificate.
    let mut server = TestServer::new(&directory_config(&slapd));
    let public = slapd.ldapsearch(false, &format!("(mail={USER})"), &[]);
    assert!(
        public.contains("objectClass: mssPersonMailbox")
            && public.contains("mssMailboxType: PER")
            && public.contains("userSMIMECertificate:: "),
        "{public}"
    );

    // Her profile: on the red list, she leaves the public view; the authorised reader
    // still finds her, with the rest of her profile.
    let said = server.cli_ok(&[
        "user",
        "profile",
        USER,
        "--service",
        "Cardiologie",
        "--phone",
        "+33 1 23 45 67 89",
        "--red-list",
        "yes",
    ]);
    assert!(said.contains("published"), "{said}");
    assert_eq!(slapd.ldapsearch(false, &format!("(mail={USER})"), &[]), "");
    let reader = slapd.ldapsearch(true, &format!("(mail={USER})"), &[]);
    assert!(
        reader.contains("mssListeRouge: O")
            && reader.contains("mssService: Cardiologie")
            && reader.contains("telephoneNumber: +33 1 23 45 67 89"),
        "{reader}"
    );

    // The directory goes down while the server runs: mailbox operations still succeed, the
    // changes wait.
    server.start();
    slapd.stop();
    let said = server.cli_stdin_ok(
        &["user", "add", BOB, "--password-stdin"],
        "bob's password 1",
    );
    assert!(said.contains("not published now"), "{said}");
    server.cli_stdin_ok(
        &["user", "add", GONE, "--password-stdin"],
        "short-lived box 1",
    );
    server.cli_ok(&["user", "remove", GONE]);
    let status = server.cli_ok(&["directory", "status"]);
    assert!(
        status.contains(BOB) && status.contains(GONE) && status.contains("attempts"),
        "{status}"
    );

    // Back: `serve` publishes what waited, in order (GONE added, then removed).
    slapd.restart();
    wait_for(30, "the outbox to drain", || {
        server
            .cli_ok(&["directory", "status"])
            .contains("nothing waits")
            .then_some(())
    });
    assert!(
        slapd
            .ldapsearch(false, &format!("(mail={BOB})"), &["mail"])
            .contains(BOB)
    );
    assert_eq!(
        slapd.ldapsearch(true, &format!("(mail={GONE})"), &["mail"]),
        ""
    );
    assert_eq!(server.stop(), 0);
}

#[test]
fn sync_finds_and_repairs_drift_and_thunderbird_searches_find_mailboxes() {
    let slapd = Slapd::start();
    let server = TestServer::new(&directory_config(&slapd));
    server.cli_stdin_ok(
        &["user", "add", BOB, "--password-stdin"],
        "bob's password 1",
    );
    server.cli_ok(&[
        "user",
        "profile",
        BOB,
        "--surname",
        "DURAND",
        "--given-name",
        "Bob",
    ]);
    let in_sync = server.cli_ok(&["directory", "sync", "--dry-run"]);
    assert!(in_sync.contains("says what the mailboxes say"), "{in_sync}");

    // Drift behind mssante's back: an entry of our domain with no mailbox, a changed phone,
    // a removed entry; and one of another operator's domain, which is not ours to touch.
    ldapmodify(
        &slapd,
        &format!(
            "dn: mail=fantome@hopital.test,{BASE_DN}\nobjectClass: mssOrganisationMailbox\nmail: fantome@hopital.test\nmssMailboxType: ORG\ncn: Fantome\n\n\
             dn: mail=autre@autre.test,{BASE_DN}\nobjectClass: mssOrganisationMailbox\nmail: autre@autre.test\nmssMailboxType: ORG\ncn: Autre\n\n\
             dn: mail={BOB},{BASE_DN}\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: 0000\n\n\
             dn: mail={USER},{BASE_DN}\nchangetype: delete\n"
        ),
    );
    let dry = server.cli_ok(&["directory", "sync", "--dry-run"]);
    for line in [
        format!("missing  {USER}"),
        format!("stale    {BOB}"),
        "extra    fantome@hopital.test".to_string(),
    ] {
        assert!(dry.contains(&line), "{line} in:\n{dry}");
    }
    assert!(!dry.contains("autre@autre.test"), "{dry}");
    assert!(
        slapd
            .ldapsearch(true, "(mail=fantome@hopital.test)", &["mail"])
            .contains("fantome"),
        "a dry run changes nothing"
    );
    let repaired = server.cli_ok(&["directory", "sync"]);
    assert!(repaired.contains("3 entries repaired"), "{repaired}");
    let again = server.cli_ok(&["directory", "sync", "--dry-run"]);
    assert!(again.contains("says what the mailboxes say"), "{again}");
    assert!(
        slapd
            .ldapsearch(true, "(mail=autre@autre.test)", &["mail"])
            .contains("autre")
    );
    assert!(
        server
            .cli_ok(&["audit", "tail", "-n", "5"])
            .contains("directory.sync")
    );

    // Thunderbird's address book (anonymous, the public view): by name and by mail prefix,
    // with its default filter shape.
    let by_name = slapd.ldapsearch(false, "(|(cn=dur*)(mail=dur*)(sn=dur*))", &["mail", "cn"]);
    assert!(by_name.contains(BOB), "{by_name}");
    let by_mail = slapd.ldapsearch(false, "(|(cn=alice*)(mail=alice*)(sn=alice*))", &["mail"]);
    assert!(by_mail.contains(USER), "{by_mail}");
}

#[test]
fn outbound_mail_is_encrypted_to_the_certificate_the_directory_publishes() {
    use common::operators::{self, FindB, alice_sends, message_with};
    let slapd = Slapd::start();
    // A sends only encrypted mail and has no local certificate for bob: only the directory
    // can give it. A also refuses recipients the directory does not know.
    let mut ops = operators::operators(
        &format!(
            "[smime]\noutbound = \"require\"\n{}check_remote_recipients = true\n",
            directory_config(&slapd)
        ),
        FindB::Route,
    );
    // B publishes bob (made before B had a directory: sync finds him missing).
    ops.b.add_config(&directory_config(&slapd));
    let synced = ops.b.cli_ok(&["directory", "sync"]);
    assert!(
        synced.contains(&format!("missing  {}", operators::BOB)),
        "{synced}"
    );
    // Dan is in the directory without a certificate (published by hand at B's).
    ldapmodify(
        &slapd,
        &format!(
            "dn: mail=dan@b.test,{BASE_DN}\nobjectClass: mssOrganisationMailbox\nmail: dan@b.test\nmssMailboxType: ORG\ncn: Dan\n"
        ),
    );
    ops.a.start();
    ops.b.start();

    // Carol is in nobody's directory: refused at RCPT, the others still get the message.
    let out = submit(
        &ops.a,
        PASSWORD,
        &[
            "--to",
            "carol@b.test",
            "--body",
            "x",
            "--quit-after",
            "RCPT",
        ],
    );
    assert!(
        stdout(&out).contains("550 5.1.1 <carol@b.test> is not in the national MSSanté directory"),
        "{}",
        show(&out)
    );
    alice_sends(
        &ops.a,
        &format!("{},dan@b.test", operators::BOB),
        "marker-directory",
    );
    let got = wait_for(30, "alice's message at bob's", || {
        message_with(
            &inbox(&ops.b, operators::BOB, operators::BOB_PASSWORD),
            "marker-directory",
        )
        .cloned()
    });
    assert!(got.contains("X-MSSante-Encryption: decrypted"), "{got}");
    // Dan has no certificate: under `require` he is reported, not sent to.
    let report = wait_for(30, "the report for dan", || {
        message_with(&inbox(&ops.a, USER, PASSWORD), "Action: failed").cloned()
    });
    assert!(
        report.contains("Final-Recipient: rfc822; dan@b.test")
            && report.contains("no S/MIME certificate is known for this recipient"),
        "{report}"
    );
    assert_eq!(ops.a.stop(), 0);
    assert_eq!(ops.b.stop(), 0);
}

#[test]
fn the_ans_extract_is_imported_and_its_bad_rows_are_named_with_their_lines() {
    let slapd = Slapd::start();
    let server = TestServer::bare(&directory_config(&slapd));
    let header = [
        "Type de BAL",
        "Adresse BAL",
        "Type Identifiant PP",
        "Identifiant PP",
        "Identification nationale PP",
        "Type identifiant structure",
        "Identification Structure",
        "Service de rattachement",
        "Civilité d'exercice",
        "Nom d'exercice",
        "Prénom d'exercice",
        "Catégorie profession",
        "Libellé de catégorie profession",
        "Code Profession",
        "Libellé Profession",
        "Code savoir-faire",
        "Libellé savoir-faire",
        "Dématérialisation",
        "Raison Sociale structure BAL",
        "Enseigne commerciale structure BAL",
        "L2COMPLEMENTLOCALISATION structure BAL",
        "L3COMPLEMENTDISTRIBUTION structure BAL",
        "L4NUMEROVOIE structure BAL",
        "L4COMPLEMENTNUMEROVOIE structure BAL",
        "NL4TYPEVOIE structure BAL",
        "L4LIBELLEVOIE structure BAL",
        "L5LIEUDITMENTION structure BAL",
        "L6LIGNEACHEMINEMENT structure BAL",
        "Code postal structure BAL",
        "Département structure BAL",
        "Pays structure BAL",
    ]
    .join("|");
    let row = |kind: &str, address: &str, idnat: &str, surname: &str| {
        let mut fields = vec![""; 31];
        fields[0] = kind;
        fields[1] = address;
        fields[4] = idnat;
        fields[7] = "Cardiologie";
        fields[9] = surname;
        fields[10] = "Jean";
        fields[13] = "10";
        fields[17] = "O";
        fields[18] = "CHU DE TEST";
        fields.join("|")
    };
    let lines = [
        header,
        row("PER", "jean.durand@chu-test.fr", "810002345678", "DURAND"),
        row("PER", "sans-arobase", "810002345679", "SANS"),
        row("ORG", "cardio@chu-test.fr", "", ""),
        "PER|tronquee@chu-test.fr|8".to_string(),
        row("PER", "paul.morel@autre-test.fr", "810002345680", "MOREL"),
    ];
    let file = server
        .dir
        .path()
        .join("Extraction_Correspondance_MSSante.txt");
    std::fs::write(&file, lines.join("\n") + "\n").expect("extract");

    let out = server.cli(&["directory", "import-extract", path(&file)]);
    assert!(out.status.success(), "{}", show(&out));
    let said = stdout(&out);
    assert!(
        said.contains("5 rows, 3 entries imported, 2 skipped"),
        "{said}"
    );
    let errors = String::from_utf8_lossy(&out.stderr);
    let name = path(&file);
    for line in [3, 5] {
        assert!(
            errors.contains(&format!("{name}:{line}: skipped")),
            "line {line} named:\n{errors}"
        );
    }
    let found = slapd.ldapsearch(false, "(mssService=Cardiologie)", &["mail"]);
    for address in [
        "jean.durand@chu-test.fr",
        "cardio@chu-test.fr",
        "paul.morel@autre-test.fr",
    ] {
        assert!(found.contains(address), "{address} in:\n{found}");
    }

    // Not the extract at all: refused at its first line, nothing imported.
    let other = server.dir.path().join("autre.csv");
    std::fs::write(&other, "nom;prenom\nDURAND;Jean\n").expect("file");
    let out = server.cli(&["directory", "import-extract", path(&other)]);
    assert!(!out.status.success());
    assert!(
        show(&out).contains("not the ANS extract: line 1"),
        "{}",
        show(&out)
    );
}

#[test]
fn the_directory_is_reached_over_ldaps_or_starttls_and_only_with_the_right_ca() {
    // The directory's certificate: localhost, from the TEST PKI of a first data directory.
    let ldaps = TestServer::bare("");
    let certs = ldaps.dir.path().join("certs");
    ldaps.cli_ok(&[
        "pki",
        "issue-server",
        "localhost",
        "--organisation",
        "ANNUAIRE",
        "--out",
        path(&certs),
    ]);
    let slapd = Slapd::start_tls(&certs.join("localhost.pem"), &certs.join("localhost.key"));
    let ca = ldaps.ca_file();
    let config = |url: &str, starttls: bool, ca: &std::path::Path| {
        format!(
            "[directory]\nurl = \"{url}\"\nbase_dn = \"{BASE_DN}\"\nbind_dn = \"{}\"\nbind_password_file = \"{}\"\nstarttls = {starttls}\nca_file = \"{}\"\ntimeout_secs = 3\n",
            slapd.admin_dn(),
            path(&slapd.admin_secret_file()),
            path(ca),
        )
    };
    let ldaps_port = slapd.ldaps_port.expect("ldaps port");
    let publish = |extra: String, address: &str| {
        let server = TestServer::bare(&extra);
        server.cli_ok(&["domain", "add", DOMAIN]);
        server.cli_stdin_ok(
            &["user", "add", address, "--password-stdin"],
            "a long password 1",
        )
    };
    let said = publish(
        config(&format!("ldaps://localhost:{ldaps_port}"), false, &ca),
        "par.ldaps@hopital.test",
    );
    assert!(said.contains("published"), "{said}");
    let said = publish(
        config(&format!("ldap://localhost:{}", slapd.port), true, &ca),
        "par.starttls@hopital.test",
    );
    assert!(said.contains("published"), "{said}");
    let found = slapd.ldapsearch(true, "(mail=par.*)", &["mail"]);
    assert!(
        found.contains("par.ldaps@") && found.contains("par.starttls@"),
        "{found}"
    );

    // A directory whose certificate does not chain to ca_file is not talked to.
    let other = ldaps.dir.path().join("other");
    std::fs::create_dir_all(&other).expect("dir");
    self_signed(&other, "ca", "/CN=Another CA");
    let said = publish(
        config(
            &format!("ldaps://localhost:{ldaps_port}"),
            false,
            &other.join("ca.pem"),
        ),
        "refuse@hopital.test",
    );
    assert!(said.contains("not published now"), "{said}");
    assert_eq!(slapd.ldapsearch(true, "(mail=refuse@*)", &["mail"]), "");
}

#[test]
fn the_trust_space_can_come_from_the_directory() {
    let slapd = Slapd::start();
    let server = TestServer::new(&directory_config(&slapd));
    // Nothing published yet: refused, nothing changed.
    let out = server.cli(&["trust", "import-directory"]);
    assert!(
        !out.status.success() && show(&out).contains("publishes no trust-space domain"),
        "{}",
        show(&out)
    );
    ldapmodify(
        &slapd,
        &format!(
            "dn: associatedDomain=operateur-a.fr,{BASE_DN}\nobjectClass: mssTrustedDomain\nassociatedDomain: operateur-a.fr\nmssOperatorDN: CN=mx.operateur-a.fr,O=OPERATEUR A,C=FR\n\n\
             dn: associatedDomain=xn--hpital-rva.fr,{BASE_DN}\nobjectClass: mssTrustedDomain\nassociatedDomain: xn--hpital-rva.fr\nmssOperatorDN: CN=mx.hopital.fr,O=HOPITAL,C=FR\ndescription: CH\n\n\
             dn: associatedDomain=casse.fr,{BASE_DN}\nobjectClass: mssTrustedDomain\nassociatedDomain: casse.fr\nmssOperatorDN: pas un DN\n"
        ),
    );
    let said = server.cli_ok(&["trust", "import-directory"]);
    assert!(
        said.contains("from the national directory: 2 domains: 2 added"),
        "{said}"
    );
    let listed = server.cli_ok(&["trust", "list"]);
    assert!(
        listed.contains("operateur-a.fr")
            && listed.contains("CN=mx.operateur-a.fr,O=OPERATEUR A,C=FR")
            && listed.contains("xn--hpital-rva.fr")
            && !listed.contains("casse.fr"),
        "{listed}"
    );
    assert!(
        server
            .cli_ok(&["audit", "tail", "-n", "3"])
            .contains("trust.import")
    );
}
