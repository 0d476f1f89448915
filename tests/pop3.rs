//! POP3 as practice software and mail clients use it: python's poplib for every command,
//! fetchmail and curl as real clients, a delegated mailbox, the single-session lock, IMAP
//! seeing POP3 deletions, and bad input.

mod common;

use common::*;

const SECRETARIAT: &str = "secretariat@hopital.test";
const BOB: &str = "bob.durand@hopital.test";
const BOB_PASSWORD: &str = "bob's own long password";

/// A started server where alice has `count` messages ("marker-1", ...) in her INBOX.
fn server_with_mail(count: usize) -> TestServer {
    let mut server = TestServer::new("");
    server.start();
    for n in 1..=count {
        send_to(&server, USER, &format!("marker-{n}"));
    }
    wait_for(20, "the messages in alice's INBOX", || {
        (inbox(&server, USER, PASSWORD).len() == count).then_some(())
    });
    server
}

fn send_to(server: &TestServer, to: &str, body: &str) {
    let out = submit(
        server,
        PASSWORD,
        &[
            "--to",
            to,
            "--header",
            &format!("Subject: {body}"),
            "--body",
            body,
        ],
    );
    assert!(stdout(&out).contains("250 2.0.0"), "{}", show(&out));
}

/// Runs a poplib script (helpers `ctx`, `expect_err` and `login` predefined); it prints
/// "DONE" at its end.
fn pop(script: &str, args: &[&str]) -> String {
    let prelude = r#"
import base64, imaplib, poplib, socket, ssl, sys, time
ctx = ssl._create_unverified_context()
def expect_err(f, code):
    try:
        f()
    except poplib.error_proto as e:
        assert code in str(e), (code, e)
        return
    raise AssertionError('no error, expected ' + code)
def login(port, user, password):
    m = poplib.POP3_SSL('127.0.0.1', port, context=ctx, timeout=20)
    m.user(user)
    m.pass_(password)
    return m
"#;
    let out = python(&format!("{prelude}{script}\nprint('DONE')"), args);
    let text = stdout(&out);
    assert!(
        out.status.success() && text.contains("DONE"),
        "{}",
        show(&out)
    );
    text
}

#[test]
fn every_command_with_poplib_the_lock_and_imap_seeing_deletions() {
    let server = server_with_mail(3);
    let script = r#"
port, sport, iport, user, pw = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
# STLS on the plain port; USER and SASL are offered only under TLS.
m = poplib.POP3('127.0.0.1', port, timeout=20)
caps = m.capa()
assert 'STLS' in caps and 'USER' not in caps, caps
expect_err(lambda: m.user(user), '[AUTH] Use STLS first')
m.stls(ctx)
caps = m.capa()
for c in ('USER', 'TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING'):
    assert c in caps, caps
assert caps['SASL'] == ['PLAIN', 'LOGIN'], caps
expect_err(lambda: m.stat(), 'STAT needs a login first')
m.user(user)
expect_err(lambda: m.pass_('wrong password'), '[AUTH] Authentication failed')
m.user(user)
assert m.pass_(pw).startswith(b'+OK Maildrop has 3 messages')
count, size = m.stat()
assert count == 3 and size > 0, (count, size)
resp, listing, _ = m.list()
assert [l.split()[0] for l in listing] == [b'1', b'2', b'3'], listing
assert sum(int(l.split()[1]) for l in listing) == size
assert m.list(2).startswith(b'+OK 2 ')
resp, uids, _ = m.uidl()
uids = [u.split()[1] for u in uids]
assert len(set(uids)) == 3, uids
assert m.uidl(3).split()[2] == uids[2]
resp, lines, _ = m.top(1, 0)
assert b'Subject: marker-1' in lines and not any(l == b'marker-1' for l in lines), lines
resp, lines, _ = m.retr(1)
assert b'marker-1' in lines, lines
expect_err(lambda: m.retr(4), 'No message 4')
m.dele(1)
expect_err(lambda: m.retr(1), 'Message 1 is deleted')
assert m.stat()[0] == 2
m.rset()
assert m.stat()[0] == 3
m.noop()
m.dele(1)
expect_err(lambda: m.user(user), 'USER is not allowed after login')
# A second POP3 session is kept out while this one holds the maildrop.
o = poplib.POP3_SSL('127.0.0.1', sport, context=ctx, timeout=20)
o.user(user)
expect_err(lambda: o.pass_(pw), '[IN-USE]')
o.quit()
# An IMAP session on the INBOX sees the deletion as an expunge once POP3 quits.
i = imaplib.IMAP4_SSL('127.0.0.1', iport, ssl_context=ctx)
i.login(user, pw)
assert i.select('INBOX')[1] == [b'3']
assert m.quit().startswith(b'+OK Bye, 1 messages deleted')
i.noop()
assert i.response('EXPUNGE') == ('EXPUNGE', [b'1']), i.response('EXPUNGE')
i.logout()
# The next session (SASL PLAIN with an initial response) has the same UIDLs.
n = poplib.POP3_SSL('127.0.0.1', sport, context=ctx, timeout=20)
ir = base64.b64encode(b'\0' + user.encode() + b'\0' + pw.encode()).decode()
assert n._shortcmd('AUTH PLAIN ' + ir).startswith(b'+OK')
resp, again, _ = n.uidl()
assert [u.split()[1] for u in again] == uids[1:], (again, uids)
# A dropped connection deletes nothing.
n.dele(1)
n.file.close()
n.sock.close()
time.sleep(0.5)
# AUTH LOGIN: the two-step exchange, challenges as '+ ' lines.
d = poplib.POP3_SSL('127.0.0.1', sport, context=ctx, timeout=20)
assert d._shortcmd('AUTH LOGIN') == b'+ ' + base64.b64encode(b'Username:')
assert d._shortcmd(base64.b64encode(user.encode()).decode()) == b'+ ' + base64.b64encode(b'Password:')
assert d._shortcmd(base64.b64encode(pw.encode()).decode()).startswith(b'+OK')
assert d.stat()[0] == 2
d.quit()
"#;
    let ports = &server.ports;
    pop(
        script,
        &[
            &ports.pop3.to_string(),
            &ports.pop3s.to_string(),
            &ports.imaps.to_string(),
            USER,
            PASSWORD,
        ],
    );
    let trail = server.cli_ok(&["audit", "tail", "-n", "50"]);
    assert!(trail.contains("login"), "{trail}");
}

