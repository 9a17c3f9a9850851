//! flock/*, flocks/list and the membership endpoints.

use crate::domain::Refusal;
use actix_web::web;
use serde_json::{Map, Value, json};

use super::caller::ApiCall;
use super::error::ApiError;
use super::stream::{scan_permit, stream_json};
use super::{ApiResult, success, success_msg, success_with};
use crate::domain::{FlockName, FlockRole, python_repr_list};
use crate::state::AppState;
use crate::store::Flock;

pub async fn list(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let email = call
        .params
        .optional("email")
        .map(|_| call.params.email("email"))
        .transpose()?;
    let bound = call.caller.bound_flock().cloned();
    if bound.is_some() && email.is_some() {
        return Err(ApiError::key_not_allowed());
    }
    let flocks = state
        .blocking(move |store| match (bound, email) {
            (Some(flock), _) => Ok(vec![store.flock(&flock)?]),
            (None, Some(email)) => store.flocks_visible_to(&email),
            (None, None) => store.list_flocks(),
        })
        .await?;
    success_with(json!({ "flocks": flock_map(&flocks) }))
}

fn flock_map(flocks: &[Flock]) -> Value {
    let map: Map<String, Value> = flocks
        .iter()
        .map(|flock| (flock.id.to_string(), Value::from(flock.name.clone())))
        .collect();
    Value::Object(map)
}

pub async fn create(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let name = call.params.parse("name", FlockName::parse)?;
    let managers = call.params.emails("managers", false)?;
    let watchers = call.params.emails("watchers", false)?;
    let flock = state
        .write(move |store| store.create_flock(name, &managers, &watchers))
        .await?;
    success_with(json!({ "flock_id": flock.id }))
}

pub async fn rename(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let flock_id = call.params.flock_id("flock_id")?;
    let name = call.params.parse("name", FlockName::parse)?;
    state
        .write(move |store| store.rename_flock(&flock_id, name))
        .await?;
    success()
}

pub async fn delete(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let flock_id = call.params.flock_id("flock_id")?;
    state
        .write(move |store| store.delete_flock(&flock_id))
        .await?;
    success()
}

/// `{"managers":[…],"result":"success","watchers":[…]}`, emails in order, streamed as the store
/// is read.
pub async fn users(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let flock_id = call.params.flock_id("flock_id")?;
    call.caller.require_flock_reader(&flock_id)?;
    if !state.read(|store| store.snapshot()?.flock_exists(&flock_id))? {
        return Err(crate::store::StoreError::Refused(Refusal::FlockNotFound).into());
    }
    let permit = scan_permit(&state)?;
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
    call.caller
        .require_membership_admin(std::slice::from_ref(&flock_id))?;
    let emails = call.params.emails("emails", true)?;
    state
        .write(move |store| store.replace_role_holders(&flock_id, role, &emails))
        .await?;
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
    let flocks = params.flock_ids("flock_id_list")?;
    let role = params.parse("flock_access_level", FlockRole::parse)?;
    call.caller.require_membership_admin(&flocks)?;
    let (target, ids) = (email.clone(), flocks.clone());
    state
        .write(move |store| {
            if assign {
                store.assign_role(&target, &ids, role)
            } else {
                store.unassign_role(&target, &ids, role)
            }
        })
        .await?;
    let done = if assign {
        "assigned to"
    } else {
        "unassigned from"
    };
    success_msg(format!(
        "User {email} successfully {done} {} flock(s) {}",
        role.as_str(),
        python_repr_list(&flocks)
    ))
}
