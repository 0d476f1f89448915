//! The command line of the `mssante` binary: every command, its arguments and their help
//! text (clap). `main.rs` runs them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use mssante::admin;
use mssante::pki::PersonUse;
use mssante::store::KeyUse;

/// Mail server for MSSanté operators: SMTP, IMAP and POP3 over TLS in the national trust space.
#[derive(Parser)]
#[command(name = "mssante", version, propagate_version = true)]
pub(crate) struct Cli {
    /// Configuration file (TOML). Without one, mssante runs in dev mode.
    #[arg(long, global = true, env = "MSSANTE_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Data directory (default: the file's data_dir, else ./mssante-data).
    #[arg(long, global = true, env = "MSSANTE_DATA", value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
pub(crate) enum MessageCommand {
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
pub(crate) enum CertCommand {
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
pub(crate) enum KeyCommand {
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
pub(crate) enum QueueCommand {
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
pub(crate) enum TrustCommand {
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
pub(crate) enum DomainCommand {
    /// Serve a domain (Unicode names are stored in their A-label form).
    Add { name: String },
    /// List served domains.
    List,
    /// Stop serving a domain that has no mailbox left.
    Remove { name: String },
}

#[derive(Subcommand)]
pub(crate) enum UserCommand {
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
pub(crate) enum UserCertCommand {
    /// Bind a certificate (PEM) to the mailbox, by fingerprint.
    Bind { address: String, file: PathBuf },
    /// Unbind every certificate of the mailbox.
    Unbind { address: String },
}

#[derive(Subcommand)]
pub(crate) enum DeviceCommand {
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
pub(crate) enum OtpCommand {
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
pub(crate) enum DelegationCommand {
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
pub(crate) enum PkiCommand {
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
pub(crate) enum AuditCommand {
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
