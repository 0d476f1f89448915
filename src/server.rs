//! `mssante serve`: builds the shared context, binds every listener, runs until SIGTERM or
//! SIGINT, then lets open sessions finish within the grace period.

use std::sync::Arc;
use std::time::Duration;

use crate::app::{App, CliError};
use crate::audit::Audit;
use crate::auth::Authenticator;
use crate::config::{Config, Mode, Protocol};
use crate::delivery::Delivery;
use crate::listener::{ConnectionLimits, Listener, Service, ShutdownTrigger, TlsServer};
use crate::pop3::MaildropLocks;
use crate::store::Store;
use crate::tls::TlsMaterial;

/// What every session shares.
pub struct ServerContext {
    /// The configuration in force.
    pub config: Config,
    /// The store.
    pub store: Store,
    /// The audit trail.
    pub audit: Audit,
    /// Credential checks.
    pub auth: Authenticator,
    /// Where accepted mail goes.
    pub delivery: Delivery,
    /// The INBOXes open in a POP3 session (one session each).
    pub maildrop_locks: MaildropLocks,
    /// Cached parts of messages IMAP sessions read (headers, structure), in memory.
    pub imap_summaries: crate::imap::SummaryCache,
}

impl ServerContext {
    /// The context for this configuration and store; S/MIME signatures are verified
    /// against `smime_trust`.
    pub fn new(
        config: Config,
        store: Store,
        smime_trust: Option<Arc<crate::tls::SmimeTrust>>,
    ) -> Arc<ServerContext> {
        let audit = Audit::new(store.clone());
        Arc::new(ServerContext {
            auth: Authenticator::new(store.clone(), audit.clone())
                .with_policy(&config.auth, config.mode == crate::config::Mode::Production),
            delivery: Delivery::new(store.clone(), config.clone(), smime_trust),
            maildrop_locks: MaildropLocks::default(),
            imap_summaries: crate::imap::SummaryCache::new(config.limits.imap_cache_size),
            config,
            store,
            audit,
        })
    }
}

fn service_for(protocol: Protocol, ctx: &Arc<ServerContext>) -> Arc<dyn Service> {
    match protocol {
        Protocol::Mx => Arc::new(crate::smtp::SmtpService::new(
            ctx.clone(),
            crate::smtp::Role::Mx,
        )),
        Protocol::Submission => Arc::new(crate::smtp::SmtpService::new(
            ctx.clone(),
            crate::smtp::Role::Submission,
        )),
        Protocol::Imap => Arc::new(crate::imap::ImapService::new(ctx.clone())),
        Protocol::Pop3 => Arc::new(crate::pop3::Pop3Service::new(ctx.clone())),
        Protocol::Https => Arc::new(crate::web::HttpsService::new(ctx.clone())),
    }
}

/// Binds every configured listener (all or nothing), so a port in use stops the start.
pub async fn bind_all(
    ctx: &Arc<ServerContext>,
    tls: Option<TlsServer>,
) -> Result<Vec<Listener>, crate::listener::BindError> {
    let mut listeners = Vec::new();
    // One set of limits for every listener: an address's unauthenticated connections are
    // counted across all of them.
    let limits = ConnectionLimits::new(&ctx.config.limits);
    for config in &ctx.config.listeners {
        let service = service_for(config.protocol, ctx);
        let (tls, audit) = (tls.clone(), ctx.audit.clone());
        listeners.push(Listener::bind(config.clone(), tls, service, audit, limits.clone()).await?);
    }
    Ok(listeners)
}

/// SIGTERM and SIGINT, caught from the moment this exists: made before the listeners are
/// announced, so a signal sent as soon as the server says it is ready still drains cleanly.
pub struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers.
    pub fn install() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for either signal.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = self.int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    }
}

/// Runs the listeners until a signal, then drains. Returns true if every session ended in time.
pub async fn run(
    ctx: Arc<ServerContext>,
    listeners: Vec<Listener>,
    mut signals: StopSignals,
) -> bool {
    let trigger = ShutdownTrigger::new();
    for listener in listeners {
        tokio::spawn(listener.run(trigger.subscribe(), trigger.alive()));
    }
    signals.recv().await;
    let grace = Duration::from_secs(ctx.config.shutdown_grace_secs);
    let clean = trigger.drain(grace).await;
    if clean {
        tracing::info!("all sessions finished; stopped");
    } else {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "sessions still open after the grace period; stopping anyway"
        );
    }
    clean
}

/// Held while `serve` runs: a second server on the same data directory is refused.
pub struct ServeLock {
    _file: std::fs::File,
}

impl ServeLock {
    /// Takes the data directory's lock, creating the directory if needed.
    pub fn acquire(data_dir: &std::path::Path) -> Result<ServeLock, CliError> {
        crate::store::create_private_dir(data_dir)?;
        let path = data_dir.join("serve.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(ServeLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(CliError::new(format!(
                "another mssante serve is already running on {} (lock {})",
                data_dir.display(),
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(CliError::new(format!("{}: {e}", path.display())))
            }
        }
    }
}

