//! One client connection, as every protocol session sees it: a buffered byte stream that is
//! cleartext or TLS, reads lines with a length limit and an idle timeout, and can be upgraded
//! by STARTTLS.
//!
//! Waiting for the next command also watches for server shutdown, so a session learns of it
//! between commands, never in the middle of a transaction.
//!
//! Besides the idle timeout, every read runs under the [`ConnectionLimits`]: a line must
//! arrive whole in time (from its first octet), bulk data at a minimum rate, and a client
//! must log in within the login deadline; until it does, it holds one of its address's few
//! unauthenticated [`Slot`]s.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::handshake::{self, HandshakeAudit, TlsServer};
use super::limits::{ConnectionLimits, Slot};
use super::shutdown::Shutdown;
use crate::tls::TlsInfo;

/// Time a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The socket, cleartext or TLS.
pub enum Stream {
    /// Before STARTTLS, or a listener without TLS.
    Plain(TcpStream),
    /// After the handshake.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The client closed the connection.
    #[error("client closed the connection")]
    Closed,
    /// The client was silent for longer than the idle timeout.
    #[error("idle timeout")]
    Timeout,
    /// A command line, or bulk data, did not arrive whole in time (a slow client).
    #[error("command not received in time")]
    TooSlow,
    /// The client did not log in within the login deadline.
    #[error("no login in time")]
    NoLogin,
    /// The server is shutting down (seen between commands only).
    #[error("server shutting down")]
    Shutdown,
    /// A line went over the limit; it was skipped up to its end. Holds its first octets
    /// (at most [`LINE_HEAD`]), where a tag may be found to answer.
    #[error("line too long")]
    LineTooLong(Vec<u8>),
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl ReadError {
    /// Why the server ends the session, in words for the farewell line, when it is the
    /// server's decision (a time limit); None otherwise.
    pub fn time_limit(&self) -> Option<&'static str> {
        match self {
            ReadError::Timeout => Some("idle for too long"),
            ReadError::TooSlow => Some("command not received in time"),
            ReadError::NoLogin => Some("no login in time"),
            _ => None,
        }
    }
}

/// A client connection with its read buffer.
pub struct Connection {
    stream: Option<Stream>,
    buf: Vec<u8>,
    /// The client's address.
    pub peer: SocketAddr,
    /// Session id, as in the logs.
    pub id: String,
    tls: Option<TlsInfo>,
    acceptor: Option<TlsServer>,
    audit: HandshakeAudit,
    idle: Duration,
    shutdown: Shutdown,
    limits: ConnectionLimits,
    /// When the client must have logged in; None once it has.
    login_by: Option<Instant>,
    /// The place among its address's unauthenticated connections, until login.
    slot: Option<Slot>,
    /// How much of `buf` is known to hold no line end (a line trickling in is not scanned
    /// again from its start at every read).
    scanned: usize,
}

/// Octets of an over-long line kept for the answer (an IMAP tag is at most 64).
pub const LINE_HEAD: usize = 100;

/// Bytes read at once. It lives in every waiting session (the read future holds it), so it
/// is kept small: thousands of idle IMAP connections each hold one.
const READ_CHUNK: usize = 8 * 1024;

/// What a connection lives under, as its listener sets it.
pub(super) struct Terms {
    /// Client silence allowed.
    pub idle: Duration,
    /// The server's stop.
    pub shutdown: Shutdown,
    /// Deadlines and sizes.
    pub limits: ConnectionLimits,
    /// Its place among its address's unauthenticated connections (None: refused).
    pub slot: Option<Slot>,
    /// When it was accepted (the login deadline counts from then).
    pub accepted: Instant,
}

impl Connection {
    pub(super) fn new(
        stream: Stream,
        peer: SocketAddr,
        id: String,
        acceptor: Option<TlsServer>,
        audit: HandshakeAudit,
        terms: Terms,
    ) -> Connection {
        let Terms {
            idle,
            shutdown,
            limits,
            slot,
            accepted,
        } = terms;
        let tls = match &stream {
            Stream::Tls(s) => Some(TlsInfo::of(s.get_ref().1)),
            Stream::Plain(_) => None,
        };
        Connection {
            stream: Some(stream),
            buf: Vec::new(),
            peer,
            id,
            tls,
            acceptor,
            audit,
            idle,
            shutdown,
            login_by: Some(accepted + limits.login),
            limits,
            slot,
            scanned: 0,
        }
    }

    /// The client has authenticated (a login, or an operator's verified certificate): the
    /// login deadline no longer applies and its address's unauthenticated place is free.
    pub fn authenticated(&mut self) {
        self.login_by = None;
        self.slot = None;
    }

    /// Whether the client has authenticated (see [`Connection::authenticated`]).
    pub fn is_authenticated(&self) -> bool {
        self.login_by.is_none()
    }

