//! Settings → Webhooks (admins only): the targets with their last deliveries, a form to add one,
//! and per target "send a test event" and "remove". Every form CSRF-protected and audited.

use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;
use serde::Deserialize;

use super::csrf::{CsrfForm, EmptyForm};
use super::error::WebError;
use super::page::{PageContext, PageResult, flash_success, ok, render, see_other};
use super::session::SignedIn;
use crate::service::webhooks::{self, BadWebhook, MIN_SECRET_CHARS};
use crate::state::AppState;
use crate::store::webhooks::WebhookFormat;
use crate::timestamps;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/settings/webhooks", web::get().to(show))
        .route("/settings/webhooks", web::post().to(add))
        .route(
            "/settings/webhooks/{id}/{action:test|remove}",
            web::post().to(act),
        );
}

struct DeliveryRow {
    at: String,
    action: String,
    attempts: u32,
    outcome: String,
    delivered: bool,
}

struct WebhookRow {
    id: u64,
    url: String,
    format: &'static str,
    actions: String,
    waiting: usize,
    deliveries: Vec<DeliveryRow>,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    page: PageContext,
    webhooks: Vec<WebhookRow>,
    error: Option<String>,
    allow_private: bool,
    min_secret: usize,
}

/// What the page shows of a target's URL: up to its path (a Slack or Teams URL's path is its
/// secret).
fn shown_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
            format!("{scheme}://{host}/…")
        }
        None => "…".to_string(),
    }
}

fn page(
    signed_in: &SignedIn,
    state: &AppState,
    error: Option<String>,
) -> Result<WebhooksPage, WebError> {
    let all = webhooks::list(state, &signed_in.principal)?;
    Ok(WebhooksPage {
        page: PageContext::signed_in(signed_in, "Webhooks"),
        webhooks: all
            .into_iter()
            .map(|(webhook, log, waiting)| WebhookRow {
                id: webhook.id,
                url: shown_url(&webhook.url),
                format: webhook.format.as_str(),
                actions: if webhook.actions.is_empty() {
                    "every change".to_string()
                } else {
                    webhook.actions.join(", ")
                },
                waiting,
                deliveries: log
                    .into_iter()
                    .map(|record| DeliveryRow {
                        at: timestamps::console_second(record.at),
                        action: record.action,
                        attempts: record.attempts,
                        outcome: record.outcome,
                        delivered: record.delivered,
                    })
                    .collect(),
            })
            .collect(),
        error,
        allow_private: state.webhooks_allow_private,
        min_secret: MIN_SECRET_CHARS,
    })
}

async fn show(signed_in: SignedIn, state: web::Data<AppState>) -> PageResult {
    signed_in.require_admin()?;
    ok(&page(&signed_in, &state, None)?)
}

#[derive(Deserialize)]
struct AddForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    actions: String,
    #[serde(default)]
    secret: String,
}

async fn add(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<AddForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let refuse = |error: String| -> PageResult {
        render(
            StatusCode::BAD_REQUEST,
            &page(&signed_in, &state, Some(error))?,
        )
    };
    let Some(format) = WebhookFormat::parse(&form.format) else {
        return refuse("Format: choose generic, slack or teams.".into());
    };
    let actions: Vec<String> = form
        .actions
        .split(',')
        .map(str::trim)
        .filter(|action| !action.is_empty())
        .map(str::to_string)
        .collect();
    let added = webhooks::add(
        &state,
        &signed_in.principal,
        form.url.trim().to_string(),
        format,
        actions,
        form.secret,
    )
    .await?;
    match added {
        Ok(webhook) => {
            flash_success(
                &signed_in.session,
                format!(
                    "Webhook {} added: it is sent the events from now on.",
                    webhook.id
                ),
            );
            Ok(see_other("/settings/webhooks"))
        }
        Err(BadWebhook::Target(error)) => refuse(format!("URL: {error}.")),
        Err(BadWebhook::UnknownAction(action)) => refuse(format!(
            "Actions: '{action}' is not an action type of the audit trail."
        )),
        Err(BadWebhook::ShortSecret) => refuse(format!(
            "Secret: at least {MIN_SECRET_CHARS} characters (the receiver checks signatures with it)."
        )),
    }
}

async fn act(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let (id, action) = path.into_inner();
    let id: u64 = id.parse().map_err(|_| WebError::NotFound)?;
    let who = &signed_in.principal;
    if action == "test" {
        webhooks::send_test(&state, who, id).await?;
        flash_success(
            &signed_in.session,
            format!("A test event is on its way to webhook {id}."),
        );
    } else {
        webhooks::remove(&state, who, id).await?;
        flash_success(&signed_in.session, format!("Webhook {id} removed."));
    }
    Ok(see_other("/settings/webhooks"))
}
