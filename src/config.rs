//! Runtime configuration: one struct, defaults that run with no configuration at all.

use std::path::PathBuf;
use std::time::Duration;

use crate::auth::client_address::TrustedProxies;
use crate::web::session::SessionLimits;

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "data";
pub const DEFAULT_MAIL_FROM: &str = "Roost <roost@localhost>";
/// The session cookie key, in the data directory.
pub const SESSION_KEY_FILE: &str = "session.key";
/// The file outbox of mail when no SMTP server is configured, in the data directory.
pub const OUTBOX_DIR: &str = "outbox";

#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub bind: String,
    /// Directory holding `roost.redb` and the mail outbox.
    pub data_dir: PathBuf,
    /// Public URL of the console, used in links; `None` derives `http://localhost:<port>`.
    pub base_url: Option<String>,
    /// `smtp://user:pass@host:587` (STARTTLS) or `smtps://…` (implicit TLS); `None` writes mail
    /// to `<data_dir>/outbox/`.
    pub smtp_url: Option<String>,
    /// PEM certificates to trust for the SMTP server besides the system's roots.
    pub smtp_ca: Option<PathBuf>,
    /// The From header of every message.
    pub mail_from: String,
    /// Weekday of the weekly summary mail, 0 = Monday … 6 = Sunday.
    pub summary_weekday: u64,
    /// Whether the server sends the weekly summaries by itself (tests drive them by hand).
    pub summary_scheduler: bool,
    /// Wait before the first retry of a failed delivery; each further retry doubles it, up to an
    /// hour.
    pub mail_retry_base: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client; nobody by default.
    pub trusted_proxies: TrustedProxies,
    /// Idle and absolute lifetime of console sessions (30 min and 12 h).
    pub session_limits: SessionLimits,
    /// The key sealing TOTP secrets at rest; `None` keeps it at `<data_dir>/secrets.key`.
    pub secrets_key_file: Option<PathBuf>,
    /// How much of the database redb keeps in its own cache.
    pub db_cache_bytes: usize,
    /// Timeouts of request bodies and responses, connections per address, concurrent scans.
    pub request_limits: crate::request_limits::RequestLimits,
    /// Password hashes computed at once (each holds 19 MiB while it runs).
    pub hash_workers: usize,
    /// Password checks waiting for a worker before further ones are answered "busy".
    pub hash_queue: usize,
    /// Audit trail entries older than this many days are deleted (at start and daily); 0 keeps
    /// them forever.
    pub audit_retention_days: u64,
}

/// How long the audit trail keeps an entry by default: a year and a bit, so "who did this last
/// spring" has an answer.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u64 = 400;

/// One hashing worker per core: hashing can then use the whole machine, at a lower priority
/// than request handling.
pub fn default_hash_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Waiting password checks per hashing worker.
pub const HASH_QUEUE_PER_WORKER: usize = 32;

impl Config {
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            bind: DEFAULT_BIND.to_string(),
            data_dir: data_dir.into(),
            base_url: None,
            smtp_url: None,
            smtp_ca: None,
            mail_from: DEFAULT_MAIL_FROM.to_string(),
            summary_weekday: 0,
            summary_scheduler: true,
            mail_retry_base: crate::mail::queue::DEFAULT_RETRY_BASE,
            trusted_proxies: TrustedProxies::default(),
            session_limits: SessionLimits::default(),
            secrets_key_file: None,
            db_cache_bytes: crate::store::DEFAULT_CACHE_BYTES,
            request_limits: crate::request_limits::RequestLimits::default(),
            hash_workers: default_hash_workers(),
            hash_queue: default_hash_workers() * HASH_QUEUE_PER_WORKER,
            audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
        }
    }

    /// The base URL for links: the configured one, else `http://localhost:<port>`. Localhost
    /// rather than 127.0.0.1 because browsers only allow WebAuthn on a domain name.
    pub fn base_url_for_port(&self, port: u16) -> String {
        match &self.base_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://localhost:{port}"),
        }
    }

    /// Where the secrets key is kept.
    pub fn secrets_key_path(&self) -> PathBuf {
        self.secrets_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(crate::store::sealing::SECRETS_KEY_FILE))
    }

    /// Opens the store of this configuration. Everything Roost creates from here on is private
    /// (umask 077), and what it finds readable by others in the data directory is tightened.
    pub fn open_store(&self) -> Result<crate::store::Store, crate::store::StoreError> {
        crate::private_files::restrict_umask();
        let options = crate::store::StoreOptions {
            secrets_key_file: self.secrets_key_path(),
            cache_bytes: self.db_cache_bytes,
        };
        let store = crate::store::Store::open_with(&self.data_dir, &options)?;
        self.tighten_private_files();
        Ok(store)
    }

    /// Everything in the data directory that holds secrets or data, private: said once and
    /// tightened if a file or directory from before (or copied in) is readable by others.
    fn tighten_private_files(&self) {
        use crate::private_files::{tighten, tighten_dir_and_files};
        tighten(&self.data_dir);
        tighten(&self.data_dir.join(crate::store::DATABASE_FILE));
        tighten(&self.data_dir.join(SESSION_KEY_FILE));
        tighten(&self.secrets_key_path());
        for dir in [OUTBOX_DIR, crate::store::BACKUPS_DIR] {
            let dir = self.data_dir.join(dir);
            if dir.exists() {
                tighten_dir_and_files(&dir);
            }
        }
    }

    /// The port part of `bind`, when it has one.
    pub fn bind_port(&self) -> Option<u16> {
        self.bind
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
    }
}