    /// The connection limits in force (literal sizes before login, data deadlines).
    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// The TLS parameters, once TLS is up.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// Whether the client presented a certificate the handshake verified (a card): SASL
    /// EXTERNAL is offered then.
    pub fn has_client_certificate(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|t| !t.peer_certificates.is_empty())
    }

    /// Whether STARTTLS can be offered now (a TLS listener, not yet upgraded).
    pub fn can_start_tls(&self) -> bool {
        self.tls.is_none() && self.acceptor.is_some()
    }

    fn stream(&mut self) -> io::Result<&mut Stream> {
        self.stream.as_mut().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "stream lost in a failed TLS upgrade",
            )
        })
    }

    /// Gives back the memory of a large read (a literal, a message) once it has been taken
    /// out of the buffer: an idle session must not keep megabytes for its last APPEND.
    fn settle(&mut self) {
        if self.buf.capacity() > 8 * READ_CHUNK && self.buf.len() <= READ_CHUNK {
            self.buf.shrink_to(READ_CHUNK);
        }
    }

    /// Reads more bytes into the buffer, with the idle timeout, `deadline` (a command or data
    /// that must be complete by then) and the login deadline, whichever comes first; when
    /// `interruptible`, returns `Shutdown` if the server stops first.
    async fn fill(
        &mut self,
        interruptible: bool,
        deadline: Option<Instant>,
    ) -> Result<(), ReadError> {
        let mut until = Instant::now() + self.idle;
        let mut expired = ReadError::Timeout;
        if let Some(deadline) = deadline.filter(|d| *d < until) {
            until = deadline;
            expired = ReadError::TooSlow;
        }
        if let Some(login_by) = self.login_by.filter(|l| *l < until) {
            until = login_by;
            expired = ReadError::NoLogin;
        }
        let mut shutdown = self.shutdown.clone();
        let mut chunk = [0u8; READ_CHUNK];
        let stream = self.stream()?;
        let n = tokio::select! {
            biased;
            _ = shutdown.wait(), if interruptible => return Err(ReadError::Shutdown),
            r = tokio::time::timeout_at(until, stream.read(&mut chunk)) => r.map_err(|_| expired)??,
        };
        if n == 0 {
            return Err(ReadError::Closed);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// The next line, CRLF (or LF) included, of at most `max` bytes, arrived whole within the
    /// command deadline of its first octet. A longer line is read to its end and dropped, and
    /// `LineTooLong` returned, so the session can answer and go on.
    pub async fn read_line(&mut self, max: usize) -> Result<Vec<u8>, ReadError> {
        let mut skipping: Option<Vec<u8>> = None;
        let mut interruptible = true;
        let mut deadline = None;
        loop {
            let from = self.scanned.min(self.buf.len());
            if let Some(pos) = memchr::memchr(b'\n', &self.buf[from..]).map(|p| from + p) {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                self.scanned = 0;
                self.settle();
                if let Some(head) = skipping {
                    return Err(ReadError::LineTooLong(head));
                }
                if line.len() > max {
                    return Err(ReadError::LineTooLong(head_of(&line)));
                }
                return Ok(line);
            }
            self.scanned = self.buf.len();
            if self.buf.len() > max {
                skipping.get_or_insert_with(|| head_of(&self.buf));
                self.buf.clear();
                self.scanned = 0;
            }
            if deadline.is_none() && (skipping.is_some() || !self.buf.is_empty()) {
                deadline = Some(Instant::now() + self.limits.command);
            }
            // Shutdown may interrupt only while the client has not started a new command.
            interruptible &= self.buf.is_empty() && skipping.is_none();
            self.fill(interruptible, deadline).await?;
        }
    }

    /// Exactly `n` bytes (an IMAP literal, a BDAT chunk, an HTTP body), not interrupted by
    /// shutdown, within the time [`ConnectionLimits::data_time`] gives `n` octets.
    pub async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        let deadline = Instant::now() + self.limits.data_time(n);
        while self.buf.len() < n {
            self.fill(false, Some(deadline)).await?;
        }
        self.scanned = 0;
        let data = self.buf.drain(..n).collect();
        self.settle();
        Ok(data)
    }

    /// Feeds buffered and incoming bytes to `ingest` until it says it is done (SMTP DATA).
    /// `ingest` gets the bytes available and returns (consumed, done). The data must come at
    /// the minimum rate: its deadline moves on with every octet consumed.
    pub async fn read_until(
        &mut self,
        mut ingest: impl FnMut(&[u8]) -> (usize, bool),
    ) -> Result<(), ReadError> {
        let started = Instant::now();
        let mut consumed = 0usize;
        self.scanned = 0;
        loop {
            if !self.buf.is_empty() {
                let (used, done) = ingest(&self.buf);
                let used = used.min(self.buf.len());
                consumed = consumed.saturating_add(used);
                self.buf.drain(..used);
                if done {
                    self.settle();
                    return Ok(());
                }
            }
            let deadline = started + self.limits.data_time(consumed);
            self.fill(false, Some(deadline)).await?;
        }
    }

    /// Writes and flushes; a client that does not read within the idle timeout is dropped.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), ReadError> {
        let idle = self.idle;
        let stream = self.stream()?;
        let write = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        tokio::time::timeout(idle, write)
            .await
            .map_err(|_| ReadError::Timeout)??;
        Ok(())
    }

    /// Upgrades to TLS (STARTTLS / STLS). Bytes the client sent after the command, before the
    /// handshake, are a protocol violation (and the CVE-2011-0411 injection): refused.
    pub async fn start_tls(&mut self) -> Result<(), ReadError> {
        let Some(acceptor) = self.acceptor.clone().filter(|_| self.tls.is_none()) else {
            return Err(ReadError::Io(io::Error::other(
                "TLS is not available on this connection",
            )));
        };
        if !self.buf.is_empty() {
            return Err(ReadError::Io(io::Error::other(
                "client sent data after STARTTLS before the handshake",
            )));
        }
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            return Err(ReadError::Io(io::Error::other("connection is already TLS")));
        };
        let tls = handshake::accept(&acceptor, tcp, &self.audit).await?;
        self.tls = Some(TlsInfo::of(tls.get_ref().1));
        self.stream = Some(Stream::Tls(Box::new(tls)));
        Ok(())
    }

    /// Closes the connection cleanly (TLS close_notify included).
    pub async fn close(&mut self) {
        if let Some(stream) = self.stream.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.shutdown()).await;
        }
    }
}

/// The first octets of a line, as kept in [`ReadError::LineTooLong`].
fn head_of(line: &[u8]) -> Vec<u8> {
    line[..line.len().min(LINE_HEAD)].to_vec()
}
