//! The factor step of login, and enrolling TOTP and recovery codes from the account.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use super::csrf::{CsrfForm, EmptyForm};
use super::error::WebError;
use super::gate::{ENROLLMENT_PATH, FACTOR_STEP_PATH};
use super::page::{PageContext, PageResult, flash_success, ok, render, see_other};
use super::session::{self, SignedIn};
use crate::auth::totp;
use crate::domain::{Refusal, Secret};
use crate::service::sign_in::{self, FactorProof};
use crate::service::{Principal, Who, account};
use crate::state::AppState;
use crate::store::{CredentialKind, FactorOutcome, StoreError, User};
use crate::timestamps;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(FACTOR_STEP_PATH, web::get().to(factor_form))
        .route(FACTOR_STEP_PATH, web::post().to(factor_submit))
        .route(ENROLLMENT_PATH, web::get().to(enrollment))
        .route("/account/two-factor/totp", web::post().to(confirm_totp))
        .route(
            "/account/two-factor/recovery-codes",
            web::post().to(regenerate_recovery_codes),
        );
}

// ---- the factor step of login ----

#[derive(Template)]
#[template(path = "two_factor/step.html")]
struct FactorStepPage {
    page: PageContext,
    totp_enabled: bool,
    webauthn_enabled: bool,
    error: Option<String>,
}

