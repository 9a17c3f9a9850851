//! Webhooks: targets that are sent the audit trail's events they subscribe to. An event is
//! queued in the transaction that records it (`webhook_queue::enqueue_for`, called by the trail), so a
//! committed change always has its deliveries queued and a refused one never does; the sender
//! (`crate::webhooks`) delivers them, with retries, and never holds the action up. Each target's
//! signing secret is sealed with the secrets key, like TOTP secrets.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit::{Actor, AuditEntry, AuditLine, record};
use super::records::{decode, encode};
use super::sealing::SealedSecret;
use super::tables::{WEBHOOK_DELIVERIES, WEBHOOK_QUEUE, WEBHOOKS, next_id};
use super::webhook_queue::{NEXT_DELIVERY_ID_KEY, queue};
pub use super::webhook_queue::{QueuedDelivery, Webhook, WebhookEvent, WebhookFormat};
use super::{Store, StoreError, StoreResult};
use crate::domain::Refusal;

/// Kept per target in the deliveries log; older ones go.
pub const DELIVERIES_KEPT: usize = 20;
/// The sequence of webhook ids (in META, beside the others).
pub(super) const NEXT_WEBHOOK_ID_KEY: &str = "next_webhook_id";

/// How a delivery ended (or its last failed try).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub webhook_id: u64,
    pub action: String,
    pub at: u64,
    pub attempts: u32,
    /// `delivered (HTTP 200)`, or why the last try failed.
    pub outcome: String,
    pub delivered: bool,
}

fn secret_context(id: u64) -> String {
    format!("webhook {id}")
}

impl Store {
    /// Adds a target; `secret` signs its deliveries (stored sealed).
    pub fn add_webhook(
        &self,
        actor: &Actor,
        url: &str,
        format: WebhookFormat,
        actions: Vec<String>,
        secret: &str,
        now: u64,
    ) -> StoreResult<Webhook> {
        let txn = self.begin_write()?;
        let webhook = {
            let id = next_id(&txn, NEXT_WEBHOOK_ID_KEY)?;
            let sealed = self.sealer.seal(secret, &secret_context(id))?;
            let webhook = Webhook {
                id,
                url: url.to_string(),
                format,
                actions,
                secret: sealed.into_stored(),
                created: now,
                created_by: actor.name.clone(),
            };
            txn.open_table(WEBHOOKS)?
                .insert(id, encode(&webhook)?.as_slice())?;
            record(
                &txn,
                actor,
                AuditLine::new(
                    "webhook_add",
                    format!("Webhook {id} added ({})", format.as_str()),
                )
                .details(json!({
                    "webhook": id,
                    "format": format.as_str(),
                    "actions": webhook.actions,
                    // The host only: a Slack or Teams URL carries its own secret.
                    "host": host_of(url),
                })),
            )?;
            webhook
        };
        txn.commit()?;
        Ok(webhook)
    }

