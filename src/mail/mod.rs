//! Outgoing mail through lettre: a real SMTP server when one is configured, else `.eml` files in
//! `<data_dir>/outbox/`. Links in messages are never logged.

mod messages;
pub mod queue;

use std::path::Path;

use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub use messages::{
    AdminSummary, Excerpt, FlockLine, MemberSummary, ReviewCounts, SUMMARY_SUBJECT, admin_summary,
    expiry_deferred, expiry_reminder, member_summary, offboarding_receipt, offboarding_refused,
    password_reset, welcome,
};

use crate::config::MailSettings;
use crate::domain::Email;
use crate::store::MailContent;

pub use crate::config::OUTBOX_DIR;

/// Why mail can't be set up or sent. Causes stay attached (`#[source]`) for the log; the
/// messages never repeat an SMTP URL, which may hold a password.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid From address '{address}'")]
    From {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("invalid SMTP URL: {0}")]
    SmtpUrl(String),
    #[error("invalid SMTP URL")]
    SmtpUrlSyntax(#[source] url::ParseError),
    #[error("cannot set up SMTP from the URL")]
    SmtpSetup(#[source] lettre::transport::smtp::Error),
    #[error("cannot use the SMTP CA file {path}: {reason}")]
    SmtpCa { path: String, reason: String },
    #[error("cannot create the outbox directory")]
    Outbox(#[source] std::io::Error),
    #[error("cannot render the message")]
    Render(#[source] askama::Error),
    #[error("cannot build the message")]
    Build(#[source] lettre::error::Error),
    #[error("bad recipient {0}")]
    Recipient(String),
    #[error("delivery over SMTP failed")]
    Smtp(#[source] lettre::transport::smtp::Error),
    #[error("writing to the outbox failed")]
    OutboxWrite(#[source] lettre::transport::file::Error),
}

/// The `tls` query parameter of an SMTP URL.
fn tls_param(url: &url::Url) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == "tls")
        .map(|(_, value)| value.into_owned())
}

/// The URL lettre gets for `--smtp-url`. lettre reads a bare `smtp://` as plain text, credentials
/// included; here it means STARTTLS, required — except on a loopback host (a local relay), where
/// it is used if offered. `?tls=required|opportunistic` choose explicitly, `?tls=none` opts out
/// of TLS; `smtps://` is implicit TLS.
fn smtp_transport_url(raw: &str) -> Result<url::Url, MailError> {
    // Url's errors never quote the input, which may hold a password.
    let mut url = url::Url::parse(raw.trim()).map_err(MailError::SmtpUrlSyntax)?;
    if url.scheme() != "smtp" {
        return Ok(url);
    }
    let tls = tls_param(&url);
    let others: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| key != "tls")
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    let tls = match tls.as_deref() {
        Some("none") => None,
        Some(mode @ ("required" | "opportunistic")) => Some(mode.to_string()),
        Some(other) => {
            return Err(MailError::SmtpUrl(format!(
                "tls must be required, opportunistic or none, not '{other}'"
            )));
        }
        None => {
            let loopback = match url.host() {
                // `smtp` isn't a scheme the URL standard knows, so an IPv4 host stays text.
                Some(url::Host::Domain(name)) => {
                    name.eq_ignore_ascii_case("localhost")
                        || name
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                }
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            Some(
                if loopback {
                    "opportunistic"
                } else {
                    "required"
                }
                .to_string(),
            )
        }
    };
    url.set_query(None);
    {
        let mut query = url.query_pairs_mut();
        for (key, value) in &others {
            query.append_pair(key, value);
        }
        if let Some(tls) = &tls {
            query.append_pair("tls", tls);
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    Ok(url)
}

#[derive(Clone)]
enum Transport {
    Outbox(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

/// The SMTP transport for `url`; with `ca_file`, the PEM certificates in it are trusted for the
/// server's certificate besides the system's roots (a relay with a private CA).
fn smtp_transport(
    url: &str,
    ca_file: Option<&Path>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let url = smtp_transport_url(url)?;
    // The URL may hold a password: report the kind of problem, not the URL.
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
        .map_err(MailError::SmtpSetup)?;
    if let Some(ca_file) = ca_file {
        let ca_error = |reason: String| MailError::SmtpCa {
            path: ca_file.display().to_string(),
            reason,
        };
        let pem = std::fs::read(ca_file).map_err(|error| ca_error(error.to_string()))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(ca_error("no PEM certificate in it".to_string()));
        }
        let certificate =
            Certificate::from_pem(&pem).map_err(|error| ca_error(error.to_string()))?;
        let host = url.host_str().unwrap_or_default().to_string();
        let parameters = TlsParameters::builder(host)
            .add_root_certificate(certificate)
            .build()
            .map_err(|error| ca_error(error.to_string()))?;
        let mode = tls_param(&url);
        let tls = match (url.scheme(), mode.as_deref()) {
            ("smtps", _) => Tls::Wrapper(parameters),
            (_, Some("required")) => Tls::Required(parameters),
            (_, Some("opportunistic")) => Tls::Opportunistic(parameters),
            _ => return Err(ca_error("the SMTP URL uses no TLS (?tls=none)".to_string())),
        };
        builder = builder.tls(tls);
    }
    Ok(builder.build())
}

impl Mailer {
    /// The mailer `settings` describe: their SMTP URL and CA file and From address, else the
    /// outbox under `data_dir`.
    pub fn from_settings(settings: &MailSettings, data_dir: &Path) -> Result<Mailer, MailError> {
        Mailer::new(
            settings.smtp_url.as_deref(),
            settings.smtp_ca.as_deref(),
            &settings.from,
            data_dir,
        )
    }

    /// Mail through SMTP at `smtp_url` (trusting `smtp_ca` too, if given), else into the outbox
    /// under `data_dir`.
    pub fn new(
        smtp_url: Option<&str>,
        smtp_ca: Option<&Path>,
        from: &str,
        data_dir: &Path,
    ) -> Result<Mailer, MailError> {
        let from: Mailbox = from.parse().map_err(|source| MailError::From {
            address: from.to_string(),
            source,
        })?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(smtp_transport(url, smtp_ca)?),
            None => {
                let outbox = data_dir.join(OUTBOX_DIR);
                crate::private_files::create_private_dir(&outbox).map_err(MailError::Outbox)?;
                Transport::Outbox(AsyncFileTransport::<Tokio1Executor>::new(outbox))
            }
        };
        Ok(Mailer { transport, from })
    }

    pub fn describe(&self) -> &'static str {
        match self.transport {
            Transport::Outbox(_) => "file outbox",
            Transport::Smtp(_) => "SMTP",
        }
    }

    /// Delivers one message: multipart text + HTML when it has an HTML part, with Date and
    /// Message-ID headers. The queue's sender calls this; it never logs the content.
    pub async fn send(&self, to: &Email, mail: impl Into<MailContent>) -> Result<(), MailError> {
        let mail: MailContent = mail.into();
        let to_mailbox: Mailbox = to
            .as_str()
            .parse()
            .map_err(|_| MailError::Recipient(to.to_string()))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to_mailbox)
            .subject(mail.subject)
            .message_id(None);
        let message = match mail.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(mail.text, html)),
            None => builder.singlepart(SinglePart::plain(mail.text)),
        }
        .map_err(MailError::Build)?;
        match &self.transport {
            Transport::Outbox(transport) => transport
                .send(message)
                .await
                .map(drop)
                .map_err(MailError::OutboxWrite),
            Transport::Smtp(transport) => transport
                .send(message)
                .await
                .map(drop)
                .map_err(MailError::Smtp),
        }?;
        tracing::info!(
            "mail '{}' to {to} handed to the {}",
            mail.kind,
            self.describe()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_smtp_urls_require_starttls_except_on_loopback() {
        let url = |raw: &str| smtp_transport_url(raw).expect(raw).to_string();
        assert_eq!(
            url("smtp://user:p%40ss@mail.example.com:587"),
            "smtp://user:p%40ss@mail.example.com:587?tls=required"
        );
        assert_eq!(
            url("smtp://127.0.0.1:2525"),
            "smtp://127.0.0.1:2525?tls=opportunistic"
        );
        assert_eq!(
            url("smtp://localhost"),
            "smtp://localhost?tls=opportunistic"
        );
        assert_eq!(url("smtp://[::1]:25"), "smtp://[::1]:25?tls=opportunistic");
        assert_eq!(
            url("smtp://localhost?tls=required"),
            "smtp://localhost?tls=required"
        );
        assert_eq!(url("smtp://relay.lan:25?tls=none"), "smtp://relay.lan:25");
        assert_eq!(
            url("smtp://relay.lan?helo=roost.lan&tls=none"),
            "smtp://relay.lan?helo=roost.lan"
        );
        assert_eq!(
            url("smtps://user:pw@mail.example.com"),
            "smtps://user:pw@mail.example.com"
        );
    }

    // lettre's SMTP pool starts its cleaner task on the Tokio runtime, as in the server.
    #[tokio::test]
    async fn smtp_urls_choose_the_transport_and_errors_never_show_the_password() {
        let dir = tempfile::tempdir().expect("temp dir");
        let from = "Roost <roost@example.com>";
        for url in [
            "smtp://user:hunter2@mail.example.com:587",
            "smtp://mail.example.com:25?tls=required",
            "smtps://user:hunter2@mail.example.com",
        ] {
            let mailer = Mailer::new(Some(url), None, from, dir.path()).expect(url);
            assert_eq!(mailer.describe(), "SMTP", "{url}");
        }
        // Nothing is written to the outbox directory when SMTP is configured.
        assert!(!dir.path().join(OUTBOX_DIR).exists());

        for url in ["ftp://user:hunter2@mail.example.com", "not a url hunter2"] {
            let error = Mailer::new(Some(url), None, from, dir.path())
                .err()
                .expect("refused");
            assert!(
                matches!(
                    error,
                    MailError::SmtpUrl(_) | MailError::SmtpUrlSyntax(_) | MailError::SmtpSetup(_)
                ),
                "{url}: {error}"
            );
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
        let error = Mailer::new(None, None, "not an address", dir.path())
            .err()
            .expect("refused");
        assert!(matches!(error, MailError::From { .. }));

        let error = Mailer::new(
            Some("smtp://u:hunter2@mail.example.com?tls=maybe"),
            None,
            from,
            dir.path(),
        )
        .err()
        .expect("refused");
        assert!(error.to_string().contains("tls must be"), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");

        // A CA file must exist, hold a certificate, and go with a TLS connection.
        let url = Some("smtp://mail.example.com");
        let missing = dir.path().join("missing.pem");
        let error = Mailer::new(url, Some(&missing), from, dir.path())
            .err()
            .expect("refused");
        assert!(matches!(error, MailError::SmtpCa { .. }), "{error}");
        let not_pem = dir.path().join("not.pem");
        std::fs::write(&not_pem, "hello").expect("write");
        let error = Mailer::new(url, Some(&not_pem), from, dir.path())
            .err()
            .expect("refused");
        assert!(error.to_string().contains("no PEM certificate"), "{error}");

        let outbox = Mailer::new(None, None, from, dir.path()).expect("outbox");
        assert_eq!(outbox.describe(), "file outbox");
        assert!(dir.path().join(OUTBOX_DIR).is_dir());
    }
}
