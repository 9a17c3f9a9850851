//! Runtime configuration: one struct, read from flags and `ROOST_*` variables, with defaults that
//! run with no configuration at all. Each default is said once, in the option's attributes; the
//! tests' `Config::with_data_dir` reads the same attributes, so they run what an operator runs.
//!
//! A leaf: nothing here knows the rest of Roost, which takes the plain types it needs from here.

mod backups;
mod limits;
mod mail;
mod parse;
mod proxies;
mod weekday;

use std::path::PathBuf;

use clap::Args;

pub use backups::BackupSchedule;
pub use limits::{RequestLimits, SessionLimits};
pub use mail::{DEFAULT_MAIL_FROM, DEFAULT_RETRY_BASE, MailSettings};
pub use parse::OptionError;
pub use proxies::{TrustedProxies, canonical};
pub use weekday::{parse_weekday, weekday_name};

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "data";
/// The session cookie key, in the data directory.
pub const SESSION_KEY_FILE: &str = "session.key";
/// The file outbox of mail when no SMTP server is configured, in the data directory.
pub const OUTBOX_DIR: &str = "outbox";
/// The key sealing TOTP secrets at rest, in the data directory unless `--secrets-key-file` says
/// otherwise.
pub const SECRETS_KEY_FILE: &str = "secrets.key";

/// How much of the database redb keeps in memory besides the operating system's page cache, by
/// default. redb's own default is 1 GiB, too much for the 1–2 GB machines Roost is meant for;
/// reads that miss it are served from the page cache.
pub const DEFAULT_DB_CACHE_MB: usize = 64;

/// How long the audit trail keeps an entry by default: a year and a bit, so "who did this last
/// spring" has an answer.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u64 = 400;
/// The access review's default for dormant accounts.
pub const DEFAULT_DORMANT_AFTER_DAYS: u64 = 90;

/// One hashing worker per core: hashing can then use the whole machine, at a lower priority
/// than request handling.
pub fn default_hash_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Waiting password checks per hashing worker.
pub const HASH_QUEUE_PER_WORKER: usize = 32;

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    // Port 0 picks a free port (the tests' choice).
    /// Address and port to listen on
    #[arg(long, env = "ROOST_BIND", default_value = DEFAULT_BIND, global = true)]
    pub bind: String,
    /// Directory for the database file and the mail outbox
    #[arg(long, env = "ROOST_DATA_DIR", default_value = DEFAULT_DATA_DIR, global = true)]
    pub data_dir: PathBuf,
    /// Public URL of the console, used in links [default: http://localhost:<port>]
    #[arg(long, env = "ROOST_BASE_URL", global = true)]
    pub base_url: Option<String>,
    #[command(flatten)]
    pub mail: MailSettings,
    // 0 = Monday … 6 = Sunday.
    /// Weekday on which the weekly summary mail goes out
    #[arg(
        long = "summary-day",
        value_name = "SUMMARY_DAY",
        env = "ROOST_SUMMARY_DAY",
        default_value = "monday",
        value_parser = parse::weekday("--summary-day"),
        global = true
    )]
    pub summary_weekday: u64,
    /// Reverse proxies (addresses or networks, comma-separated, e.g. 127.0.0.1,10.0.0.0/8) whose
    /// X-Forwarded-For header names the client; without it the header is ignored
    #[arg(
        long,
        env = "ROOST_TRUSTED_PROXIES",
        default_value = "",
        value_parser = parse::trusted_proxies("--trusted-proxies"),
        global = true
    )]
    pub trusted_proxies: TrustedProxies,
    #[command(flatten)]
    pub session_limits: SessionLimits,
    #[command(flatten)]
    pub backups: BackupSchedule,
    /// Password hashes computed at once, each holding 19 MiB while it runs [default: the number
    /// of cores]
    #[arg(
        long,
        env = "ROOST_HASH_WORKERS",
        default_value_t = default_hash_workers(),
        hide_default_value = true,
        value_parser = parse::at_least_one("--hash-workers"),
        global = true
    )]
    pub hash_workers: usize,
    // `None`: `HASH_QUEUE_PER_WORKER` for each of `hash_workers` (see `hash_queue_limit`).
    /// Password checks that may wait for a hashing worker; further ones are answered "busy, try
    /// again" (503) [default: 32 per worker]
    #[arg(long, env = "ROOST_HASH_QUEUE", global = true)]
    pub hash_queue: Option<usize>,
    /// The key that seals TOTP secrets at rest (created on first start). Keep it out of the data
    /// directory to keep it out of its backups, e.g. a mounted secret [default:
    /// <data-dir>/secrets.key]
    #[arg(long, env = "ROOST_SECRETS_KEY_FILE", global = true)]
    pub secrets_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub request_limits: RequestLimits,
    /// MiB of the database kept in Roost's own cache (beyond it the operating system's page
    /// cache serves reads)
    #[arg(long, env = "ROOST_DB_CACHE_MB", default_value_t = DEFAULT_DB_CACHE_MB, global = true)]
    pub db_cache_mb: usize,
    /// Days the audit trail keeps an entry; older ones are deleted at start and daily, and the
    /// deletion is itself recorded (0: keep forever)
    #[arg(
        long = "audit-retention",
        value_name = "DAYS",
        env = "ROOST_AUDIT_RETENTION",
        default_value_t = DEFAULT_AUDIT_RETENTION_DAYS,
        global = true
    )]
    pub audit_retention_days: u64,
    /// Days without a login after which the access review lists an enabled account as dormant
    #[arg(
        long = "dormant-after",
        value_name = "DAYS",
        env = "ROOST_DORMANT_AFTER",
        default_value_t = DEFAULT_DORMANT_AFTER_DAYS,
        value_parser = clap::value_parser!(u64).range(1..=36500),
        global = true
    )]
    pub dormant_after_days: u64,
    /// Lets webhooks target loopback, private and link-local addresses (a receiver on this
    /// machine or the LAN); without it they are refused, so the console can't be made to reach
    /// inside the network
    #[arg(long, env = "ROOST_WEBHOOKS_ALLOW_PRIVATE", global = true)]
    pub webhooks_allow_private: bool,
    // Not an option: the tests retry quickly.
    /// The first webhook retry's delay; each later one doubles it (at most an hour)
    #[arg(skip = std::time::Duration::from_secs(30))]
    pub webhook_retry_base: std::time::Duration,
    /// How log lines are written to stderr: text for people, json (one object a line) for a
    /// collector. RUST_LOG chooses what is logged (default: info)
    #[arg(
        long,
        env = "ROOST_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,
    /// Serves GET /metrics (Prometheus) on the main listener to `Authorization: Bearer TOKEN`
    /// (24+ characters; prefer the environment variable: options show in `ps`)
    #[arg(
        long,
        env = "ROOST_METRICS_TOKEN",
        hide_env_values = true,
        value_parser = parse::bearer_token("--metrics-token"),
        global = true
    )]
    pub metrics_token: Option<String>,
    /// Serves GET /metrics on a listener of its own at this address (e.g. 127.0.0.1:9464), for a
    /// network only the scraper reaches; with --metrics-token the token is asked there too
    #[arg(long, env = "ROOST_METRICS_BIND", global = true)]
    pub metrics_bind: Option<String>,
    /// Serves HTTPS with this certificate chain (PEM; with --tls-key). Read again on SIGHUP,
    /// so a renewed certificate applies without a restart
    #[arg(long, env = "ROOST_TLS_CERT", value_name = "FILE", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, env = "ROOST_TLS_KEY", value_name = "FILE", global = true)]
    pub tls_key: Option<PathBuf>,
    // Not an option: the tests switch it off and drive the weekly summaries by hand.
    /// Whether the server sends the weekly summaries by itself.
    #[arg(skip = true)]
    pub summary_scheduler: bool,
    // Not an option: the tests set the time scheduled work runs by.
    /// The time scheduled offboardings are due by.
    #[arg(skip)]
    pub clock: crate::clock::Clock,
}

