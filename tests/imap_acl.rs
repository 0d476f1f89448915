//! Sharing through IMAP: a doctor grants a replacement read access to their INBOX with
//! SETACL (RFC 4314), the replacement finds it under "Other Users/" (RFC 2342), reads it
//! without changing it, loses it the moment the grant is withdrawn; an ORG mailbox's team
//! works in it under "Shared/"; every grant and every opening of another's folder is audited.

mod common;

use common::*;

const BOB: &str = "bob.durand@hopital.test";
const TEAM: &str = "secretariat@hopital.test";

const SHARING: &str = r#"
import imaplib, re, ssl, sys
ctx = ssl._create_unverified_context()
port, alice, bob, team, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
def connect(user):
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=20)
    m.login(user, password)
    return m
def status(lines):
    return lines[-1].split(" ", 2)[1]

# Bob's INBOX holds a message; he shares the INBOX (not his other folder) with Alice.
b = connect(bob)
assert "ACL" in b.capabilities and "RIGHTS=TEXK" in b.capabilities, b.capabilities
b.create("Consultations")
b.append("INBOX", None, None, b"Subject: pour le remplacant\r\n\r\nPatient de 14h.\r\n")
assert status(raw(b, "SETACL INBOX %s lr" % alice)) == "OK"
assert status(raw(b, "SETACL INBOX %s +s" % alice)) == "OK"
assert status(raw(b, "SETACL INBOX %s -s" % alice)) == "OK"
lines = raw(b, "GETACL INBOX")
assert lines[0] == '* ACL "INBOX" "%s" lrswipkxtea "%s" lr' % (bob, alice), lines
lines = raw(b, "LISTRIGHTS INBOX %s" % alice)
assert lines[0] == '* LISTRIGHTS "INBOX" "%s" "" l r s w i p k x t e a' % alice, lines
assert raw(b, "MYRIGHTS INBOX")[0] == '* MYRIGHTS "INBOX" lrswipkxtea'
assert status(raw(b, "SETACL INBOX nobody@hopital.test lr")) == "NO"
assert status(raw(b, "SETACL INBOX %s lrz" % alice)) == "BAD"

# Alice sees it under Other Users, and the team's mailbox under Shared; nothing else of Bob's.
a = connect(alice)
assert raw(a, "NAMESPACE")[0] == '* NAMESPACE (("" "/")) (("Other Users/" "/")) (("Shared/" "/"))'
listing = "\n".join(raw(a, 'LIST "" "*"'))
bob_inbox = "Other Users/%s/INBOX" % bob
assert '"%s"' % bob_inbox in listing, listing
assert "Consultations" not in listing, listing
assert '"Shared/%s/INBOX"' % team in listing, listing
assert '(\\Noselect \\HasChildren) "/" "Other Users"' in listing, listing
assert raw(a, 'MYRIGHTS "%s"' % bob_inbox)[0] == '* MYRIGHTS "%s" lr' % bob_inbox
# Read-only: reading works and leaves no \Seen; changing is refused.
lines = raw(a, 'SELECT "%s"' % bob_inbox)
assert status(lines) == "OK" and "[READ-ONLY]" in lines[-1], lines
a.state = "SELECTED"  # selected by hand, to read the tagged line
typ, data = a.fetch("1", "(BODY[])")
assert typ == "OK" and b"Patient de 14h." in data[0][1], data
assert "\\Seen" not in a.fetch("1", "(FLAGS)")[1][0].decode()
assert status(raw(a, "STORE 1 +FLAGS (\\Deleted)")) == "NO"
assert status(raw(a, 'SETACL "%s" %s lrswi' % (bob_inbox, alice))) == "NO"
assert status(raw(a, 'GETACL "%s"' % bob_inbox)) == "NO"
typ, data = a.append('"%s"' % bob_inbox, None, None, b"Subject: x\r\n\r\nx\r\n")
assert typ == "NO" and b"NOPERM" in data[0], (typ, data)
assert status(raw(a, 'SELECT "Other Users/%s/Consultations"' % bob)) == "NO"
assert status(raw(a, 'SELECT "Other Users/%s/Consultations"' % "nobody@hopital.test")) == "NO"

# The grant is withdrawn while Alice has the folder open: her next command is refused.
a.select('"%s"' % bob_inbox, readonly=True)
assert status(raw(b, "DELETEACL INBOX %s" % alice)) == "OK"
lines = raw(a, "FETCH 1 (BODY.PEEK[])")
assert status(lines) == "NO" and "NOPERM" in lines[-1], lines
assert bob_inbox not in "\n".join(raw(a, 'LIST "" "*"'))

# The team mailbox: Alice works in it (delegation lrswite), even copying her own mail in.
shared = "Shared/%s/INBOX" % team
a.append("INBOX", None, None, b"Subject: a transmettre\r\n\r\nCourrier pour le secretariat.\r\n")
lines = raw(a, 'SELECT "%s"' % shared)
assert "[READ-WRITE]" in lines[-1], lines
a.state = "SELECTED"
a.select("INBOX")
lines = raw(a, 'COPY 1 "%s"' % shared)
assert status(lines) == "OK" and "COPYUID" in lines[-1], lines
t = connect(team)
t.select("INBOX")
typ, data = t.fetch("1", "(BODY[])")
assert b"Courrier pour le secretariat." in data[0][1], data
print("SHARING OK")
"#;

