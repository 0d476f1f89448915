//! The IMAP client of bench/imap.sh, the same for mssante and Dovecot: loads a mailbox
//! (APPEND with LITERAL+), replays the commands of Thunderbird's first sync on it from
//! several connections at once (throughput) and single-message fetches (latency), and
//! holds thousands of IDLE connections open (memory per connection, measured by the script).
//!
//!   imap_sync load PORT USER PASSWORD FILE         FILE: "MSG <len>\n<bytes>" records
//!   imap_sync sync PORT USER PASSWORD CONNECTIONS  prints one line per command
//!   imap_sync idle PORT USER PASSWORD COUNT        prints "idling N", holds until stdin closes

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Benchmarks talk to a server on loopback with a throwaway certificate: not verified.
#[derive(Debug)]
struct AnyCertificate(rustls::crypto::CryptoProvider);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One logged-in IMAP connection.
struct Client {
    stream: BufReader<TlsStream<TcpStream>>,
    tag: u32,
}

impl Client {
    async fn connect(port: u16, user: &str, password: &str) -> Result<Client> {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider.clone()))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        let mut client = Client {
            stream: BufReader::new(tls),
            tag: 0,
        };
        let mut greeting = String::new();
        client.stream.read_line(&mut greeting).await?;
        let login = format!("LOGIN \"{user}\" \"{password}\"");
        client.run(&login).await?;
        Ok(client)
    }

    /// Sends a command, reads to its tagged reply (literals included); returns the octets
    /// received. A reply other than OK is an error.
    async fn run(&mut self, command: &str) -> Result<usize> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        let line = format!("{tag} {command}\r\n");
        self.stream.get_mut().write_all(line.as_bytes()).await?;
        self.stream.get_mut().flush().await?;
        self.read_to(&tag).await
    }

    async fn read_to(&mut self, tag: &str) -> Result<usize> {
        let mut total = 0;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = self.stream.read_until(b'\n', &mut line).await?;
            if n == 0 {
                return Err("connection closed".into());
            }
            total += n;
            if let Some(len) = literal(&line) {
                let mut data = vec![0u8; len];
                self.stream.read_exact(&mut data).await?;
                total += len;
                continue;
            }
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                let text = String::from_utf8_lossy(&line);
                if !text[tag.len() + 1..].starts_with("OK") {
                    return Err(format!("server answered: {}", text.trim_end()).into());
                }
                return Ok(total);
            }
        }
    }
}

fn literal(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&line[open + 1..]).ok()?.parse().ok()
}

