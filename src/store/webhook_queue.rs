//! The webhooks' targets and their queue, as the audit trail sees them: each entry it records
//! is queued here for every target that wants it (`enqueue_for`), in the same transaction. The
//! targets are managed and the queue worked through in `webhooks`.

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::StoreResult;
use super::records::{decode, encode};
use super::tables::{WEBHOOK_QUEUE, WEBHOOKS, next_id};

/// The sequence of delivery ids (in META, beside the others).
pub(super) const NEXT_DELIVERY_ID_KEY: &str = "next_webhook_delivery_id";

/// The body shape a receiver expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The event as JSON.
    Generic,
    /// `{"text": …}` (Slack incoming webhooks).
    Slack,
    /// A MessageCard (Microsoft Teams incoming webhooks).
    Teams,
}

impl WebhookFormat {
    pub fn parse(raw: &str) -> Option<WebhookFormat> {
        match raw {
            "generic" => Some(WebhookFormat::Generic),
            "slack" => Some(WebhookFormat::Slack),
            "teams" => Some(WebhookFormat::Teams),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Generic => "generic",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Teams => "teams",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    #[serde(skip)]
    pub id: u64,
    pub url: String,
    pub format: WebhookFormat,
    /// Action types sent; empty: every change (`ActionKind::Change`).
    pub actions: Vec<String>,
    pub(super) secret: String,
    pub created: u64,
    pub created_by: String,
}

impl Webhook {
    /// Whether the target is sent events of `action` (`change`: the action is a change).
    fn wants(&self, action: &str, change: bool) -> bool {
        if self.actions.is_empty() {
            change
        } else {
            self.actions.iter().any(|wanted| wanted == action)
        }
    }
}

/// An audit entry as a webhook is sent it (its id included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    pub id: u64,
    pub at: u64,
    pub action_type: String,
    pub message: String,
    pub actor: String,
    pub target: Option<String>,
    pub flock_id: Option<String>,
    pub details: serde_json::Value,
}

/// An event waiting for its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedDelivery {
    #[serde(skip)]
    pub id: u64,
    pub webhook_id: u64,
    pub event: WebhookEvent,
    pub attempts: u32,
    pub next_attempt_at_ms: u64,
    pub last_error: Option<String>,
}

/// Queues `event` for every target that wants its action (`change`: the action is a change),
/// inside the transaction recording it (the audit trail calls this for each entry).
pub(super) fn enqueue_for(
    txn: &redb::WriteTransaction,
    event: &WebhookEvent,
    change: bool,
) -> StoreResult<()> {
    let webhooks = txn.open_table(WEBHOOKS)?;
    if webhooks.is_empty()? {
        return Ok(());
    }
    let mut wanted = Vec::new();
    for row in webhooks.iter()? {
        let (id, bytes) = row?;
        let webhook: Webhook = decode(bytes.value())?;
        if webhook.wants(&event.action_type, change) {
            wanted.push(id.value());
        }
    }
    drop(webhooks);
    for webhook_id in wanted {
        queue(txn, webhook_id, event.clone())?;
    }
    Ok(())
}

pub(super) fn queue(
    txn: &redb::WriteTransaction,
    webhook_id: u64,
    event: WebhookEvent,
) -> StoreResult<u64> {
    let id = next_id(txn, NEXT_DELIVERY_ID_KEY)?;
    let delivery = QueuedDelivery {
        id,
        webhook_id,
        event,
        attempts: 0,
        next_attempt_at_ms: 0,
        last_error: None,
    };
    txn.open_table(WEBHOOK_QUEUE)?
        .insert(id, encode(&delivery)?.as_slice())?;
    Ok(id)
}
