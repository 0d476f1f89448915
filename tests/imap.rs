//! IMAP with python's imaplib against a running server: a scripted session over every
//! command the server offers (checked against RFC 3501's examples where they apply), two
//! sessions seeing each other's changes, IDLE told within a second, and bad input.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

/// Shared python prelude: an IMAPS connection logged in as argv[2]/argv[3] on port argv[1],
/// and the helpers of tests/common (`ok`, `bad`, `raw`, `text`).
const PRELUDE: &str = r#"
import imaplib, re, ssl, sys, time
ctx = ssl._create_unverified_context()
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def connect():
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=20)
    typ, _ = m.login(user, password)
    assert typ == "OK", typ
    return m
"#;

const MIXED: &str = "From: =?UTF-8?Q?H=C3=A9l=C3=A8ne_Durand?= <helene.durand@hopital.mssante.fr>\r\n\
To: \"Dr. Martin, Jean\" <jean.martin@example.mssante.fr>, equipe: a@x.fr, b@x.fr;\r\n\
Subject: Compte rendu operatoire\r\n\
Date: Mon, 7 Feb 2022 21:52:25 -0800\r\n\
Message-ID: <cr-1@hopital.mssante.fr>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XyZ\"\r\n\
\r\n\
--XyZ\r\n\
Content-Type: text/plain; charset=\"utf-8\"; format=flowed\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Patient stable apres intervention.\r\n\
Suite de soins a J+2.\r\n\
--XyZ\r\n\
Content-Type: application/pdf; name*=UTF-8''compte%20rendu.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"cr.pdf\"\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--XyZ--\r\n";

const SCRIPTED: &str = r#"
m = connect()
caps = m.capabilities
for c in ("IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "NAMESPACE", "ID", "ENABLE",
          "UNSELECT", "LITERAL+", "SASL-IR", "UTF8=ACCEPT", "CHILDREN"):
    assert c in caps, (c, caps)

# Special-use folders exist from the first login (RFC 6154 attributes in LIST).
listing = text(ok(m.list('""', "*")))
for name, attr in (("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"),
                   ("Junk", "\\Junk"), ("Archive", "\\Archive")):
    assert re.search(r'\(([^)]*)%s([^)]*)\) "/" "?%s"?' % (re.escape(attr), name), listing), (name, listing)
assert "INBOX" in listing, listing
# LIST "" "" gives the delimiter (RFC 3501 6.3.8).
assert text(ok(m.list('""', '""'))) == '(\\Noselect) "/" ""'
assert text(ok(m.namespace())) == '(("" "/")) (("Other Users/" "/")) (("Shared/" "/"))'
ok(m.xatom("ID", '("name" "imaplib")'))

# Folders: create with hierarchy, % and *, rename with children, subscribe, delete.
ok(m.create("Projets/2026/Bloc"))
# CREATE makes the superior levels too (RFC 3501 6.3.3).
top = text(ok(m.list('""', "%")))
assert '(\\HasChildren) "/" "Projets"' in top, top
assert "2026" not in top, top
assert '(\\HasChildren) "/" "Projets/2026"' in text(ok(m.list('""', "Projets/%")))
assert "Projets/2026/Bloc" in text(ok(m.list('""', "Projets/*")))
ok(m.rename("Projets/2026", "Dossiers"))
moved = text(ok(m.list('""', "*")))
assert "Dossiers/Bloc" in moved and "Projets/2026" not in moved, moved
typ, data = m.create("Dossiers")
assert typ == "NO" and b"ALREADYEXISTS" in data[0], (typ, data)
typ, data = m.delete("INBOX")
assert typ == "NO", (typ, data)
ok(m.create("Envoy&AOk-s"))  # "Envoyés" in modified UTF-7
assert "Envoy&AOk-s" in text(ok(m.list('""', "Envoy*")))
ok(m.unsubscribe("Envoy&AOk-s"))
assert "Envoy" not in text(ok(m.lsub('""', "*")))
typ, data = m.create("Bad&Jjo!")
assert typ == "NO" and b"UTF-7" in data[0], (typ, data)
ok(m.delete("Dossiers/Bloc"))
ok(m.delete("Dossiers"))
# A folder made again at once gets another UIDVALIDITY: its UIDs restart (RFC 3501 2.3.1.1).
def uidvalidity(name):
    return re.search(r"UIDVALIDITY (\d+)", text(ok(m.status(name, "(UIDVALIDITY)")))).group(1)
ok(m.create("Tmp"))
first = uidvalidity("Tmp")
ok(m.delete("Tmp"))
ok(m.create("Tmp"))
assert uidvalidity("Tmp") != first, "UIDVALIDITY reused"
ok(m.delete("Tmp"))
# A folder whose parent was deleted shows the parent as \Noselect.
ok(m.create("Projets/Suivi"))
ok(m.delete("Projets"))
assert '(\\Noselect \\HasChildren) "/" "Projets"' in text(ok(m.list('""', "%"))), "placeholder parent"
ok(m.delete("Projets/Suivi"))

# APPEND: APPENDUID once committed; flags and date kept.
mixed = sys.stdin.buffer.read()
data = ok(m.append("INBOX", None, None, mixed))
uidvalidity, first_uid = re.search(rb"APPENDUID (\d+) (\d+)", data[0]).groups()
data = ok(m.append("INBOX", "(\\Flagged $Urgent)", '"14-Jul-2025 10:00:00 +0200"',
                   b"From: b@x.fr\r\nSubject: second\r\nDate: Tue, 15 Jul 2025 08:00:00 +0000\r\n\r\nDeuxieme message.\r\n"))
