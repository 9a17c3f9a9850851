//! Who is calling: the API key behind the request, as a `Principal`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};

use super::error::ApiError;
use super::params::Params;
use crate::auth::api_keys;
use crate::service::{Principal, Who};
use crate::state::AppState;

pub const AUTH_HEADER: &str = "X-Canary-Auth-Token";

/// An authenticated API call: its parameters and who calls (the key, from where). Extracting it
/// refuses the request when the API is disabled, the body is unacceptable or the key is not
/// valid. What the key may do is decided by the service it calls.
pub struct ApiCall {
    pub params: Params,
    pub principal: Principal,
}

impl FromRequest for ApiCall {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<ApiCall, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move { authenticate(&req, payload).await })
    }
}

async fn authenticate(req: &HttpRequest, payload: Payload) -> Result<ApiCall, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal("AppState missing from the app"))?
        .clone();
    let settings = state.read(|store| store.settings())?;
    if !settings.api_enabled {
        return Err(ApiError::forbidden("API access is disabled"));
    }
    // A key in the header or the query string is checked before the body is read: a body
    // costs the server time and memory, and only a caller with a key may make it wait for one.
    let mut params = Params::from_query(req)?;
    let mut payload = Some(payload);
    let header_token = req
        .headers()
        .get(AUTH_HEADER)
        .map(|value| value.to_str().unwrap_or("").to_string());
    let query_token = params.optional("auth_token").map(str::to_string);
    let (token, refusal) = match (header_token, query_token) {
        (Some(token), _) => (token, "Unauthorized"),
        (None, Some(token)) => (token, "Invalid auth_token"),
        (None, None) => {
            if let Some(payload) = payload.take() {
                params.read_body(req, payload).await?;
            }
            let token = params.optional("auth_token").unwrap_or("").to_string();
            (token, "Invalid auth_token")
        }
    };
    let refuse = || ApiError::new(StatusCode::UNAUTHORIZED, refusal);
    if token.trim().is_empty() {
        return Err(refuse());
    }
    let found = state.read(move |store| api_keys::authenticate(store, &token))?;
    if let Some(key) = found {
        // `last_used` is rewritten at most once a minute: reads don't each cost a write.
        if key.last_used_is_stale(crate::store::now_unix()) {
            let used = key.clone();
            state
                .write(move |store| store.touch_api_key(&used, crate::store::now_unix()))
                .await?;
        }
        if let Some(payload) = payload.take() {
            params.read_body(req, payload).await?;
        }
        let who = Who::ApiKey {
            key_id: key.key_id,
            note: key.note,
            scope: key.scope,
        };
        return Ok(ApiCall {
            params,
            principal: Principal::new(who, state.origin(req)),
        });
    }
    // A valid key is never slowed down; an address that keeps presenting bad ones is. Guessing a
    // 256-bit secret is hopeless anyway: the limit keeps such clients from flooding the logs.
    let Some(client) = state.client_address(req) else {
        return Err(refuse());
    };
    let now = crate::store::now_unix();
    if let Some(seconds) = state.api_auth_failures.retry_after(&client, now) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed authentication attempts. Try again in {seconds} s."),
        ));
    }
    state.api_auth_failures.record_failure(&client, now);
    Err(refuse())
}
