//! The command line: `serve` (the default), `admin create`, `token create`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::auth::api_keys;
use crate::auth::client_address::TrustedProxies;
use crate::auth::links::NewLink;
use crate::config::{self, Config};
use crate::domain::{AccessLevel, ApiKeyType, Email};
use crate::mail::{Mailer, queue};
use crate::startup::{Application, StartupError};
use crate::store::audit::Actor;
use crate::store::{NewUser, StoreError, TokenPurpose, now_unix};
use crate::summaries::{self, Summaries, SummaryError};
use crate::web::session::SessionLimits;

#[derive(Debug, Parser)]
#[command(
    name = "roost",
    version,
    about = "Self-hosted user and two-factor management console",
    long_about = "Self-hosted user and two-factor management console.\n\nWith no subcommand, runs `roost serve`. Every option can also be set through the ROOST_* environment variable named beside it."
)]
pub struct Cli {
    #[command(flatten)]
    pub options: GlobalOptions,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct GlobalOptions {
    /// Address and port to listen on
    #[arg(long, env = "ROOST_BIND", default_value = config::DEFAULT_BIND, global = true)]
    pub bind: String,
    /// Directory for the database file and the mail outbox
    #[arg(long, env = "ROOST_DATA_DIR", default_value = config::DEFAULT_DATA_DIR, global = true)]
    pub data_dir: PathBuf,
    /// Public URL of the console, used in links [default: http://localhost:<port>]
    #[arg(long, env = "ROOST_BASE_URL", global = true)]
    pub base_url: Option<String>,
    /// SMTP server, e.g. smtp://user:pass@host:587 (STARTTLS required; ?tls=none to opt out) or
    /// smtps://host:465 (implicit TLS); without it mail is written to <data-dir>/outbox/
    #[arg(long, env = "ROOST_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// PEM file of CA certificates to trust for the SMTP server, besides the system's roots
    #[arg(long, env = "ROOST_SMTP_CA", global = true)]
    pub smtp_ca: Option<PathBuf>,
    /// From address of outgoing mail
    #[arg(long, env = "ROOST_MAIL_FROM", default_value = config::DEFAULT_MAIL_FROM, global = true)]
    pub mail_from: String,
    /// Weekday on which the weekly summary mail goes out
    #[arg(
        long,
        env = "ROOST_SUMMARY_DAY",
        default_value = "monday",
        global = true
    )]
    pub summary_day: String,
    /// Reverse proxies (addresses or networks, comma-separated, e.g. 127.0.0.1,10.0.0.0/8) whose
    /// X-Forwarded-For header names the client; without it the header is ignored
    #[arg(long, env = "ROOST_TRUSTED_PROXIES", default_value = "", global = true)]
    pub trusted_proxies: String,
    /// A console session unused for this long ends (e.g. 30m, 2h)
    #[arg(long, env = "ROOST_SESSION_IDLE", default_value = "30m", global = true)]
    pub session_idle: String,
    /// A console session ends this long after login, however busy (e.g. 12h, 7d)
    #[arg(
        long,
        env = "ROOST_SESSION_LIFETIME",
        default_value = "12h",
        global = true
    )]
    pub session_lifetime: String,
    /// Password hashes computed at once, each holding 19 MiB while it runs [default: the number
    /// of cores]
    #[arg(long, env = "ROOST_HASH_WORKERS", global = true)]
    pub hash_workers: Option<usize>,
    /// Password checks that may wait for a hashing worker; further ones are answered "busy, try
    /// again" (503) [default: 32 per worker]
    #[arg(long, env = "ROOST_HASH_QUEUE", global = true)]
    pub hash_queue: Option<usize>,
    /// The key that seals TOTP secrets at rest (created on first start). Keep it out of the data
    /// directory to keep it out of its backups, e.g. a mounted secret [default:
    /// <data-dir>/secrets.key]
    #[arg(long, env = "ROOST_SECRETS_KEY_FILE", global = true)]
    pub secrets_key_file: Option<PathBuf>,
    /// The longest wait for the next piece of a request body; a late body is answered 408
    #[arg(long, env = "ROOST_BODY_TIMEOUT", default_value = "5s", global = true)]
    pub body_timeout: String,
    /// The longest a whole request body may take
    #[arg(
        long,
        env = "ROOST_BODY_TOTAL_TIMEOUT",
        default_value = "30s",
        global = true
    )]
    pub body_total_timeout: String,
    /// An idle connection between requests is closed after this
    #[arg(long, env = "ROOST_KEEP_ALIVE", default_value = "15s", global = true)]
    pub keep_alive: String,
    /// A client that stops reading a response for this long loses the connection
    #[arg(
        long,
        env = "ROOST_WRITE_TIMEOUT",
        default_value = "30s",
        global = true
    )]
    pub write_timeout: String,
    /// Open connections per client address; more are refused at once (0: no limit). Trusted
    /// proxies are exempt
    #[arg(
        long,
        env = "ROOST_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 128,
        global = true
    )]
    pub max_connections_per_client: usize,
    /// MiB of the database kept in Roost's own cache (beyond it the operating system's page
    /// cache serves reads)
    #[arg(long, env = "ROOST_DB_CACHE_MB", default_value_t = 64, global = true)]
    pub db_cache_mb: usize,
    /// Lists, filters and exports running at once; more are answered 503 [default: the number
    /// of cores, at least 2]
    #[arg(long, env = "ROOST_MAX_CONCURRENT_SCANS", global = true)]
    pub max_concurrent_scans: Option<usize>,
    /// Days the audit trail keeps an entry; older ones are deleted at start and daily, and the
    /// deletion is itself recorded (0: keep forever)
    #[arg(
        long,
        env = "ROOST_AUDIT_RETENTION",
        default_value_t = config::DEFAULT_AUDIT_RETENTION_DAYS,
        global = true
    )]
    pub audit_retention: u64,
}

