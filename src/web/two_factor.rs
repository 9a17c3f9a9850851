//! The factor step of login, and enrolling TOTP and recovery codes from the account.

use crate::domain::Refusal;
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
use crate::auth::{recovery_codes, totp};
use crate::state::AppState;
use crate::store::{FactorAttempt, FactorOutcome, now_unix};

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
) -> Result<Option<crate::store::User>, WebError> {
    let Some((user_id, generation)) = session::pending(session) else {
        return Ok(None);
    };
    let user = state.read(move |store| store.user_by_id(user_id));
    match user {
        Ok(user) if !user.disabled && user.session_generation == generation => Ok(Some(user)),
        Ok(_)
        | Err(crate::state::BlockingError::Store(crate::store::StoreError::Refused(
            Refusal::UserNotFound,
        ))) => Ok(None),
        Err(error) => Err(error.into()),
    }
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
    let code = form.code.unwrap_or_default().trim().to_string();
    let recovery_code = form.recovery_code.unwrap_or_default().trim().to_string();
    let user_id = user.id;
    let now = now_unix();
    let outcome = state
        .write(move |store| {
            if !recovery_code.is_empty() {
                let attempt = FactorAttempt::RecoveryCode(recovery_codes::hash(&recovery_code));
                store.check_second_factor(user_id, attempt, now)
            } else {
                let matched = |secret: &str| totp::matched_step(secret, &code, now);
                store.check_second_factor(user_id, FactorAttempt::Totp(&matched), now)
            }
        })
        .await?;
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
            session::start(&req, &session, &state, &user).await?;
            log::info!("user {} logged in with a second factor", user.email);
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
}

#[derive(Template)]
#[template(path = "two_factor/enroll.html")]
struct EnrollmentPage {
    page: PageContext,
    totp_enabled: bool,
    has_second_factor: bool,
    webauthn_available: bool,
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
    let mut user = signed_in.user.clone();
    if !user.totp_enabled() && user.pending_totp_secret.is_none() {
        let user_id = user.id;
        user = state
            .write(move |store| store.set_pending_totp(user_id, totp::new_secret()))
            .await?;
    }
    let pending = if user.totp_enabled() {
        None
    } else {
        state.read(|store| store.reveal_pending_totp(&user))?
    };
    let (secret, qr_svg) = match pending.as_deref() {
        Some(secret) => {
            let uri =
                totp::provisioning_uri(secret, user.email.as_str()).map_err(WebError::internal)?;
            (
                secret.to_string(),
                totp::qr_svg(&uri).map_err(WebError::internal)?,
            )
        }
        _ => (String::new(), String::new()),
    };
    let credentials = user
        .webauthn_credentials
        .iter()
        .map(|c| CredentialRow {
            id: c.id.clone(),
            name: c.name.clone(),
            created: crate::api::views::timestamp(c.created),
        })
        .collect();
    Ok(EnrollmentPage {
        page: PageContext::signed_in(signed_in, "Two-factor authentication"),
        totp_enabled: user.totp_enabled(),
        has_second_factor: user.has_second_factor(),
        webauthn_available: state.webauthn.is_some(),
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
    let (codes, hashes) = recovery_codes::generate();
    let user_id = signed_in.user.id;
    let now = now_unix();
    let code = form.code.clone();
    let confirmed = state
        .write(move |store| {
            let matched = |secret: &str| totp::matched_step(secret, &code, now);
            store.confirm_totp(user_id, &matched, hashes)
        })
        .await?;
    let Some((user, codes_stored)) = confirmed else {
        let error =
            "Code: it does not match. Check the time on your phone and type the current code.";
        let page = enrollment_page(&signed_in, &state, Some(error.to_string())).await?;
        return render(StatusCode::BAD_REQUEST, &page);
    };
    session::enrollment_done(&signed_in.session);
    log::info!("user {} enrolled TOTP", user.email);
    if codes_stored {
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
    let (codes, hashes) = recovery_codes::generate();
    let user_id = signed_in.user.id;
    state
        .write(move |store| store.replace_recovery_codes(user_id, hashes))
        .await?;
    show_recovery_codes(&signed_in, codes)
}
