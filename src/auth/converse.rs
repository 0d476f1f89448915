//! Drives a SASL exchange over a connection: the one loop SMTP, IMAP and POP3 share. Each
//! protocol gives the prefix of its challenge lines (`334 ` for SMTP, `+ ` for IMAP and
//! POP3); the mechanisms themselves stay in the I/O-free [`super::sasl`].

use super::sasl::{self, Credentials, Exchange, Mechanism, SaslError, Step};
use crate::listener::{Connection, ReadError};

/// Runs `mechanism` from the client's `initial` response (base64, if sent with the command)
/// through challenges and response lines until the credentials, or the reason it failed.
/// The outer error is the connection's; the inner one is for the client.
pub async fn converse(
    conn: &mut Connection,
    mechanism: Mechanism,
    initial: Option<&str>,
    prompt: &str,
    max_line: usize,
) -> Result<Result<Credentials, SaslError>, ReadError> {
    let initial = match initial
        .map(|ir| sasl::decode_response(ir.as_bytes()))
        .transpose()
    {
        Ok(initial) => initial,
        Err(e) => return Ok(Err(e)),
    };
    // EXTERNAL stands on the certificate the TLS handshake verified.
    let leaf = conn
        .tls()
        .and_then(|t| t.peer_certificates.first())
        .map(|c| c.as_ref().to_vec());
    if mechanism == Mechanism::External && leaf.is_none() {
        return Ok(Err(SaslError::NoCertificate));
    }
    let mut step = Exchange::start(mechanism, initial);
    loop {
        let (mut exchange, next) = match step {
            Ok(pair) => pair,
            Err(e) => return Ok(Err(e)),
        };
        match next {
            Step::Done(Credentials::Certificate { authzid, .. }) => {
                let leaf = leaf.unwrap_or_default();
                return Ok(Ok(Credentials::Certificate { authzid, leaf }));
            }
            Step::Done(credentials) => return Ok(Ok(credentials)),
            Step::Challenge(challenge) => {
                let line = format!("{prompt}{}\r\n", sasl::encode_challenge(&challenge));
                conn.write(line.as_bytes()).await?;
                let response = conn.read_line(max_line).await?;
                step = sasl::decode_response(&response)
                    .and_then(|data| exchange.respond(&data))
                    .map(|next| (exchange, next));
            }
        }
    }
}

/// RFC 7628 3.2.2: a bearer token was refused. The error JSON goes as a last challenge (so
/// the client knows to get a new token), and the client's dummy response is read, before the
/// protocol's failure reply.
pub async fn bearer_refused(
    conn: &mut Connection,
    prompt: &str,
    max_line: usize,
) -> Result<(), ReadError> {
    let challenge = sasl::encode_challenge(&super::bearer::error_challenge());
    conn.write(format!("{prompt}{challenge}\r\n").as_bytes())
        .await?;
    conn.read_line(max_line).await.map(drop)
}
