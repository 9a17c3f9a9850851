//! Outgoing mail through lettre: a real SMTP server when one is configured, else `.eml` files in
//! `<data_dir>/outbox/`. Links in messages are never logged.

mod messages;
pub mod queue;

use std::path::Path;

use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub use messages::{
    AdminSummary, Excerpt, FlockLine, MemberSummary, SUMMARY_SUBJECT, admin_summary,
    member_summary, password_reset, welcome,
};

use crate::domain::Email;
use crate::store::MailContent;

pub const OUTBOX_DIR: &str = "outbox";

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid From address '{0}'")]
    From(String),
    #[error("invalid SMTP URL: {0}")]
    SmtpUrl(String),
    #[error("cannot create the outbox directory: {0}")]
    Outbox(std::io::Error),
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("delivery failed: {0}")]
    Delivery(String),
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

impl Mailer {
    pub fn new(smtp_url: Option<&str>, from: &str, data_dir: &Path) -> Result<Mailer, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|_| MailError::From(from.to_string()))?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    // The URL may hold a password: report the kind of problem, not the URL.
                    .map_err(|error| MailError::SmtpUrl(error.to_string()))?
                    .build(),
            ),
            None => {
                let outbox = data_dir.join(OUTBOX_DIR);
                std::fs::create_dir_all(&outbox).map_err(MailError::Outbox)?;
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
            .map_err(|_| MailError::Build(format!("bad recipient {to}")))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to_mailbox)
            .subject(mail.subject)
            .message_id(None);
        let message = match mail.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(mail.text, html)),
            None => builder.singlepart(SinglePart::plain(mail.text)),
        }
        .map_err(|error| MailError::Build(error.to_string()))?;
        match &self.transport {
            Transport::Outbox(transport) => transport
                .send(message)
                .await
                .map(drop)
                .map_err(|error| MailError::Delivery(error.to_string())),
            Transport::Smtp(transport) => transport
                .send(message)
                .await
                .map(drop)
                .map_err(|error| MailError::Delivery(error.to_string())),
        }?;
        log::info!(
            "mail '{}' to {to} handed to the {}",
            mail.kind,
            self.describe()
        );
        Ok(())
    }
}
