//! CPU work off the async executor: key generation, signing, sealing and opening message
//! bodies run on tokio's blocking pool, so one large message or one RSA key never stalls the
//! sessions sharing a worker thread.
//!
//! Per-message public-key work (S/MIME decryption, verification, signature) has a pool of
//! its own ([`crypto`]): one thread per core, at the lowest priority. A burst of encrypted mail
//! then keeps every core busy without outnumbering them, and the threads that answer
//! sessions and commit messages run first when they wake, so a commit never waits behind a
//! queue of RSA operations.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

/// Work over fewer bytes than this runs in place: sealing 64 KiB takes tens of
/// microseconds, less than handing it to another thread and back.
pub const INLINE_BYTES: usize = 64 * 1024;

/// The blocking task panicked or was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("background task failed: {0}")]
pub struct TaskFailed(String);

/// Runs `work` on the blocking pool and returns its result.
pub async fn run<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<TaskFailed> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| E::from(TaskFailed(e.to_string())))?
}

/// Runs `work` over `bytes` octets in place when it is small (under [`INLINE_BYTES`]), on
/// the blocking pool otherwise.
pub async fn run_sized<T, E>(
    bytes: usize,
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<TaskFailed> + Send + 'static,
{
    if bytes < INLINE_BYTES {
        work()
    } else {
        run(work).await
    }
}

/// A unit of work for the crypto pool.
type Job = Box<dyn FnOnce() + Send>;

/// The nice value of the crypto threads, the lowest priority: sessions and the message
/// writer (nice 0) run first whenever they wake. Measured with the S/MIME pipeline benchmark
/// (three runs each): nice 0 770-806 msg/s, 10 703-756, 19 837-968.
const CRYPTO_NICE: libc::c_int = 19;

/// The crypto pool's queue, its threads started on first use; None when no thread could be
/// started (the work then goes to tokio's blocking pool rather than wait forever).
fn crypto_pool() -> Option<&'static Sender<Job>> {
    static POOL: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut started = 0;
        for n in 0..threads {
            let receiver = receiver.clone();
            match std::thread::Builder::new()
                .name(format!("crypto-{n}"))
                .spawn(move || crypto_worker(&receiver))
            {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "crypto thread not started"),
            }
        }
        (started > 0).then_some(sender)
    })
    .as_ref()
}

/// Runs jobs until the queue is gone. A job that panics takes only itself down: its caller
/// sees [`TaskFailed`].
fn crypto_worker(receiver: &Mutex<Receiver<Job>>) {
    // SAFETY: setpriority only changes this thread's nice value (Linux keeps one per
    // thread); a failure leaves it at the default.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, CRYPTO_NICE);
    }
    loop {
        let job = match receiver.lock() {
            Ok(queue) => queue.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else { return };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// Runs per-message public-key `work` on the crypto pool and returns its result.
pub async fn crypto<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<TaskFailed> + Send + 'static,
{
    let Some(pool) = crypto_pool() else {
        return run(work).await;
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // The caller may have gone (connection lost): nobody to answer.
        let _ = reply.send(work());
    });
    if pool.send(job).is_err() {
        return Err(E::from(TaskFailed("the crypto pool has stopped".into())));
    }
    answer
        .await
        .map_err(|_| E::from(TaskFailed("the crypto task failed".into())))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn crypto_jobs_answer_and_a_panic_fails_only_its_own() {
        let answer: Result<u32, TaskFailed> = crypto(|| Ok(6 * 7)).await;
        assert_eq!(answer.ok(), Some(42));
        let failed: Result<u32, TaskFailed> = crypto(|| panic!("bad job")).await;
        assert!(failed.is_err());
        let again: Result<u32, TaskFailed> = crypto(|| Ok(1)).await;
        assert_eq!(again.ok(), Some(1), "the pool survives a panicking job");
    }
}
