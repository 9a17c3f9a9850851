//! The command line: `serve` (the default), `admin create`, `token create`, `mail send-summaries`,
//! `backup`, `restore`, `export`, `import`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::auth::api_keys;
use crate::auth::links::NewLink;
use crate::config::{Config, OptionError};
use crate::domain::{AccessLevel, ApiKeyType, Email};
use crate::mail::{Mailer, queue};
use crate::startup::{Application, StartupError, open_store};
use crate::store::audit::Actor;
use crate::store::{NewUser, StoreError, TokenPurpose, now_unix};
use crate::summaries::{Summaries, SummaryError};

#[derive(Debug, Parser)]
#[command(
    name = "roost",
    version,
    about = "Self-hosted user and two-factor management console",
    long_about = "Self-hosted user and two-factor management console.\n\nWith no subcommand, runs `roost serve`. Every option can also be set through the ROOST_* environment variable named beside it."
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the console (the default)
    Serve,
    /// Manage console users
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage API keys
    #[command(subcommand)]
    Token(TokenCommand),
    /// Outgoing mail
    #[command(subcommand)]
    Mail(MailCommand),
    /// Write a backup of the database (asking the running server, if one runs on this data
    /// directory), or check one
    Backup {
        /// Write the backup to this file (refused if it exists)
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "verify",
            conflicts_with = "verify"
        )]
        out: Option<PathBuf>,
        /// Check this backup (checksum, schema, every record and index) without restoring it
        #[arg(long, value_name = "FILE")]
        verify: Option<PathBuf>,
    },
    /// Replace the database with a backup, after checking it; the server must be stopped. The
    /// replaced file is kept in <data-dir>/backups/
    Restore {
        /// The backup file
        file: PathBuf,
    },
    /// Write users (with password hashes and factors), flocks, memberships, API keys (hashed),
    /// settings and the audit trail as JSON Lines, to move them to another machine or version
    /// (asking the running server, if one runs on this data directory)
    Export {
        /// The file to write (refused if it exists)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Read an export into a data directory that has no database yet; every line is checked
    /// before anything is written, and nothing is imported if one is refused
    Import {
        /// The export file
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Send this week's summary mails to every enabled user who opted in (once per week)
    SendSummaries {
        /// Send now instead of waiting for the configured weekday
        #[arg(long)]
        now: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an enabled admin and print a one-time link (valid 7 days) to set their password
    Create {
        /// Email address of the new admin
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a global API key and print its secret, alone on one line
    Create {
        /// admin, analyst or read-only
        #[arg(long = "type", value_name = "TYPE")]
        key_type: String,
        /// What the key is for
        #[arg(long)]
        note: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Backup(#[from] crate::store::backup::BackupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Summary(#[from] SummaryError),
    #[error("server error: {0}")]
    Server(#[from] std::io::Error),
    #[error(transparent)]
    Export(#[from] crate::store::export::ExportError),
}

/// The command line and the `ROOST_*` variables. A value that Roost refuses is told in Roost's
/// words, as a usage error; whatever clap itself says (help, version, an unknown flag, a missing
/// value) it prints and exits with.
pub fn parse_args() -> Result<Cli, CliError> {
    Cli::try_parse().map_err(|error| match OptionError::behind(&error) {
        Some(refusal) => CliError::Usage(refusal.to_string()),
        None => error.exit(),
    })
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(config).await?;
            app.run_until_stopped().await?;
        }
        Command::Admin(AdminCommand::Create { email }) => {
            let email = Email::parse(&email)
                .map_err(|_| CliError::Usage(format!("'{email}' is not a valid email address")))?;
            let store = open_store(&config)?;
            let link = NewLink::new(TokenPurpose::SetPassword, None);
            let new_admin = NewUser {
                email,
                access_level: AccessLevel::Admin,
                note: None,
                two_factor_required: false,
            };
            let admin = store.add_user(
                &Actor::cli(),
                new_admin,
                Some((&link.hash, link.token.clone())),
            )?;
            let base_url = config.base_url_for_port(config.bind_port().unwrap_or(8080));
            println!(
                "Admin {} created. Open this one-time link within 7 days to set the password:",
                admin.email
            );
            println!("{}", link.url(&base_url));
        }
        Command::Token(TokenCommand::Create { key_type, note }) => {
            let key_type = ApiKeyType::parse(&key_type).map_err(|_| {
                CliError::Usage(format!(
                    "--type must be admin, analyst or read-only, not '{key_type}'"
                ))
            })?;
            let store = open_store(&config)?;
            let token = api_keys::issue_global_key(&store, key_type, &note, "cli")?;
            println!("{token}");
        }
        Command::Backup { out: Some(out), .. } => {
            let header = crate::backups::backup(&config, open_store(&config), &out).await?;
            println!(
                "backup written to {}: schema {}, {} records, {} bytes, sha256 {}",
                out.display(),
                header.schema_version,
                header.records,
                header.payload_bytes,
                header.payload_sha256
            );
        }
        Command::Backup {
            verify: Some(file), ..
        } => {
            let header = crate::backups::verify(&config, &file)?;
            println!(
                "{} is a sound backup: schema {}, {} records, taken {}",
                file.display(),
                header.schema_version,
                header.records,
                crate::timestamps::rfc3339(header.created)
            );
        }
        Command::Backup { .. } => {
            return Err(CliError::Usage("give --out FILE or --verify FILE".into()));
        }
        Command::Restore { file } => {
            let (header, kept) = crate::backups::restore(&config, &file)?;
            println!(
                "restored {} (schema {}, {} records, taken {}); the replaced database is {}",
                file.display(),
                header.schema_version,
                header.records,
                crate::timestamps::rfc3339(header.created),
                kept.map_or_else(
                    || "none (there was none)".to_string(),
                    |k| k.display().to_string()
                )
            );
        }
        Command::Export { out } => {
            let counts = crate::backups::export(&config, open_store(&config), &out).await?;
            println!("exported to {}: {counts}", out.display());
        }
        Command::Import { file } => {
            crate::private_files::restrict_umask();
            let options = crate::store::StoreOptions::from_config(&config);
            let data_dir = config.data_dir.clone();
            let counts = tokio::task::spawn_blocking(move || {
                crate::store::export::import(&data_dir, &options, &file, &Actor::cli())
            })
            .await
            .map_err(|error| CliError::Store(StoreError::TaskLost(error)))??;
            println!("imported into {}: {counts}", config.data_dir.display());
        }
        Command::Mail(MailCommand::SendSummaries { now }) => {
            let store = open_store(&config)?;
            let mailer = Mailer::from_settings(&config.mail, &config.data_dir)
                .map_err(|error| CliError::Usage(format!("mail configuration: {error}")))?;
            let console_url = config.base_url_for_port(config.bind_port().unwrap_or(8080));
            // No server runs while this command holds the database: nobody else will deliver,
            // so this command drains the queue once itself after queueing.
            let summaries = Summaries::new(
                store.clone(),
                Arc::default(),
                &console_url,
                config.summary_weekday,
                config.dormant_after_days,
            );
            let queued = if now {
                summaries.queue_now(Actor::cli(), now_unix()).await
            } else {
                summaries.queue_if_due(now_unix()).await
            }?;
            let never = std::sync::atomic::AtomicBool::new(false);
            let round = queue::deliver_due(&store, &mailer, config.mail.retry_base, &never).await?;
            println!(
                "{queued} weekly summary mails queued; {} delivered",
                round.delivered
            );
            let left = round.failed + round.waiting;
            if left > 0 {
                println!(
                    "{left} mails could not be delivered yet and stay queued: `roost serve` retries them"
                );
            }
        }
    }
    Ok(())
}
