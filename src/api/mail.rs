//! mail/queue: the messages waiting for delivery, without their content (an extension to the
//! API of API.md).

use super::ApiResult;
use super::caller::ApiCall;
use super::stream::{scan_permit, stream_json};
use super::views::QueuedMailView;
use crate::state::AppState;
use actix_web::web;

/// `{"mail_queue":[…],"result":"success"}`, oldest first, streamed as the store is read.
pub async fn queue(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let permit = scan_permit(&state)?;
    Ok(stream_json(&state, permit, |store, out| {
        out.raw("{")?;
        out.open_list("mail_queue")?;
        store
            .snapshot()?
            .visit_mail_queue(None, |mail| out.element(&QueuedMailView::from(&mail)))?;
        out.close_list()?;
        out.raw(r#","result":"success"}"#)
    }))
}
