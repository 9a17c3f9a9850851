//! flock/*, flocks/list and the membership endpoints.

use actix_web::web;
use serde_json::{Map, Value, json};

use super::caller::ApiCall;
use super::error::ApiError;
use super::users::lists_busy;
use super::{ApiResult, success, success_msg, success_with};
use crate::domain::{FlockName, FlockRole, python_repr_list};
use crate::service::flocks;
use crate::state::AppState;
use crate::store::{Flock, UserRef};
use crate::stream::{scan_permit, stream_json};

/// `flocks`: every flock for a global key; a flock key's own flock; with `email`, the flocks that
/// user may view (global keys only).
pub async fn list(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let email = call
        .params
        .optional("email")
        .map(|_| call.params.email("email"))
        .transpose()?;
    if call.principal.bound_flock().is_some() && email.is_some() {
        return Err(ApiError::key_not_allowed());
    }
    let visible = flocks::visible(&state, &call.principal, email.as_ref())?;
    success_with(json!({ "flocks": flock_map(&visible) }))
}

fn flock_map(flocks: &[Flock]) -> Value {
    let map: Map<String, Value> = flocks
        .iter()
        .map(|flock| (flock.id.to_string(), Value::from(flock.name.clone())))
        .collect();
    Value::Object(map)
}

pub async fn create(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let name = call.params.parse("name", FlockName::parse)?;
    let managers = call.params.emails("managers", false)?;
    let watchers = call.params.emails("watchers", false)?;
    let flock = flocks::create(&state, &call.principal, name, managers, watchers).await?;
    success_with(json!({ "flock_id": flock.id }))
}

pub async fn rename(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let flock_id = call.params.flock_id("flock_id")?;
    let name = call.params.parse("name", FlockName::parse)?;
    flocks::rename(&state, &call.principal, flock_id, name).await?;
    success()
}

pub async fn delete(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let flock_id = call.params.flock_id("flock_id")?;
    flocks::delete(&state, &call.principal, flock_id).await?;
    success()
}

/// `{"managers":[…],"result":"success","watchers":[…]}`, emails in order, streamed as the store
/// is read.
pub async fn users(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let flock_id = call.params.flock_id("flock_id")?;
    flocks::require_exists(&state, &call.principal, &flock_id)?;
    let permit = scan_permit(&state).ok_or_else(lists_busy)?;
    Ok(stream_json(&state, permit, move |store, out| {
        let snapshot = store.snapshot()?;
        out.raw("{")?;
        out.open_list("managers")?;
        snapshot.visit_flock_members(&flock_id, FlockRole::Manager, None, |_, email| {
            out.element(&email.as_str())
        })?;
        out.close_list()?;
        out.raw(r#","result":"success","#)?;
        out.open_list("watchers")?;
        snapshot.visit_flock_members(&flock_id, FlockRole::Watcher, None, |_, email| {
            out.element(&email.as_str())
        })?;
        out.close_list()?;
        out.raw("}")
    }))
}

pub async fn assign_managers(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    replace_role_holders(call, state, FlockRole::Manager).await
}

pub async fn assign_watchers(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    replace_role_holders(call, state, FlockRole::Watcher).await
}

async fn replace_role_holders(
    call: ApiCall,
    state: web::Data<AppState>,
    role: FlockRole,
) -> ApiResult {
    let flock_id = call.params.flock_id("flock_id")?;
    let emails = call.params.emails("emails", true)?;
    flocks::replace_holders(&state, &call.principal, flock_id, role, emails).await?;
    success()
}

pub async fn user_assign(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    change_user_roles(call, state, true).await
}

pub async fn user_unassign(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    change_user_roles(call, state, false).await
}

async fn change_user_roles(call: ApiCall, state: web::Data<AppState>, assign: bool) -> ApiResult {
    let params = &call.params;
    let email = params.email("email")?;
    let flock_ids = params.flock_ids("flock_id_list")?;
    let role = params.parse("flock_access_level", FlockRole::parse)?;
    let user = UserRef::Email(email.clone());
    let listed = python_repr_list(&flock_ids);
    let done = if assign {
        let until = call.params.optional_time("expires_at")?;
        flocks::assign(&state, &call.principal, user, flock_ids, role, until).await?;
        "assigned to"
    } else {
        flocks::unassign(&state, &call.principal, user, flock_ids, role).await?;
        "unassigned from"
    };
    success_msg(format!(
        "User {email} successfully {done} {} flock(s) {listed}",
        role.as_str(),
    ))
}