/// Loads the records of FILE over 8 connections at once (each APPEND answered before the
/// next on its connection, as a client would).
async fn load(port: u16, user: &str, password: &str, file: &str) -> Result<()> {
    let data = std::fs::read(file)?;
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let nl = rest.iter().position(|&b| b == b'\n').ok_or("bad record")?;
        let len: usize = std::str::from_utf8(&rest[4..nl])?.parse()?;
        messages.push(rest[nl + 1..nl + 1 + len].to_vec());
        rest = &rest[nl + 1 + len..];
    }
    let count = messages.len();
    let shares: Vec<Vec<Vec<u8>>> = (0..8)
        .map(|k| messages.iter().skip(k).step_by(8).cloned().collect())
        .collect();
    let mut tasks = Vec::new();
    for share in shares {
        let (user, password) = (user.to_string(), password.to_string());
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(port, &user, &password).await?;
            for message in share {
                client.tag += 1;
                let tag = format!("b{}", client.tag);
                let head = format!("{tag} APPEND INBOX {{{}+}}\r\n", message.len());
                let stream = client.stream.get_mut();
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(&message).await?;
                stream.write_all(b"\r\n").await?;
                client.read_to(&tag).await?;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!("loaded {count}");
    Ok(())
}

/// The commands of Thunderbird's first sync of a folder (its header list, flags, the
/// structure it reads when showing a message) and a search.
const SYNC: [(&str, &str); 5] = [
    ("flags", "UID FETCH 1:* (FLAGS)"),
    (
        "headers",
        "UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])",
    ),
    ("bodystructure", "UID FETCH 1:* (BODYSTRUCTURE)"),
    ("search-unseen", "UID SEARCH UNSEEN"),
    ("search-subject", "UID SEARCH SUBJECT \"bilan 77\""),
];

/// Times each connection sends each command: one sample of a few tens of milliseconds
/// made the ratios swing by a third from run to run.
const ROUNDS: usize = 5;

async fn sync(port: u16, user: &str, password: &str, connections: usize) -> Result<()> {
    let mut clients = Vec::new();
    for _ in 0..connections {
        let mut c = Client::connect(port, user, password).await?;
        c.run("SELECT INBOX").await?;
        clients.push(c);
    }
    for (name, command) in SYNC {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for mut c in clients.drain(..) {
            tasks.push(tokio::spawn(async move {
                let mut bytes = 0;
                let mut slowest = Duration::ZERO;
                for _ in 0..ROUNDS {
                    let t = Instant::now();
                    bytes += c.run(command).await?;
                    slowest = slowest.max(t.elapsed());
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>((c, bytes, slowest))
            }));
        }
        let mut slowest = Duration::ZERO;
        let mut bytes = 0;
        for t in tasks {
            let (c, b, elapsed) = t.await??;
            clients.push(c);
            slowest = slowest.max(elapsed);
            bytes += b;
        }
        let wall = start.elapsed().as_secs_f64();
        println!(
            "{name} commands/s={:.3} wall_s={wall:.3} slowest_ms={:.1} bytes={bytes}",
            (connections * ROUNDS) as f64 / wall,
            slowest.as_secs_f64() * 1000.0
        );
    }
    // Latency: one message at a time, as a reader opening messages.
    let c = &mut clients[0];
    let mut times = Vec::new();
    for i in 0..300u32 {
        let uid = 1 + (i * 7919) % 10_000;
        let t = Instant::now();
        c.run(&format!("UID FETCH {uid} (BODY.PEEK[] FLAGS)"))
            .await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "open-message p50_ms={:.3} p99_ms={:.3}",
        times[times.len() / 2],
        times[times.len() * 99 / 100]
    );
    Ok(())
}

/// Opens `count` IDLE connections in two halves; after each, prints `idling N` and waits
/// for a line (then EOF) on stdin, so the caller can read the server's memory in between:
/// the second half's growth is the cost of a connection once the first logins' passing
/// allocations are there to reuse.
async fn idle(port: u16, user: &str, password: &str, count: usize) -> Result<()> {
    let mut held = Vec::with_capacity(count);
    let mut stdin = BufReader::new(tokio::io::stdin());
    for half in [count / 2, count - count / 2] {
        let mut pending = Vec::new();
        for i in 0..half {
            let (user, password) = (user.to_string(), password.to_string());
            pending.push(tokio::spawn(async move {
                let mut c = Client::connect(port, &user, &password).await?;
                c.run("SELECT INBOX").await?;
                c.stream.get_mut().write_all(b"i IDLE\r\n").await?;
                let mut line = String::new();
                c.stream.read_line(&mut line).await?;
                if !line.starts_with('+') {
                    return Err(format!("IDLE refused: {line}").into());
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(c)
            }));
            // A few hundred handshakes at a time: the server's accept queue is not the subject.
            if pending.len() == 200 || i + 1 == half {
                for p in pending.drain(..) {
                    held.push(p.await??);
                }
            }
        }
        println!("idling {}", held.len());
        let mut line = String::new();
        if stdin.read_line(&mut line).await? == 0 {
            break;
        }
    }
    let mut rest = Vec::new();
    stdin.read_to_end(&mut rest).await?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes --bench: nothing to do without a mode.
    let Some(mode) = args.first().filter(|a| !a.starts_with("--")) else {
        return Ok(());
    };
    let [_, port, user, password, arg] = &args[..] else {
        return Err("usage: imap_sync load|sync|idle PORT USER PASSWORD ARG".into());
    };
    let port: u16 = port.parse()?;
    match mode.as_str() {
        "load" => load(port, user, password, arg).await,
        "sync" => sync(port, user, password, arg.parse()?).await,
        "idle" => idle(port, user, password, arg.parse()?).await,
        _ => Err(format!("unknown mode {mode}").into()),
    }
}
