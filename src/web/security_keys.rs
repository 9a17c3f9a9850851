//! Security keys and passkeys (WebAuthn): registering, renaming and removing them from the
//! account, using one at the factor step of login, and signing in with a passkey alone. The
//! ceremony endpoints speak JSON to static/webauthn.js and take their CSRF token from a header.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::csrf::{self, CsrfForm, EmptyForm};
use super::error::{WebError, refusal_message};
use super::login::anonymous;
use super::next::same_site_path;
use super::page::{PageResult, flash_error, flash_success, see_other};
use super::session::{self, SignedIn};
use super::two_factor::{pending_principal, pending_user};
use crate::auth::random_hex;
use crate::auth::webauthn::{Ceremony, require_discoverable, user_handle, without_autofill};
use crate::domain::{Refusal, Secret};
use crate::service::ServiceError;
use crate::service::account;
use crate::service::sign_in::{self, FactorProof, PasskeyCheck, PasskeyStartCheck};
use crate::state::AppState;
use crate::store::{CredentialKind, FactorOutcome, WebauthnCredential, now_unix};

const CEREMONY_KEY: &str = "webauthn_ceremony";
const MAX_NAME_CHARS: usize = 64;
/// Ceremony messages are small; anything bigger is not from a browser.
const MAX_JSON_BYTES: usize = 64 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    let json = || {
        web::JsonConfig::default()
            .limit(MAX_JSON_BYTES)
            .error_handler(|error, _| {
                let (status, message) = match &error {
                    actix_web::error::JsonPayloadError::Payload(payload)
                        if crate::request_limits::is_body_timeout(payload) =>
                    {
                        (
                            StatusCode::REQUEST_TIMEOUT,
                            "The request did not arrive in time.",
                        )
                    }
                    actix_web::error::JsonPayloadError::Overflow { .. }
                    | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => {
                        (StatusCode::PAYLOAD_TOO_LARGE, "The request is too large.")
                    }
                    _ => (StatusCode::BAD_REQUEST, "The request could not be read."),
                };
                let mut response = json_error(status, message);
                if status == StatusCode::REQUEST_TIMEOUT {
                    response
                        .head_mut()
                        .set_connection_type(actix_web::http::ConnectionType::Close);
                }
                actix_web::error::InternalError::from_response(error, response).into()
            })
    };
    cfg.service(
        web::resource("/account/two-factor/webauthn/register/start")
            .app_data(json())
            .route(web::post().to(register_start)),
    )
    .service(
        web::resource("/account/two-factor/webauthn/register/finish")
            .app_data(json())
            .route(web::post().to(register_finish)),
    )
    .route(
        "/account/two-factor/webauthn/{id}/rename",
        web::post().to(rename),
    )
    .route(
        "/account/two-factor/webauthn/{id}/delete",
        web::post().to(delete),
    )
    .service(
        web::resource("/login/two-factor/webauthn/start")
            .app_data(json())
            .route(web::post().to(login_start)),
    )
    .service(
        web::resource("/login/two-factor/webauthn/finish")
            .app_data(json())
            .route(web::post().to(login_finish)),
    )
    .service(
        web::resource("/login/passkey/start")
            .app_data(json())
            .route(web::post().to(passkey_start)),
    )
    .service(
        web::resource("/login/passkey/finish")
            .app_data(json())
            .route(web::post().to(passkey_finish)),
    );
}

/// What is wrong with a (non-empty) name for a key, if anything: registering and renaming keep
/// the same rules.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.chars().any(char::is_control) {
        Some("Name: no control characters.")
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some("Name: at most 64 characters.")
    } else {
        None
    }
}

fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message }))
}

fn unavailable() -> HttpResponse {
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Security keys need the console to be served under a domain name (its base URL).",
    )
}

fn take_ceremony(session: &Session, state: &AppState) -> Option<Ceremony> {
    let id = session.remove_as::<String>(CEREMONY_KEY)?.ok()?;
    state.webauthn_ceremonies.take(&id)
}

fn keep_ceremony(session: &Session, state: &AppState, ceremony: Ceremony) -> Result<(), WebError> {
    let id = state.webauthn_ceremonies.insert(ceremony);
    session.insert(CEREMONY_KEY, id).map_err(WebError::internal)
}

// ---- registration ----

#[derive(Deserialize)]
pub struct RegisterStart {
    #[serde(default)]
    name: String,
    /// `security_key` (the default: a second factor) or `passkey` (signs in on its own).
    #[serde(default)]
    kind: Option<String>,
}

