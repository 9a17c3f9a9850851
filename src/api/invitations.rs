//! `invite/create`, `invites/list`, `invite/revoke`: invitation links (admin keys only).

use actix_web::web;
use serde_json::{Value, json};

use super::caller::ApiCall;
use super::error::ApiError;
use super::params::Params;
use super::{ApiResult, success_with};
use crate::domain::{AccessLevel, FlockId};
use crate::service::invitations::{self, BadRequest, InvitationRequest, MAX_DAYS, MAX_USES};
use crate::state::AppState;
use crate::store::Invitation;
use crate::timestamps::rfc3339;

/// An optional list of flock ids (absent or empty: none).
fn flock_list(params: &Params, name: &str) -> Result<Vec<FlockId>, ApiError> {
    match params.optional(name).map(str::trim) {
        None | Some("") => Ok(Vec::new()),
        Some(_) => params.flock_ids(name),
    }
}

pub async fn create(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let params = &call.params;
    let access_level = params
        .parse_optional("access_level", AccessLevel::parse)?
        .unwrap_or(AccessLevel::User);
    let max_uses = match params.optional("max_uses") {
        None => 1,
        Some(raw) => raw.trim().parse::<u32>().map_err(|_| uses_error())?,
    };
    let request = InvitationRequest {
        access_level,
        managed_flocks: flock_list(params, "manager_flocks")?,
        watched_flocks: flock_list(params, "watcher_flocks")?,
        expires_at: params.optional_time("expires_at")?,
        max_uses,
        email_domain: params.optional("email_domain").map(str::to_string),
    };
    let created = invitations::create(&state, &call.principal, request)
        .await?
        .map_err(|bad| match bad {
            BadRequest::ExpiresTooLate => ApiError::bad_request(format!(
                "Parameter 'expires_at' must be within {MAX_DAYS} days."
            )),
            BadRequest::Uses => uses_error(),
            BadRequest::Domain => ApiError::bad_request(
                "Parameter 'email_domain' is not a valid domain (e.g. example.com).",
            ),
            BadRequest::BothRoles(flock) => ApiError::bad_request(format!(
                "Flock {flock} is in both 'manager_flocks' and 'watcher_flocks'."
            )),
        })?;
    let mut view = invitation_view(&created.invitation, state.clock.now());
    if let Value::Object(fields) = &mut view {
        fields.insert("link".into(), Value::from(created.link));
    }
    success_with(json!({
        "msg": "Invitation successfully created. The link is shown this once.",
        "invitation": view,
    }))
}

fn uses_error() -> ApiError {
    ApiError::bad_request(format!(
        "Parameter 'max_uses' must be a whole number from 1 to {MAX_USES}."
    ))
}

pub async fn list(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let all = invitations::list(&state, &call.principal)?;
    let now = state.clock.now();
    success_with(json!({
        "invitations": all.iter().map(|invitation| invitation_view(invitation, now)).collect::<Vec<_>>(),
    }))
}

pub async fn revoke(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let id = call.params.non_empty("id")?.to_string();
    let revoked = invitations::revoke(&state, &call.principal, id).await?;
    success_with(json!({
        "msg": format!("Invitation {} successfully revoked.", revoked.id),
        "invitation": invitation_view(&revoked, state.clock.now()),
    }))
}

/// An invitation without its link (which is never stored).
fn invitation_view(invitation: &Invitation, now: u64) -> Value {
    json!({
        "id": invitation.id,
        "state": invitation.state(now),
        "access_level": invitation.access_level.as_str(),
        "manager_flocks": invitation.managed_flocks,
        "watcher_flocks": invitation.watched_flocks,
        "email_domain": invitation.email_domain,
        "max_uses": invitation.max_uses,
        "uses": invitation.uses.iter().map(|used| json!({
            "email": used.email,
            "at": rfc3339(used.at),
        })).collect::<Vec<_>>(),
        "created": rfc3339(invitation.created),
        "created_by": invitation.created_by,
        "expires_at": rfc3339(invitation.expires_at),
    })
}
