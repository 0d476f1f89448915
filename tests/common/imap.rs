//! IMAP scripts in python's imaplib against a test server: the helpers every script gets
//! and a prelude that connects over IMAPS as [`USER`].

use std::process::{Command, Output};

use super::*;

/// Python helpers for imaplib scripts: `ok(result)` (asserts OK, returns the data),
/// `bad(m, name, *args)` (a command that must be answered BAD), `raw(m, line)` (sends a
/// command as written, returns its response lines), `text(data)`.
pub const HELPERS: &str = r#"
import imaplib
def ok(result, what=""):
    typ, data = result
    assert typ == "OK", (what, typ, data)
    return data
def bad(m, name, *args):
    """Runs a command that must be answered BAD (imaplib raises on BAD)."""
    try:
        typ, data = m._simple_command(name, *args)
    except imaplib.IMAP4.error as e:
        assert "BAD" in str(e), e
        return str(e)
    raise AssertionError(("expected BAD", name, typ, data))
def raw(m, command):
    """Sends a command as written; returns its response lines (no literals expected)."""
    tag = m._new_tag()
    m.send(tag + b" " + command.encode() + b"\r\n")
    lines = []
    while True:
        raw_line = m.readline()
        if not raw_line:
            raise imaplib.IMAP4.abort("connection closed after %r: %r" % (command, lines))
        line = raw_line.decode().rstrip("\r\n")
        lines.append(line)
        if line.startswith(tag.decode() + " "):
            return lines
def text(data):
    return b" ".join(d if isinstance(d, bytes) else b"".join(d) for d in data if d).decode("utf-8", "replace")
"#;

/// Connects over IMAPS to the port in argv[1] as argv[2] with the password argv[3]:
/// `connect()` returns the logged-in `imaplib` session.
pub const PRELUDE: &str = r#"
import imaplib, re, ssl, sys, time
ctx = ssl._create_unverified_context()
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def connect():
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=20)
    typ, _ = m.login(user, password)
    assert typ == "OK", typ
    return m
"#;

/// `python3` running `script` after [`HELPERS`] and [`PRELUDE`], for [`USER`] on the
/// server's IMAPS port.
pub fn script(server: &TestServer, script: &str) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(format!("{HELPERS}{PRELUDE}{script}"))
        .args([server.ports.imaps.to_string().as_str(), USER, PASSWORD]);
    cmd
}

/// Runs `script` (see [`script`]) with `stdin`, capturing its output.
pub fn run(server: &TestServer, text: &str, stdin: &str) -> Output {
    run_with_stdin(script(server, text), stdin)
}
