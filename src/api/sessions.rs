//! user/sessions and user/sessions/revoke: a user's console sessions (Roost extension, global
//! admin keys only).

use actix_web::web;
use serde::Serialize;
use serde_json::json;

use super::caller::ApiCall;
use super::error::ApiError;
use super::{ApiResult, success_with};
use crate::service::{Permission, sessions};
use crate::state::AppState;
use crate::store::{PUBLIC_ID_CHARS, StoredSession, UserRef};
use crate::timestamps;

#[derive(Serialize)]
struct SessionView<'a> {
    id: &'a str,
    created: String,
    last_seen: String,
    ip: Option<&'a str>,
    user_agent: &'a str,
}

impl<'a> From<&'a StoredSession> for SessionView<'a> {
    fn from(session: &'a StoredSession) -> Self {
        SessionView {
            id: session.public_id(),
            created: timestamps::rfc3339(session.record.created),
            last_seen: timestamps::rfc3339(session.record.last_seen),
            ip: session.record.ip.as_deref(),
            user_agent: &session.record.user_agent,
        }
    }
}

pub async fn list(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.principal.require(Permission::Administer)?;
    let email = call.params.email("email")?;
    let found = sessions::list(&state, &call.principal, &UserRef::Email(email))?;
    let views: Vec<SessionView> = found.iter().map(SessionView::from).collect();
    success_with(json!({ "sessions": views }))
}

pub async fn revoke(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.principal.require(Permission::Administer)?;
    let email = call.params.email("email")?;
    let session_id = match call.params.optional("session_id") {
        None => None,
        Some(raw) => Some(parse_session_id(raw)?),
    };
    let user = UserRef::Email(email.clone());
    let ended = sessions::revoke(&state, &call.principal, user, session_id, None).await?;
    let noun = if ended == 1 { "session" } else { "sessions" };
    success_with(json!({
        "msg": format!("{ended} {noun} of user {email} revoked."),
        "revoked": ended,
    }))
}

fn parse_session_id(raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    if raw.len() == PUBLIC_ID_CHARS && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(ApiError::bad_request(
            "Parameter 'session_id' is not a valid session id.",
        ))
    }
}