async fn register_start(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    body: web::Json<RegisterStart>,
) -> PageResult {
    csrf::verify_header(&req)?;
    let Some(webauthn) = state.webauthn.clone() else {
        return Ok(unavailable());
    };
    let kind = match body.kind.as_deref() {
        None | Some("security_key") => CredentialKind::SecurityKey,
        Some("passkey") => CredentialKind::Passkey,
        Some(_) => {
            return Ok(json_error(
                StatusCode::BAD_REQUEST,
                "Kind: 'security_key' or 'passkey'.",
            ));
        }
    };
    let name = body.name.trim();
    let name = match (name.is_empty(), kind) {
        (false, _) => name,
        (true, CredentialKind::SecurityKey) => "Security key",
        (true, CredentialKind::Passkey) => "Passkey",
    };
    if let Some(problem) = name_problem(name) {
        return Ok(json_error(StatusCode::BAD_REQUEST, problem));
    }
    let user = &signed_in.user;
    let exclude = user
        .webauthn_credentials
        .iter()
        .map(|c| c.passkey.expose().cred_id().clone())
        .collect();
    let (mut challenge, registration) = webauthn
        .start_passkey_registration(
            user_handle(user.id),
            user.email.as_str(),
            user.email.as_str(),
            Some(exclude),
        )
        .map_err(WebError::internal)?;
    if kind == CredentialKind::Passkey {
        require_discoverable(&mut challenge);
    }
    keep_ceremony(
        &signed_in.session,
        &state,
        Ceremony::Registration {
            user_id: user.id,
            name: name.to_string(),
            kind,
            state: registration,
        },
    )?;
    Ok(HttpResponse::Ok().json(challenge))
}

async fn register_finish(
    req: HttpRequest,
    signed_in: SignedIn,
    state: web::Data<AppState>,
    body: web::Json<RegisterPublicKeyCredential>,
) -> PageResult {
    csrf::verify_header(&req)?;
    let Some(webauthn) = state.webauthn.clone() else {
        return Ok(unavailable());
    };
    let Some(Ceremony::Registration {
        user_id,
        name,
        kind,
        state: registration,
    }) = take_ceremony(&signed_in.session, &state)
    else {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "The registration expired. Start again.",
        ));
    };
    if user_id != signed_in.user.id {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "The registration expired. Start again.",
        ));
    }
    // The browser reports whether the authenticator kept the credential (unsigned: it only tells
    // the owner early that this authenticator can't serve as a passkey).
    let kept = body
        .extensions
        .cred_props
        .as_ref()
        .and_then(|props| props.rk);
    if kind == CredentialKind::Passkey && kept == Some(false) {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "This authenticator can't keep a passkey. Register it as a security key instead.",
        ));
    }
    let passkey = match webauthn.finish_passkey_registration(&body, &registration) {
        Ok(passkey) => passkey,
        Err(error) => {
            tracing::info!(
                "security key registration refused for {}: {error}",
                signed_in.user.email
            );
            return Ok(json_error(
                StatusCode::BAD_REQUEST,
                "The security key's answer could not be verified.",
            ));
        }
    };
    let credential = WebauthnCredential {
        id: random_hex(8),
        name,
        created: now_unix(),
        sign_count: 0,
        kind,
        passkey: Secret::new(passkey),
    };
    let added = account::add_security_key(&state, &signed_in.principal, user_id, credential).await;
    let (user, recovery_codes) = match added {
        Ok(added) => added,
        Err(ServiceError::Refused(refusal @ Refusal::CredentialRegistered)) => {
            return Ok(json_error(StatusCode::CONFLICT, &refusal_message(&refusal)));
        }
        Err(error) => return Err(error.into()),
    };
    session::enrollment_done(&signed_in.session);
    tracing::info!("user {} registered a {}", user.email, kind.label());
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "recovery_codes": recovery_codes, "next": "/account/two-factor" })))
}

#[derive(Deserialize)]
pub struct RenameForm {
    name: String,
}

async fn rename(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<RenameForm>,
) -> PageResult {
    let name = form.name.trim().to_string();
    let problem = if name.is_empty() {
        Some("Name: 1 to 64 characters.")
    } else {
        name_problem(&name)
    };
    if let Some(problem) = problem {
        flash_error(&signed_in.session, problem);
        return Ok(see_other("/account/two-factor"));
    }
    let (user_id, id) = (signed_in.user.id, path.into_inner());
    let found =
        account::rename_security_key(&state, &signed_in.principal, user_id, id, name).await?;
    if found {
        flash_success(&signed_in.session, "Security key renamed.");
    } else {
        flash_error(&signed_in.session, "No such security key.");
    }
    Ok(see_other("/account/two-factor"))
}

async fn delete(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    let (user_id, id) = (signed_in.user.id, path.into_inner());
    match account::remove_security_key(&state, &signed_in.principal, user_id, id).await {
        Ok(true) => flash_success(&signed_in.session, "Security key removed."),
        Ok(false) => flash_error(&signed_in.session, "No such security key."),
        Err(ServiceError::Refused(refusal @ Refusal::LastWayIn)) => {
            flash_error(&signed_in.session, refusal_message(&refusal))
        }
        Err(error) => return Err(error.into()),
    }
    Ok(see_other("/account/two-factor"))
}

// ---- the factor step ----