assert int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1)) == int(first_uid) + 1
ok(m.append("INBOX", None, None, b"From: c@y.fr\r\nSubject: third\r\n\r\n" + b"x" * 3000 + b"\r\n"))
typ, data = m.append("Nowhere", None, None, b"Subject: x\r\n\r\nx\r\n")
assert typ == "NO" and b"TRYCREATE" in data[0], (typ, data)

# SELECT answers as RFC 3501 6.3.1 shows.
data = ok(m.select("INBOX"))
assert data == [b"3"], data
assert m.untagged_responses.get("UIDVALIDITY") == [uidvalidity], m.untagged_responses
assert b"\\Flagged" in m.untagged_responses["PERMANENTFLAGS"][0]

# FETCH: ENVELOPE and BODYSTRUCTURE from the message as written.
env = text(ok(m.fetch("1", "(ENVELOPE)")))
assert '"=?UTF-8?Q?H=C3=A9l=C3=A8ne_Durand?=" NIL "helene.durand" "hopital.mssante.fr"' in env, env
assert '("Dr. Martin, Jean" NIL "jean.martin" "example.mssante.fr")(NIL NIL "equipe" NIL)' in env, env
assert '"<cr-1@hopital.mssante.fr>"' in env, env
bs = text(ok(m.fetch("1", "(BODYSTRUCTURE)")))
assert '("TEXT" "PLAIN" ("CHARSET" "utf-8" "FORMAT" "flowed") NIL NIL "8bit" 57 2' in bs, bs
assert '("NAME*" "UTF-8\'\'compte%20rendu.pdf")' in bs, bs
assert '("ATTACHMENT" ("FILENAME" "cr.pdf"))' in bs, bs
assert '"MIXED" ("BOUNDARY" "XyZ")' in bs, bs
body = text(ok(m.fetch("1", "(BODY)")))
assert "BOUNDARY" not in body and 'NIL NIL "8bit" 57 2)' in body and body.endswith('"MIXED"))'), body

# Sections, partial, and the \Seen that only a non-PEEK fetch sets.
data = ok(m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT DATE)])"))
assert data[0][1] == b"Subject: Compte rendu operatoire\r\nDate: Mon, 7 Feb 2022 21:52:25 -0800\r\n\r\n", data
data = ok(m.fetch("1", "(BODY.PEEK[1])"))
assert data[0][1] == b"Patient stable apres intervention.\r\nSuite de soins a J+2.", data
data = ok(m.fetch("1", "(BODY.PEEK[2.MIME])"))
assert data[0][1].startswith(b"Content-Type: application/pdf") and data[0][1].endswith(b"\r\n\r\n"), data
data = ok(m.fetch("1", "(BODY.PEEK[]<0.4>)"))
assert data[0][0].endswith(b"BODY[]<0> {4}") and data[0][1] == b"From", data
assert b"\\Seen" not in text(ok(m.fetch("1", "(FLAGS)"))).encode()
data = ok(m.fetch("1", "(BODY[TEXT])"))
assert data[0][1].startswith(b"--XyZ\r\n"), data
assert "\\Seen" in text(ok(m.fetch("1", "(FLAGS)")))
assert len(ok(m.fetch("1", "(RFC822)"))[0][1]) == len(mixed)
size = text(ok(m.fetch("1", "(RFC822.SIZE)")))
assert ("RFC822.SIZE %d" % len(mixed)) in size, size
bad(m, "FETCH", "9", "(FLAGS)")
data = ok(m.uid("FETCH", "1:*", "(FLAGS)"))
assert len(data) == 3 and all(b"UID" in d for d in data), data

# STORE (RFC 3501 6.4.6) and its silent form.
data = text(ok(m.store("2", "+FLAGS", "(\\Deleted)")))
assert "FLAGS (\\Flagged $Urgent \\Deleted)" in data, data
assert ok(m.store("2", "-FLAGS.SILENT", "($Urgent)")) == [None], "silent store answers nothing"
assert "FLAGS (\\Flagged \\Deleted)" in text(ok(m.fetch("2", "(FLAGS)")))
data = text(ok(m.uid("STORE", str(int(first_uid) + 2), "+FLAGS", "(\\Answered)")))
assert "UID %d" % (int(first_uid) + 2) in data, data

# SEARCH with header, text, flag, size, date and boolean keys.
def search(*keys):
    return ok(m.search(None, *keys))[0].decode().split()
