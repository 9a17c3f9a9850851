//! ping and settings/*.

use actix_web::web;
use serde_json::json;

use super::caller::ApiCall;
use super::{ApiResult, success, success_with};
use crate::service::settings;
use crate::state::AppState;

pub async fn ping(_call: ApiCall) -> ApiResult {
    success()
}

pub async fn get(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let settings = settings::get(&state, &call.principal)?;
    success_with(json!({
        "settings": {
            "globally_enforce_2fa": settings.globally_enforce_2fa,
            "api_enabled": settings.api_enabled,
            "passwordless_sign_in": settings.passwordless_sign_in,
        }
    }))
}

pub async fn enforce_2fa_enable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    settings::enforce_2fa(&state, &call.principal, true).await?;
    success()
}

pub async fn enforce_2fa_disable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    settings::enforce_2fa(&state, &call.principal, false).await?;
    success()
}

pub async fn passwordless_enable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    settings::passwordless_sign_in(&state, &call.principal, true).await?;
    success()
}

/// Answers who is left without a way in (no password, passkey only): they need a reset link.
pub async fn passwordless_disable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    settings::passwordless_sign_in(&state, &call.principal, false).await?;
    let stranded = settings::passkey_only_users(&state, &call.principal).await?;
    success_with(json!({
        "passkey_only_users": {
            "total": stranded.len(),
            "emails": stranded.iter().take(STRANDED_LISTED).map(|e| e.to_string()).collect::<Vec<_>>(),
        }
    }))
}

/// How many of the users a forbidden passwordless sign-in strands an answer names.
pub const STRANDED_LISTED: usize = 100;

/// Turns the whole API off. Only an admin in the browser console can turn it back on.
pub async fn api_disable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    settings::api_access(&state, &call.principal, false).await?;
    tracing::warn!("API access disabled by {}", call.principal.name());
    success()
}
