//! Server shutdown, as sessions see it: a signal they can wait on between commands, and a
//! count of live sessions that `serve` waits on (with a grace period) before exiting.

use tokio::sync::{mpsc, watch};

/// Tells whether shutdown has begun and lets a task wait for it.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// True once shutdown has begun.
    pub fn is_shutdown(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits until shutdown begins (forever if the trigger is dropped without firing).
    pub async fn wait(&mut self) {
        if self.rx.wait_for(|&stop| stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Held by `serve`: starts the shutdown and waits for the sessions to end.
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
    alive_tx: Option<mpsc::Sender<()>>,
    alive_rx: mpsc::Receiver<()>,
}

/// Held by each session (and accept loop) while it runs; dropping it says "done".
#[derive(Clone)]
pub struct Alive {
    _tx: mpsc::Sender<()>,
}

impl ShutdownTrigger {
    /// A new trigger, not fired.
    pub fn new() -> ShutdownTrigger {
        let (tx, _) = watch::channel(false);
        let (alive_tx, alive_rx) = mpsc::channel(1);
        ShutdownTrigger {
            tx,
            alive_tx: Some(alive_tx),
            alive_rx,
        }
    }

    /// A handle for a task to watch.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }

    /// A token that keeps `drain` waiting while it lives.
    pub fn alive(&self) -> Alive {
        match &self.alive_tx {
            Some(tx) => Alive { _tx: tx.clone() },
            None => unreachable!("alive() after drain() began"),
        }
    }

    /// Fires the shutdown and waits until every [`Alive`] token is dropped, or the grace
    /// period ends. Returns true if everything finished in time.
    pub async fn drain(mut self, grace: std::time::Duration) -> bool {
        let _ = self.tx.send(true);
        self.alive_tx = None;
        tokio::time::timeout(grace, self.alive_rx.recv())
            .await
            .is_ok()
    }
}

impl Default for ShutdownTrigger {
    fn default() -> Self {
        Self::new()
    }
}
