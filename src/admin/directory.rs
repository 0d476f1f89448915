//! `mssante directory ...` and `mssante user profile`: what the national directory shows of
//! each mailbox, and keeping it up to date. Every mailbox change made here is queued for
//! publication and published at once when the directory answers; when it does not, the
//! change waits in the store and `serve` retries.

use clap::{Args, Subcommand, ValueEnum};

use super::{audit, mailbox};
use crate::app::{App, CliError};
use crate::store::DirectoryProfile;

/// `mssante directory ...`.
#[derive(Subcommand)]
pub enum DirectoryCommand {
    /// Compare the directory's entries of the served domains with the mailboxes and repair
    /// drift (missing, stale and extra entries).
    Sync {
        /// Only say what would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// Publish the changes waiting in the outbox now.
    Publish,
    /// The changes waiting for the directory, oldest first.
    Status,
    /// Load the ANS public extract (Extraction_Correspondance_MSSante, 31 `|`-separated
    /// columns) into the configured directory (a test or regional one). Malformed rows are
    /// reported with their line numbers and skipped.
    ImportExtract {
        /// The extract file.
        file: std::path::PathBuf,
        /// LDAP connections writing at once.
        #[arg(long, default_value_t = 4)]
        connections: usize,
    },
}

/// O or N, as ANS writes its flags.
#[derive(Clone, Copy, ValueEnum)]
pub enum YesNo {
    /// Yes (O).
    Yes,
    /// No (N).
    No,
}

/// `mssante user profile ADDRESS [...]`: what the directory shows beyond the address, type,
/// idNat and display name. Options left out keep their value; an empty value clears one.
#[derive(Args)]
pub struct ProfileArgs {
    /// The mailbox.
    pub address: String,
    /// Owner's surname.
    #[arg(long)]
    pub surname: Option<String>,
    /// Owner's given name.
    #[arg(long)]
    pub given_name: Option<String>,
    /// FINESS or SIRET of the structure.
    #[arg(long)]
    pub structure: Option<String>,
    /// Profession code (ANS nomenclature, e.g. 10 for a doctor).
    #[arg(long)]
    pub profession: Option<String>,
    /// Service of the structure.
    #[arg(long)]
    pub service: Option<String>,
    /// Free description.
    #[arg(long)]
    pub description: Option<String>,
    /// Phone number.
    #[arg(long)]
    pub phone: Option<String>,
    /// Person responsible (not for PER mailboxes).
    #[arg(long)]
    pub responsible: Option<String>,
    /// Accepts results and letters by secure messaging instead of paper.
    #[arg(long)]
    pub dematerialisation: Option<YesNo>,
    /// Red list: never shown in the directory's public view.
    #[arg(long)]
    pub red_list: Option<YesNo>,
}

/// Queues `address` for the directory and publishes at once if it answers; says which.
/// Without `[directory]`, does nothing.
pub(crate) async fn changed(app: &App, address: &str) -> Result<(), CliError> {
    let Some(publisher) = &app.directory else {
        return Ok(());
    };
    publisher.changed(address).await?;
    match publisher.publish_pending().await {
        Ok(drained) if drained.refused.is_empty() => {
            println!("directory: entry of {address} published")
        }
        Ok(drained) => {
            for (mailbox, reason) in drained.refused {
                println!("directory: the entry of {mailbox} is refused for good: {reason}");
            }
        }
        Err(e) => println!(
            "directory: not published now ({e}); the change waits and is retried \
             (`mssante directory status`)"
        ),
    }
    Ok(())
}

fn publisher(app: &App) -> Result<&crate::directory::Publisher, CliError> {
    app.directory
        .as_ref()
        .ok_or_else(|| CliError::new("no [directory] in the configuration: nothing is published"))
}

/// Runs a `directory` subcommand.
pub async fn run(app: &App, command: DirectoryCommand) -> Result<(), CliError> {
    match command {
        DirectoryCommand::Sync { dry_run } => {
            let report = publisher(app)?
                .sync(dry_run)
                .await
                .map_err(|e| CliError::new(format!("directory sync: {e}")))?;
            print!("{report}");
            let total = report.missing.len() + report.stale.len() + report.extra.len();
            match (total, dry_run) {
                (0, _) => println!("the directory says what the mailboxes say"),
                (n, true) => println!("{n} entries would change (dry run: nothing written)"),
                (n, false) => println!("{n} entries repaired"),
            }
            Ok(())
        }
        DirectoryCommand::Publish => {
            let drained = publisher(app)?
                .publish_pending()
                .await
                .map_err(|e| CliError::new(format!("directory: {e}")))?;
            for (mailbox, reason) in &drained.refused {
                println!("refused for good: {mailbox}: {reason}");
            }
            println!("{} entries published; nothing waits", drained.written);
            Ok(())
        }
        DirectoryCommand::ImportExtract { file, connections } => {
            import_extract(app, &file, connections).await
        }
        DirectoryCommand::Status => {
            publisher(app)?;
            let pending = app.store.db().directory_pending(1000).await?;
            if pending.is_empty() {
                println!("nothing waits for the directory");
            }
            for p in pending {
                let at = chrono::DateTime::from_timestamp(p.queued_at, 0)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                let last = p.last_error.as_deref().unwrap_or("-");
                println!(
                    "{:<6} {at} {:<40} attempts {} last error: {last}",
                    p.seq, p.address, p.attempts
                );
            }
            Ok(())
        }
    }
}

/// `user profile`: changes the directory profile, prints it, queues the publication.
pub async fn profile(app: &App, args: ProfileArgs) -> Result<(), CliError> {
    let account = mailbox(app, &args.address).await?;
    let mut p: DirectoryProfile = app
        .store
        .db()
        .directory_profile(account.id)
        .await?
        .unwrap_or_default();
    let set = |field: &mut Option<String>, value: Option<String>| {
        if let Some(v) = value {
            *field = (!v.trim().is_empty()).then(|| v.trim().to_string());
        }
    };
    set(&mut p.surname, args.surname);
    set(&mut p.given_name, args.given_name);
    set(&mut p.structure_id, args.structure);
    set(&mut p.profession_code, args.profession);
    set(&mut p.service, args.service);
    set(&mut p.description, args.description);
    set(&mut p.phone, args.phone);
    set(&mut p.responsible, args.responsible);
    if let Some(v) = args.dematerialisation {
        p.dematerialisation = matches!(v, YesNo::Yes);
    }
    if let Some(v) = args.red_list {
        p.red_list = matches!(v, YesNo::Yes);
    }
    app.store.db().set_directory_profile(account.id, &p).await?;
    let flags = format!(
        "red list {}, dematerialisation {}",
        if p.red_list { "O" } else { "N" },
        if p.dematerialisation { "O" } else { "N" }
    );
    audit(
        app,
        "user.profile",
        &format!("{} ({flags})", account.address),
    )
    .await?;
    println!("{}: directory profile saved ({flags})", account.address);
    changed(app, &account.address).await
}

/// `directory import-extract FILE`: streams the extract into the configured directory.
async fn import_extract(
    app: &App,
    file: &std::path::Path,
    connections: usize,
) -> Result<(), CliError> {
    let settings =
        app.config.directory.as_ref().ok_or_else(|| {
            CliError::new("no [directory] in the configuration: nowhere to import")
        })?;
    let config = crate::directory::connection(settings).map_err(CliError::new)?;
    let input = std::fs::File::open(file)
        .map(std::io::BufReader::new)
        .map_err(|e| CliError::new(format!("{}: {e}", file.display())))?;
    let name = file.display().to_string();
    let started = std::time::Instant::now();
    let report = mssante_directory::import_extract(&config, input, connections, move |e| {
        eprintln!("{name}:{}: skipped: {}", e.line, e.reason)
    })
    .await
    .map_err(|e| CliError::new(format!("{}: {e}", file.display())))?;
    let secs = started.elapsed().as_secs_f64();
    audit(
        app,
        "directory.import",
        &format!(
            "{}: {} rows, {} imported, {} skipped",
            file.display(),
            report.rows,
            report.imported,
            report.skipped
        ),
    )
    .await?;
    println!(
        "{}: {} rows, {} entries imported, {} skipped, in {secs:.1} s ({:.0} rows/s)",
        file.display(),
        report.rows,
        report.imported,
        report.skipped,
        report.rows as f64 / secs.max(0.001)
    );
    Ok(())
}
