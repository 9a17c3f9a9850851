//! Probes for a container runtime or a load balancer: no key, no session, no data.
//! `/healthz` answers 200 while the process serves; `/readyz` answers 200 when the store answers
//! and its writer and the mail sender run, else 503 naming what is wrong.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match not_ready(&state) {
        None => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Some(reason) => HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "unavailable", "reason": reason })),
    }
}

/// Why the console can't do its work, if it can't.
fn not_ready(state: &AppState) -> Option<String> {
    if let Err(error) = state.read(|store| store.schema_version()) {
        tracing::warn!(
            "readiness: the store does not answer: {}",
            crate::error_chain::error_chain(&error)
        );
        return Some("the store does not answer".into());
    }
    if !state.store.writer_running() {
        return Some("the store's writer has stopped".into());
    }
    if !state.mail_sender.is_running() {
        return Some("the mail sender has stopped".into());
    }
    if !state.webhook_sender.is_running() {
        return Some("the webhook sender has stopped".into());
    }
    None
}
