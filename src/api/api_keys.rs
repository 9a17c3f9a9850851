//! auth_token/* and flock/auth_token/*: API keys. A key's secret is in the response of the call
//! that creates it and nowhere else.

use actix_web::web;
use serde_json::json;

use super::caller::ApiCall;
use super::views::{ApiKeyView, timestamp};
use super::{ApiResult, success, success_with};
use crate::auth::api_keys;
use crate::domain::{ApiKeyType, FlockKeyType};
use crate::state::AppState;
use crate::store::ApiKeyScope;

pub async fn add(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let key_type = call.params.parse("auth_token_type", ApiKeyType::parse)?;
    let note = call.params.required("note")?.to_string();
    let creator = call.caller.creator();
    let issued = state.read(move |store| {
        api_keys::issue(store, ApiKeyScope::Global { key_type }, &note, &creator)
    })?;
    let key = &issued.record;
    success_with(json!({
        "global_api_key": {
            "auth_token": issued.token,
            "auth_token_type": key.scope.type_name(),
            "created": timestamp(key.created),
            "created_by": key.created_by,
            "key_id": key.key_id,
            "note": key.note,
        }
    }))
}

pub async fn list(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_global_reader()?;
    let keys = state.blocking(|store| store.global_api_keys()).await?;
    let views: Vec<ApiKeyView> = keys.iter().map(ApiKeyView::from).collect();
    success_with(json!({ "global_api_keys": views }))
}

pub async fn remove(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let key_id = call.params.non_empty("key_id")?.to_string();
    state
        .write(move |store| store.remove_api_key(&key_id, false))
        .await?;
    success()
}

pub async fn flock_add(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let flock_id = call.params.flock_id("flock_id")?;
    let note = call.params.required("note")?.to_string();
    let key_type = call
        .params
        .parse_optional("auth_token_type", FlockKeyType::parse)?
        .unwrap_or(FlockKeyType::Admin);
    let creator = call.caller.creator();
    let issued = state
        .write(move |store| api_keys::issue_flock_key(store, flock_id, key_type, &note, &creator))
        .await?;
    let key = &issued.record;
    success_with(json!({
        "flock_api_key": {
            "auth_token": issued.token,
            "auth_token_type": key.scope.type_name(),
            "flock_id": key.scope.flock_id(),
            "key_id": key.key_id,
            "note": key.note,
            "created": timestamp(key.created),
            "created_by": key.created_by,
        }
    }))
}

pub async fn flock_list(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_global_reader()?;
    let flock_id = call.params.flock_id("flock_id")?;
    let keys = state
        .blocking(move |store| store.flock_api_keys(&flock_id))
        .await?;
    let views: Vec<ApiKeyView> = keys.iter().map(ApiKeyView::from).collect();
    success_with(json!({ "flock_api_keys": views }))
}

pub async fn flock_remove(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let key_id = call.params.non_empty("key_id")?.to_string();
    state
        .write(move |store| store.remove_api_key(&key_id, true))
        .await?;
    success()
}
