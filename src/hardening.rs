//! What the process does to itself before it holds a key: it makes itself non-dumpable and
//! sets its core size limit to zero, so that a crash, a `kill -ABRT` or a debugger-minded
//! `ulimit -c unlimited` (systemd's `LimitCORE=infinity`) never writes the key-encryption
//! key, and with it every sealed message and escrowed key, into a core file. Non-dumpable
//! also keeps other processes of the same user from attaching with ptrace or reading
//! `/proc/<pid>/mem`.
//!
//! Key material itself is zeroed when dropped: the KEK file's bytes are read into
//! `Zeroizing` buffers, and the AES-GCM keys live in aws-lc contexts that cleanse themselves.

/// Makes this process non-dumpable with a zero core limit; Err says which step failed (the
/// caller refuses to go on: a server that cannot promise this must not hold the KEK).
pub fn no_core_dumps() -> Result<(), String> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|e| format!("cannot set the core file size limit to 0: {e}"))?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| format!("cannot make the process non-dumpable: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_process_is_left_non_dumpable_with_no_core_limit() {
        super::no_core_dumps().expect("hardening");
        let dumpable = rustix::process::dumpable_behavior().expect("read back");
        assert_eq!(dumpable, rustix::process::DumpableBehavior::NotDumpable);
        let limit = rustix::process::getrlimit(rustix::process::Resource::Core);
        assert_eq!((limit.current, limit.maximum), (Some(0), Some(0)));
    }
}
