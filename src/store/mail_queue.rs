//! The outgoing mail queue: every message waits here until a transport accepted it, so a crash or
//! an SMTP outage never loses one. Messages are queued in the transaction of the change that
//! causes them (a new user, a reset link).

use super::WriteTxn;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::records::{decode, encode};
use super::tables::{MAIL_QUEUE, NEXT_MAIL_ID_KEY, next_id};
use super::{Store, StoreResult, now_unix};
use crate::domain::Email;

/// What a message says, before it has a recipient and a place in the queue.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailContent {
    /// Names the message in logs and in the queue listing instead of its content.
    pub kind: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

// A welcome or reset mail carries a live one-time link in its body: `Debug` names the message
// and leaves the body out.
impl std::fmt::Debug for MailContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailContent")
            .field("kind", &self.kind)
            .field("subject", &self.subject)
            .field("text", &format_args!("[redacted]"))
            .field(
                "html",
                &self.html.as_ref().map(|_| format_args!("[redacted]")),
            )
            .finish()
    }
}

/// A message waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMail {
    #[serde(skip)]
    pub id: u64,
    pub to: Email,
    #[serde(flatten)]
    pub content: MailContent,
    /// Failed deliveries so far.
    pub attempts: u32,
    /// Unix milliseconds before which no delivery is tried.
    pub next_attempt_at_ms: u64,
    pub last_error: Option<String>,
    pub created: u64,
}

impl Store {
    /// Queues one message for `to`.
    pub fn enqueue_mail(&self, to: &Email, content: MailContent) -> StoreResult<u64> {
        let txn = self.begin_write()?;
        let id = enqueue(&txn, to, content)?;
        txn.commit()?;
        Ok(id)
    }

    /// Every queued message, oldest first.
    pub fn mail_queue(&self) -> StoreResult<Vec<QueuedMail>> {
        let txn = self.begin_read()?;
        let table = txn.open_table(MAIL_QUEUE)?;
        let mut queued = Vec::new();
        for entry in table.iter()? {
            let (id, bytes) = entry?;
            let mut mail: QueuedMail = decode(bytes.value())?;
            mail.id = id.value();
            queued.push(mail);
        }
        Ok(queued)
    }

    /// A transport accepted the message: it leaves the queue.
    pub fn remove_queued_mail(&self, id: u64) -> StoreResult<()> {
        let txn = self.begin_write()?;
        txn.open_table(MAIL_QUEUE)?.remove(id)?;
        txn.commit()?;
        Ok(())
    }

    /// A delivery failed: counts the attempt, keeps the error and when to try again.
    pub fn record_mail_failure(
        &self,
        id: u64,
        error: &str,
        next_attempt_at_ms: u64,
    ) -> StoreResult<()> {
        let txn = self.begin_write()?;
        {
            let mut table = txn.open_table(MAIL_QUEUE)?;
            let found: Option<QueuedMail> = table
                .get(id)?
                .map(|bytes| decode(bytes.value()))
                .transpose()?;
            if let Some(mut mail) = found {
                mail.attempts = mail.attempts.saturating_add(1);
                mail.last_error = Some(error.to_string());
                mail.next_attempt_at_ms = next_attempt_at_ms;
                table.insert(id, encode(&mail)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// Queues a message inside a caller's transaction, due at once.
pub(super) fn enqueue(txn: &WriteTxn<'_>, to: &Email, content: MailContent) -> StoreResult<u64> {
    let id = next_id(txn, NEXT_MAIL_ID_KEY)?;
    let mail = QueuedMail {
        id,
        to: to.clone(),
        content,
        attempts: 0,
        next_attempt_at_ms: 0,
        last_error: None,
        created: now_unix(),
    };
    txn.open_table(MAIL_QUEUE)?
        .insert(id, encode(&mail)?.as_slice())?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_mail_leaves_its_link_out() {
        let link = "http://localhost:8080/reset/0123456789abcdef0123456789abcdef";
        let mail = QueuedMail {
            id: 1,
            to: Email::parse("ann@x.io").unwrap(),
            content: MailContent {
                kind: "password_reset".into(),
                subject: "Reset your Roost password".into(),
                text: format!("Open {link}"),
                html: Some(format!("<a href=\"{link}\">reset</a>")),
            },
            attempts: 0,
            next_attempt_at_ms: 0,
            last_error: None,
            created: 1,
        };
        let debug = format!("{mail:?}");
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
        assert!(
            debug.contains("password_reset") && debug.contains("[redacted]"),
            "{debug}"
        );
    }
}