pub(super) async fn pending_user(
    session: &Session,
    state: &AppState,
) -> Result<Option<User>, WebError> {
    let Some((user_id, generation)) = session::pending(session) else {
        return Ok(None);
    };
    match state.read(|store| store.user_by_id(user_id)) {
        Ok(user) if !user.disabled && user.session_generation == generation => Ok(Some(user)),
        Ok(_) | Err(StoreError::Refused(Refusal::UserNotFound)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Somebody half-way through logging in as `user`, from where the request came.
pub(super) fn pending_principal(state: &AppState, req: &HttpRequest, user: &User) -> Principal {
    Principal::new(
        Who::Anonymous {
            claimed: Some(user.email.clone()),
        },
        state.origin(req),
    )
}

async fn factor_form(session: Session, state: web::Data<AppState>) -> PageResult {
    let Some(user) = pending_user(&session, &state).await? else {
        session::forget(&session);
        return Ok(see_other("/login"));
    };
    ok(&FactorStepPage {
        page: PageContext::anonymous(&session, "Second factor"),
        totp_enabled: user.totp_enabled(),
        webauthn_enabled: user.webauthn_enabled() && state.webauthn.is_some(),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct FactorForm {
    code: Option<String>,
    recovery_code: Option<String>,
}

async fn factor_submit(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<FactorForm>,
) -> PageResult {
    let Some(user) = pending_user(&session, &state).await? else {
        session::forget(&session);
        return Ok(see_other("/login"));
    };
    let recovery_code = form.recovery_code.unwrap_or_default();
    let (proof, how) = if recovery_code.trim().is_empty() {
        let code = form.code.unwrap_or_default();
        (FactorProof::Totp(code), "password and authenticator app")
    } else {
        (
            FactorProof::RecoveryCode(recovery_code),
            "password and recovery code",
        )
    };
    let who = pending_principal(&state, &req, &user);
    let outcome = sign_in::check_second_factor(&state, &who, user.id, proof).await?;
    let refuse = |status: StatusCode, error: String| {
        render(
            status,
            &FactorStepPage {
                page: PageContext::anonymous(&session, "Second factor"),
                totp_enabled: user.totp_enabled(),
                webauthn_enabled: user.webauthn_enabled() && state.webauthn.is_some(),
                error: Some(error),
            },
        )
    };
    match outcome {
        FactorOutcome::Accepted(user) => {
            let next = session::pending_next(&session);
            session::start(&req, &session, &state, &user, how).await?;
            tracing::info!("user {} logged in with a second factor", user.email);
            Ok(see_other(&next))
        }
        FactorOutcome::Rejected => refuse(
            StatusCode::UNAUTHORIZED,
            "The code is wrong, expired or already used.".to_string(),
        ),
        FactorOutcome::Locked { retry_after_secs } => refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many wrong codes. Try again in {retry_after_secs} s."),
        ),
    }
}

// ---- enrollment ----

pub struct CredentialRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub passkey: bool,
}

#[derive(Template)]
#[template(path = "two_factor/enroll.html")]
struct EnrollmentPage {
    page: PageContext,
    totp_enabled: bool,
    has_second_factor: bool,
    webauthn_available: bool,
    /// Whether a passkey signs its owner in on its own here (an admin setting).
    passwordless_allowed: bool,
    credentials: Vec<CredentialRow>,
    required: bool,
    secret: String,
    qr_svg: String,
    recovery_codes_left: usize,
    error: Option<String>,
}

async fn enrollment_page(
    signed_in: &SignedIn,
    state: &AppState,
    error: Option<String>,
) -> Result<EnrollmentPage, WebError> {
    let user = &signed_in.user;
    let pending = account::pending_totp_secret(state, &signed_in.principal, user).await?;
    // The enrollment page is where the secret is meant to be seen: it leaves its wrapper here.
    let (secret, qr_svg) = match pending.map(Secret::into_exposed) {
        Some(secret) => {
            let uri =
                totp::provisioning_uri(&secret, user.email.as_str()).map_err(WebError::internal)?;
            let qr_svg = totp::qr_svg(&uri).map_err(WebError::internal)?;
            (secret, qr_svg)
        }
        None => (String::new(), String::new()),
    };
    let credentials = user
        .webauthn_credentials
        .iter()
        .map(|c| CredentialRow {
            id: c.id.clone(),
            name: c.name.clone(),
            created: timestamps::console_second(c.created),
            passkey: c.kind == CredentialKind::Passkey,
        })
        .collect();
    Ok(EnrollmentPage {
        page: PageContext::signed_in(signed_in, "Two-factor authentication"),
        totp_enabled: user.totp_enabled(),
        has_second_factor: user.has_second_factor(),
        webauthn_available: state.webauthn.is_some(),
        passwordless_allowed: sign_in::passwordless_allowed(state)?,
        credentials,
        required: session::must_enroll(&signed_in.session),
        secret,
        qr_svg,
        recovery_codes_left: user.recovery_code_hashes.len(),
        error,
    })
}

async fn enrollment(signed_in: SignedIn, state: web::Data<AppState>) -> PageResult {
    let page = enrollment_page(&signed_in, &state, None).await?;
    let mut response = ok(&page)?;
    // The page shows a secret: keep it out of caches.
    response.headers_mut().insert(
        CACHE_CONTROL,
        "no-store".parse().map_err(WebError::internal)?,
    );
    Ok(response)
}

#[derive(Template)]
#[template(path = "two_factor/recovery_codes.html")]
struct RecoveryCodesPage {
    page: PageContext,
    codes: Vec<String>,
}

fn show_recovery_codes(signed_in: &SignedIn, codes: Vec<String>) -> PageResult {
    let mut response = ok(&RecoveryCodesPage {
        page: PageContext::signed_in(signed_in, "Recovery codes"),
        codes,
    })?;
    response.headers_mut().insert(
        CACHE_CONTROL,
        "no-store".parse().map_err(WebError::internal)?,
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    code: String,
}

async fn confirm_totp(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> PageResult {
    let confirmed =
        account::confirm_totp(&state, &signed_in.principal, signed_in.user.id, form.code).await?;
    let Some((user, new_codes)) = confirmed else {
        let error =
            "Code: it does not match. Check the time on your phone and type the current code.";
        let page = enrollment_page(&signed_in, &state, Some(error.to_string())).await?;
        return render(StatusCode::BAD_REQUEST, &page);
    };
    session::enrollment_done(&signed_in.session);
    tracing::info!("user {} enrolled TOTP", user.email);
    if let Some(codes) = new_codes {
        return show_recovery_codes(&signed_in, codes);
    }
    flash_success(&signed_in.session, "Authenticator app enrolled.");
    Ok(see_other("/account"))
}

async fn regenerate_recovery_codes(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    if !signed_in.user.has_second_factor() {
        return Err(WebError::BadRequest(
            "Enroll a second factor before making recovery codes.".into(),
        ));
    }
    let codes =
        account::new_recovery_codes(&state, &signed_in.principal, signed_in.user.id).await?;
    show_recovery_codes(&signed_in, codes)
}
