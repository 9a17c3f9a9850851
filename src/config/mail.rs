//! Where outgoing mail goes and how it is retried.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

pub const DEFAULT_MAIL_FROM: &str = "Roost <roost@localhost>";
/// The first retry of a failed delivery waits this long by default; each further one doubles it.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(30);

#[derive(Clone, Args)]
pub struct MailSettings {
    /// SMTP server, e.g. smtp://user:pass@host:587 (STARTTLS required; ?tls=none to opt out) or
    /// smtps://host:465 (implicit TLS); without it mail is written to <data-dir>/outbox/
    #[arg(long, env = "ROOST_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// PEM file of CA certificates to trust for the SMTP server, besides the system's roots
    #[arg(long, env = "ROOST_SMTP_CA", global = true)]
    pub smtp_ca: Option<PathBuf>,
    /// From address of outgoing mail
    #[arg(
        long = "mail-from",
        value_name = "MAIL_FROM",
        env = "ROOST_MAIL_FROM",
        default_value = DEFAULT_MAIL_FROM,
        global = true
    )]
    pub from: String,
    // Not an option: tests shorten it to see retries within a test's time.
    /// Wait before the first retry of a failed delivery; each further retry doubles it, up to an
    /// hour.
    #[arg(skip = DEFAULT_RETRY_BASE)]
    pub retry_base: Duration,
}

/// Says whether an SMTP URL is set but never prints it: it may hold the relay's password.
impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "[redacted]"))
            .field("smtp_ca", &self.smtp_ca)
            .field("from", &self.from)
            .field("retry_base", &self.retry_base)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_smtp_url() {
        let settings = MailSettings {
            smtp_url: Some("smtp://roost:hunter2@mail.example:587".into()),
            smtp_ca: None,
            from: DEFAULT_MAIL_FROM.into(),
            retry_base: DEFAULT_RETRY_BASE,
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");
    }
}
