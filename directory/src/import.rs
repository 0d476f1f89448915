//! Loading the ANS extract into a directory (a test or regional one): one thread reads and
//! parses the file, a bounded queue hands the entries to a few LDAP connections that write
//! them, so memory stays flat whatever the file's size. Malformed rows, and rows the
//! directory refuses, are reported with their line numbers and skipped; a directory that
//! fails stops the import with how far it got.

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, mpsc};

use crate::entry::Entry;
use crate::extract::{ExtractReader, RowError};
use crate::ldap::{DirectoryConfig, DirectoryError, DirectorySession};

/// Entries parsed ahead of the writers: what bounds memory.
const QUEUE: usize = 2048;

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not the extract (its first line is not the header).
    #[error("not the ANS extract: {0}")]
    NotAnExtract(RowError),
    /// The directory failed; rows up to about `rows` were read.
    #[error("{error} (after {rows} rows)")]
    Directory {
        /// What failed.
        error: DirectoryError,
        /// Rows read when it failed.
        rows: u64,
    },
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Data rows read (the header not counted).
    pub rows: u64,
    /// Entries written.
    pub imported: u64,
    /// Rows skipped (malformed, or refused by the directory), each reported.
    pub skipped: u64,
}

/// Imports the extract `input` into the directory of `config` over `connections` LDAP
/// connections; `report` is called for each skipped row (from another thread).
pub async fn import_extract<R, F>(
    config: &DirectoryConfig,
    input: R,
    connections: usize,
    report: F,
) -> Result<ImportReport, ImportError>
where
    R: BufRead + Send + 'static,
    F: Fn(&RowError) + Send + Sync + 'static,
{
    let report = Arc::new(report);
    let (sender, receiver) = mpsc::channel::<(u64, Entry)>(QUEUE);
    let receiver = Arc::new(Mutex::new(receiver));
    let rows = Arc::new(AtomicU64::new(0));
    let skipped = Arc::new(AtomicU64::new(0));
    let reader = {
        let (rows, skipped, report) = (rows.clone(), skipped.clone(), report.clone());
        tokio::task::spawn_blocking(move || -> Result<(), RowError> {
            let mut extract = ExtractReader::new(input);
            while let Some(row) = extract.next() {
                match row {
                    Ok(entry) => {
                        rows.fetch_add(1, Ordering::Relaxed);
                        // The writers stopped (a directory failure): nothing more to do.
                        if sender.blocking_send((extract.line(), entry)).is_err() {
                            return Ok(());
                        }
                    }
                    // Not the header: not the extract at all.
                    Err(e) if e.line == 1 => return Err(e),
                    Err(e) => {
                        rows.fetch_add(1, Ordering::Relaxed);
                        skipped.fetch_add(1, Ordering::Relaxed);
                        report(&e);
                    }
                }
            }
            Ok(())
        })
    };
    let imported = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    let failed = |error: DirectoryError, rows: &AtomicU64| ImportError::Directory {
        error,
        rows: rows.load(Ordering::Relaxed),
    };
    for _ in 0..connections.max(1) {
        let mut session = match DirectorySession::open(config).await {
            Ok(session) => session,
            Err(e) => {
                receiver.lock().await.close();
                let _ = reader.await;
                return Err(failed(e, &rows));
            }
        };
        let (receiver, imported, skipped, report) = (
            receiver.clone(),
            imported.clone(),
            skipped.clone(),
            report.clone(),
        );
        writers.push(tokio::spawn(async move {
            loop {
                let next = receiver.lock().await.recv().await;
                let Some((line, entry)) = next else {
                    session.close().await;
                    return Ok(());
                };
                match session.publish(&entry).await {
                    Ok(_) => {
                        imported.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.is_permanent() => {
                        skipped.fetch_add(1, Ordering::Relaxed);
                        report(&RowError {
                            line,
                            reason: e.to_string(),
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
        }));
    }
    let mut failure = None;
    for writer in writers {
        match writer.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                // The others stop at once: their queue is closed.
                receiver.lock().await.close();
                failure.get_or_insert(e);
            }
            Err(join) => {
                failure.get_or_insert(DirectoryError::Connection(format!(
                    "an import writer failed: {join}"
                )));
            }
        }
    }
    if let Ok(Err(header)) = reader.await {
        return Err(ImportError::NotAnExtract(header));
    }
    if let Some(e) = failure {
        return Err(failed(e, &rows));
    }
    Ok(ImportReport {
        rows: rows.load(Ordering::Relaxed),
        imported: imported.load(Ordering::Relaxed),
        skipped: skipped.load(Ordering::Relaxed),
    })
}