async fn login_start(req: HttpRequest, session: Session, state: web::Data<AppState>) -> PageResult {
    csrf::verify_header(&req)?;
    let Some(webauthn) = state.webauthn.clone() else {
        return Ok(unavailable());
    };
    let Some(user) = pending_user(&session, &state).await? else {
        return Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "Log in with your password first.",
        ));
    };
    let passkeys: Vec<_> = user
        .webauthn_credentials
        .iter()
        .map(|c| c.passkey.expose().clone())
        .collect();
    if passkeys.is_empty() {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "You have no security key.",
        ));
    }
    let (challenge, authentication) = webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(WebError::internal)?;
    keep_ceremony(
        &session,
        &state,
        Ceremony::Authentication {
            user_id: user.id,
            state: authentication,
        },
    )?;
    Ok(HttpResponse::Ok().json(challenge))
}

async fn login_finish(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    body: web::Json<PublicKeyCredential>,
) -> PageResult {
    csrf::verify_header(&req)?;
    if state.webauthn.is_none() {
        return Ok(unavailable());
    }
    let Some(user) = pending_user(&session, &state).await? else {
        return Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "Log in with your password first.",
        ));
    };
    let Some(Ceremony::Authentication {
        user_id,
        state: authentication,
    }) = take_ceremony(&session, &state)
    else {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "The login expired. Start again.",
        ));
    };
    if user_id != user.id {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "The login expired. Start again.",
        ));
    }
    let proof = FactorProof::SecurityKey {
        credential: Box::new(body.into_inner()),
        authentication: Box::new(authentication),
    };
    let who = pending_principal(&state, &req, &user);
    let outcome = sign_in::check_second_factor(&state, &who, user_id, proof).await?;
    match outcome {
        FactorOutcome::Accepted(user) => {
            let next = session::pending_next(&session);
            session::start(&req, &session, &state, &user, "password and security key").await?;
            tracing::info!("user {} logged in with a security key", user.email);
            Ok(HttpResponse::Ok().json(json!({ "next": next })))
        }
        FactorOutcome::Rejected => Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "The security key was not accepted.",
        )),
        FactorOutcome::Locked { retry_after_secs } => Ok(json_error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many failed attempts. Try again in {retry_after_secs} s."),
        )),
    }
}

// ---- signing in with a passkey alone ----

#[derive(Deserialize)]
pub struct PasskeyStart {
    #[serde(default)]
    next: Option<String>,
}

fn passwordless_forbidden() -> HttpResponse {
    json_error(
        StatusCode::FORBIDDEN,
        "Signing in with a passkey alone is turned off on this console. Log in with your password.",
    )
}

async fn passkey_start(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    body: web::Json<PasskeyStart>,
) -> PageResult {
    csrf::verify_header(&req)?;
    let Some(webauthn) = state.webauthn.clone() else {
        return Ok(unavailable());
    };
    match sign_in::may_start_passkey(&state, &anonymous(&state, &req))? {
        PasskeyStartCheck::Allowed => {}
        PasskeyStartCheck::Forbidden => return Ok(passwordless_forbidden()),
        PasskeyStartCheck::Throttled(refused) => {
            return Ok(json_error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Too many passkey sign-ins started from your address. Try again in {} s.",
                    refused.retry_after_secs
                ),
            ));
        }
    }
    let (challenge, authentication) = webauthn
        .start_discoverable_authentication()
        .map_err(WebError::internal)?;
    keep_ceremony(
        &session,
        &state,
        Ceremony::SignIn {
            next: same_site_path(body.next.as_deref()),
            state: Box::new(authentication),
        },
    )?;
    Ok(HttpResponse::Ok().json(without_autofill(challenge)))
}

async fn passkey_finish(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    body: web::Json<PublicKeyCredential>,
) -> PageResult {
    csrf::verify_header(&req)?;
    if state.webauthn.is_none() {
        return Ok(unavailable());
    }
    let Some(Ceremony::SignIn {
        next,
        state: authentication,
    }) = take_ceremony(&session, &state)
    else {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "The sign-in expired. Start again.",
        ));
    };
    let credential = Box::new(body.into_inner());
    let who = anonymous(&state, &req);
    match sign_in::check_passkey(&state, &who, credential, authentication).await? {
        PasskeyCheck::Verified(user) => {
            session::start(&req, &session, &state, &user, "passkey").await?;
            tracing::info!("user {} signed in with a passkey", user.email);
            Ok(HttpResponse::Ok().json(json!({ "next": next })))
        }
        PasskeyCheck::Disabled => Ok(json_error(
            StatusCode::FORBIDDEN,
            "This account is disabled. Ask an administrator to enable it.",
        )),
        PasskeyCheck::Rejected => Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "This passkey was not accepted. Use another, or log in with your password.",
        )),
        PasskeyCheck::Throttled(refused) => Ok(json_error(
            StatusCode::TOO_MANY_REQUESTS,
            &super::login::too_many_attempts(refused),
        )),
        PasskeyCheck::Forbidden => Ok(passwordless_forbidden()),
    }
}
