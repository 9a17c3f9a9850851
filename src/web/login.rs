//! Signing in and out, the first-run setup link, and the set-password links of welcome and reset
//! mails.

use std::net::IpAddr;
use std::sync::OnceLock;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use super::csrf::{CsrfForm, EmptyForm};
use super::error::WebError;
use super::gate::{ENROLLMENT_PATH, FACTOR_STEP_PATH};
use super::page::{PageContext, PageResult, flash_error, flash_success, ok, render, see_other};
use super::session::{self, SignedIn};
use crate::auth::passwords::{hash_password, verify_password};
use crate::auth::sha256_hex;
use crate::domain::{Email, NewPassword};
use crate::state::{AppState, BlockingError};
use crate::store::{StoreError, TokenPurpose, User, now_unix};

pub async fn home(signed_in: SignedIn) -> PageResult {
    Ok(see_other(if signed_in.is_admin() {
        "/users"
    } else {
        "/account"
    }))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    page: PageContext,
    email: String,
    next: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    logged_out: Option<String>,
}

pub async fn login_form(session: Session, query: web::Query<LoginQuery>) -> PageResult {
    ok(&LoginPage {
        page: PageContext::anonymous(&session, "Log in"),
        email: String::new(),
        next: safe_next(query.next.as_deref()).to_string(),
        error: None,
        notice: query
            .logged_out
            .as_ref()
            .map(|_| "You are logged out.".to_string()),
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

/// A hash to verify against when the email is unknown, so that a wrong email takes as long as a
/// wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("roost-dummy-password-for-timing").unwrap_or_default())
}

pub async fn login_submit(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> PageResult {
    let next = safe_next(form.next.as_deref()).to_string();
    let account = form.email.trim().to_lowercase();
    let client: Option<IpAddr> = state.client_address(&req);
    let refuse = |status: StatusCode, error: String| {
        render(
            status,
            &LoginPage {
                page: PageContext::anonymous(&session, "Log in"),
                email: form.email.clone(),
                next: next.clone(),
                error: Some(error),
                notice: None,
            },
        )
    };

    let wait = [
        client.and_then(|ip| state.login_failures_by_client.retry_after(&ip)),
        state.login_failures_by_account.retry_after(&account),
    ]
    .into_iter()
    .flatten()
    .max();
    if let Some(seconds) = wait {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed attempts. Try again in {seconds} s."),
        );
    }

    let email = Email::parse(&form.email).ok();
    let password = form.password.clone();
    let verified = state
        .blocking(move |store| {
            let user = match email {
                Some(email) => match store.user_by_email(&email) {
                    Ok(details) => Some(details.user),
                    Err(StoreError::UserNotFound) => None,
                    Err(error) => return Err(error),
                },
                None => None,
            };
            let stored = user.as_ref().and_then(|u| u.password_hash.as_deref());
            // Always verify once, against the dummy hash when there is nothing to verify.
            let matches = verify_password(&password, stored.unwrap_or(dummy_hash()));
            let enforced = store.settings()?.globally_enforce_2fa;
            Ok((
                user.filter(|u| matches && u.password_hash.is_some()),
                enforced,
            ))
        })
        .await?;
    let (verified, globally_enforced) = verified;

    match verified {
        Some(user) if user.disabled => refuse(
            StatusCode::FORBIDDEN,
            "This account is disabled. Ask an administrator to enable it.".to_string(),
        ),
        Some(user) => after_password(&session, &user, &next, globally_enforced),
        None => {
            if let Some(ip) = client {
                state.login_failures_by_client.record_failure(ip);
            }
            state.login_failures_by_account.record_failure(account);
            refuse(
                StatusCode::UNAUTHORIZED,
                "The email or the password is wrong.".to_string(),
            )
        }
    }
}

/// Once a password is proven (login or a set-password link): the factor step if the user has a
/// second factor, else a session — confined to enrollment when 2FA is required of them.
fn after_password(
    session: &Session,
    user: &User,
    next: &str,
    globally_enforced: bool,
) -> PageResult {
    if user.has_second_factor() {
        session::start_pending(session, user, next)?;
        return Ok(see_other(FACTOR_STEP_PATH));
    }
    session::start(session, user)?;
    log::info!("user {} logged in", user.email);
    if globally_enforced || user.two_factor_required {
        // Signed in, but the gate lets them reach nothing but enrollment until done.
        session::require_enrollment(session)?;
        return Ok(see_other(ENROLLMENT_PATH));
    }
    Ok(see_other(next))
}

pub async fn logout(session: Session, CsrfForm(_): CsrfForm<EmptyForm>) -> PageResult {
    session::end(&session);
    Ok(see_other("/login?logged_out=1"))
}

/// Only same-site paths: an absolute or protocol-relative URL would be an open redirect.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path
        }
        _ => "/",
    }
}

