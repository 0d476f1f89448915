//! The SMTP client of the outbound queue: one connection to one next hop, STARTTLS with our
//! operator certificate, one envelope, then QUIT. Which hop and which certificate DN to
//! expect are the queue's decisions; this file only speaks the protocol.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::downgrade::{self, DowngradeError};
use crate::tls::NextHopTls;
use crate::wire::dot_stuffed;

/// Longest reply line we read (RFC 5321 4.5.3.1.5 says 512; be generous).
const MAX_REPLY_LINE: usize = 4096;
/// Most lines in one multi-line reply.
const MAX_REPLY_LINES: usize = 100;

/// A reply of the remote server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text of every line, joined by spaces.
    pub text: String,
}

impl Reply {
    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 5xx: retrying will not help.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The enhanced status code (RFC 3463) the text starts with, or one made from the code.
    pub fn status(&self) -> String {
        let first = self.text.split_whitespace().next().unwrap_or("");
        let parts: Vec<&str> = first.split('.').collect();
        let class = (self.code / 100).to_string();
        if parts.len() == 3
            && parts[0] == class
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        {
            first.to_string()
        } else {
            format!("{class}.0.0")
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// Why an attempt ended before every recipient got an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AttemptError {
    /// No TCP connection.
    #[error("cannot connect to {host}: {reason}")]
    Connect {
        /// The host tried.
        host: String,
        /// Why.
        reason: String,
    },
    /// The peer did not answer in time.
    #[error("timed out waiting for the reply to {0}")]
    Timeout(&'static str),
    /// The connection broke or the peer spoke no SMTP.
    #[error("{0}")]
    Protocol(String),
    /// The trust space requires TLS and the peer does not offer it.
    #[error("the next hop does not offer STARTTLS; the MSSanté trust space requires TLS")]
    NoStartTls,
    /// The TLS handshake failed (certificate not trusted, revoked, no common version...).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The peer's certificate is valid but names another operator.
    #[error("certificate DN {found} is not the operator of the domain ({expected})")]
    WrongPeer {
        /// The DN the whitelist or relay configuration expects.
        expected: String,
        /// The DN the peer presented.
        found: String,
    },
    /// The peer refused the session or the message as a whole.
    #[error("{stage} refused: {reply}")]
    Refused {
        /// Which command.
        stage: &'static str,
        /// The reply.
        reply: Reply,
    },
    /// The message needs SMTPUTF8 and the peer lacks it (RFC 6531 3.4).
    #[error("the message needs SMTPUTF8, which the next hop does not offer")]
    Utf8Unsupported,
    /// The message is 8-bit, the peer lacks 8BITMIME and the content cannot be converted.
    #[error("the next hop does not offer 8BITMIME and the message cannot be made 7-bit: {0}")]
    EightBitUnsupported(DowngradeError),
}

impl AttemptError {
    /// Whether retrying later is pointless.
    pub fn is_permanent(&self) -> bool {
        match self {
            AttemptError::Refused { reply, .. } => reply.is_permanent(),
            AttemptError::Utf8Unsupported | AttemptError::EightBitUnsupported(_) => true,
            _ => false,
        }
    }

    /// The enhanced status code to report.
    pub fn status(&self) -> String {
        match self {
            AttemptError::Refused { reply, .. } => reply.status(),
            AttemptError::Utf8Unsupported => "5.6.7".into(),
            AttemptError::EightBitUnsupported(_) => "5.6.3".into(),
            AttemptError::NoStartTls | AttemptError::Tls(_) | AttemptError::WrongPeer { .. } => {
                "4.7.5".into()
            }
            AttemptError::Connect { .. } => "4.4.1".into(),
            AttemptError::Timeout(_) => "4.4.2".into(),
            AttemptError::Protocol(_) => "4.4.0".into(),
        }
    }
}

/// What to send: the envelope as the next hop should see it.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// Reverse path ("" for a report).
    pub sender: &'a str,
    /// Recipients with their RFC 3461 parameters as MAIL/RCPT text.
    pub recipients: Vec<(&'a str, Option<String>, Option<&'a str>)>,
    /// RFC 3461 ENVID.
    pub envelope_id: Option<&'a str>,
    /// RFC 3461 RET=FULL.
    pub ret_full: bool,
    /// Needs SMTPUTF8.
    pub smtputf8: bool,
    /// The message, CRLF line ends.
    pub body: &'a [u8],
}

/// How to reach and judge one next hop.
pub struct Hop<'a> {
    /// Host name (for SNI and the logs).
    pub host: &'a str,
    /// The open TCP connection.
    pub stream: TcpStream,
    /// Our name for EHLO.
    pub helo: &'a str,
    /// Our TLS client, and its check of the next hop's certificate.
    pub tls: NextHopTls,
    /// The subject DN the peer's certificate must have, normalised.
    pub expected_dn: &'a str,
    /// Seconds to wait for each reply.
    pub reply_timeout: Duration,
}

/// One recipient's answer: the RCPT reply if refused, else the reply to the message.
pub type RecipientReply = (String, Reply);

/// What the next hop answered.
#[derive(Debug, Clone)]
pub struct Handover {
    /// One reply per recipient.
    pub replies: Vec<RecipientReply>,
    /// The next hop offered DSN, so success reports are its job from now on (RFC 3461 5.2).
    pub reports_itself: bool,
}

struct Wire<S> {
    io: BufReader<S>,
    timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    async fn reply(&mut self, stage: &'static str) -> Result<Reply, AttemptError> {
        let mut text = Vec::new();
        for _ in 0..MAX_REPLY_LINES {
            let mut line = Vec::new();
            let read = tokio::time::timeout(self.timeout, async {
                (&mut self.io)
                    .take(MAX_REPLY_LINE as u64)
                    .read_until(b'\n', &mut line)
                    .await
            })
            .await
            .map_err(|_| AttemptError::Timeout(stage))?
            .map_err(|e| AttemptError::Protocol(format!("connection lost during {stage}: {e}")))?;
            if read == 0 {
                return Err(AttemptError::Protocol(format!(
                    "connection closed during {stage}"
                )));
            }
            if !line.ends_with(b"\n") {
                return Err(AttemptError::Protocol(format!(
                    "reply line to {stage} too long"
                )));
            }
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| (200..600).contains(c))
                .ok_or_else(|| {
                    AttemptError::Protocol(format!("not an SMTP reply to {stage}: {line:?}"))
                })?;
            text.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply {
                    code,
                    text: text.join(" "),
                });
            }
        }
        Err(AttemptError::Protocol(format!(
            "reply to {stage} has too many lines"
        )))
    }

    async fn send(&mut self, bytes: &[u8], stage: &'static str) -> Result<(), AttemptError> {
        tokio::time::timeout(self.timeout, self.io.get_mut().write_all(bytes))
            .await
            .map_err(|_| AttemptError::Timeout(stage))?
            .map_err(|e| AttemptError::Protocol(format!("connection lost during {stage}: {e}")))
    }

    async fn command(&mut self, line: &str, stage: &'static str) -> Result<Reply, AttemptError> {
        self.send(format!("{line}\r\n").as_bytes(), stage).await?;
        self.reply(stage).await
    }

    /// EHLO; returns the extension keywords, upper case.
    async fn ehlo(&mut self, helo: &str) -> Result<Vec<String>, AttemptError> {
        let reply = self.command(&format!("EHLO {helo}"), "EHLO").await?;
        if !reply.is_positive() {
            return Err(AttemptError::Refused {
                stage: "EHLO",
                reply,
            });
        }
        Ok(reply
            .text
            .split(' ')
            .skip(1)
            .map(str::to_ascii_uppercase)
            .collect())
    }
}

