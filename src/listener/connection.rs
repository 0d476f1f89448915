//! One client connection, as every protocol session sees it: a buffered byte stream that is
//! cleartext or TLS, reads lines with a length limit and an idle timeout, and can be upgraded
//! by STARTTLS.
//!
//! Waiting for the next command also watches for server shutdown, so a session learns of it
//! between commands, never in the middle of a transaction.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::handshake::{self, HandshakeAudit, TlsServer};
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
    /// The server is shutting down (seen between commands only).
    #[error("server shutting down")]
    Shutdown,
    /// A line went over the limit; it was skipped up to its end.
    #[error("line too long")]
    LineTooLong,
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
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
}

/// Bytes read at once. It lives in every waiting session (the read future holds it), so it
/// is kept small: thousands of idle IMAP connections each hold one.
const READ_CHUNK: usize = 8 * 1024;

impl Connection {
    pub(super) fn new(
        stream: Stream,
        peer: SocketAddr,
        id: String,
        acceptor: Option<TlsServer>,
        audit: HandshakeAudit,
        idle: Duration,
        shutdown: Shutdown,
    ) -> Connection {
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
        }
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

    /// Reads more bytes into the buffer, with the idle timeout; when `interruptible`, returns
    /// `Shutdown` if the server stops first.
    async fn fill(&mut self, interruptible: bool) -> Result<(), ReadError> {
        let idle = self.idle;
        let mut shutdown = self.shutdown.clone();
        let mut chunk = [0u8; READ_CHUNK];
        let stream = self.stream()?;
        let n = tokio::select! {
            biased;
            _ = shutdown.wait(), if interruptible => return Err(ReadError::Shutdown),
            r = tokio::time::timeout(idle, stream.read(&mut chunk)) => r.map_err(|_| ReadError::Timeout)??,
        };
        if n == 0 {
            return Err(ReadError::Closed);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// The next line, CRLF (or LF) included, of at most `max` bytes. A longer line is read to
    /// its end and dropped, and `LineTooLong` returned, so the session can answer and go on.
    pub async fn read_line(&mut self, max: usize) -> Result<Vec<u8>, ReadError> {
        let mut skipping = false;
        let mut interruptible = true;
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                if skipping || line.len() > max {
                    return Err(ReadError::LineTooLong);
                }
                return Ok(line);
            }
            if self.buf.len() > max {
                skipping = true;
                self.buf.clear();
            }
            // Shutdown may interrupt only while the client has not started a new command.
            interruptible &= self.buf.is_empty() && !skipping;
            self.fill(interruptible).await?;
        }
    }

    /// Exactly `n` bytes (an IMAP literal, a BDAT chunk), not interrupted by shutdown.
    pub async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() < n {
            self.fill(false).await?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Feeds buffered and incoming bytes to `ingest` until it says it is done (SMTP DATA).
    /// `ingest` gets the bytes available and returns (consumed, done).
    pub async fn read_until(
        &mut self,
        mut ingest: impl FnMut(&[u8]) -> (usize, bool),
    ) -> Result<(), ReadError> {
        loop {
            if !self.buf.is_empty() {
                let (used, done) = ingest(&self.buf);
                self.buf.drain(..used.min(self.buf.len()));
                if done {
                    return Ok(());
                }
            }
            self.fill(false).await?;
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
