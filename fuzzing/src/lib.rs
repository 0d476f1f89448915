//! The fuzz tier of the test suite, on stable Rust (nightly and cargo-fuzz cannot be installed
//! where mssante is built). Every parser of outside input has a test that feeds it mutations
//! of real inputs (a corpus kept next to that test) and requires, for each one, that the
//! parser returns within [`TIME_LIMIT`] without panicking; the test adds its own checks of
//! the result (for example "a refused input is an error, not a silent success").
//!
//! A mutation is a short list of edits applied to one corpus entry: bytes inserted (the
//! octets that delimit protocols: CR, LF, NUL, parentheses, braces, quotes...), a range
//! deleted or repeated many times (deep nesting, long lines), a dictionary token spliced in
//! (huge literal lengths, boundaries, encoded words), a truncation. proptest shrinks a failing
//! input to a small one before reporting it.
//!
//! How many inputs each target tries: `MSSANTE_FUZZ_CASES` (default [`DEFAULT_CASES`], what
//! `./scripts/test` runs). Before a release, run the long form, e.g.
//! `MSSANTE_FUZZ_CASES=200000 cargo test --workspace --release fuzz_` (see README.md).
//!
//! A parser that does not return is a loop: the test then prints the input and ends the test
//! process at once, since the stuck thread cannot be stopped and may be allocating without
//! bound (the first such bug ate all the memory of the machine).

pub mod corpus;

use std::sync::{Arc, mpsc};
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Inputs each target tries when `MSSANTE_FUZZ_CASES` is not set.
pub const DEFAULT_CASES: u32 = 400;

/// Time one input may take before the parser is declared stuck. Generous: the test build is
/// not optimised and the machine may be busy with other tests.
pub const TIME_LIMIT: Duration = Duration::from_secs(3);

/// Octets that delimit the protocols mssante reads.
const SPECIAL: &[u8] = b"\0\r\n\t ()[]{}<>\"\\~+*%$@:;,.=-_/?&'#!|^`\x7f\x80\xc3\xff0123456789";

/// Tokens worth splicing into any input: lengths that overflow, openers without closers,
/// delimiters of lines, MIME and encoded words.
const DICTIONARY: &[&[u8]] = &[
    b"{4294967296}\r\n",
    b"{18446744073709551615}\r\n",
    b"{99999999999999999999+}\r\n",
    b"~{0}\r\n",
    b"{0}\r\n",
    b"((((((((((((((((",
    b"))))))))",
    b"\r\n.\r\n",
    b"\n.\n",
    b"\r.\r",
    b"--",
    b"\r\n--b\r\n",
    b"\r\n--b--\r\n",
    b"boundary=\"b\"",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"=?utf-8?q?=C3=A9?=",
    b"=?utf-8?b?w6k=?=",
    b"=\r\n",
    b"&AOk-",
    b"\"\\",
    b"\x30\x80",
    b"\x30\x84\xff\xff\xff\xff",
    b"\x00\x00",
    b"<>",
    b"<@a,@b:x@y>",
    b"\"x@y\"@z",
    b"*",
    b"%",
    b"$",
];

/// How many inputs each target tries.
pub fn cases() -> u32 {
    std::env::var("MSSANTE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// One edit of an input.
#[derive(Debug, Clone)]
enum Edit {
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Replace(Index, u8),
    Repeat(Index, usize, usize),
    Splice(Index, Index),
    Truncate(Index),
}

fn special_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => proptest::sample::select(SPECIAL),
        1 => any::<u8>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<Index>(), proptest::collection::vec(special_byte(), 1..4))
            .prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
        2 => (any::<Index>(), 1usize..16).prop_map(|(at, n)| Edit::Delete(at, n)),
        3 => (any::<Index>(), special_byte()).prop_map(|(at, b)| Edit::Replace(at, b)),
        1 => (any::<Index>(), 1usize..32, 2usize..2000)
            .prop_map(|(at, len, times)| Edit::Repeat(at, len, times)),
        3 => (any::<Index>(), any::<Index>()).prop_map(|(at, token)| Edit::Splice(at, token)),
        1 => any::<Index>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut input: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
        match edit {
            Edit::Insert(i, bytes) => {
                let p = at(i, input.len());
                input.splice(p..p, bytes.iter().copied());
            }
            Edit::Delete(i, n) => {
                let p = at(i, input.len()).min(input.len());
                let end = (p + n).min(input.len());
                input.drain(p..end);
            }
            Edit::Replace(i, b) => {
                if !input.is_empty() {
                    let p = i.index(input.len());
                    input[p] = *b;
                }
            }
            Edit::Repeat(i, len, times) => {
                let p = at(i, input.len()).min(input.len());
                let end = (p + len).min(input.len());
                let piece = input[p..end].to_vec();
                let copies: Vec<u8> = piece.repeat(*times);
                input.splice(end..end, copies);
            }
            Edit::Splice(i, token) => {
                let p = at(i, input.len());
                let t = DICTIONARY[token.index(DICTIONARY.len())];
                input.splice(p..p, t.iter().copied());
            }
            Edit::Truncate(i) => {
                let p = at(i, input.len());
                input.truncate(p);
            }
        }
    }
    input
}