/// Delivers one envelope through `hop`.
pub async fn deliver(hop: Hop<'_>, message: &Outgoing<'_>) -> Result<Handover, AttemptError> {
    let mut plain = Wire {
        io: BufReader::new(hop.stream),
        timeout: hop.reply_timeout,
    };
    let greeting = plain.reply("the greeting").await?;
    if !greeting.is_positive() {
        return Err(AttemptError::Refused {
            stage: "the session",
            reply: greeting,
        });
    }
    if !plain.ehlo(hop.helo).await?.iter().any(|k| k == "STARTTLS") {
        return Err(AttemptError::NoStartTls);
    }
    let reply = plain.command("STARTTLS", "STARTTLS").await?;
    if reply.code != 220 {
        return Err(AttemptError::NoStartTls);
    }
    // Anything the peer sent after its 220 would be injected into the TLS session.
    if !plain.io.buffer().is_empty() {
        return Err(AttemptError::Protocol(
            "data sent ahead of the TLS handshake".into(),
        ));
    }
    let name = rustls::pki_types::ServerName::try_from(hop.host.to_string())
        .map_err(|e| AttemptError::Tls(format!("{}: {e}", hop.host)))?;
    let tls = tokio::time::timeout(
        hop.reply_timeout,
        TlsConnector::from(hop.tls.config.clone()).connect(name, plain.io.into_inner()),
    )
    .await
    .map_err(|_| AttemptError::Timeout("the TLS handshake"))?
    .map_err(|e| AttemptError::Tls(e.to_string()))?;
    hop.tls
        .recheck(tls.get_ref().1)
        .map_err(|e| AttemptError::Tls(format!("resumed session: {e}")))?;
    check_peer(&tls, hop.expected_dn)?;
    let mut wire = Wire {
        io: BufReader::new(tls),
        timeout: hop.reply_timeout,
    };
    let extensions = wire.ehlo(hop.helo).await?;
    let result = transaction(&mut wire, &extensions, message).await;
    // QUIT is a courtesy: the outcome is already known.
    let _ = wire.command("QUIT", "QUIT").await;
    Ok(Handover {
        replies: result?,
        reports_itself: extensions.iter().any(|e| e == "DSN"),
    })
}