    pub fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let txn = self.begin_read()?;
        let mut all = Vec::new();
        for row in txn.open_table(WEBHOOKS)?.iter()? {
            let (id, bytes) = row?;
            let mut webhook: Webhook = decode(bytes.value())?;
            webhook.id = id.value();
            all.push(webhook);
        }
        Ok(all)
    }

    /// The target's signing secret, unsealed for signing a delivery.
    pub fn webhook_secret(&self, webhook: &Webhook) -> StoreResult<String> {
        self.sealer.open(
            &SealedSecret::from_stored(webhook.secret.clone()),
            &secret_context(webhook.id),
        )
    }

    /// Removes a target with its queued deliveries and its log.
    pub fn remove_webhook(&self, actor: &Actor, id: u64) -> StoreResult<()> {
        let txn = self.begin_write()?;
        {
            let removed = txn.open_table(WEBHOOKS)?.remove(id)?.is_some();
            if !removed {
                return Err(StoreError::Refused(Refusal::WebhookNotFound));
            }
            txn.open_table(WEBHOOK_QUEUE)?.retain(|_, bytes| {
                decode::<QueuedDelivery>(bytes).map_or(true, |d| d.webhook_id != id)
            })?;
            txn.open_table(WEBHOOK_DELIVERIES)?.retain(|_, bytes| {
                decode::<DeliveryRecord>(bytes).map_or(true, |d| d.webhook_id != id)
            })?;
            record(
                &txn,
                actor,
                AuditLine::new("webhook_remove", format!("Webhook {id} removed"))
                    .details(json!({ "webhook": id })),
            )?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Queues a test event for target `id` (recorded on the trail as `webhook_test`, which only
    /// this target is sent).
    pub fn queue_webhook_test(&self, actor: &Actor, id: u64) -> StoreResult<()> {
        let txn = self.begin_write()?;
        {
            if txn.open_table(WEBHOOKS)?.get(id)?.is_none() {
                return Err(StoreError::Refused(Refusal::WebhookNotFound));
            }
            // Recorded first (no target subscribes to `webhook_test` by default), then the entry
            // itself is queued for this target.
            let entry_id = record(
                &txn,
                actor,
                AuditLine::new("webhook_test", format!("Test event sent to webhook {id}"))
                    .details(json!({ "webhook": id })),
            )?;
            let entry = txn
                .open_table(super::tables::AUDIT)?
                .get(entry_id)?
                .map(|bytes| decode::<AuditEntry>(bytes.value()))
                .transpose()?
                .ok_or_else(|| StoreError::Corrupt("the test event was not recorded".into()))?;
            let event = super::audit::webhook_event(&AuditEntry {
                id: entry_id,
                ..entry
            });
            let already = txn
                .open_table(WEBHOOK_QUEUE)?
                .iter()?
                .filter_map(Result::ok)
                .filter_map(|(_, bytes)| decode::<QueuedDelivery>(bytes.value()).ok())
                .any(|d| d.webhook_id == id && d.event.id == entry_id);
            if !already {
                queue(&txn, id, event)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Deliveries due at `now_ms`, oldest first, at most `limit`.
    pub fn due_deliveries(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<QueuedDelivery>> {
        let txn = self.begin_read()?;
        let mut due = Vec::new();
        for row in txn.open_table(WEBHOOK_QUEUE)?.iter()? {
            let (id, bytes) = row?;
            let mut delivery: QueuedDelivery = decode(bytes.value())?;
            if delivery.next_attempt_at_ms <= now_ms {
                delivery.id = id.value();
                due.push(delivery);
                if due.len() == limit {
                    break;
                }
            }
        }
        Ok(due)
    }

    /// When the next queued delivery is due, if any is queued.
    pub fn next_delivery_at_ms(&self) -> StoreResult<Option<u64>> {
        let txn = self.begin_read()?;
        let mut next = None;
        for row in txn.open_table(WEBHOOK_QUEUE)?.iter()? {
            let (_, bytes) = row?;
            let at = decode::<QueuedDelivery>(bytes.value())?.next_attempt_at_ms;
            next = Some(next.map_or(at, |n: u64| n.min(at)));
        }
        Ok(next)
    }

    /// Records how a try of `delivery` ended: delivered (out of the queue), or failed (kept,
    /// retried at `retry_at_ms`).
    pub fn finish_delivery(
        &self,
        delivery: &QueuedDelivery,
        outcome: Result<String, String>,
        retry_at_ms: u64,
        now: u64,
    ) -> StoreResult<()> {
        let txn = self.begin_write()?;
        {
            let mut queue = txn.open_table(WEBHOOK_QUEUE)?;
            // Removed with its target meanwhile: nothing to record.
            if queue.get(delivery.id)?.is_none() {
                return Ok(());
            }
            let attempts = delivery.attempts + 1;
            let (text, delivered) = match &outcome {
                Ok(status) => (format!("delivered ({status})"), true),
                Err(error) => (format!("failed: {error}"), false),
            };
            if delivered {
                queue.remove(delivery.id)?;
            } else {
                let retried = QueuedDelivery {
                    attempts,
                    next_attempt_at_ms: retry_at_ms,
                    last_error: Some(text.clone()),
                    ..delivery.clone()
                };
                queue.insert(delivery.id, encode(&retried)?.as_slice())?;
            }
            drop(queue);
            let mut log = txn.open_table(WEBHOOK_DELIVERIES)?;
            let record = DeliveryRecord {
                webhook_id: delivery.webhook_id,
                action: delivery.event.action_type.clone(),
                at: now,
                attempts,
                outcome: text,
                delivered,
            };
            let id = next_id(&txn, NEXT_DELIVERY_ID_KEY)?;
            log.insert(id, encode(&record)?.as_slice())?;
            // Only the last few per target are kept.
            let mut mine = Vec::new();
            for row in log.iter()? {
                let (key, bytes) = row?;
                if decode::<DeliveryRecord>(bytes.value())?.webhook_id == delivery.webhook_id {
                    mine.push(key.value());
                }
            }
            for old in mine.iter().take(mine.len().saturating_sub(DELIVERIES_KEPT)) {
                log.remove(*old)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The target's last deliveries, newest first, and how many wait in its queue.
    pub fn webhook_deliveries(&self, webhook_id: u64) -> StoreResult<(Vec<DeliveryRecord>, usize)> {
        let txn = self.begin_read()?;
        let mut log = Vec::new();
        for row in txn.open_table(WEBHOOK_DELIVERIES)?.iter()? {
            let (_, bytes) = row?;
            let record: DeliveryRecord = decode(bytes.value())?;
            if record.webhook_id == webhook_id {
                log.push(record);
            }
        }
        log.reverse();
        let mut waiting = 0;
        for row in txn.open_table(WEBHOOK_QUEUE)?.iter()? {
            let (_, bytes) = row?;
            if decode::<QueuedDelivery>(bytes.value())?.webhook_id == webhook_id {
                waiting += 1;
            }
        }
        Ok((log, waiting))
    }
}

/// The host of an `http(s)://host[:port]/…` URL, for the trail (never the path: a Slack or
/// Teams URL carries its secret there).
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    Some(host.to_string())
}
