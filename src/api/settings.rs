//! ping and settings/*.

use actix_web::web;
use serde_json::json;

use super::caller::ApiCall;
use super::{ApiResult, success, success_with};
use crate::state::AppState;

pub async fn ping(_call: ApiCall) -> ApiResult {
    success()
}

pub async fn get(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_global_reader()?;
    let settings = state.read(|store| store.settings())?;
    success_with(json!({
        "settings": {
            "globally_enforce_2fa": settings.globally_enforce_2fa,
            "api_enabled": settings.api_enabled,
        }
    }))
}

pub async fn enforce_2fa_enable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    set_enforce_2fa(call, state, true).await
}

pub async fn enforce_2fa_disable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    set_enforce_2fa(call, state, false).await
}

async fn set_enforce_2fa(call: ApiCall, state: web::Data<AppState>, on: bool) -> ApiResult {
    call.caller.require_admin()?;
    state
        .write(move |store| store.update_settings(|s| s.globally_enforce_2fa = on))
        .await?;
    success()
}

/// Turns the whole API off. Only an admin in the browser console can turn it back on.
pub async fn api_disable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    state
        .write(|store| store.update_settings(|s| s.api_enabled = false))
        .await?;
    log::warn!("API access disabled by {}", call.caller.creator());
    success()
}