fn check_peer(tls: &TlsStream<TcpStream>, expected: &str) -> Result<(), AttemptError> {
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| AttemptError::Tls("the peer sent no certificate".into()))?;
    let found = crate::identity::subject_dn(leaf)
        .map_err(|e| AttemptError::Tls(format!("peer certificate: {e}")))?
        .to_string();
    if found != expected {
        return Err(AttemptError::WrongPeer {
            expected: expected.to_string(),
            found,
        });
    }
    Ok(())
}

async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    extensions: &[String],
    message: &Outgoing<'_>,
) -> Result<Vec<RecipientReply>, AttemptError> {
    let has = |k: &str| extensions.iter().any(|e| e == k);
    if message.smtputf8 && !has("SMTPUTF8") {
        return Err(AttemptError::Utf8Unsupported);
    }
    // RFC 6152 3: 8-bit content goes as is to a peer that takes it, else converted.
    let eight_bit = downgrade::needs_8bit(message.body);
    let body: Cow<[u8]> = if eight_bit && !has("8BITMIME") {
        Cow::Owned(downgrade::to_7bit(message.body).map_err(AttemptError::EightBitUnsupported)?)
    } else {
        Cow::Borrowed(message.body)
    };
    let dsn = has("DSN");
    let mut mail = format!("MAIL FROM:<{}>", message.sender);
    if has("SIZE") {
        mail += &format!(" SIZE={}", body.len());
    }
    if eight_bit && has("8BITMIME") {
        mail += " BODY=8BITMIME";
    }
    if message.smtputf8 {
        mail += " SMTPUTF8";
    }
    if dsn {
        mail += if message.ret_full {
            " RET=FULL"
        } else {
            " RET=HDRS"
        };
        if let Some(id) = message.envelope_id {
            mail += &format!(" ENVID={id}");
        }
    }
    let reply = wire.command(&mail, "MAIL FROM").await?;
    if !reply.is_positive() {
        return Err(AttemptError::Refused {
            stage: "MAIL FROM",
            reply,
        });
    }
    let mut answers = Vec::with_capacity(message.recipients.len());
    let mut accepted = Vec::new();
    for (address, notify, orcpt) in &message.recipients {
        let mut rcpt = format!("RCPT TO:<{address}>");
        if dsn {
            if let Some(n) = notify {
                rcpt += &format!(" NOTIFY={n}");
            }
            if let Some(o) = orcpt {
                rcpt += &format!(" ORCPT={o}");
            }
        }
        let reply = wire.command(&rcpt, "RCPT TO").await?;
        if reply.is_positive() {
            accepted.push(address.to_string());
        } else {
            answers.push((address.to_string(), reply));
        }
    }
    if accepted.is_empty() {
        let _ = wire.command("RSET", "RSET").await;
        return Ok(answers);
    }
    let reply = wire.command("DATA", "DATA").await?;
    if reply.code != 354 {
        return Err(AttemptError::Refused {
            stage: "DATA",
            reply,
        });
    }
    wire.send(&dot_stuffed(&body), "the message").await?;
    let reply = wire.reply("the end of the message").await?;
    answers.extend(accepted.into_iter().map(|a| (a, reply.clone())));
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_comes_from_the_text_or_the_code() {
        let r = |code, text: &str| Reply {
            code,
            text: text.into(),
        };
        assert_eq!(r(550, "5.1.1 no such user").status(), "5.1.1");
        assert_eq!(r(550, "no such user").status(), "5.0.0");
        assert_eq!(r(451, "5.1.1 mismatched class").status(), "4.0.0");
        assert_eq!(r(421, "4.4.2 idle").status(), "4.4.2");
        assert!(r(552, "").is_permanent() && !r(452, "").is_permanent());
    }

    #[tokio::test]
    async fn multi_line_replies_are_joined_and_garbage_refused() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut wire = Wire {
            io: BufReader::new(a),
            timeout: Duration::from_secs(5),
        };
        b.write_all(b"250-mx.b.test\r\n250-STARTTLS\r\n250 SIZE 100\r\nhello\r\n")
            .await
            .expect("write");
        let reply = wire.reply("EHLO").await.expect("a reply");
        assert_eq!(reply.code, 250);
        assert_eq!(reply.text, "mx.b.test STARTTLS SIZE 100");
        assert!(matches!(
            wire.reply("MAIL").await,
            Err(AttemptError::Protocol(_))
        ));
    }
}