/// Mutations of the corpus entries: an entry as it is, or with up to eight edits.
pub fn mutations(corpus: &[&[u8]]) -> impl Strategy<Value = Vec<u8>> + use<> {
    assert!(!corpus.is_empty(), "a fuzz target needs a corpus");
    let corpus: Vec<Vec<u8>> = corpus.iter().map(|c| c.to_vec()).collect();
    (
        proptest::sample::select(corpus),
        proptest::collection::vec(edit(), 0..8),
    )
        .prop_map(|(seed, edits)| apply(seed, &edits))
}

/// Feeds `cases()` mutations of `corpus` to `target`, each on a thread of its own that must
/// return within [`TIME_LIMIT`]. A panic (of the parser, or of an assertion in `target`)
/// fails the test with the smallest input proptest finds; a stuck parser ends the process.
pub fn fuzz<F>(name: &str, corpus: &[&[u8]], target: F)
where
    F: Fn(&[u8]) + Send + Sync + 'static,
{
    let target = Arc::new(target);
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 512,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&mutations(corpus), |input| {
        returns_within(name, input, target.clone()).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("fuzz target {name}: {e}");
    }
}

/// Runs `target(input)` on its own thread; Err with the panic's message, process exit when
/// it does not return in time.
fn returns_within<F>(name: &str, input: Vec<u8>, target: Arc<F>) -> Result<(), String>
where
    F: Fn(&[u8]) + Send + Sync + 'static,
{
    let (done, wait) = mpsc::channel();
    let shown = escape(&input);
    let spawned = std::thread::Builder::new()
        .name(format!("fuzz {name}"))
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&input)));
            let _ = done.send(outcome.map_err(|payload| panic_text(&*payload)));
        });
    if let Err(e) = spawned {
        return Err(format!("cannot start a thread: {e}"));
    }
    match wait.recv_timeout(TIME_LIMIT) {
        Ok(outcome) => outcome,
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("the target thread vanished".into()),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // Written to the process's stderr itself: the test harness's capture of
            // eprintln! is lost when the process exits.
            let message = format!(
                "\nfuzz target {name}: no return within {TIME_LIMIT:?} (a loop that consumes no input?) on input: {shown}\n"
            );
            let _ = std::io::Write::write_all(&mut std::io::stderr(), message.as_bytes());
            std::process::exit(101);
        }
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// The input as a Rust byte string, cut to 2,000 characters.
pub fn escape(input: &[u8]) -> String {
    let text: String = input.escape_ascii().to_string();
    if text.len() > 2000 {
        format!("b\"{}...\" ({} octets)", &text[..2000], input.len())
    } else {
        format!("b\"{text}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;

    #[test]
    fn mutations_edit_the_corpus_and_keep_it_too() {
        let mut runner = TestRunner::deterministic();
        let strategy = mutations(&[b"a1 NOOP\r\n"]);
        let mut same = 0;
        let mut changed = 0;
        for _ in 0..500 {
            let value = strategy.new_tree(&mut runner).expect("a value").current();
            if value == b"a1 NOOP\r\n" {
                same += 1;
            } else {
                changed += 1;
            }
        }
        assert!(same > 0 && changed > 250, "same {same}, changed {changed}");
    }

    #[test]
    fn a_panicking_target_is_reported_with_its_input() {
        fn picky(input: &[u8]) {
            assert!(!input.contains(&b'('), "found a parenthesis");
        }
        let outcome = std::panic::catch_unwind(|| fuzz("picky", &[b"a LIST x y\r\n"], picky));
        let message = panic_text(&*outcome.expect_err("the target panics on some input"));
        assert!(message.contains("found a parenthesis"), "{message}");
    }
}