impl Config {
    /// The defaults, whatever the environment says, with the data in `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            ..parse::defaults()
        }
    }

    /// The base URL for links: the configured one, else `http://localhost:<port>`. Localhost
    /// rather than 127.0.0.1 because browsers only allow WebAuthn on a domain name.
    pub fn base_url_for_port(&self, port: u16) -> String {
        let scheme = if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        match &self.base_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("{scheme}://localhost:{port}"),
        }
    }

    /// The certificate and key files to serve HTTPS with: both or neither.
    pub fn tls_files(&self) -> Result<Option<crate::tls::TlsFiles>, OptionError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(certificate), Some(key)) => Ok(Some(crate::tls::TlsFiles {
                certificate: certificate.clone(),
                key: key.clone(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(OptionError(
                "--tls-cert needs --tls-key (the certificate's private key)".into(),
            )),
            (None, Some(_)) => Err(OptionError(
                "--tls-key needs --tls-cert (the certificate it belongs to)".into(),
            )),
        }
    }

    /// The port part of `bind`, when it has one.
    pub fn bind_port(&self) -> Option<u16> {
        self.bind
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
    }

    /// Where the secrets key is kept.
    pub fn secrets_key_path(&self) -> PathBuf {
        self.secrets_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(SECRETS_KEY_FILE))
    }

    /// How much of the database redb keeps in its own cache.
    pub fn db_cache_bytes(&self) -> usize {
        self.db_cache_mb.saturating_mul(1024 * 1024)
    }

    /// Password checks waiting for a worker before further ones are answered "busy".
    pub fn hash_queue_limit(&self) -> usize {
        self.hash_queue
            .unwrap_or(self.hash_workers.saturating_mul(HASH_QUEUE_PER_WORKER))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::FromArgMatches;

    use super::*;

    #[test]
    fn with_data_dir_holds_the_defaults_of_the_command_line() {
        let config = Config::with_data_dir("/srv/roost");
        assert_eq!(config.data_dir, PathBuf::from("/srv/roost"));
        assert_eq!(config.bind, DEFAULT_BIND);
        assert_eq!(config.base_url, None);
        assert_eq!(config.mail.smtp_url, None);
        assert_eq!(config.mail.from, DEFAULT_MAIL_FROM);
        assert_eq!(config.mail.retry_base, DEFAULT_RETRY_BASE);
        assert_eq!(config.summary_weekday, 0);
        assert!(config.summary_scheduler);
        assert!(config.trusted_proxies.is_empty());
        assert_eq!(
            config.session_limits,
            SessionLimits {
                idle_secs: 30 * 60,
                absolute_secs: 12 * 3600,
            }
        );
        assert_eq!(config.hash_workers, default_hash_workers());
        assert_eq!(
            config.hash_queue_limit(),
            default_hash_workers() * HASH_QUEUE_PER_WORKER
        );
        assert_eq!(
            config.secrets_key_path(),
            PathBuf::from("/srv/roost").join(SECRETS_KEY_FILE)
        );
        let limits = config.request_limits;
        assert_eq!(limits.body_chunk_timeout, Duration::from_secs(5));
        assert_eq!(limits.body_total_timeout, Duration::from_secs(30));
        assert_eq!(limits.keep_alive, Duration::from_secs(15));
        assert_eq!(limits.write_timeout, Duration::from_secs(30));
        assert_eq!(limits.connections_per_client, 128);
        assert!(limits.concurrent_scans >= 2);
        assert_eq!(limits, RequestLimits::default());
        assert_eq!(config.db_cache_bytes(), 64 * 1024 * 1024);
        assert_eq!(config.audit_retention_days, DEFAULT_AUDIT_RETENTION_DAYS);
    }

    /// The options alone, whatever the environment of the test says.
    fn command() -> clap::Command {
        Config::augment_args(clap::Command::new("roost"))
            .mut_args(|arg| arg.env(None::<&'static str>))
    }

    #[test]
    fn flags_reach_the_plain_types() {
        let matches = command()
            .try_get_matches_from([
                "roost",
                "--session-idle",
                "2h",
                "--trusted-proxies",
                "10.0.0.0/8",
                "--summary-day",
                "sun",
                "--hash-workers",
                "3",
                "--keep-alive",
                "1m",
                "--mail-from",
                "Ops <ops@example.org>",
            ])
            .expect("parse");
        let config = Config::from_arg_matches(&matches).expect("config");
        assert_eq!(config.session_limits.idle_secs, 7200);
        assert!(config.trusted_proxies.trusts([10, 1, 2, 3].into()));
        assert_eq!(config.summary_weekday, 6);
        assert_eq!(config.hash_queue_limit(), 3 * HASH_QUEUE_PER_WORKER);
        assert_eq!(config.request_limits.keep_alive, Duration::from_secs(60));
        assert_eq!(config.mail.from, "Ops <ops@example.org>");
    }

    #[test]
    fn a_refused_value_is_told_in_roost_words() {
        let command = command();
        for (args, expected) in [
            (["--hash-workers", "0"], "--hash-workers must be at least 1"),
            (
                ["--summary-day", "funday"],
                "--summary-day must be a weekday (monday … sunday), not 'funday'",
            ),
            (
                ["--metrics-token", "short"],
                "--metrics-token must be 24 to 512 characters long (e.g. `openssl rand -hex 32`)",
            ),
            (
                ["--metrics-token", "a token with spaces in it, long enough"],
                "--metrics-token may only hold printable ASCII without spaces",
            ),
            (
                ["--trusted-proxies", "proxy.local"],
                "--trusted-proxies: 'proxy.local' is not an IP address or a network like 10.0.0.0/8",
            ),
        ] {
            let error = command
                .clone()
                .try_get_matches_from(["roost"].into_iter().chain(args))
                .expect_err("refused");
            let refusal = OptionError::behind(&error).map(|refusal| refusal.to_string());
            assert_eq!(refusal.as_deref(), Some(expected), "{args:?}");
        }
        let garbage = command
            .try_get_matches_from(["roost", "--hash-workers", "abc"])
            .expect_err("not a number");
        assert!(OptionError::behind(&garbage).is_none(), "clap says it");
    }

    #[test]
    fn every_refusal_names_its_own_flag() {
        let command = command();
        let mut refused = Vec::new();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else {
                continue;
            };
            let flag = format!("--{long}");
            for bad in ["0", "0s", "nonsense"] {
                let Err(error) = command.clone().try_get_matches_from(["roost", &flag, bad]) else {
                    continue;
                };
                if let Some(refusal) = OptionError::behind(&error) {
                    assert!(refusal.0.starts_with(&flag), "{flag} {bad}: {refusal}");
                    refused.push(flag.clone());
                }
            }
        }
        refused.dedup();
        assert_eq!(refused.len(), 12, "{refused:?}");
    }
}
