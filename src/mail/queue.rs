//! The sender of the outgoing mail queue: a background task that delivers due messages, deletes
//! each one a transport accepted, and schedules a retry with exponential backoff for the others.
//! It wakes when a message is queued and when the next retry is due. Messages are never dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::Mailer;
use crate::store::{QueuedMail, Store, StoreError};

/// No retry waits longer than this.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// Even with nothing due the sender looks at the queue this often.
const IDLE_CHECK: Duration = Duration::from_secs(60);

/// How long to wait after the `attempts`-th failed delivery (1 = the first).
pub fn retry_delay(base: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
    base.saturating_mul(factor).min(MAX_RETRY_DELAY)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The running sender: whether it still runs (readiness), and how to stop it between two
/// deliveries (graceful shutdown).
pub type MailSender = crate::background::Worker;

/// Starts the sender. `queued` is notified after each enqueue.
pub fn spawn_sender(
    store: Store,
    mailer: Mailer,
    queued: Arc<Notify>,
    retry_base: Duration,
) -> MailSender {
    let sender = MailSender::default();
    let handle = sender.clone();
    tokio::spawn(async move {
        let _running = handle.running();
        while !handle.is_stopping() {
            let wait = match deliver_due(&store, &mailer, retry_base, handle.stopping_flag()).await
            {
                Ok(round) => round.next_check,
                Err(error) => {
                    tracing::error!("mail queue: {error}");
                    IDLE_CHECK
                }
            };
            tokio::select! {
                _ = queued.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = handle.stop_requested() => {}
            }
        }
        tracing::info!("mail sender stopped");
    });
    sender
}

/// What one pass over the queue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryRound {
    /// Messages a transport accepted; they left the queue.
    pub delivered: usize,
    /// Messages tried and refused; they stay queued with a later retry time.
    pub failed: usize,
    /// Messages not tried because their retry time hasn't come.
    pub waiting: usize,
    /// How long until the queue should be looked at again.
    pub next_check: Duration,
}

/// Tries every due message once.
pub async fn deliver_due(
    store: &Store,
    mailer: &Mailer,
    retry_base: Duration,
    stopping: &AtomicBool,
) -> Result<DeliveryRound, StoreError> {
    let queue = store.off_async(|store| store.mail_queue()).await?;
    let mut next_due: Option<u64> = None;
    let (mut delivered, mut failed, mut waiting) = (0, 0, 0);
    for mail in queue {
        if stopping.load(Ordering::Acquire) {
            // Left queued: delivered after the next start.
            break;
        }
        if mail.next_attempt_at_ms > now_ms() {
            waiting += 1;
            next_due =
                Some(next_due.map_or(mail.next_attempt_at_ms, |n| n.min(mail.next_attempt_at_ms)));
            continue;
        }
        match deliver(store, mailer, mail, retry_base).await? {
            Some(retry_at) => {
                failed += 1;
                next_due = Some(next_due.map_or(retry_at, |n| n.min(retry_at)));
            }
            None => delivered += 1,
        }
    }
    let next_check = match next_due {
        Some(at) => Duration::from_millis(at.saturating_sub(now_ms())).min(IDLE_CHECK),
        None => IDLE_CHECK,
    };
    Ok(DeliveryRound {
        delivered,
        failed,
        waiting,
        next_check,
    })
}

/// Delivers one message; on failure returns when it will be retried.
async fn deliver(
    store: &Store,
    mailer: &Mailer,
    mail: QueuedMail,
    retry_base: Duration,
) -> Result<Option<u64>, StoreError> {
    let QueuedMail {
        id,
        to,
        content,
        attempts,
        ..
    } = mail;
    let kind = content.kind.clone();
    match mailer.send(&to, content).await {
        Ok(()) => {
            store
                .write_async(move |store| store.remove_queued_mail(id))
                .await?;
            Ok(None)
        }
        Err(error) => {
            let attempts = attempts.saturating_add(1);
            let delay = retry_delay(retry_base, attempts);
            let retry_at =
                now_ms().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
            // The whole chain: the admin reading `last_error` wants the server's answer.
            let error = crate::error_chain::error_chain(&error);
            tracing::warn!(
                "could not send the {kind} mail to {to} (attempt {attempts}), retrying in {}: {error}",
                humantime::format_duration(delay)
            );
            store
                .write_async(move |store| store.record_mail_failure(id, &error, retry_at))
                .await?;
            Ok(Some(retry_at))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        let base = Duration::from_secs(30);
        assert_eq!(retry_delay(base, 1), Duration::from_secs(30));
        assert_eq!(retry_delay(base, 2), Duration::from_secs(60));
        assert_eq!(retry_delay(base, 3), Duration::from_secs(120));
        assert_eq!(retry_delay(base, 8), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(base, u32::MAX), MAX_RETRY_DELAY);
    }
}
