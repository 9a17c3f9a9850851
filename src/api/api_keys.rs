//! auth_token/* and flock/auth_token/*: API keys. A key's secret is in the response of the call
//! that creates it and nowhere else.

use actix_web::web;
use serde_json::json;

use super::caller::ApiCall;
use super::views::ApiKeyView;
use super::{ApiResult, success, success_with};
use crate::domain::{ApiKeyType, FlockKeyType, Note};
use crate::service::api_keys;
use crate::state::AppState;
use crate::timestamps;

pub async fn add(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let key_type = call.params.parse("auth_token_type", ApiKeyType::parse)?;
    let note = call.params.parse("note", Note::parse)?;
    let issued = api_keys::create_global(&state, &call.principal, key_type, note).await?;
    let key = &issued.record;
    success_with(json!({
        "global_api_key": {
            "auth_token": issued.token,
            "auth_token_type": key.scope.type_name(),
            "created": timestamps::rfc3339(key.created),
            "created_by": key.created_by,
            "key_id": key.key_id,
            "note": key.note,
        }
    }))
}

pub async fn list(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let keys = api_keys::list_global(&state, &call.principal).await?;
    let views: Vec<ApiKeyView> = keys.iter().map(ApiKeyView::from).collect();
    success_with(json!({ "global_api_keys": views }))
}

pub async fn remove(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let key_id = call.params.non_empty("key_id")?.to_string();
    api_keys::revoke_global(&state, &call.principal, key_id).await?;
    success()
}

pub async fn flock_add(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let flock_id = call.params.flock_id("flock_id")?;
    let note = call.params.parse("note", Note::parse)?;
    let key_type = call
        .params
        .parse_optional("auth_token_type", FlockKeyType::parse)?
        .unwrap_or(FlockKeyType::Admin);
    let issued =
        api_keys::create_for_flock(&state, &call.principal, flock_id, key_type, note).await?;
    let key = &issued.record;
    success_with(json!({
        "flock_api_key": {
            "auth_token": issued.token,
            "auth_token_type": key.scope.type_name(),
            "flock_id": key.scope.flock_id(),
            "key_id": key.key_id,
            "note": key.note,
            "created": timestamps::rfc3339(key.created),
            "created_by": key.created_by,
        }
    }))
}

pub async fn flock_list(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let flock_id = call.params.flock_id("flock_id")?;
    let keys = api_keys::list_for_flock(&state, &call.principal, flock_id).await?;
    let views: Vec<ApiKeyView> = keys.iter().map(ApiKeyView::from).collect();
    success_with(json!({ "flock_api_keys": views }))
}

pub async fn flock_remove(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let key_id = call.params.non_empty("key_id")?.to_string();
    api_keys::revoke_flock_key(&state, &call.principal, key_id, None).await?;
    success()
}