// ---- forgotten passwords ----

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotPasswordPage {
    page: PageContext,
    email: String,
    sent: bool,
    error: Option<String>,
}

pub async fn forgot_form(session: Session) -> PageResult {
    ok(&ForgotPasswordPage {
        page: PageContext::anonymous(&session, "Forgot your password?"),
        email: String::new(),
        sent: false,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct ForgotForm {
    email: String,
}

/// Answers the same whether or not the address has an account, and sends in the background so the
/// answer takes the same time either way. Each request counts against the login throttles, so the
/// form can't be used to flood someone's inbox.
pub async fn forgot_submit(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<ForgotForm>,
) -> PageResult {
    let account = form.email.trim().to_lowercase();
    let client: Option<IpAddr> = state.client_address(&req);
    let wait = [
        client.and_then(|ip| state.login_failures_by_client.retry_after(&ip)),
        state.login_failures_by_account.retry_after(&account),
    ]
    .into_iter()
    .flatten()
    .max();
    let page = |sent: bool, error: Option<String>| ForgotPasswordPage {
        page: PageContext::anonymous(&session, "Forgot your password?"),
        email: form.email.clone(),
        sent,
        error,
    };
    if let Some(seconds) = wait {
        let error = format!("Too many attempts. Try again in {seconds} s.");
        return render(StatusCode::TOO_MANY_REQUESTS, &page(false, Some(error)));
    }
    let Ok(email) = Email::parse(&form.email) else {
        let error = "Email: enter a valid email address.".to_string();
        return render(StatusCode::BAD_REQUEST, &page(false, Some(error)));
    };
    if let Some(ip) = client {
        state.login_failures_by_client.record_failure(ip);
    }
    state.login_failures_by_account.record_failure(account);
    let background = state.get_ref().clone();
    actix_web::rt::spawn(async move {
        // A disabled account gets no self-service link; an admin can still send one.
        match crate::accounts::send_self_service_reset(&background, email).await {
            Ok(_)
            | Err(BlockingError::Store(StoreError::UserNotFound | StoreError::UserDisabled)) => {}
            Err(error) => log::error!("forgot-password request failed: {error}"),
        }
    });
    ok(&page(true, None))
}

// ---- one-time links ----

#[derive(Template)]
#[template(path = "set_password.html")]
struct SetPasswordPage {
    page: PageContext,
    /// `setup` asks for the email too; `welcome` and `reset` know whose account it is.
    purpose: &'static str,
    heading: &'static str,
    action: String,
    email: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "link_invalid.html")]
struct LinkInvalidPage {
    page: PageContext,
}

fn link_purposes(purpose: &str) -> Option<(&'static str, &'static str, TokenPurpose)> {
    match purpose {
        "setup" => Some(("setup", "Create the first admin", TokenPurpose::Setup)),
        "welcome" => Some(("welcome", "Choose your password", TokenPurpose::SetPassword)),
        "reset" => Some((
            "reset",
            "Choose a new password",
            TokenPurpose::PasswordReset,
        )),
        _ => None,
    }
}

fn link_invalid(session: &Session) -> PageResult {
    render(
        StatusCode::GONE,
        &LinkInvalidPage {
            page: PageContext::anonymous(session, "Link not valid"),
        },
    )
}

pub async fn link_form(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> PageResult {
    let (purpose, secret) = path.into_inner();
    let (purpose, heading, token_purpose) = link_purposes(&purpose).ok_or(WebError::NotFound)?;
    let hash = sha256_hex(&secret);
    let looked_up = state
        .blocking(move |store| {
            let token = store.live_one_time_token(&hash, &[token_purpose], now_unix())?;
            if token_purpose == TokenPurpose::Setup && store.user_count()? > 0 {
                return Err(StoreError::TokenInvalid);
            }
            token.user_id.map(|id| store.user_by_id(id)).transpose()
        })
        .await;
    let user: Option<User> = match looked_up {
        Ok(user) => user,
        Err(BlockingError::Store(StoreError::TokenInvalid | StoreError::UserNotFound)) => {
            return link_invalid(&session);
        }
        Err(error) => return Err(error.into()),
    };
    ok(&SetPasswordPage {
        page: PageContext::anonymous(&session, heading),
        purpose,
        heading,
        action: format!("/{purpose}/{secret}"),
        email: user.map(|u| u.email.to_string()).unwrap_or_default(),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct SetPasswordForm {
    email: Option<String>,
    password: String,
    confirm: String,
}

pub async fn link_submit(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    CsrfForm(form): CsrfForm<SetPasswordForm>,
) -> PageResult {
    let (purpose, secret) = path.into_inner();
    let (purpose, heading, token_purpose) = link_purposes(&purpose).ok_or(WebError::NotFound)?;
    let hash = sha256_hex(&secret);
    let now = now_unix();

    // Whose password: typed on the setup page, else the link's user.
    let email = if token_purpose == TokenPurpose::Setup {
        form.email.clone().unwrap_or_default()
    } else {
        let hash = hash.clone();
        let looked_up = state
            .blocking(move |store| {
                let token = store.live_one_time_token(&hash, &[token_purpose], now)?;
                let id = token.user_id.ok_or(StoreError::TokenInvalid)?;
                store.user_by_id(id)
            })
            .await;
        match looked_up {
            Ok(user) => user.email.to_string(),
            Err(BlockingError::Store(StoreError::TokenInvalid | StoreError::UserNotFound)) => {
                return link_invalid(&session);
            }
            Err(error) => return Err(error.into()),
        }
    };
    let form_error = |error: String| {
        render(
            StatusCode::BAD_REQUEST,
            &SetPasswordPage {
                page: PageContext::anonymous(&session, heading),
                purpose,
                heading,
                action: format!("/{purpose}/{secret}"),
                email: email.clone(),
                error: Some(error),
            },
        )
    };
    let Ok(parsed_email) = Email::parse(&email) else {
        return form_error("Email: enter a valid email address.".to_string());
    };
    let password = match NewPassword::parse(&form.password, &form.confirm, &parsed_email) {
        Ok(password) => password,
        Err(rule) => return form_error(format!("Password: {rule}")),
    };
    let password_hash = web::block(move || hash_password(password.expose()))
        .await
        .map_err(WebError::internal)?
        .map_err(WebError::internal)?;

    let outcome = state
        .blocking(move |store| {
            let user = if token_purpose == TokenPurpose::Setup {
                store.complete_setup(&hash, parsed_email, password_hash, now)?
            } else {
                store.set_password_with_token(&hash, &[token_purpose], password_hash, now)?
            };
            Ok((user, store.settings()?.globally_enforce_2fa))
        })
        .await;
    let (user, globally_enforced) = match outcome {
        Ok(found) => found,
        Err(BlockingError::Store(StoreError::TokenInvalid)) => return link_invalid(&session),
        Err(BlockingError::Store(StoreError::UserExists(_))) => {
            return form_error("Email: this address already has an account.".to_string());
        }
        Err(error) => return Err(error.into()),
    };
    // A link proves the password step only: a user with a second factor still owes it.
    if user.disabled {
        // The link was valid and the password is set, but a disabled account signs nobody in.
        flash_error(
            &session,
            "Your password is set, but this account is disabled. Ask an administrator to enable it.",
        );
        return Ok(see_other("/login"));
    }
    let response = after_password(&session, &user, "/", globally_enforced)?;
    flash_success(
        &session,
        match token_purpose {
            TokenPurpose::Setup => "Your admin account is ready.",
            _ => "Your password is set.",
        },
    );
    Ok(response)
}