#[test]
fn a_delegated_mailbox_opens_with_user_star_mailbox_and_its_rights() {
    let mut server = TestServer::new("");
    server.cli_ok(&["user", "add", SECRETARIAT, "--type", "ORG", "--no-password"]);
    server.cli_stdin_ok(&["user", "add", BOB, "--password-stdin"], BOB_PASSWORD);
    server.start();
    send_to(&server, SECRETARIAT, "marker-secretariat");
    let sport = server.ports.pop3s.to_string();
    let as_alice = format!("{USER}*{SECRETARIAT}");

    // Not delegated yet: refused, like a stranger.
    let refused = r#"
m = poplib.POP3_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)
m.user(sys.argv[2])
expect_err(lambda: m.pass_(sys.argv[3]), '[AUTH]')
"#;
    pop(refused, &[&sport, &as_alice, PASSWORD]);

    // Read only (the default rights): RETR works, DELE does not.
    server.cli_ok(&["delegation", "add", SECRETARIAT, USER]);
    let read_only = r#"
m = login(int(sys.argv[1]), sys.argv[2], sys.argv[3])
resp, lines, _ = m.retr(1)
assert b'marker-secretariat' in lines, lines
expect_err(lambda: m.dele(1), 'not among your rights')
m.quit()
"#;
    pop(read_only, &[&sport, &as_alice, PASSWORD]);
    // Bob has no delegation; his own password does not open the mailbox either.
    pop(
        refused,
        &[&sport, &format!("{BOB}*{SECRETARIAT}"), BOB_PASSWORD],
    );

    // Read/write: the SASL authorization identity works too, and DELE goes through.
    let listed = server.cli_ok(&[
        "delegation",
        "add",
        SECRETARIAT,
        USER,
        "--rights",
        "lrswite",
    ]);
    assert!(listed.contains("with rights lrswite"), "{listed}");
    let read_write = r#"
m = poplib.POP3_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=20)
ir = base64.b64encode('\0'.join([sys.argv[2], sys.argv[3], sys.argv[4]]).encode()).decode()
assert m._shortcmd('AUTH PLAIN ' + ir).startswith(b'+OK Maildrop has 1 messages')
m.dele(1)
assert m.quit().startswith(b'+OK Bye, 1 messages deleted')
"#;
    pop(read_write, &[&sport, SECRETARIAT, USER, PASSWORD]);
    assert!(
        server.cli_ok(&["delegation", "list"]).contains("lrswite"),
        "rights listed"
    );
    let trail = server.cli_ok(&["audit", "tail", "-n", "50"]);
    assert!(
        trail.contains("login.delegated") && trail.contains("with rights lrswite"),
        "{trail}"
    );
    assert!(
        trail.contains(BOB) && trail.contains("not authorized to act as"),
        "{trail}"
    );
}

