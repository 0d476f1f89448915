//! The listener framework every protocol plugs into.
//!
//! A [`Listener`] owns one bound socket: it accepts connections, enforces the connection
//! limit, does the implicit-TLS handshake, gives each connection a session id (on every log
//! line, through a tracing span) and hands a [`Connection`] to the protocol's [`Service`].
//! STARTTLS, idle timeouts and shutdown are in [`Connection`], so sessions get them for free.

mod connection;
mod handshake;
mod limits;
mod shutdown;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

use connection::Terms;
pub use connection::{Connection, HANDSHAKE_TIMEOUT, LINE_HEAD, ReadError, Stream};
pub use handshake::{HandshakeAudit, TlsServer};
pub use limits::{ConnectionLimits, Slot};
pub use shutdown::{Alive, Shutdown, ShutdownTrigger};

use crate::audit::Audit;
use crate::config::{ListenerConfig, TlsMode};

/// A protocol: serves one connection at a time per call, many calls at once.
#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// Protocol name for logs and the audit trail.
    fn name(&self) -> &'static str;
    /// What to send before closing when the listener is at its connection limit.
    fn busy_reply(&self) -> &'static [u8];
    /// Runs the session until the client leaves, times out, or the server shuts down.
    async fn serve(&self, conn: &mut Connection) -> Result<(), ReadError>;
}

/// One bound socket and what serves it.
pub struct Listener {
    socket: TcpListener,
    config: ListenerConfig,
    tls: Option<TlsServer>,
    service: Arc<dyn Service>,
    audit: Audit,
    limits: ConnectionLimits,
}

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({protocol}): {source}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// The protocol.
    pub protocol: &'static str,
    /// Why.
    pub source: std::io::Error,
}

static SESSION_IDS: AtomicU64 = AtomicU64::new(1);

impl Listener {
    /// Binds the socket now, so "address in use" is reported before the server starts.
    pub async fn bind(
        config: ListenerConfig,
        tls: Option<TlsServer>,
        service: Arc<dyn Service>,
        audit: Audit,
        limits: ConnectionLimits,
    ) -> Result<Listener, BindError> {
        let addr = *config.bind.get_ref();
        let socket = TcpListener::bind(addr).await.map_err(|source| BindError {
            addr,
            protocol: config.protocol.name(),
            source,
        })?;
        let tls = if config.tls == TlsMode::None {
            None
        } else {
            tls
        };
        Ok(Listener {
            socket,
            config,
            tls,
            service,
            audit,
            limits,
        })
    }

    /// The bound address (useful when the port was 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Accepts until shutdown; each connection runs in its own task holding an [`Alive`].
    pub async fn run(self, mut shutdown: Shutdown, alive: Alive) {
        let limit = Arc::new(Semaphore::new(self.config.max_connections));
        let listener = Arc::new(self);
        loop {
            let (tcp, peer) = tokio::select! {
                _ = shutdown.wait() => break,
                accepted = listener.socket.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let accepted = tokio::time::Instant::now();
            let id = format!("{:06x}", SESSION_IDS.fetch_add(1, Ordering::Relaxed));
            let span = tracing::info_span!("session", id = %id, proto = listener.service.name(), peer = %peer);
            let permit = limit.clone().try_acquire_owned().ok();
            let slot = listener.limits.admit(peer.ip());
            let (listener, shutdown, alive) = (listener.clone(), shutdown.clone(), alive.clone());
            tokio::spawn(
                async move {
                    let _alive = alive;
                    let admitted = match (permit.is_some(), slot) {
                        (true, Some(slot)) => Ok(slot),
                        (false, _) => Err("connection limit reached"),
                        (true, None) => Err("too many connections not logged in from this address"),
                    };
                    listener
                        .handle(tcp, peer, id, admitted, accepted, shutdown)
                        .await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
        tracing::info!(addr = %listener.config.bind.get_ref(), "listener closed");
    }

    async fn handle(
        &self,
        tcp: tokio::net::TcpStream,
        peer: SocketAddr,
        id: String,
        admitted: Result<Slot, &'static str>,
        accepted: tokio::time::Instant,
        shutdown: Shutdown,
    ) {
        let audit = HandshakeAudit {
            audit: self.audit.clone(),
            source: format!("{} {peer}", self.service.name()),
        };
        let stream = match (&self.tls, self.config.tls) {
            (Some(server), TlsMode::Implicit) => {
                match handshake::accept(server, tcp, &audit).await {
                    Ok(tls) => Stream::Tls(Box::new(tls)),
                    Err(_) => return, // logged and audited by the handshake
                }
            }
            _ => Stream::Plain(tcp),
        };
        let starttls = (self.config.tls == TlsMode::Starttls)
            .then(|| self.tls.clone())
            .flatten();
        let (slot, refused) = match admitted {
            Ok(slot) => (Some(slot), None),
            Err(why) => (None, Some(why)),
        };
        let terms = Terms {
            idle: self.config.idle_timeout(),
            shutdown,
            limits: self.limits.clone(),
            slot,
            accepted,
        };
        let mut conn = Connection::new(stream, peer, id, starttls, audit, terms);
        if let Some(why) = refused {
            tracing::warn!(
                limit = self.config.max_connections,
                per_address = self.limits.max_unauthenticated_per_address(),
                "{why}"
            );
            let _ = conn.write(self.service.busy_reply()).await;
            return conn.close().await;
        }
        tracing::debug!(tls = conn.tls().is_some(), "connected");
        match self.service.serve(&mut conn).await {
            Ok(()) | Err(ReadError::Closed) => tracing::debug!("session ended"),
            Err(e) => tracing::info!(reason = %e, "session ended"),
        }
        conn.close().await;
    }
}
