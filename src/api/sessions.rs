//! user/sessions and user/sessions/revoke: a user's console sessions (Roost extension, global
//! admin keys only).

use actix_web::http::StatusCode;
use actix_web::web;
use serde::Serialize;
use serde_json::json;

use super::caller::ApiCall;
use super::error::ApiError;
use super::views::timestamp;
use super::{ApiResult, success_with};
use crate::state::AppState;
use crate::store::{PUBLIC_ID_CHARS, StoredSession};

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
            created: timestamp(session.record.created),
            last_seen: timestamp(session.record.last_seen),
            ip: session.record.ip.as_deref(),
            user_agent: &session.record.user_agent,
        }
    }
}

pub async fn list(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let email = call.params.email("email")?;
    let sessions = state.read(move |store| {
        let user = store.user_by_email(&email)?.user;
        store.sessions_of(user.id)
    })?;
    let views: Vec<SessionView> = sessions.iter().map(SessionView::from).collect();
    success_with(json!({ "sessions": views }))
}

pub async fn revoke(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let email = call.params.email("email")?;
    let session_id = match call.params.optional("session_id") {
        None => None,
        Some(raw) => Some(parse_session_id(raw)?),
    };
    let target = email.clone();
    let one = session_id.is_some();
    let ended = state
        .write(move |store| {
            let user = store.user_by_email(&target)?.user;
            store.end_sessions_of(user.id, session_id.as_deref(), None)
        })
        .await?;
    if one && ended == 0 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "Session does not exist.",
        ));
    }
    let sessions = if ended == 1 { "session" } else { "sessions" };
    success_with(json!({
        "msg": format!("{ended} {sessions} of user {email} revoked."),
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
