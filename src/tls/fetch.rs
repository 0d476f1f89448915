//! A small HTTP GET for what the server keeps fresh from the network: the CRLs the
//! IGC-Santé CAs publish over plain HTTP (their integrity is their CA's signature, checked
//! when they are used), and the Pro Santé Connect signing keys over HTTPS (checked against
//! the configured CA file). HTTP/1.0, so the answer is never chunked; one request per
//! connection; bounded in size and time.

use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest body read.
pub const MAX_BODY: usize = 32 * 1024 * 1024;
/// Longest a fetch may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Fetches `url` (`http://` or, with `roots` to check the server, `https://`); the body of a
/// 200 answer, or why not.
pub async fn get(url: &str, roots: Option<Arc<RootCertStore>>) -> Result<Vec<u8>, String> {
    tokio::time::timeout(TIMEOUT, fetch(url, roots))
        .await
        .map_err(|_| format!("{url}: no answer within {} s", TIMEOUT.as_secs()))?
        .map_err(|e| format!("{url}: {e}"))
}

/// A TLS client that checks servers against `roots` and presents no certificate (the PSC
/// keys endpoint, the national directory).
pub fn verifying_client(
    roots: impl Into<Arc<RootCertStore>>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The host, port and path of an `http://` URL.
pub fn parse(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are fetched here (CRLs are signed by their CA)")?;
    authority_and_path(rest, 80)
}

/// The host, port and path of an `https://` URL.
pub fn parse_https(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or("only https:// URLs are fetched here")?;
    authority_and_path(rest, 443)
}

fn authority_and_path(rest: &str, default_port: u16) -> Result<(String, u16, String), String> {
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| format!("bad port {p:?}"))?),
        None => (authority, default_port),
    };
    if host.is_empty() || host.contains(['@', ' ']) {
        return Err(format!("bad host {host:?}"));
    }
    Ok((host.to_string(), port, path.to_string()))
}

async fn fetch(url: &str, roots: Option<Arc<RootCertStore>>) -> Result<Vec<u8>, String> {
    if url.starts_with("https://") {
        let roots = roots.ok_or("https:// needs a CA file to check the server")?;
        let (host, port, path) = parse_https(url)?;
        let stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| e.to_string())?;
        let config = verifying_client(roots).map_err(|e| e.to_string())?;
        let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        exchange(tls, &host, &path).await
    } else {
        let (host, port, path) = parse(url)?;
        let stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| e.to_string())?;
        exchange(stream, &host, &path).await
    }
}

/// Sends the request, reads the whole answer, returns the body of a 200.
async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    host: &str,
    path: &str,
) -> Result<Vec<u8>, String> {
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: mssante\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let read = (&mut stream)
        .take((MAX_BODY + 64 * 1024) as u64)
        .read_to_end(&mut answer)
        .await;
    // A TLS peer that closes without close_notify still gave the whole HTTP/1.0 answer.
    if let Err(e) = read
        && answer.is_empty()
    {
        return Err(e.to_string());
    }
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP header")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered {status:?}"));
    }
    let body = answer[split + 4..].to_vec();
    if body.len() > MAX_BODY {
        return Err(format!("more than {MAX_BODY} octets"));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_strictly() {
        assert_eq!(
            parse("http://crl.igc-sante.esante.gouv.fr/ac/personnes.crl"),
            Ok((
                "crl.igc-sante.esante.gouv.fr".into(),
                80,
                "/ac/personnes.crl".into()
            ))
        );
        assert_eq!(
            parse("http://127.0.0.1:8080"),
            Ok(("127.0.0.1".into(), 8080, "/".into()))
        );
        assert!(parse("https://x/y").is_err());
        assert_eq!(
            parse_https("https://auth.esw.esante.gouv.fr/certs"),
            Ok(("auth.esw.esante.gouv.fr".into(), 443, "/certs".into()))
        );
        assert!(parse("http://x:port/").is_err());
        assert!(parse("http:///y").is_err());
    }
}
