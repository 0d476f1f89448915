//! Submission as practice software meets it: From: must be the authenticated user, a missing
//! Message-ID or Date is added, and the X-MSS-* headers of the MSSanté client referential
//! arrive byte for byte.

mod common;

use common::*;

fn submit_file(server: &TestServer, message: &str) -> std::process::Output {
    let file = server
        .dir
        .path()
        .join(format!("message-{}.eml", free_port()));
    std::fs::write(&file, message).expect("write");
    submit(
        server,
        PASSWORD,
        &["--to", USER, "--data", file.to_str().expect("utf-8")],
    )
}

fn fetch(server: &TestServer, uid: u32) -> String {
    let out = curl(&[
        &format!("imaps://127.0.0.1:{}/INBOX;UID={uid}", server.ports.imaps),
        "-u",
        &format!("{USER}:{PASSWORD}"),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn from_must_be_the_user_and_missing_headers_are_added() {
    let mut server = TestServer::new("");
    server.start();

    let forged = format!("From: directeur@hopital.test\r\nTo: {USER}\r\nSubject: x\r\n\r\nx\r\n");
    let out = submit_file(&server, &forged);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("550 5.7.1 From: <directeur@hopital.test> is not an address of"),
        "{}",
        show(&out)
    );
    let out = submit_file(&server, &format!("To: {USER}\r\nSubject: x\r\n\r\nx\r\n"));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("550 5.6.0"),
        "{}",
        show(&out)
    );

    // Practice software that sets neither Message-ID nor Date, with referential headers.
    let bare = format!(
        "From: \"Dr Alice MARTIN\" <{USER}>\r\nTo: {USER}\r\nSubject: CR consultation\r\nX-MSS-NIL: LPS-Test/2.1 (build 42)\r\nX-MSS-INS:  O\r\nX-MSS-MES: FIN\r\n\r\nCompte rendu.\r\n"
    );
    let out = submit_file(&server, &bare);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("250 2.0.0"),
        "{}",
        show(&out)
    );
    let stored = fetch(&server, 1);
    assert_eq!(stored.matches("\r\nMessage-ID: <").count(), 1, "{stored}");
    assert_eq!(stored.matches("\r\nDate: ").count(), 1, "{stored}");
    assert!(stored.contains("@localhost>"), "{stored}");
    for header in [
        "X-MSS-NIL: LPS-Test/2.1 (build 42)\r\n",
        "X-MSS-INS:  O\r\n",
        "X-MSS-MES: FIN\r\n",
    ] {
        assert!(stored.contains(header), "{header:?} changed:\n{stored}");
    }

    // A complete message gets no second Message-ID or Date.
    let complete = format!(
        "From: {USER}\r\nTo: {USER}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\nMessage-ID: <cr-1@lps.test>\r\nSubject: y\r\n\r\ny\r\n"
    );
    let out = submit_file(&server, &complete);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("250 2.0.0"),
        "{}",
        show(&out)
    );
    let stored = fetch(&server, 2);
    assert_eq!(stored.matches("Message-ID:").count(), 1, "{stored}");
    assert!(stored.contains("Message-ID: <cr-1@lps.test>"), "{stored}");
    assert_eq!(stored.matches("Date:").count(), 1, "{stored}");
    assert_eq!(server.stop(), 0);
}
