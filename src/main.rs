//! The `mssante` command: `serve` runs the server; the other commands administer its data
//! directory (and work while it runs). Without `--config`, everything runs in dev mode.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

mod commands;

use commands::*;
use mssante::admin;
use mssante::app::{App, CliError};
use mssante::pki::PersonRequest;
use mssante::server::{self, ServeLock};
use mssante::store::AccountKind;

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
    // Before any key is read: no core file may ever hold the key-encryption key.
    if let Err(e) = mssante::hardening::no_core_dumps() {
        eprintln!("mssante: {e}");
        return ExitCode::from(1);
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
