//! mail/queue: the messages waiting for delivery, without their content (an extension to the
//! API of API.md).

use actix_web::web;
use serde_json::json;

use super::caller::ApiCall;
use super::{ApiResult, success_with};
use crate::state::AppState;

pub async fn queue(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let queue = state.blocking(|store| store.mail_queue()).await?;
    let messages: Vec<_> = queue
        .iter()
        .map(|mail| {
            json!({
                "id": mail.id,
                "to": mail.to.as_str(),
                "kind": mail.content.kind,
                "attempts": mail.attempts,
                "next_attempt": mail.next_attempt_at_ms / 1000,
                "last_error": mail.last_error,
                "created": mail.created,
            })
        })
        .collect();
    success_with(json!({ "mail_queue": messages }))
}
