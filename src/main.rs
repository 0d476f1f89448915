//! The `mssante` command: `serve` runs the server; the other commands administer its data
//! directory (and work while it runs). Without `--config`, everything runs in dev mode.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use mssante::admin;
use mssante::app::{App, CliError};
use mssante::pki::{PersonRequest, PersonUse};
use mssante::server::{self, ServeLock};
use mssante::store::{AccountKind, KeyUse};

/// Mail server for MSSanté operators: SMTP, IMAP and POP3 over TLS in the national trust space.
#[derive(Parser)]
#[command(name = "mssante", version, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML). Without one, mssante runs in dev mode.
    #[arg(long, global = true, env = "MSSANTE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (default: the file's data_dir, else ./mssante-data).
    #[arg(long, global = true, env = "MSSANTE_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server until SIGTERM or SIGINT.
    Serve,
    /// Domains served here.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Mailboxes (BAL) and their credentials.
    #[command(subcommand)]
    User(UserCommand),
    /// Who may act for which mailbox.
    #[command(subcommand)]
    Delegation(DelegationCommand),
    /// Per-device app passwords of a mailbox (Thunderbird, a phone).
    #[command(subcommand)]
    Device(DeviceCommand),
    /// The TEST PKI of dev mode: issue and revoke certificates for tests and a second operator.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// The MSSanté trust space (the ANS whitelist).
    #[command(subcommand)]
    Trust(TrustCommand),
    /// The outbound queue: mail waiting for other operators and relayed hospitals.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// The S/MIME keys each mailbox holds in escrow.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Correspondents' encryption certificates, for outbound S/MIME.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Stored messages, for the administrator.
    #[command(subcommand)]
    Message(MessageCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The national directory the mailboxes are published to (`[directory]`).
    #[command(subcommand)]
    Directory(admin::directory::DirectoryCommand),
}