/// A duration option in humantime's notation (`90s`, `30m`, `12h`), at least a second.
fn parse_duration_option(option: &str, raw: &str) -> Result<u64, CliError> {
    let seconds = humantime::parse_duration(raw.trim())
        .map(|duration| duration.as_secs())
        .map_err(|error| {
            CliError::Usage(format!("{option}: '{raw}' is not a duration ({error})"))
        })?;
    if seconds == 0 {
        return Err(CliError::Usage(format!(
            "{option} must be at least 1s, not '{raw}'"
        )));
    }
    Ok(seconds)
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
    Store(#[from] StoreError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Summary(#[from] SummaryError),
    #[error("server error: {0}")]
    Server(#[from] std::io::Error),
}

impl GlobalOptions {
    pub fn config(&self) -> Result<Config, CliError> {
        let summary_weekday = summaries::parse_weekday(&self.summary_day).ok_or_else(|| {
            CliError::Usage(format!(
                "--summary-day must be a weekday (monday … sunday), not '{}'",
                self.summary_day
            ))
        })?;
        let session_limits = SessionLimits {
            idle_secs: parse_duration_option("--session-idle", &self.session_idle)?,
            absolute_secs: parse_duration_option("--session-lifetime", &self.session_lifetime)?,
        };
        let trusted_proxies = TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|error| CliError::Usage(format!("--trusted-proxies: {error}")))?;
        let hash_workers = self
            .hash_workers
            .unwrap_or_else(config::default_hash_workers);
        if hash_workers == 0 {
            return Err(CliError::Usage("--hash-workers must be at least 1".into()));
        }
        let hash_queue = self
            .hash_queue
            .unwrap_or(hash_workers * config::HASH_QUEUE_PER_WORKER);
        let defaults = crate::request_limits::RequestLimits::default();
        let seconds = |option: &str, raw: &str| {
            parse_duration_option(option, raw).map(std::time::Duration::from_secs)
        };
        let request_limits = crate::request_limits::RequestLimits {
            body_chunk_timeout: seconds("--body-timeout", &self.body_timeout)?,
            body_total_timeout: seconds("--body-total-timeout", &self.body_total_timeout)?,
            keep_alive: seconds("--keep-alive", &self.keep_alive)?,
            write_timeout: seconds("--write-timeout", &self.write_timeout)?,
            connections_per_client: self.max_connections_per_client,
            concurrent_scans: match self.max_concurrent_scans {
                Some(0) => {
                    return Err(CliError::Usage(
                        "--max-concurrent-scans must be at least 1".into(),
                    ));
                }
                Some(scans) => scans,
                None => defaults.concurrent_scans,
            },
        };
        Ok(Config {
            bind: self.bind.clone(),
            data_dir: self.data_dir.clone(),
            base_url: self.base_url.clone(),
            smtp_url: self.smtp_url.clone(),
            smtp_ca: self.smtp_ca.clone(),
            mail_from: self.mail_from.clone(),
            summary_weekday,
            summary_scheduler: true,
            mail_retry_base: crate::mail::queue::DEFAULT_RETRY_BASE,
            trusted_proxies,
            session_limits,
            secrets_key_file: self.secrets_key_file.clone(),
            db_cache_bytes: self.db_cache_mb.saturating_mul(1024 * 1024),
            request_limits,
            hash_workers,
            hash_queue,
            audit_retention_days: self.audit_retention,
        })
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let config = cli.options.config()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(config).await?;
            app.run_until_stopped().await?;
        }
        Command::Admin(AdminCommand::Create { email }) => {
            let email = Email::parse(&email)
                .map_err(|_| CliError::Usage(format!("'{email}' is not a valid email address")))?;
            let store = config.open_store()?;
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
            let store = config.open_store()?;
            let token = api_keys::issue_global_key(&store, key_type, &note, "cli")?;
            println!("{token}");
        }
        Command::Mail(MailCommand::SendSummaries { now }) => {
            let store = config.open_store()?;
            let mailer = Mailer::from_config(&config)
                .map_err(|error| CliError::Usage(format!("mail configuration: {error}")))?;
            let console_url = config.base_url_for_port(config.bind_port().unwrap_or(8080));
            // No server runs while this command holds the database: nobody else will deliver,
            // so this command drains the queue once itself after queueing.
            let summaries = Summaries::new(
                store.clone(),
                Arc::default(),
                &console_url,
                config.summary_weekday,
            );
            let queued = if now {
                summaries.queue_now(Actor::cli(), now_unix()).await
            } else {
                summaries.queue_if_due(now_unix()).await
            }?;
            let round = queue::deliver_due(&store, &mailer, config.mail_retry_base).await?;
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
