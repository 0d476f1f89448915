//! IMAP with python's imaplib against a running server: a scripted session over every
//! command the server offers (checked against RFC 3501's examples where they apply), two
//! sessions seeing each other's changes, IDLE told within a second, and bad input. The
//! extensions (CONDSTORE, ESEARCH, IMAP4rev2, QUOTA, SORT, BINARY) are in `imap_extensions.rs`.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

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

#[test]
fn scripted_session_covers_every_command() {
    let mut server = TestServer::new("");
    server.start();
    let out = imap::run(&server, SCRIPTED, MIXED);
    assert!(
        out.status.success() && stdout(&out).contains("SCRIPTED OK"),
        "{}\n{}",
        show(&out),
        server.log()
    );
    // The UTF-8 name is kept as UTF-8 and shown as such once UTF8=ACCEPT is enabled.
    let out = imap::run(
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

/// Two sessions: one has a folder selected (one plainly, one in IDLE), the other deletes
/// it. Each is told with a BYE and disconnected, as Dovecot does, instead of going on with
/// a folder that no longer exists.
const DELETED: &str = r#"
a = connect()
ok(a.create("Ephemere"))
ok(a.select("Ephemere"))
i = connect()
ok(i.select("Ephemere"))
i.send(b"i1 IDLE\r\n")
assert i.readline().startswith(b"+"), "idling"
b = connect()
ok(b.delete("Ephemere"))
i.sock.settimeout(15)
told = i.readline()
assert told.startswith(b"* BYE") and b"deleted" in told, told
assert i.readline() == b"", "the IDLE session is closed"
try:
    a.noop()
    raise AssertionError("NOOP after the deletion answered without a BYE")
except imaplib.IMAP4.abort as e:
    assert "deleted" in str(e), e
# The mailbox itself is fine: a new session selects INBOX.
ok(b.select("INBOX"))
print("DELETED OK")
"#;

#[test]
fn a_session_whose_selected_folder_is_deleted_is_told_and_closed() {
    let mut server = TestServer::new("");
    server.start();
    let out = imap::run(&server, DELETED, "");
    assert!(
        out.status.success() && stdout(&out).contains("DELETED OK"),
        "{}\n{}",
        show(&out),
        server.log()
    );
    assert_eq!(server.stop(), 0);
}

#[test]
fn sessions_see_each_other_and_idle_is_told_within_a_second() {
    let mut server = TestServer::new("");
    server.start();
    let out = imap::run(&server, WATCHER, "");
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
    let mut child = imap::script(&server, script)
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
    let out = imap::run(
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
    let out = imap::run(
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
    let mut stuck = imap::script(&server, script)
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
    let out = imap::run(
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