#[test]
fn acl_delegation_and_shared_namespaces() {
    let mut server = TestServer::new("");
    server.cli_stdin_ok(&["user", "add", BOB, "--password-stdin"], PASSWORD);
    server.cli_stdin_ok(
        &["user", "add", TEAM, "--type", "ORG", "--password-stdin"],
        PASSWORD,
    );
    server.cli_ok(&["delegation", "add", TEAM, USER, "--rights", "lrswite"]);
    server.start();
    let port = server.ports.imaps.to_string();
    let script = format!("{}{SHARING}", imap::HELPERS);
    let out = python(&script, &[&port, USER, BOB, TEAM, PASSWORD]);
    assert!(
        out.status.success() && stdout(&out).contains("SHARING OK"),
        "{}\n{}",
        show(&out),
        server.log()
    );
    let audit = server.cli_ok(&["audit", "tail", "-n", "100"]);
    assert!(
        audit.contains("acl.set") && audit.contains(&format!("{USER} now has \"lr\"")),
        "{audit}"
    );
    assert!(
        audit.contains("mailbox.access") && audit.contains(&format!("Other Users/{BOB}/INBOX")),
        "{audit}"
    );
}

const CAROL: &str = "carol.petit@hopital.test";

/// Alice, a read-only delegate of Bob's mailbox (`lrs`), logs in on its behalf (PLAIN
/// authorization identity). Carol shared a folder with Bob, with every right.
const DELEGATE: &str = r#"
import imaplib, ssl, sys, base64
ctx = ssl._create_unverified_context()
port, alice, bob, carol, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
def status(lines):
    return lines[-1].split(" ", 2)[1]
c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=20)
c.login(carol, password)
c.create("Dossiers")
c.append("Dossiers", None, None, b"Subject: dossier\r\n\r\nx\r\n")
assert status(raw(c, "SETACL Dossiers %s lrswipkxtea" % bob)) == "OK"

a = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=20)
token = ("%s\0%s\0%s" % (bob, alice, password)).encode()
typ, _ = a.authenticate("PLAIN", lambda _: token)
assert typ == "OK", typ
folder = "Other Users/%s/Dossiers" % carol
# At most the delegation's rights, on the folders others gave Bob as on Bob's own.
assert raw(a, 'MYRIGHTS "%s"' % folder)[0] == '* MYRIGHTS "%s" lrs' % folder, raw(a, 'MYRIGHTS "%s"' % folder)
assert raw(a, "MYRIGHTS INBOX")[0] == '* MYRIGHTS "INBOX" lrs'
assert status(raw(a, 'SETACL "%s" %s lrswipkxtea' % (folder, alice))) == "NO"
typ, data = a.append('"%s"' % folder, None, None, b"Subject: planted\r\n\r\nx\r\n")
assert typ == "NO", (typ, data)
lines = raw(a, 'SELECT "%s"' % folder)
assert status(lines) == "OK" and "[READ-WRITE]" in lines[-1], lines
a.state = "SELECTED"
assert status(raw(a, "STORE 1 +FLAGS (\\Deleted)")) == "NO"
print("READY", flush=True)
sys.stdin.readline()
# The administrator withdrew the delegation meanwhile: the next command ends the session.
try:
    lines = raw(a, "NOOP")
    print("AFTER", lines)
except (imaplib.IMAP4.abort, OSError) as e:
    print("AFTER closed", e)
"#;

#[test]
fn a_delegate_has_at_most_the_delegation_everywhere_and_loses_it_at_once() {
    let mut server = TestServer::new("");
    for who in [BOB, CAROL] {
        server.cli_stdin_ok(&["user", "add", who, "--password-stdin"], PASSWORD);
    }
    server.cli_ok(&["delegation", "add", BOB, USER, "--rights", "lrs"]);
    server.start();
    let port = server.ports.imaps.to_string();
    let script = format!("{}{DELEGATE}", imap::HELPERS);
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .args([&port, USER, BOB, CAROL, PASSWORD])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("read");
    if line.trim() != "READY" {
        let output = child.wait_with_output().expect("wait");
        panic!("{line}{}", show(&output));
    }
    server.cli_ok(&["delegation", "remove", BOB, USER]);
    let mut stdin = child.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, b"go\n").expect("write");
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read");
    assert!(
        rest.contains("delegation of this mailbox was withdrawn") || rest.contains("AFTER closed"),
        "{rest}"
    );
    let _ = child.wait();
    // The trail names the person acting and the mailbox acted on.
    let audit = server.cli_ok(&["audit", "tail", "-n", "50"]);
    assert!(
        audit.contains(&format!("{USER} for {BOB}")) && audit.contains("mailbox.access"),
        "{audit}"
    );
    assert_eq!(server.stop(), 0);
}
