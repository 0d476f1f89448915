//! HTTPS: for now the Thunderbird autoconfiguration file, a health check, a professional's
//! originals (`original`) and device pairing (`pairing`), answered by a deliberately small
//! HTTP/1.1 responder (one request per connection). The portal
//! and admin API issue moves this onto axum; [`ClientSettings`] stays the one place that
//! says how clients should connect (also printed by dev mode's first start).

mod original;
mod pairing;
mod request;

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{Config, Protocol, TlsMode};
use crate::listener::{Connection, ReadError, Service};
use crate::server::ServerContext;

/// How a client reaches one protocol: host, port, and SSL (implicit TLS) or STARTTLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name to type in the client.
    pub host: String,
    /// Port.
    pub port: u16,
    /// True: implicit TLS ("SSL/TLS"); false: STARTTLS.
    pub implicit_tls: bool,
}

/// The settings a mail client needs, from the configured listeners (implicit TLS preferred).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// IMAP.
    pub imap: Option<Endpoint>,
    /// POP3.
    pub pop3: Option<Endpoint>,
    /// SMTP submission.
    pub submission: Option<Endpoint>,
}

impl ClientSettings {
    /// Reads them off the configuration.
    pub fn from_config(config: &Config) -> ClientSettings {
        let host = if config.hostname == "localhost" {
            "127.0.0.1".to_string()
        } else {
            config.hostname.clone()
        };
        let pick = |protocol: Protocol| {
            let mut candidates: Vec<_> = config
                .listeners
                .iter()
                .filter(|l| l.protocol == protocol && l.tls != TlsMode::None)
                .collect();
            candidates.sort_by_key(|l| l.tls != TlsMode::Implicit);
            candidates.first().map(|l| Endpoint {
                host: host.clone(),
                port: l.bind.get_ref().port(),
                implicit_tls: l.tls == TlsMode::Implicit,
            })
        };
        ClientSettings {
            imap: pick(Protocol::Imap),
            pop3: pick(Protocol::Pop3),
            submission: pick(Protocol::Submission),
        }
    }

    /// Thunderbird's autoconfig document (config-v1.1.xml) for these domains.
    pub fn autoconfig_xml(&self, domains: &[String]) -> String {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n",
        );
        let id = domains.first().map_or("mssante", String::as_str);
        let _ = writeln!(xml, "  <emailProvider id=\"{}\">", escape(id));
        for d in domains {
            let _ = writeln!(xml, "    <domain>{}</domain>", escape(d));
        }
        xml.push_str("    <displayName>MSSanté</displayName>\n");
        let server = |xml: &mut String, tag: &str, kind: &str, e: &Endpoint| {
            let socket = if e.implicit_tls { "SSL" } else { "STARTTLS" };
            let _ = write!(
                xml,
                "    <{tag} type=\"{kind}\">\n      <hostname>{}</hostname>\n      <port>{}</port>\n      \
                 <socketType>{socket}</socketType>\n      <authentication>password-cleartext</authentication>\n      \
                 <username>%EMAILADDRESS%</username>\n    </{tag}>\n",
                escape(&e.host),
                e.port
            );
        };
        if let Some(e) = &self.imap {
            server(&mut xml, "incomingServer", "imap", e);
        }
        if let Some(e) = &self.pop3 {
            server(&mut xml, "incomingServer", "pop3", e);
        }
        if let Some(e) = &self.submission {
            server(&mut xml, "outgoingServer", "smtp", e);
        }
        xml.push_str("  </emailProvider>\n</clientConfig>\n");
        xml
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The HTTPS protocol for the listener framework.
pub struct HttpsService {
    ctx: Arc<ServerContext>,
}

impl HttpsService {
    /// An HTTPS service on this context.
    pub fn new(ctx: Arc<ServerContext>) -> HttpsService {
        HttpsService { ctx }
    }
}

#[async_trait]
impl Service for HttpsService {
    fn name(&self) -> &'static str {
        "https"
    }

    fn busy_reply(&self) -> &'static [u8] {
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    }

    async fn serve(&self, conn: &mut Connection) -> Result<(), ReadError> {
        let head = match request::read(conn).await? {
            Ok(lines) => request::parse(&lines),
            Err(e) => Err(e),
        };
        let head = match head {
            Ok(head) => head,
            Err(e) => {
                tracing::info!(status = e.status(), "HTTP request refused");
                let refusal = Response::text(e.status(), "bad request\n");
                return conn.write(&refusal.to_bytes()).await;
            }
        };
        let (method, path) = (head.method.as_str(), head.path.as_str());
        let (authorization, content_length) = (head.authorization, head.content_length);
        let response = match (method, path) {
            ("GET", "/health") => Response::text("200 OK", "ok\n"),
            ("GET", "/mail/config-v1.1.xml" | "/.well-known/autoconfig/mail/config-v1.1.xml") => {
                match self.ctx.store.db().list_domains().await {
                    Ok(domains) => Response {
                        status: "200 OK",
                        headers: "Content-Type: application/xml; charset=utf-8\r\n".into(),
                        body: ClientSettings::from_config(&self.ctx.config)
                            .autoconfig_xml(&domains)
                            .into_bytes(),
                    },
                    Err(_) => Response::text("503 Service Unavailable", "store unavailable\n"),
                }
            }
            ("GET", _) => match original::uid_of(path) {
                Some(uid) => {
                    let source = format!("https {}", conn.peer);
                    original::serve(&self.ctx, authorization.as_deref(), uid, &source).await
                }
                None => Response::text("404 Not Found", "not found\n"),
            },
            ("POST", "/devices/pair") if content_length <= pairing::MAX_BODY => {
                let body = conn.read_exact(content_length).await?;
                let source = format!("https {}", conn.peer);
                pairing::serve(&self.ctx, &body, &source).await
            }
            ("POST", "/devices/pair") => Response::text("413 Content Too Large", "too large\n"),
            _ => Response::text("405 Method Not Allowed", "GET, or POST /devices/pair\n"),
        };
        conn.write(&response.to_bytes()).await
    }
}

/// One answer: status line, header fields (each ending CRLF), body.
pub struct Response {
    status: &'static str,
    headers: String,
    body: Vec<u8>,
}

impl Response {
    /// The whole answer, status line to body.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {}\r\n{}Content-Length: {}\r\nCache-Control: no-store\r\n\
             Connection: close\r\n\r\n",
            self.status,
            self.headers,
            self.body.len()
        )
        .into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// A plain-text answer.
    fn text(status: &'static str, body: &str) -> Response {
        Response {
            status,
            headers: "Content-Type: text/plain; charset=utf-8\r\n".into(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// Credentials missing or refused: the browser asks for them.
    fn unauthorized() -> Response {
        Response {
            headers: "Content-Type: text/plain; charset=utf-8\r\n\
                      WWW-Authenticate: Basic realm=\"mssante\", charset=\"UTF-8\"\r\n"
                .into(),
            ..Response::text("401 Unauthorized", "the mailbox's address and password\n")
        }
    }
}
