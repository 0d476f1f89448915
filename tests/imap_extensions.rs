//! The IMAP extensions beyond IMAP4rev1's base with python's imaplib against a running
//! server: CONDSTORE and QRESYNC, ESEARCH and LIST-EXTENDED, IMAP4rev2 with SEARCHRES and
//! STATUS SIZE, QUOTA, SORT and THREAD, BINARY. `tests/imap.rs` has the base protocol.

mod common;

use common::*;

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
    let out = imap::run(&server, CONDSTORE, "");
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
    let out = imap::run(&server, EXTENDED, "");
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
    let out = imap::run(&server, REV2, "");
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
    let out = imap::run(&server, QUOTA, "");
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
    let out = imap::run(&server, SORTING, "");
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
    let out = imap::run(&server, BINARY, "");
    assert!(
        out.status.success() && stdout(&out).contains("BINARY OK"),
        "{}\n{}",
        show(&out),
        server.log()
    );
}