assert search("UNSEEN") == ["2", "3"], search("UNSEEN")
assert search("FROM", "durand") == ["1"]
m.literal = "Hélène".encode()
assert ok(m.search("UTF-8", "FROM"))[0].split() == [b"1"], "decoded encoded-word matched"
assert search("SUBJECT", "second") == ["2"]
assert search("BODY", "J+2") == ["1"]
assert search("TEXT", "Deuxieme") == ["2"]
assert search("HEADER", "Message-ID", "cr-1") == ["1"]
assert search("LARGER", "2000") == ["3"]
assert search("OR", "FLAGGED", "ANSWERED") == ["2", "3"]
assert search("NOT", "DELETED", "UNSEEN") == ["3"]
assert search("SENTBEFORE", "1-Jan-2023") == ["1"]
assert search("KEYWORD", "$Urgent") == []
assert search("2:*", "UNFLAGGED") == ["3"]
# Header keys with keys on flags or size: both read.
assert search("FROM", "durand", "SEEN") == ["1"]
assert search("OR", "SUBJECT", "second", "LARGER", "2000") == ["2", "3"]
# Flag-only searches are answered by the store: whole words, any case, LIKE's wildcards
# taken literally.
ok(m.store("1", "+FLAGS.SILENT", "($Label_1 $LabelX)"))
ok(m.store("2", "+FLAGS.SILENT", "($LabelX1 $Label10)"))
assert search("KEYWORD", "$Label_1") == ["1"], search("KEYWORD", "$Label_1")
assert search("KEYWORD", "$label10") == ["2"]
assert search("KEYWORD", "$Label1") == []
assert search("KEYWORD", "$LabelX", "UNKEYWORD", "$Label10") == ["1"]
assert search("UNKEYWORD", "$Label_1", "UNSEEN") == ["2", "3"]
assert search("SEEN", "KEYWORD", "$LABELX") == ["1"]
ok(m.store("1:*", "-FLAGS.SILENT", "($Label_1 $LabelX $LabelX1 $Label10)"))
uids = ok(m.uid("SEARCH", None, "ALL"))[0].decode().split()
assert uids == [str(int(first_uid) + i) for i in range(3)], uids
typ, data = m.search("KOI8-R", "ALL")
assert typ == "NO" and b"BADCHARSET" in data[0], (typ, data)

# COPY and MOVE answer COPYUID (RFC 4315, RFC 6851).
data = ok(m.copy("1", "Archive"))
assert re.search(rb"COPYUID \d+ %s 1" % first_uid, data[0]), data
typ, data = m.uid("MOVE", str(int(first_uid) + 2), "Trash")
assert typ == "OK", (typ, data)
assert m.untagged_responses.get("COPYUID"), m.untagged_responses
assert ok(m.select("INBOX")) == [b"2"]
typ, data = m.copy("1", "Nowhere")
assert typ == "NO" and b"TRYCREATE" in data[0], (typ, data)

# EXPUNGE reports the removed message's number (RFC 3501 7.4.1).
typ, data = m.expunge()
assert typ == "OK" and data == [b"2"], (typ, data)
assert ok(m.select("INBOX")) == [b"1"]

