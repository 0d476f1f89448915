//! What the server process does to protect the keys it holds: a crash under
//! `ulimit -c unlimited` (what a debugging admin or systemd's `LimitCORE=infinity` sets)
//! writes no core file, where the key-encryption key would be.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `program args...` started by a shell that first lifts the core size limit, in `dir`.
fn with_core_dumps(dir: &Path, program: &Path, args: &[&str]) -> std::process::Child {
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -c unlimited && exec \"$@\"")
        .arg("sh")
        .arg(program)
        .args(args)
        .current_dir(dir)
        .env("MSSANTE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn")
}

fn cores(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("core"))
        .collect()
}

fn abort_and_wait(child: &mut std::process::Child) {
    signal(child.id(), "ABRT");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "the process did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_crash_of_the_server_writes_no_core_file() {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    // The control: on this machine an ordinary process that aborts does leave a core file
    // in its directory (otherwise this test could not fail).
    let control = tempfile::tempdir().expect("tempdir");
    let mut sleeper = with_core_dumps(control.path(), Path::new("/bin/sleep"), &["30"]);
    std::thread::sleep(Duration::from_millis(300));
    abort_and_wait(&mut sleeper);
    assert!(
        !cores(control.path()).is_empty(),
        "no core from the control process: core_pattern is {pattern:?}, this test needs plain \"core\""
    );

    let server = TestServer::new("");
    let cwd = tempfile::tempdir().expect("tempdir");
    let (config, data) = (
        path(&server.config).to_string(),
        path(&server.data).to_string(),
    );
    let mut serve = with_core_dumps(
        cwd.path(),
        Path::new(BIN),
        &["--config", &config, "--data", &data, "serve"],
    );
    wait_for_port(server.ports.https);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", serve.id())).expect("limits");
    let core_line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_default()
        .to_string();
    abort_and_wait(&mut serve);
    assert_eq!(
        cores(cwd.path()),
        Vec::<String>::new(),
        "a core file was written"
    );
    assert!(
        core_line.split_whitespace().filter(|w| *w == "0").count() >= 2,
        "the server lowers its own core limit: {core_line}"
    );
}
