//! CPU work off the async executor: key generation, signing, sealing and opening message
//! bodies run on tokio's blocking pool, so one large message or one RSA key never stalls the
//! sessions sharing a worker thread.

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
