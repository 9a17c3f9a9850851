//! `GET /metrics`: who may read it, and the answer.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use actix_web::{HttpRequest, HttpResponse, web};
use prometheus::{Encoder, TextEncoder};

use super::Sources;
use crate::state::AppState;

/// Who may read `/metrics` on a listener.
#[derive(Clone)]
pub enum MetricsAccess {
    /// Not served here.
    Off,
    /// Anyone who reaches the listener (`--metrics-bind` without a token).
    Open,
    /// `Authorization: Bearer` with this token.
    /// (Kept as given: it is compared in constant time and never logged.)
    Token(Arc<str>),
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(serve));
}

async fn serve(
    req: HttpRequest,
    state: web::Data<AppState>,
    access: web::Data<MetricsAccess>,
) -> HttpResponse {
    match access.get_ref() {
        MetricsAccess::Off => {
            return failure(
                StatusCode::NOT_FOUND,
                "metrics are off: start Roost with --metrics-token or --metrics-bind",
            );
        }
        MetricsAccess::Open => {}
        MetricsAccess::Token(token) => {
            let presented = req
                .headers()
                .get(AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "));
            if !presented.is_some_and(|presented| crate::auth::constant_time_eq(presented, token)) {
                let mut refused = failure(
                    StatusCode::UNAUTHORIZED,
                    "metrics need the header Authorization: Bearer <the --metrics-token>",
                );
                refused.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"roost metrics\""),
                );
                return refused;
            }
        }
    }
    let state = state.into_inner();
    let store = state.store.clone();
    // Counting users and sessions reads the store: off the async workers.
    let rendered = store
        .off_async(move |store| {
            let sources = Sources {
                store,
                hasher: &state.hasher,
                data_dir: &state.data_dir,
            };
            Ok::<_, crate::store::StoreError>(state.metrics.render(&sources))
        })
        .await
        .map_err(|error| error.to_string())
        .and_then(|rendered| rendered);
    match rendered {
        Ok(text) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, TextEncoder::new().format_type()))
            .body(text),
        Err(error) => {
            tracing::error!("rendering metrics failed: {error}");
            failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "metrics are unavailable right now: the store did not answer",
            )
        }
    }
}

fn failure(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({
        "result": "failure",
        "message": message,
    }))
}