#[test]
fn fetchmail_keeps_then_deletes_and_curl_lists_and_reads() {
    require("fetchmail");
    let server = server_with_mail(3);
    let dir = server.dir.path();
    let delivered = dir.join("fetched.mbox");
    let rc = dir.join("fetchmailrc");
    let write_rc = |keep: &str| {
        std::fs::write(
            &rc,
            format!(
                "set no syslog\npoll 127.0.0.1 service {port} protocol pop3 uidl\n  user \"{USER}\" there password \"{PASSWORD}\"\n  ssl sslcertck sslcertfile \"{ca}\" sslcommonname localhost\n  {keep}\n  mda \"/bin/sh -c 'cat >> {out}'\"\n",
                port = server.ports.pop3s,
                ca = path(&server.ca_file()),
                out = path(&delivered),
            ),
        )
        .expect("write fetchmailrc");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    };
    let fetchmail = || {
        let mut cmd = std::process::Command::new("fetchmail");
        cmd.args([
            "--fetchmailrc",
            path(&rc),
            "--idfile",
            path(&dir.join("fetchids")),
        ])
        .env("FETCHMAILHOME", dir)
        .env("HOME", dir);
        run_with_stdin(cmd, "")
    };
    // keep: three messages fetched; the second run finds nothing new (stable UIDLs).
    write_rc("keep");
    let out = fetchmail();
    assert!(out.status.success(), "{}", show(&out));
    let mbox = std::fs::read_to_string(&delivered).expect("fetched mail");
    assert!(
        (1..=3).all(|n| mbox.contains(&format!("marker-{n}"))),
        "{mbox}"
    );
    let again = fetchmail();
    assert_eq!(
        again.status.code(),
        Some(1),
        "1 = no new mail: {}",
        show(&again)
    );
    assert_eq!(inbox(&server, USER, PASSWORD).len(), 3);

    // curl over STLS lists the messages and reads one.
    let url = format!("pop3://127.0.0.1:{}/", server.ports.pop3);
    let user = format!("{USER}:{PASSWORD}");
    let listing = curl(&["--ssl-reqd", "--user", &user, &url]);
    assert_eq!(stdout(&listing).lines().count(), 3, "{}", show(&listing));
    let second = curl(&["--ssl-reqd", "--user", &user, &format!("{url}2")]);
    assert!(stdout(&second).contains("marker-2"), "{}", show(&second));

    // Without keep, fetchmail fetches and deletes: the INBOX ends empty.
    write_rc("no keep fetchall");
    let out = fetchmail();
    assert!(out.status.success(), "{}", show(&out));
    assert!(inbox(&server, USER, PASSWORD).is_empty());
}

#[test]
fn bad_input_gets_errors_and_a_stuck_client_stalls_nobody() {
    let server = server_with_mail(1);
    // A large message for the client that stops reading.
    let big = server.dir.path().join("big.txt");
    let line = format!("{}\r\n", "x".repeat(76));
    std::fs::write(&big, line.repeat(8 * 1024)).expect("write big body");
    let body = format!("@{}", path(&big));
    let out = submit(
        &server,
        PASSWORD,
        &["--to", USER, "--header", "Subject: big", "--body", &body],
    );
    assert!(stdout(&out).contains("250 2.0.0"), "{}", show(&out));
    let script = r#"
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def session():
    s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=20))
    f = s.makefile('rb')
    assert f.readline().startswith(b'+OK')
    return s, f
def say(s, f, line):
    s.sendall(line + b'\r\n')
    return f.readline()
s, f = session()
assert say(s, f, b'XYZZY').startswith(b'-ERR Unknown command XYZZY')
assert say(s, f, b'RETR 1').startswith(b'-ERR RETR needs a login first')
assert say(s, f, b'PASS x').startswith(b'-ERR USER first')
assert say(s, f, b'A' * 10000).startswith(b'-ERR Line too long')
assert say(s, f, b'USER ' + user.encode()).startswith(b'+OK')
assert say(s, f, b'PASS ' + pw.encode()).startswith(b'+OK')
assert say(s, f, b'RETR 99').startswith(b'-ERR No message 99')
assert say(s, f, b'DELE 0').startswith(b'-ERR Message numbers start at 1')
assert say(s, f, b'TOP 1 x').startswith(b'-ERR TOP takes')
# Pipelined commands are answered in order.
s.sendall(b'STAT\r\nUIDL 1\r\nNOOP\r\n')
assert f.readline().startswith(b'+OK 2 ')
assert f.readline().startswith(b'+OK 1 ')
assert f.readline() == b'+OK\r\n'
assert say(s, f, b'QUIT').startswith(b'+OK')
# A client that asks for the big message again and again and never reads...
stuck = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=20))
stuck.sendall(b'USER ' + user.encode() + b'\r\nPASS ' + pw.encode() + b'\r\n')
time.sleep(0.5)
stuck.setblocking(False)
try:
    for _ in range(200):
        stuck.sendall(b'RETR 2\r\n')
except (BlockingIOError, ssl.SSLWantWriteError):
    pass
# ...while another client of the same server works at once (CAPA needs no login).
start = time.monotonic()
s, f = session()
assert say(s, f, b'NOOP').startswith(b'-ERR NOOP needs a login first')
assert time.monotonic() - start < 5
say(s, f, b'QUIT')
stuck.close()
"#;
    pop(script, &[&server.ports.pop3s.to_string(), USER, PASSWORD]);
}