# STATUS of other folders.
status = text(ok(m.status("Archive", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")))
assert "MESSAGES 1" in status and "UIDNEXT 2" in status and "UNSEEN 0" in status, status
assert "MESSAGES 1" in text(ok(m.status("Trash", "(MESSAGES)")))

# EXAMINE is read-only: no \Seen, STORE refused.
ok(m.select("Trash", readonly=True))
typ, data = m.store("1", "+FLAGS", "(\\Seen)")
assert typ == "NO", (typ, data)
ok(m.fetch("1", "(BODY[])"))
assert "\\Seen" not in text(ok(m.fetch("1", "(FLAGS)")))
ok(m.unselect())
m.state = "SELECTED"  # past imaplib's own check, to see the server's answer
bad(m, "FETCH", "1", "(FLAGS)")
m.state = "AUTH"

# UID EXPUNGE removes only the named messages (RFC 4315 2.1).
ok(m.select("Archive"))
ok(m.append("Archive", "(\\Deleted)", None, b"Subject: a\r\n\r\na\r\n"))
ok(m.store("1:*", "+FLAGS.SILENT", "(\\Deleted)"))
typ, data = m.uid("EXPUNGE", "2")
assert typ == "OK" and m.untagged_responses.get("EXPUNGE") == [b"2"], (typ, m.untagged_responses)
ok(m.close())
assert "MESSAGES 0" in text(ok(m.status("Archive", "(MESSAGES)")))

# Bad commands: unknown (BAD), wrong state (BAD).
assert "BAD" in bad(m, "NOOP", "extra")
m.tagged_commands.clear() if hasattr(m, "tagged_commands") else None
m.logout()
print("SCRIPTED OK")
"#;

fn run(server: &TestServer, script: &str, stdin: &str) -> std::process::Output {
    let port = server.ports.imaps.to_string();
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c")
        .arg(format!("{IMAP_HELPERS}{PRELUDE}{script}"))
        .args([port.as_str(), USER, PASSWORD]);
    run_with_stdin(cmd, stdin)
}

#[test]
fn scripted_session_covers_every_command() {
    let mut server = TestServer::new("");
    server.start();
    let out = run(&server, SCRIPTED, MIXED);
    assert!(
        out.status.success() && stdout(&out).contains("SCRIPTED OK"),
        "{}\n{}",
        show(&out),
        server.log()
    );
    // The UTF-8 name is kept as UTF-8 and shown as such once UTF8=ACCEPT is enabled.
    let out = run(
        &server,
        r#"
m = connect()
typ, data = m._simple_command("ENABLE", "UTF8=ACCEPT")
assert typ == "OK" and m.untagged_responses.get("ENABLED") == [b"UTF8=ACCEPT"], m.untagged_responses
listing = ok(m.list('""', "Envoy*"))
assert "Envoyés".encode() in b"".join(x if isinstance(x, bytes) else b"".join(x) for x in listing), listing
print("UTF8 OK")
"#,
        "",
    );
    assert!(stdout(&out).contains("UTF8 OK"), "{}", show(&out));
}

const WATCHER: &str = r#"
# Session B idles on INBOX; session A (same user) appends, flags and expunges. B must be
# told of each within a second.
a, b = connect(), connect()
ok(a.select("INBOX")); ok(b.select("INBOX"))
def idle_until(pattern, action):
    tag = b._new_tag()
    b.send(tag + b" IDLE\r\n")
    assert b.readline().startswith(b"+"), "no continuation"
    start = time.monotonic()
    action()
    b.sock.settimeout(5)
    seen = b""
    while not re.search(pattern, seen):
        seen += b.readline()
    elapsed = time.monotonic() - start
    # DONE and a pipelined NOOP in one write: both answered.
    b.send(b"DONE\r\n" + b"p1 NOOP\r\n")
    rest = b""
    while b"p1 OK" not in rest:
        rest += b.readline()
    assert (tag + b" OK") in rest, rest
    return elapsed
t1 = idle_until(rb"\* 1 EXISTS", lambda: ok(a.append("INBOX", None, None, b"Subject: 1\r\n\r\none\r\n")))
t2 = idle_until(rb"\* 1 FETCH \(UID \d+ FLAGS \(\\Flagged\)\)", lambda: ok(a.store("1", "+FLAGS", "(\\Flagged)")))
def expunge():
    ok(a.store("1", "+FLAGS", "(\\Deleted)")); ok(a.expunge())
t3 = idle_until(rb"\* 1 EXPUNGE", expunge)
print("IDLE", t1, t2, t3)
assert max(t1, t2, t3) < 1.0, (t1, t2, t3)

# Without IDLE: a NOOP reports what changed meanwhile; a FETCH never reports an EXPUNGE.
ok(a.append("INBOX", None, None, b"Subject: 2\r\n\r\ntwo\r\n"))
ok(a.append("INBOX", None, None, b"Subject: 3\r\n\r\nthree\r\n"))
ok(b.noop())
assert b.untagged_responses.get("EXISTS", [b""])[-1] == b"2", b.untagged_responses
b.untagged_responses.clear()
ok(a.store("1", "+FLAGS", "(\\Deleted)")); ok(a.expunge())
ok(b.fetch("1:2", "(FLAGS)"))
assert "EXPUNGE" not in b.untagged_responses, b.untagged_responses
ok(b.noop())
assert b.untagged_responses.get("EXPUNGE") == [b"1"], b.untagged_responses

# Header searches read parts kept in memory for every session: after A expunges one match
# and appends another, both sessions find the new one and not the gone one.
def subject_uids(s, text):
    typ, data = s.uid("SEARCH", "SUBJECT", '"%s"' % text)
    assert typ == "OK", data
    return data[0].split()
first = subject_uids(b, "3")
assert len(first) == 1 and subject_uids(a, "3") == first, first
ok(a.append("INBOX", None, None, b"Subject: 3 again\r\n\r\nthree\r\n"))
ok(a.store("1", "+FLAGS", "(\\Deleted)")); ok(a.expunge())
ok(b.noop())
now = subject_uids(b, "3")
assert len(now) == 1 and now != first and subject_uids(a, "3") == now, (first, now)
# Each message is matched on its own header, never a neighbour's.
assert subject_uids(a, "again") == now and subject_uids(b, "again") == now, now
print("WATCH OK")
"#;

#[test]
fn sessions_see_each_other_and_idle_is_told_within_a_second() {
    let mut server = TestServer::new("");
    server.start();
    let out = run(&server, WATCHER, "");
    assert!(
        out.status.success() && stdout(&out).contains("WATCH OK"),
        "{}\n{}",
        show(&out),
        server.log()
    );
    // A delivery by SMTP wakes an IDLE session too.
    let script = r#"
b = connect()
ok(b.select("INBOX"))
tag = b._new_tag()
b.send(tag + b" IDLE\r\n")
assert b.readline().startswith(b"+")
print("IDLING", flush=True)
b.sock.settimeout(30)
line = b""
while b"EXISTS" not in line:
    line = b.readline()
b.send(b"DONE\r\n")
print("DELIVERED", line.decode().strip())
"#;
    let port = server.ports.imaps.to_string();
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!("{IMAP_HELPERS}{PRELUDE}{script}"))
        .args([port.as_str(), USER, PASSWORD])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdout_pipe = child.stdout.take().expect("stdout");
    let mut first = [0u8; 7];
    stdout_pipe.read_exact(&mut first).expect("idling");
    assert_eq!(&first, b"IDLING\n");
    let out = submit(&server, PASSWORD, &["--to", USER, "--body", "arrivee"]);
    assert!(out.status.success(), "{}", show(&out));
    let mut rest = String::new();
    stdout_pipe.read_to_string(&mut rest).expect("read");
    let status = child.wait().expect("wait");
    assert!(status.success() && rest.contains("DELIVERED"), "{rest}");
}

#[test]
fn bad_input_never_stalls_the_server() {
    let mut server = TestServer::new("");
    server.start();
    let port = server.ports.imap;
    let mut raw = Raw::connect(port);
    assert!(raw.line().starts_with("* OK"));
    // Unknown command, wrong state, a literal over the limit refused before it is read.
    assert!(raw.ask("a1 FROBNICATE").starts_with("a1 BAD"));
    assert!(raw.ask("a2 SELECT INBOX").starts_with("a2 BAD"));
    assert!(
        raw.ask("a3 LOGIN {999999999}")
            .starts_with("a3 BAD [TOOBIG]"),
        "literal refused without a continuation request"
    );
    // A 10 MB line: answered BAD, the session goes on.
    let mut long = b"a4 NOOP ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    long.extend_from_slice(b"\r\n");
    raw.send(&long);
    assert!(raw.line().contains("BAD"), "long line answered");
    assert!(raw.ask("a5 NOOP").starts_with("a5 OK"));
    // Deeply nested SEARCH (after login over TLS, so use imaplib for the rest).
    let out = run(
        &server,
        r#"
m = connect()
ok(m.select("INBOX"))
bad(m, "SEARCH", "(" * 2000 + "ALL" + ")" * 2000)
bad(m, "FETCH", "1:*", "(BODY[]")
typ, data = m.select("&Jjo")
assert typ == "NO", (typ, data)
print("NESTED OK")
"#,
        "",
    );
    assert!(stdout(&out).contains("NESTED OK"), "{}", show(&out));

    // A client that asks for a lot and never reads does not stall anyone else.
    let out = run(
        &server,
        r#"
m = connect()
for n in range(80):
    ok(m.append("INBOX", None, None, b"Subject: %d\r\n\r\n" % n + b"y" * 200000 + b"\r\n"))
print("FILLED")
"#,
        "",
    );
    assert!(stdout(&out).contains("FILLED"), "{}", show(&out));
    let script = r#"
s = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=20)
s.login(user, password)
s.select("INBOX")
s.send(b"slow FETCH 1:* (BODY.PEEK[])\r\n")
print("SENT", flush=True)
time.sleep(30)
"#;
    let mut stuck = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!("{IMAP_HELPERS}{PRELUDE}{script}"))
        .args([server.ports.imaps.to_string().as_str(), USER, PASSWORD])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut sent = [0u8; 5];
    stuck
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut sent)
        .expect("sent");
    let start = Instant::now();
    let out = run(
        &server,
        "m = connect()\nok(m.select('INBOX'))\nok(m.fetch('1', '(FLAGS)'))\nprint('FINE')\n",
        "",
    );
    assert!(stdout(&out).contains("FINE"), "{}", show(&out));
    assert!(start.elapsed() < Duration::from_secs(10));
    let _ = stuck.kill();
    let _ = stuck.wait();
    let mut raw = Raw::connect(port);
    raw.line();
    raw.send(b"z LOGOUT\r\n");
    let _ = raw.rest();
    let _ = std::io::stdout().flush();
}

