//! Webhooks, as admins set them up in Settings: add (the target checked, the secret sealed),
//! remove, send a test event, and the list with each target's last deliveries.

use super::{Permission, Principal, ServiceResult};
use crate::state::AppState;
use crate::store::webhooks::{DeliveryRecord, Webhook, WebhookFormat};

/// The shortest signing secret accepted.
pub const MIN_SECRET_CHARS: usize = 16;

/// Why a webhook can't be added as asked (the edge words it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadWebhook {
    Target(crate::webhooks::TargetError),
    UnknownAction(String),
    ShortSecret,
}

pub async fn add(
    state: &AppState,
    who: &Principal,
    url: String,
    format: WebhookFormat,
    actions: Vec<String>,
    secret: String,
) -> ServiceResult<Result<Webhook, BadWebhook>> {
    who.require(Permission::Administer)?;
    if let Err(error) = crate::webhooks::resolve_target(&url, state.webhooks_allow_private).await {
        return Ok(Err(BadWebhook::Target(error)));
    }
    if let Some(unknown) = actions
        .iter()
        .find(|action| !crate::store::audit::is_action_type(action))
    {
        return Ok(Err(BadWebhook::UnknownAction(unknown.clone())));
    }
    if secret.chars().count() < MIN_SECRET_CHARS {
        return Ok(Err(BadWebhook::ShortSecret));
    }
    let actor = who.actor();
    let now = state.clock.now();
    Ok(Ok(state
        .write(move |store| store.add_webhook(&actor, &url, format, actions.clone(), &secret, now))
        .await?))
}

pub async fn remove(state: &AppState, who: &Principal, id: u64) -> ServiceResult<()> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.remove_webhook(&actor, id))
        .await?)
}

pub async fn send_test(state: &AppState, who: &Principal, id: u64) -> ServiceResult<()> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.queue_webhook_test(&actor, id))
        .await?)
}

/// Each target with its last deliveries (newest first) and how many wait.
pub fn list(
    state: &AppState,
    who: &Principal,
) -> ServiceResult<Vec<(Webhook, Vec<DeliveryRecord>, usize)>> {
    who.require(Permission::Administer)?;
    Ok(state.read(|store| {
        let mut all = Vec::new();
        for webhook in store.webhooks()? {
            let (log, waiting) = store.webhook_deliveries(webhook.id)?;
            all.push((webhook, log, waiting));
        }
        Ok(all)
    })?)
}
