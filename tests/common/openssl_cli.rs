//! The `openssl` command as the tests run it. Shared by the server's tests and the smime
//! crate's (`#[path]`, like `gpgsm.rs`), so it needs nothing but std.

use std::path::Path;
use std::process::Command;

/// Runs openssl in `dir`; panics with its error output when it fails.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (./scripts/test installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