const CONDSTORE: &str = r#"
m = connect()
for n in range(3):
    ok(m.append("INBOX", None, None, b"Subject: m%d\r\n\r\nbody %d\r\n" % (n, n)))
# ENABLE and SELECT (CONDSTORE) as RFC 7162 3.1.8 and 3.2.5 show.
lines = raw(m, "ENABLE QRESYNC")
assert "* ENABLED QRESYNC" in lines, lines
lines = raw(m, "SELECT INBOX (CONDSTORE)")
highest = int(next(re.search(r"HIGHESTMODSEQ (\d+)", l).group(1) for l in lines if "HIGHESTMODSEQ" in l))
uidvalidity = next(re.search(r"UIDVALIDITY (\d+)", l).group(1) for l in lines if "UIDVALIDITY" in l)
# Every FETCH of flags tells the modseq.
lines = raw(m, "FETCH 1:* (FLAGS)")
assert all("MODSEQ (" in l for l in lines[:-1]) and len(lines) == 4, lines
# STORE tells the new modseq; UNCHANGEDSINCE an older one fails with MODIFIED (RFC 7162 3.1.3).
lines = raw(m, "STORE 1 +FLAGS (\\Seen)")
seen_modseq = int(re.search(r"MODSEQ \((\d+)\)", lines[0]).group(1))
assert seen_modseq > highest, (lines, highest)
uids = raw(m, "UID SEARCH ALL")[0].split()[2:]
lines = raw(m, "UID STORE %s (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Flagged)" % (uids[0], highest))
assert ("[MODIFIED %s]" % uids[0]) in lines[-1], lines
lines = raw(m, "UID STORE %s (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Flagged)" % (uids[1], highest))
assert re.search(r"FETCH \(UID %s MODSEQ \(\d+\)\)" % uids[1], lines[0]) and " OK " in lines[-1], lines
# CHANGEDSINCE: only what changed after the modseq.
lines = raw(m, "FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % highest)
assert len(lines) == 3 and "* 1 FETCH" in lines[0] and "* 2 FETCH" in lines[1], lines
# SEARCH MODSEQ gives the highest modseq of what it found.
lines = raw(m, "SEARCH MODSEQ %d" % (seen_modseq + 1))
assert lines[0].startswith("* SEARCH 2 (MODSEQ "), lines
# Another session expunges message 2; this one, QRESYNC on, is told VANISHED.
other = connect()
ok(other.select("INBOX"))
ok(other.store("2", "+FLAGS", "(\\Deleted)"))
ok(other.expunge())
other.logout()
lines = raw(m, "NOOP")
assert ("* VANISHED %s" % uids[1]) in lines, lines
# UID FETCH ... (CHANGEDSINCE n VANISHED) tells what went away since n (RFC 7162 3.2.6).
lines = raw(m, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % highest)
assert lines[0] == "* VANISHED (EARLIER) %s" % uids[1], lines
# A reconnecting client resynchronises in its SELECT (RFC 7162 3.2.5.1).
m.logout()
m = connect()
raw(m, "ENABLE QRESYNC")
lines = raw(m, "SELECT INBOX (QRESYNC (%s %d))" % (uidvalidity, highest))
assert ("* VANISHED (EARLIER) %s" % uids[1]) in lines, lines
assert any(re.match(r"\* 1 FETCH \(UID %s FLAGS \(\\Seen\) MODSEQ" % uids[0], l) for l in lines), lines
lines = raw(m, "SELECT INBOX (QRESYNC (1 1))")
assert not any("VANISHED" in l for l in lines), "another UIDVALIDITY: no resync"
# QRESYNC without ENABLE is refused.
m.logout()
m = connect()
assert " BAD " in raw(m, "SELECT INBOX (QRESYNC (1 1))")[-1]
lines = raw(m, "STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
assert "MESSAGES 2" in lines[0] and "HIGHESTMODSEQ" in lines[0], lines
print("CONDSTORE OK")
"#;

#[test]
fn condstore_and_qresync() {
    let mut server = TestServer::new("");
    server.start();
    let out = run(&server, CONDSTORE, "");
    assert!(
        out.status.success() && stdout(&out).contains("CONDSTORE OK"),
        "{}\n{}",
        show(&out),
        server.log()
    );
}

const EXTENDED: &str = r#"
m = connect()
for n in range(5):
    ok(m.append("INBOX", "(\\Seen)" if n % 2 else None, None, b"Subject: e%d\r\n\r\nbody\r\n" % n))
ok(m.create("Projets/Cardio"))
ok(m.unsubscribe("Junk"))
# ESEARCH (RFC 4731): MIN MAX COUNT ALL in one response, tagged.
ok(m.select("INBOX"))
lines = raw(m, "SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN")
assert re.match(r'\* ESEARCH \(TAG "[^"]+"\) MIN 1 MAX 5 ALL 1,3,5 COUNT 3$', lines[0]), lines
lines = raw(m, "UID SEARCH RETURN (COUNT) ALL")
assert re.match(r'\* ESEARCH \(TAG "[^"]+"\) UID COUNT 5$', lines[0]), lines
lines = raw(m, "SEARCH RETURN () SEEN")
assert lines[0].endswith(" ALL 2,4"), lines
assert " BAD " in raw(m, "SEARCH RETURN (BOGUS) ALL")[-1]
# LIST-EXTENDED (RFC 5258): selection, several patterns, RETURN; LIST-STATUS (RFC 5819).
lines = raw(m, 'LIST (SUBSCRIBED) "" "*" RETURN (SUBSCRIBED)')
assert not any('"Junk"' in l for l in lines), lines
assert any('\\Subscribed' in l and '"Sent"' in l for l in lines), lines
lines = raw(m, 'LIST (SPECIAL-USE) "" "*"')
assert len(lines) == 6 and all("\\" in l for l in lines[:-1]) and not any("INBOX" in l for l in lines), lines
lines = raw(m, 'LIST "" ("INBOX" "Projets/%") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))')
assert lines[0].startswith("* LIST") and "INBOX" in lines[0], lines
assert lines[1] == '* STATUS "INBOX" (MESSAGES 5 UNSEEN 3)' or lines[1] == "* STATUS INBOX (MESSAGES 5 UNSEEN 3)", lines
assert any('"Projets/Cardio"' in l for l in lines) and any("STATUS \"Projets/Cardio\" (MESSAGES 0 UNSEEN 0)" in l for l in lines), lines
assert " BAD " in raw(m, 'LIST (BOGUS) "" "*"')[-1]
print("EXTENDED OK")
"#;

#[test]
fn esearch_and_list_extended() {
    let mut server = TestServer::new("");
    server.start();
    let out = run(&server, EXTENDED, "");
    assert!(
        out.status.success() && stdout(&out).contains("EXTENDED OK"),
        "{}\n{}",
        show(&out),
        server.log()
    );
}

const REV2: &str = r#"
m = connect()
for n in range(6):
    ok(m.append("INBOX", "(\\Seen)" if n % 2 else None, None, b"Subject: r%d\r\n\r\nbody\r\n" % n))
caps = raw(m, "CAPABILITY")[0]
assert " IMAP4rev2 " in caps and " SEARCHRES " in caps and " STATUS=SIZE " in caps, caps
# STATUS SIZE and DELETED (RFC 9051 6.3.11).
size = sum(len(b"Subject: r%d\r\n\r\nbody\r\n" % n) for n in range(6))
status = raw(m, "STATUS INBOX (MESSAGES SIZE DELETED)")[0]
assert re.match(r'\* STATUS "?INBOX"? \(MESSAGES 6 SIZE %d DELETED 0\)$' % size, status), status
# SEARCHRES (RFC 5182): SAVE alone answers nothing, then $ stands for the result.
ok(m.select("INBOX"))
lines = raw(m, "SEARCH RETURN (SAVE) UNSEEN")
assert len(lines) == 1 and " OK " in lines[0], lines
lines = raw(m, "FETCH $ (FLAGS)")
assert [l.split()[1] for l in lines[:-1]] == ["1", "3", "5"], lines
lines = raw(m, "SEARCH $ SUBJECT r2")
assert lines[0] == "* SEARCH 3", lines
ok(m.store("1", "+FLAGS.SILENT", "(\\Deleted)"))
ok(m.expunge())
# The expunged message leaves the saved result; the others keep their new numbers.
lines = raw(m, "FETCH $ (UID)")
assert [l.split()[1] for l in lines[:-1]] == ["2", "4"], lines
lines = raw(m, "UID SEARCH RETURN (SAVE MIN) SEEN")
assert re.match(r'\* ESEARCH \(TAG "[^"]+"\) UID MIN \d+$', lines[0]), lines
lines = raw(m, "UID FETCH $ (FLAGS)")
assert len(lines) == 2 and lines[0].startswith("* 1 FETCH"), lines
lines = raw(m, "SEARCH RETURN (SAVE COUNT) SUBJECT nothing-like-this")
assert re.match(r'\* ESEARCH \(TAG "[^"]+"\) COUNT 0$', lines[0]), lines
lines = raw(m, "UID STORE $ +FLAGS (\\Flagged)")
assert len(lines) == 1 and " OK " in lines[-1], lines
assert raw(m, "SEARCH FLAGGED")[0] == "* SEARCH", "nothing was flagged"
# ENABLE IMAP4rev2: no RECENT nor UNSEEN code at SELECT, SEARCH answered by ESEARCH,
# folder names in UTF-8.
assert raw(m, "ENABLE IMAP4rev2")[0] == "* ENABLED IMAP4rev2"
lines = raw(m, "SELECT INBOX")
assert not any("RECENT" in l or "[UNSEEN" in l for l in lines), lines
assert any(l == "* 5 EXISTS" for l in lines), lines
lines = raw(m, "SEARCH UNSEEN")
assert re.match(r'\* ESEARCH \(TAG "[^"]+"\) ALL 2,4$', lines[0]), lines
lines = raw(m, "UID SEARCH SUBJECT nothing-like-this")
assert re.match(r'\* ESEARCH \(TAG "[^"]+"\) UID$', lines[0]), lines
assert " OK " in raw(m, 'CREATE "Résultats"')[-1]
# (A name that is not ASCII comes as a literal, its UTF-8 bytes as they are.)
lines = raw(m, 'LIST "" "R*"')
assert "Résultats" in lines and "&AMk-" not in " ".join(lines), lines
print("REV2 OK")
"#;

#[test]
fn imap4rev2_searchres_and_status_size() {
    let mut server = TestServer::new("");
    server.start();
    let out = run(&server, REV2, "");
    assert!(
        out.status.success() && stdout(&out).contains("REV2 OK"),
        "{}\n{}",
        show(&out),
        server.log()
    );
}

const QUOTA: &str = r#"
m = connect()
ok(m.append("INBOX", None, None, b"Subject: q\r\n\r\n" + b"z" * 4000 + b"\r\n"))
# RFC 9208 4.3.2's exchange: the root, then its usage and limit in KiB.
lines = raw(m, "GETQUOTAROOT INBOX")
assert lines[0] == '* QUOTAROOT "INBOX" ""', lines
used, limit = map(int, re.match(r'\* QUOTA "" \(STORAGE (\d+) (\d+)\)', lines[1]).groups())
assert 4 <= used <= 6 and limit == 10, (used, limit, lines)
assert raw(m, 'GETQUOTA ""')[0] == lines[1]
assert " NO " in raw(m, 'SETQUOTA "" (STORAGE 99999)')[-1]
assert " NO " in raw(m, 'GETQUOTA "someone@else.test"')[-1]
# Over the quota, APPEND is refused with OVERQUOTA and nothing is stored.
typ, data = m.append("INBOX", None, None, b"Subject: big\r\n\r\n" + b"z" * 8000 + b"\r\n")
assert typ == "NO" and b"OVERQUOTA" in data[0], (typ, data)
print("QUOTA OK")
"#;

#[test]
fn quota_is_told_and_enforced() {
    let mut server = TestServer::new("");
    server.cli_ok(&["user", "quota", USER, "10240"]);
    server.start();
    let out = run(&server, QUOTA, "");
    assert!(
        out.status.success() && stdout(&out).contains("QUOTA OK"),
        "{}\n{}",
        show(&out),
        server.log()
    );
}

const SORTING: &str = r#"
m = connect()
def put(mid, subject, frm, date, size=0, refs=None):
    head = "Message-ID: <%s>\r\nSubject: %s\r\nFrom: %s\r\nDate: %s\r\n" % (mid, subject, frm, date)
    if refs:
        head += "References: %s\r\n" % " ".join("<%s>" % r for r in refs)
    ok(m.append("INBOX", None, None, (head + "\r\n" + "x" * size + "\r\n").encode()))
put("a@h", "Bilan sanguin", "Zoe <zoe@h.fr>", "Mon, 2 Feb 2026 10:00:00 +0000", 300)
put("b@h", "Re: Bilan sanguin", "Marc <marc@h.fr>", "Mon, 2 Feb 2026 11:00:00 +0000", 500, ["a@h"])
put("c@h", "Garde du week-end", "Anne <anne@h.fr>", "Sun, 1 Feb 2026 09:00:00 +0000", 100)
put("d@h", "Re: Re: Bilan sanguin", "Zoe <zoe@h.fr>", "Mon, 2 Feb 2026 12:00:00 +0000", 50, ["a@h", "b@h"])
put("e@h", "Fwd: Garde du week-end", "Luc <luc@h.fr>", "Tue, 3 Feb 2026 08:00:00 +0000", 5)
ok(m.select("INBOX"))
# SORT (RFC 5256 3): keys in order, REVERSE per key, ties by sequence number.
assert raw(m, "SORT (DATE) UTF-8 ALL")[0] == "* SORT 3 1 2 4 5"
assert raw(m, "SORT (REVERSE SIZE) UTF-8 ALL")[0] == "* SORT 2 1 3 4 5"
assert raw(m, "SORT (SUBJECT DATE) UTF-8 ALL")[0] == "* SORT 1 2 4 3 5"
assert raw(m, "SORT (FROM) UTF-8 ALL")[0] == "* SORT 3 5 2 1 4"
assert raw(m, "SORT (DISPLAYFROM) UTF-8 SINCE 1-Jan-2000")[0] == "* SORT 3 5 2 1 4"
lines = raw(m, "UID SORT (ARRIVAL) UTF-8 FROM zoe")
assert re.match(r"\* SORT \d+ \d+$", lines[0]), lines
# THREAD=REFERENCES (RFC 5256 2): replies under their parent, the forward by subject.
assert raw(m, "THREAD REFERENCES UTF-8 ALL")[0] == "* THREAD (3 5)(1 2 4)", raw(m, "THREAD REFERENCES UTF-8 ALL")
assert raw(m, "THREAD ORDEREDSUBJECT UTF-8 ALL")[0] == "* THREAD (3 5)(1 (2)(4))"
assert " BAD " in raw(m, "THREAD BOGUS UTF-8 ALL")[-1]
# An encoded subject sorts by its decoded text: undecoded, "=?UTF-8?Q?Zz?=" would come
# before "Mm".
put("f@h", "=?UTF-8?Q?Zz?=", "Tri <tri@h.fr>", "Wed, 4 Feb 2026 08:00:00 +0000")
put("g@h", "Mm", "Tri <tri@h.fr>", "Wed, 4 Feb 2026 09:00:00 +0000")
ok(m.select("INBOX"))
assert raw(m, "SORT (SUBJECT) UTF-8 FROM tri")[0] == "* SORT 7 6", raw(m, "SORT (SUBJECT) UTF-8 FROM tri")
print("SORT OK")
"#;

#[test]
fn sort_and_thread() {
    let mut server = TestServer::new("");
    server.start();
    let out = run(&server, SORTING, "");
    assert!(
        out.status.success() && stdout(&out).contains("SORT OK"),
        "{}\n{}",
        show(&out),
        server.log()
    );
}

const BINARY: &str = r#"
import base64
m = connect()
payload = bytes(range(256)) * 4
message = (b"Subject: radio\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
           b"Cliche=CC=81 du thorax =\r\njoint\r\n--B\r\n"
           b"Content-Type: application/dicom\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(payload).replace(b"\n", b"\r\n") +
           b"--B\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-unknown\r\n\r\n??\r\n--B--\r\n")
ok(m.append("INBOX", None, None, message))
ok(m.select("INBOX"))
# BINARY (RFC 3516): decoded content, a literal8 when it holds NUL, and its decoded size.
typ, data = m.fetch("1", "(BINARY.PEEK[2])")
assert typ == "OK" and data[0][1] == payload, data[0][0]
assert b"BINARY[2] ~{1024}" in data[0][0], data[0][0]
typ, data = m.fetch("1", "(BINARY.PEEK[1])")
assert data[0][1] == b"Cliche\xcc\x81 du thorax joint", data
lines = raw(m, "FETCH 1 (BINARY.SIZE[2] BINARY.SIZE[1])")
assert "BINARY.SIZE[2] 1024" in lines[0] and "BINARY.SIZE[1] 24" in lines[0], lines
typ, data = m.fetch("1", "(BINARY.PEEK[2]<256.4>)")
assert data[0][1] == bytes([0, 1, 2, 3]) and b"BINARY[2]<256>" in data[0][0], data
lines = raw(m, "FETCH 1 (BINARY.PEEK[3])")
assert " NO [UNKNOWN-CTE]" in lines[-1], lines
assert "\\Seen" not in raw(m, "FETCH 1 (FLAGS)")[0]
# APPEND of 8-bit data with NUL in a literal8.
body = b"Subject: nul\r\nContent-Transfer-Encoding: binary\r\n\r\na\x00b\r\n"
tag = m._new_tag()
m.send(tag + b" APPEND INBOX ~{%d+}\r\n" % len(body) + body + b"\r\n")
line = m.readline()
while not line.startswith(tag):
    line = m.readline()
assert b" OK [APPENDUID" in line, line
typ, data = m.fetch("2", "(BINARY.PEEK[1])")
assert data[0][1] == b"a\x00b\r\n", data
print("BINARY OK")
"#;

#[test]
fn binary_fetch_and_append() {
    let mut server = TestServer::new("");
    server.start();
    let out = run(&server, BINARY, "");
    assert!(
        out.status.success() && stdout(&out).contains("BINARY OK"),
        "{}\n{}",
        show(&out),
        server.log()
    );
}