#[derive(Subcommand)]
enum MessageCommand {
    /// Write the original, as received, of a message decrypted for its reader (legal proof).
    Original {
        address: String,
        /// The message's UID in the INBOX.
        uid: u32,
        /// Why (recorded in the audit trail).
        #[arg(long)]
        reason: String,
        /// The file to write (readable by its owner only).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum CertCommand {
    /// Encrypt mail to ADDRESS (at another operator) to this certificate (PEM).
    Add {
        address: String,
        certificate: PathBuf,
    },
    /// List correspondents' certificates.
    List,
    /// Forget ADDRESS's certificate.
    Remove { address: String },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Escrow a key and its certificate from a PKCS#12 (as IGC-Santé delivers them).
    Import {
        address: String,
        #[arg(long)]
        pkcs12: PathBuf,
        /// encryption or signature; left out, read from the certificate's key usage.
        #[arg(long = "use")]
        usage: Option<KeyUse>,
        /// Read the PKCS#12 password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Make a new key (escrowed at once) and print its certificate request.
    Csr {
        address: String,
        /// encryption or signature.
        #[arg(long = "use")]
        usage: KeyUse,
        /// Write the CSR (PEM) here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Install the certificate (PEM, chain after it) of a key made by `key csr`.
    Install {
        address: String,
        certificate: PathBuf,
    },
    /// List a mailbox's keys: current, past (kept to read old mail), pending.
    List { address: String },
    /// Print the current certificate (PEM) of a use, for correspondents and the directory.
    Cert {
        address: String,
        /// encryption or signature.
        #[arg(long = "use", default_value = "encryption")]
        usage: KeyUse,
    },
    /// Export a key as PKCS#12 for lawful recovery; the password comes from standard input.
    Export {
        address: String,
        /// Why (a requisition, a court order...): recorded in the audit trail.
        #[arg(long)]
        reason: String,
        /// The PKCS#12 file to write (readable by its owner only).
        #[arg(long)]
        out: PathBuf,
        /// Which key (see `key list`); left out, the current encryption key.
        #[arg(long)]
        key: Option<i64>,
    },
}

#[derive(Subcommand)]
enum QueueCommand {
    /// List queued messages with the recipients still pending and their last reply.
    List,
    /// Show one message's envelope and every recipient's state (never its content).
    Show { id: i64 },
    /// Try one message (or all) again now.
    Retry {
        /// The message id (see `queue list`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Every queued message.
        #[arg(long)]
        all: bool,
    },
    /// Remove a message without delivering it (audited).
    Delete { id: i64 },
}

#[derive(Subcommand)]
enum TrustCommand {
    /// Replace the trust space with a whitelist file (listeblanchemssante.xml); a bad file
    /// changes nothing.
    Import { file: PathBuf },
    /// Replace the trust space with the one the national directory publishes
    /// (`mssTrustedDomain` entries); an empty or unreachable directory changes nothing.
    ImportDirectory,
    /// List the domains of the trust space and their operator DN.
    List,
}

#[derive(Subcommand)]
enum DomainCommand {
    /// Serve a domain (Unicode names are stored in their A-label form).
    Add { name: String },
    /// List served domains.
    List,
    /// Stop serving a domain that has no mailbox left.
    Remove { name: String },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a mailbox. Without --password-stdin or --no-password, a password is generated
    /// and printed once.
    Add {
        /// Full address; its domain must be served here.
        address: String,
        /// Read the password from the first line of standard input.
        #[arg(long, conflicts_with = "no_password")]
        password_stdin: bool,
        /// No password: the owner logs in with a card or Pro Santé Connect only.
        #[arg(long)]
        no_password: bool,
        /// National identifier of the owner (8 + RPPS, 0 + ADELI, 3 + FINESS/id, ...).
        #[arg(long)]
        idnat: Option<String>,
        /// Mailbox type.
        #[arg(long = "type", default_value = "PER", value_parser = ["PER", "ORG", "APP", "CAB", "per", "org", "app", "cab"])]
        kind: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Password logins need a one-time code (`user otp enroll` gives the secret).
        #[arg(long)]
        require_otp: bool,
    },
    /// What the national directory shows of a mailbox (service, phone, red list...).
    Profile(admin::directory::ProfileArgs),
    /// List mailboxes.
    List,
    /// Set a new password (from stdin, or generated and printed once).
    Passwd {
        address: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Suspend a mailbox: no login, no delivery. --lift reinstates it.
    Suspend {
        address: String,
        #[arg(long)]
        lift: bool,
    },
    /// Remove a mailbox and all its mail.
    Remove { address: String },
    /// Set how much a mailbox may hold: 500M, 10G, octets, 0 for no limit, or `default`
    /// ([limits] mailbox_quota).
    Quota { address: String, size: String },
    /// The one-time-code second factor (TOTP): the code is typed after the password.
    #[command(subcommand)]
    Otp(OtpCommand),
    /// Software certificates an APP mailbox logs in with (SASL EXTERNAL).
    #[command(subcommand)]
    Cert(UserCertCommand),
}

#[derive(Subcommand)]
enum UserCertCommand {
    /// Bind a certificate (PEM) to the mailbox, by fingerprint.
    Bind { address: String, file: PathBuf },
    /// Unbind every certificate of the mailbox.
    Unbind { address: String },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Make an app password for a device; printed once.
    Add { address: String, name: String },
    /// A pairing code for a phone (valid two minutes, once), exchanged at POST /devices/pair.
    Pair { address: String, name: String },
    /// The devices of a mailbox, with their last use.
    List { address: String },
    /// Make a device fail at once, open sessions included (--lift: let it in again).
    Block {
        address: String,
        name: String,
        #[arg(long)]
        lift: bool,
    },
    /// Forget a device.
    Remove { address: String, name: String },
}

#[derive(Subcommand)]
enum OtpCommand {
    /// New secret: prints the otpauth:// URI and a QR code for an authenticator app.
    Enroll {
        address: String,
        /// Also write the QR code as an SVG image (for a letter or the portal).
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// Require a code for this mailbox's password logins (--lift: no longer).
    Require {
        address: String,
        #[arg(long)]
        lift: bool,
    },
    /// Forget the mailbox's secret.
    Remove { address: String },
}

#[derive(Subcommand)]
enum DelegationCommand {
    /// Let DELEGATE act for MAILBOX (a replacement doctor, a secretary, an ORG's team).
    Add {
        mailbox: String,
        delegate: String,
        /// DELEGATE may also send as MAILBOX (envelope sender and From:).
        #[arg(long)]
        send_as: bool,
        /// What DELEGATE may do in MAILBOX, as RFC 4314 letters: `lrs` reads (the default),
        /// `lrswite` reads, flags and deletes (POP3 DELE needs `t` and `e`).
        #[arg(long, default_value = "lrs")]
        rights: String,
    },
    /// Withdraw a delegation.
    Remove { mailbox: String, delegate: String },
    /// List delegations.
    List,
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Show the TEST hierarchy and every certificate it issued.
    Show,
    /// Issue a person certificate ({CN=idNat + SN + GN}, TEST product category).
    IssuePerson {
        #[arg(long)]
        idnat: String,
        #[arg(long)]
        surname: String,
        #[arg(long)]
        given_name: String,
        /// Profession label, in the `title` attribute.
        #[arg(long, default_value = "Médecin")]
        profession: String,
        /// What the certificate is for.
        #[arg(long = "use", value_enum, default_value = "auth")]
        usage: PersonUse,
        /// E-mail address (required for signature and encryption certificates).
        #[arg(long)]
        email: Option<String>,
        /// Folder to write <name>.pem, <name>.key (and <name>.p12) into.
        #[arg(long)]
        out: PathBuf,
        /// Also write a PKCS#12 file protected by this password.
        #[arg(long)]
        p12_password: Option<String>,
        /// Issue it already expired (valid from two days ago to yesterday), to test refusals.
        #[arg(long)]
        expired: bool,
    },
    /// Issue an operator server certificate for another host (a second dev operator).
    IssueServer {
        host: String,
        #[arg(long, default_value = "MSSANTE DEV OPERATOR 2")]
        organisation: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        p12_password: Option<String>,
    },
    /// Revoke a certificate by serial number (hex) and rewrite the CRLs.
    Revoke { serial: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain of the whole trail.
    Verify,
    /// Print the last records.
    Tail {
        #[arg(short = 'n', default_value_t = 20)]
        count: u32,
    },
    /// Print the records by or about a mailbox, since a date.
    Show {
        /// Records by this address, or about it (administrators' actions on the mailbox).
        #[arg(long)]
        user: Option<String>,
        /// YYYY-MM-DD (midnight UTC) or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MSSANTE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let (config, data_dir) = App::configure(cli.config.as_deref(), cli.data.as_deref())?;
    if let Command::Serve = cli.command {
        let lock = ServeLock::acquire(&data_dir)?;
        let app = App::open(config, data_dir).await?;
        return server::serve(app, lock).await;
    }
    let app = App::open(config, data_dir).await?;
    match cli.command {
        Command::Serve => unreachable!("handled above"),
        Command::Domain(DomainCommand::Add { name }) => admin::domain_add(&app, &name).await,
        Command::Domain(DomainCommand::List) => admin::domain_list(&app).await,
        Command::Domain(DomainCommand::Remove { name }) => admin::domain_remove(&app, &name).await,
        Command::User(UserCommand::Add {
            address,
            password_stdin,
            no_password,
            idnat,
            kind,
            name,
            require_otp,
        }) => {
            let kind: AccountKind = kind.parse().map_err(CliError::new)?;
            let req = admin::UserAdd {
                address,
                password_stdin,
                no_password,
                idnat,
                kind,
                name,
                require_otp,
            };
            admin::user_add(&app, req).await
        }
        Command::User(UserCommand::List) => admin::user_list(&app).await,
        Command::User(UserCommand::Profile(args)) => admin::directory::profile(&app, args).await,
        Command::Directory(command) => admin::directory::run(&app, command).await,
        Command::User(UserCommand::Passwd {
            address,
            password_stdin,
        }) => admin::user_passwd(&app, &address, password_stdin).await,
        Command::User(UserCommand::Suspend { address, lift }) => {
            admin::user_suspend(&app, &address, lift).await
        }
        Command::User(UserCommand::Remove { address }) => admin::user_remove(&app, &address).await,
        Command::User(UserCommand::Quota { address, size }) => {
            admin::delegation::quota(&app, &address, &size).await
        }
        Command::Delegation(DelegationCommand::Add {
            mailbox,
            delegate,
            send_as,
            rights,
        }) => admin::delegation::add(&app, &mailbox, &delegate, send_as, &rights).await,
        Command::Delegation(DelegationCommand::Remove { mailbox, delegate }) => {
            admin::delegation::remove(&app, &mailbox, &delegate).await
        }
        Command::Delegation(DelegationCommand::List) => admin::delegation::list(&app).await,
        Command::Device(DeviceCommand::Add { address, name }) => {
            admin::devices::add(&app, &address, &name).await
        }
        Command::Device(DeviceCommand::Pair { address, name }) => {
            admin::devices::pair(&app, &address, &name).await
        }
        Command::Device(DeviceCommand::List { address }) => {
            admin::devices::list(&app, &address).await
        }
        Command::Device(DeviceCommand::Block {
            address,
            name,
            lift,
        }) => admin::devices::block(&app, &address, &name, lift).await,
        Command::Device(DeviceCommand::Remove { address, name }) => {
            admin::devices::remove(&app, &address, &name).await
        }
        Command::Key(KeyCommand::Import {
            address,
            pkcs12,
            usage,
            password_stdin,
        }) => admin::keys::import(&app, &address, &pkcs12, usage, password_stdin).await,
        Command::Key(KeyCommand::Csr {
            address,
            usage,
            out,
        }) => admin::keys::csr(&app, &address, usage, out.as_deref()).await,
        Command::Key(KeyCommand::Install {
            address,
            certificate,
        }) => admin::keys::install(&app, &address, &certificate).await,
        Command::Key(KeyCommand::List { address }) => admin::keys::list(&app, &address).await,
        Command::Cert(CertCommand::Add {
            address,
            certificate,
        }) => admin::keys::correspondent_add(&app, &address, &certificate).await,
        Command::Cert(CertCommand::List) => admin::keys::correspondent_list(&app).await,
        Command::Message(MessageCommand::Original {
            address,
            uid,
            reason,
            out,
        }) => admin::message::original(&app, &address, uid, &reason, &out).await,
        Command::Cert(CertCommand::Remove { address }) => {
            admin::keys::correspondent_remove(&app, &address).await
        }
        Command::Key(KeyCommand::Cert { address, usage }) => {
            admin::keys::certificate(&app, &address, usage).await
        }
        Command::Key(KeyCommand::Export {
            address,
            reason,
            out,
            key,
        }) => admin::keys::export(&app, &address, &reason, &out, key).await,
        Command::Pki(PkiCommand::Show) => admin::pki_show(&app).await,
        Command::Pki(PkiCommand::IssuePerson {
            idnat,
            surname,
            given_name,
            profession,
            usage,
            email,
            out,
            p12_password,
            expired,
        }) => {
            let req = PersonRequest {
                idnat,
                surname,
                given_name,
                profession,
                email,
                usage,
                expired,
            };
            admin::pki_issue_person(&app, req, &out, p12_password.as_deref()).await
        }
        Command::Pki(PkiCommand::IssueServer {
            host,
            organisation,
            out,
            p12_password,
        }) => {
            admin::pki_issue_server(
                &app,
                &host,
                &organisation,
                Path::new(&out),
                p12_password.as_deref(),
            )
            .await
        }
        Command::Pki(PkiCommand::Revoke { serial }) => admin::pki_revoke(&app, &serial).await,
        Command::Trust(TrustCommand::Import { file }) => {
            admin::trust_import(&app, Some(&file)).await
        }
        Command::Trust(TrustCommand::ImportDirectory) => admin::trust_import(&app, None).await,
        Command::Trust(TrustCommand::List) => admin::trust_list(&app).await,
        Command::Queue(QueueCommand::List) => admin::queue::list(&app).await,
        Command::Queue(QueueCommand::Show { id }) => admin::queue::show(&app, id).await,
        Command::Queue(QueueCommand::Retry { id, .. }) => admin::queue::retry(&app, id).await,
        Command::Queue(QueueCommand::Delete { id }) => admin::queue::delete(&app, id).await,
        Command::User(UserCommand::Otp(OtpCommand::Enroll { address, svg })) => {
            admin::otp::enroll(&app, &address, svg.as_deref()).await
        }
        Command::User(UserCommand::Otp(OtpCommand::Require { address, lift })) => {
            admin::otp::require(&app, &address, lift).await
        }
        Command::User(UserCommand::Cert(UserCertCommand::Bind { address, file })) => {
            admin::devices::bind_certificate(&app, &address, &file).await
        }
        Command::User(UserCommand::Cert(UserCertCommand::Unbind { address })) => {
            admin::devices::unbind_certificates(&app, &address).await
        }
        Command::User(UserCommand::Otp(OtpCommand::Remove { address })) => {
            admin::otp::remove(&app, &address).await
        }
        Command::Audit(AuditCommand::Verify) => admin::audit_verify(&app).await,
        Command::Audit(AuditCommand::Tail { count }) => admin::audit_tail(&app, count).await,
        Command::Audit(AuditCommand::Show { user, since }) => {
            admin::audit_show(&app, user.as_deref(), since.as_deref()).await
        }
    }
}

/// Administration commands end quietly when their reader goes away (`mssante user list |
/// head`), as Unix tools do, instead of panicking on a broken pipe. Not for `serve`, whose
/// sockets must never raise SIGPIPE.
fn default_sigpipe() {
    // SAFETY: sets the disposition of one signal at start, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    // Whatever mssante creates is for its own user only (the data directory holds health data).
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve) {
        default_sigpipe();
    }
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mssante: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mssante: {}", e.message);
            ExitCode::from(u8::try_from(e.status).unwrap_or(1))
        }
    }
}
