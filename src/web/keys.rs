//! Global API keys (admins only): list, create, revoke. A new key's secret appears once, on the
//! page that answers the create form, and never in the session, a flash or a later page.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, PRAGMA};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::csrf::{CsrfForm, EmptyForm};
use super::error::WebError;
use super::page::{PageContext, PageResult, flash_error, flash_success, ok, render, see_other};
use super::session::SignedIn;
use crate::auth::api_keys::IssuedKey;
use crate::domain::{ApiKeyType, Note, Refusal};
use crate::service::{ServiceError, api_keys};
use crate::state::AppState;
use crate::store::ApiKeyRecord;
use crate::timestamps;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api-keys", web::get().to(list))
        .route("/api-keys", web::post().to(create))
        .route("/api-keys/{key_id}/revoke", web::post().to(revoke));
}

/// A key as the lists show it: everything but the secret, which is not stored anyway.
pub struct KeyRow {
    pub key_id: String,
    pub key_type: &'static str,
    pub note: String,
    pub created: String,
    pub created_by: String,
    pub last_used: String,
}

impl From<&ApiKeyRecord> for KeyRow {
    fn from(key: &ApiKeyRecord) -> KeyRow {
        KeyRow {
            key_id: key.key_id.clone(),
            key_type: key.scope.type_name(),
            note: key.note.clone(),
            created: timestamps::console_minute(key.created),
            created_by: key.created_by.clone(),
            last_used: key
                .last_used
                .map(timestamps::console_minute)
                .unwrap_or_else(|| "never".to_string()),
        }
    }
}

/// What the key form sent back, so an error page can show it again.
#[derive(Default)]
pub struct KeyFormState {
    pub key_type: String,
    pub note: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "keys/list.html")]
struct KeysPage {
    page: PageContext,
    keys: Vec<KeyRow>,
    form: KeyFormState,
}

async fn keys_page(
    signed_in: &SignedIn,
    state: &AppState,
    form: KeyFormState,
) -> Result<KeysPage, WebError> {
    let keys = state.blocking(|store| store.global_api_keys()).await?;
    Ok(KeysPage {
        page: PageContext::signed_in(signed_in, "API keys"),
        keys: keys.iter().map(KeyRow::from).collect(),
        form,
    })
}

async fn list(signed_in: SignedIn, state: web::Data<AppState>) -> PageResult {
    signed_in.require_admin()?;
    ok(&keys_page(&signed_in, &state, KeyFormState::default()).await?)
}

#[derive(Deserialize)]
pub struct KeyForm {
    pub auth_token_type: String,
    #[serde(default)]
    pub note: String,
}

/// The note of a key form, or the message for the form.
pub fn parse_note(raw: &str) -> Result<Note, String> {
    Note::parse(raw.trim()).map_err(|error| format!("Note: {error}"))
}

async fn create(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<KeyForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let parsed = ApiKeyType::parse(&form.auth_token_type)
        .map_err(|_| "Type: choose admin, analyst or read-only.".to_string())
        .and_then(|key_type| Ok((key_type, parse_note(&form.note)?)));
    let (key_type, note) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let form = KeyFormState {
                key_type: form.auth_token_type,
                note: form.note,
                error: Some(error),
            };
            let page = keys_page(&signed_in, &state, form).await?;
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    let issued = api_keys::create_global(&state, &signed_in.principal, key_type, note).await?;
    tracing::info!(
        "global {} API key {} created by {}",
        issued.record.scope.type_name(),
        issued.record.key_id,
        signed_in.user.email
    );
    let page = KeyCreatedPage::new(&signed_in, &issued, None, "/api-keys".to_string());
    no_store(StatusCode::OK, &page)
}

async fn revoke(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let key_id = path.into_inner();
    match api_keys::revoke_global(&state, &signed_in.principal, key_id.clone()).await {
        Ok(_) => {
            tracing::info!(
                "global API key {key_id} revoked by {}",
                signed_in.user.email
            );
            flash_success(&signed_in.session, format!("API key {key_id} revoked."));
        }
        Err(ServiceError::Refused(Refusal::ApiKeyNotFound)) => {
            flash_error(
                &signed_in.session,
                format!("API key {key_id} does not exist (already revoked?)."),
            );
        }
        Err(error) => return Err(error.into()),
    }
    Ok(see_other("/api-keys"))
}

/// The one page that ever shows a key's secret.
#[derive(Template)]
#[template(path = "keys/created.html")]
pub struct KeyCreatedPage {
    page: PageContext,
    key: KeyRow,
    token: String,
    /// `(id, name)` of the flock a flock key is bound to.
    flock: Option<(String, String)>,
    back: String,
}

impl KeyCreatedPage {
    pub fn new(
        signed_in: &SignedIn,
        issued: &IssuedKey,
        flock: Option<(String, String)>,
        back: String,
    ) -> KeyCreatedPage {
        KeyCreatedPage {
            page: PageContext::signed_in(signed_in, "API key created"),
            key: KeyRow::from(&issued.record),
            token: issued.token.clone(),
            flock,
            back,
        }
    }
}

/// Renders a page that shows a secret: no browser or proxy cache may keep it, so Back or a shared
/// machine's history can't bring it up again.
pub fn no_store(status: StatusCode, page: &impl Template) -> Result<HttpResponse, WebError> {
    let mut response = render(status, page)?;
    let headers = response.headers_mut();
    headers.insert(
        CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        PRAGMA,
        actix_web::http::header::HeaderValue::from_static("no-cache"),
    );
    Ok(response)
}
