//! mbsync (isync) against the server: a first sync down, changes on both sides (new
//! messages, flags, deletions), a second sync carries them both ways, and a third changes
//! nothing on either side.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::*;

/// Every message on the server as "folder | subject | flags", sorted.
const SERVER_STATE: &str = r#"
import imaplib, re, ssl, sys
ctx = ssl._create_unverified_context()
m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[1]), ssl_context=ctx, timeout=20)
m.login(sys.argv[2], sys.argv[3])
if sys.argv[4:]:
    # Changes on the server side: a new message, a flag.
    m.append("INBOX", None, None, b"Subject: from-server\r\n\r\nposted on the server\r\n")
    m.select("INBOX")
    typ, data = m.search(None, "SUBJECT", "first")
    m.store(data[0].split()[0].decode(), "+FLAGS", "(\\Flagged)")
    m.logout()
    sys.exit(0)
out = []
typ, folders = m.list('""', "*")
for f in folders:
    name = f.decode().rsplit(' "/" ', 1)[1].strip('"')
    typ, _ = m.select('"%s"' % name, readonly=True)
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    for item in data:
        if isinstance(item, tuple):
            flags = " ".join(sorted(re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode().split()))
            subject = item[1].decode().strip().split(":", 1)[1].strip()
            out.append("%s | %s | %s" % (name, subject, flags))
print("\n".join(sorted(out)))
"#;

fn server_state(server: &TestServer) -> String {
    let port = server.ports.imaps.to_string();
    let out = python(SERVER_STATE, &[&port, USER, PASSWORD]);
    assert!(out.status.success(), "{}", show(&out));
    stdout(&out)
}

/// Every message of the local Maildir tree as "folder | subject | maildir flags", sorted.
fn local_state(root: &Path) -> String {
    let mut out = Vec::new();
    for file in files_under(root) {
        let parent = file.parent().and_then(Path::file_name);
        if !matches!(parent.and_then(|p| p.to_str()), Some("cur" | "new")) {
            continue;
        }
        let folder = file
            .parent()
            .and_then(Path::parent)
            .and_then(|f| f.strip_prefix(root).ok())
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let flags = name.rsplit_once(":2,").map_or("", |(_, f)| f).to_string();
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("")
            .trim()
            .to_string();
        out.push(format!("{folder} | {subject} | {flags}"));
    }
    out.sort();
    out.join("\n")
}

fn mbsync(config: &Path) -> String {
    let out = Command::new("mbsync")
        .args(["-c", path(config), "-a"])
        .output()
        .expect("run mbsync");
    assert!(out.status.success(), "mbsync failed:\n{}", show(&out));
    show(&out)
}

#[test]
fn mbsync_two_ways_then_nothing_to_do() {
    require("mbsync");
    let mut server = TestServer::new("");
    server.start();
    let work = tempfile::tempdir().expect("tempdir");

    // The server's certificate, trusted as a host certificate (it names the host, not
    // 127.0.0.1).
    let leaf = work.path().join("server.pem");
    let connect = format!("127.0.0.1:{}", server.ports.imaps);
    let shown = openssl(
        work.path(),
        &["s_client", "-connect", &connect, "-showcerts"],
    );
    let text = String::from_utf8_lossy(&shown);
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .expect("certificate shown");
    let end = text[begin..]
        .find("-----END CERTIFICATE-----")
        .expect("certificate end")
        + begin
        + "-----END CERTIFICATE-----".len();
    std::fs::write(&leaf, format!("{}\n", &text[begin..end])).expect("write leaf");

    // Two messages on the server first, one of them in a folder of its own.
    let out = python(
        r#"
import imaplib, ssl, sys
m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[1]), ssl_context=ssl._create_unverified_context())
m.login(sys.argv[2], sys.argv[3])
m.append("INBOX", None, None, b"Subject: first\r\n\r\none\r\n")
m.append("INBOX", "(\\Seen)", None, b"Subject: second\r\n\r\ntwo\r\n")
m.create("Dossiers/Cardio")
m.append("Dossiers/Cardio", None, None, b"Subject: ecg\r\n\r\necg\r\n")
m.logout()
"#,
        &[&server.ports.imaps.to_string(), USER, PASSWORD],
    );
    assert!(out.status.success(), "{}", show(&out));

    let mail = work.path().join("mail");
    std::fs::create_dir_all(&mail).expect("maildir root");
    let config = work.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount server\nHost 127.0.0.1\nPort {port}\nUser {USER}\nPass \"{PASSWORD}\"\n\
             SSLType IMAPS\nCertificateFile {leaf}\n\n\
             IMAPStore remote\nAccount server\n\n\
             MaildirStore local\nPath {root}/\nInbox {root}/INBOX\nSubFolders Verbatim\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\n\
             SyncState *\n",
            port = server.ports.imaps,
            leaf = path(&leaf),
            root = path(&mail),
        ),
    )
    .expect("write mbsyncrc");

    // First sync: everything comes down, flags as maildir flags.
    mbsync(&config);
    let local = local_state(&mail);
    assert!(
        local.contains("INBOX | first | \n") || local.contains("INBOX | first | "),
        "{local}"
    );
    assert!(local.contains("INBOX | second | S"), "{local}");
    assert!(local.contains("Dossiers/Cardio | ecg | "), "{local}");
    assert!(
        local.contains("Sent")
            || files_under(&mail)
                .iter()
                .any(|f| f.to_string_lossy().contains("Sent")),
        "special-use folders come down too"
    );

    // Changes on both sides: locally a new message, a flag and a deletion; on the server a
    // new message and a flag.
    let new_dir = mail.join("INBOX").join("new");
    std::fs::write(
        new_dir.join("1700000000.local.host"),
        "Subject: from-local\r\n\r\nwritten offline\r\n",
    )
    .expect("local message");
    for file in files_under(&mail.join("Dossiers/Cardio")) {
        if file.to_string_lossy().contains("/cur/") || file.to_string_lossy().contains("/new/") {
            std::fs::remove_file(&file).expect("delete locally");
        }
    }
    for file in files_under(&mail.join("INBOX")) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.contains("Subject: second") {
            let name = file.to_string_lossy().to_string();
            std::fs::rename(&file, name.replace(":2,S", ":2,RS")).expect("flag locally");
        }
    }
    let out = python(
        SERVER_STATE,
        &[&server.ports.imaps.to_string(), USER, PASSWORD, "change"],
    );
    assert!(out.status.success(), "{}", show(&out));

    // Second sync: both ways.
    mbsync(&config);
    let remote = server_state(&server);
    let local = local_state(&mail);
    assert!(remote.contains("INBOX | from-local | "), "{remote}");
    assert!(
        remote.contains("INBOX | second | \\Answered \\Seen"),
        "{remote}"
    );
    assert!(
        !remote.contains("ecg"),
        "deleted locally, gone on the server: {remote}"
    );
    assert!(local.contains("INBOX | from-server | "), "{local}");
    assert!(local.contains("INBOX | first | F"), "{local}");

    // Third sync: nothing to do on either side.
    mbsync(&config);
    assert_eq!(
        server_state(&server),
        remote,
        "the server changed on a sync with nothing to do"
    );
    assert_eq!(
        local_state(&mail),
        local,
        "the Maildir changed on a sync with nothing to do"
    );
    let counts: BTreeMap<&str, usize> = remote
        .lines()
        .map(|l| (l.split(" | ").next().unwrap_or(""), 1))
        .fold(BTreeMap::new(), |mut m, (k, v)| {
            *m.entry(k).or_default() += v;
            m
        });
    assert_eq!(counts.get("INBOX"), Some(&4), "{remote}");
}
