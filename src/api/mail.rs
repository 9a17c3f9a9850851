//! mail/queue: the messages waiting for delivery, without their content (an extension to the
//! API of API.md).

use super::ApiResult;
use super::caller::ApiCall;
use super::users::lists_busy;
use super::views::QueuedMailView;
use crate::service::Permission;
use crate::state::AppState;
use crate::stream::{scan_permit, stream_json};
use actix_web::web;

/// `{"mail_queue":[…],"result":"success"}`, oldest first, streamed as the store is read.
pub async fn queue(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.principal.require(Permission::Administer)?;
    let permit = scan_permit(&state).ok_or_else(lists_busy)?;
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