/// Makes the C allocator give large blocks back to the system when they are freed.
///
/// Each password check (Argon2) works in a 19 MiB block on a blocking thread. glibc raises
/// its mmap threshold after the first such block is freed, so the next ones come from its
/// per-thread arenas and stay resident: measured, 2,000 IDLE connections of the IMAP
/// benchmark (each a login) grew the server by 212 KiB each, against 27 KiB with this.
/// Setting the threshold fixes it (glibc then stops adjusting it): blocks over 256 KiB are
/// mapped and unmapped each time, so password-derived memory also leaves the process.
fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before the listeners
    // start and is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// `mssante serve`: TLS, listeners, the dev demo, then run until a signal.
pub async fn serve(app: App, _lock: ServeLock) -> Result<(), CliError> {
    return_large_blocks_to_the_system();
    let signals =
        StopSignals::install().map_err(|e| CliError::new(format!("signal handling: {e}")))?;
    let material = match TlsMaterial::from_config(&app.config.tls).map_err(|e| CliError {
        message: e.to_string(),
        status: 2,
    })? {
        Some(m) => m,
        None if app.config.mode == Mode::Dev => {
            crate::dev::tls_material(&app, &app.test_pki().await?).await?
        }
        None => {
            return Err(CliError {
                message: "no TLS material: set tls.certificate and tls.private_key".into(),
                status: 2,
            });
        }
    };
    if app.config.mode == Mode::Production {
        material.refuse_test_material().map_err(|e| CliError {
            message: e.to_string(),
            status: 2,
        })?;
    }
    let client_tls = material.client_config().map_err(|e| CliError {
        message: e.to_string(),
        status: 2,
    })?;
    // A key that does not match its certificate is a configuration error too.
    let (server_config, client_verifier) = material.server_config().map_err(|e| CliError {
        message: e.to_string(),
        status: 2,
    })?;
    let tls_server = TlsServer::new(
        server_config,
        client_verifier
            .clone()
            .map(|v| v as Arc<dyn rustls::server::danger::ClientCertVerifier>),
    );
    let smime_trust = material.smime_trust().map(Arc::new);
    // Outbound TLS and S/MIME check certificates against the CRLs the refresh reads.
    if let Some(verifier) = &client_verifier {
        verifier.add_follower(client_tls.verifier.clone());
        if let Some(trust) = &smime_trust {
            verifier.add_follower(trust.clone());
        }
    }
    // CRLs published over HTTP are fetched before the first connection.
    if let Some(verifier) = &client_verifier
        && !material.crl_urls.is_empty()
    {
        let audit = Audit::new(app.store.clone());
        verifier
            .refresh(&material.crl_files, &material.crl_urls, &audit)
            .await;
    }
    let ctx = ServerContext::new(app.config.clone(), app.store.clone(), smime_trust);
    let listeners = bind_all(&ctx, Some(tls_server))
        .await
        .map_err(|e| CliError::new(e.to_string()))?;
    for l in &listeners {
        if let Ok(addr) = l.local_addr() {
            tracing::info!(%addr, "listening");
        }
    }
    if app.config.mode == Mode::Dev {
        let demo = crate::dev::bootstrap_demo(&app).await?;
        // A closed stdout (a detached terminal) must not stop the server.
        let banner = crate::dev::banner(&app, demo.as_deref());
        let _ = std::io::Write::write_all(&mut std::io::stdout(), format!("{banner}\n").as_bytes());
    }
    tokio::spawn(crate::smtp::QueueRunner::new(ctx.clone(), client_tls).run());
    // Mailbox changes made while the directory was down (or by the CLI) are published here.
    if let Some(publisher) = app.directory.clone() {
        tokio::spawn(publisher.run());
    }
    let every = Duration::from_secs(app.config.tls.crl_refresh_secs.max(1));
    if app.config.mode == Mode::Dev && app.config.tls.certificate.is_none() {
        tokio::spawn(crate::dev::republish_crls(
            app.store.clone(),
            app.pki_dir(),
            every,
        ));
    }
    if let Some(verifier) = client_verifier
        && !(material.crl_files.is_empty() && material.crl_urls.is_empty())
    {
        tokio::spawn(verifier.keep_fresh(
            material.crl_files.clone(),
            material.crl_urls.clone(),
            every,
            ctx.audit.clone(),
        ));
    }
    let _ = ctx
        .audit
        .record(
            "server.start",
            "-",
            "serve",
            crate::audit::Outcome::Ok,
            &format!("mode={:?}", app.config.mode),
        )
        .await;
    let clean = run(ctx, listeners, signals).await;
    if clean {
        Ok(())
    } else {
        Err(CliError::new(
            "stopped with sessions still open after the grace period",
        ))
    }
}
