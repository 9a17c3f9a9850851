//! Signing in and out, the first-run setup link, and the set-password links of welcome and reset
//! mails.

use crate::domain::Refusal;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use super::csrf::{CsrfForm, EmptyForm};
use super::error::WebError;
use super::gate::{ENROLLMENT_PATH, FACTOR_STEP_PATH};
use super::next::same_site_path;
use super::page::{PageContext, PageResult, flash_error, flash_success, ok, render, see_other};
use super::session::{self, SignedIn};
use crate::auth::sha256_hex;
use crate::auth::throttle::Refused;
use crate::domain::{Email, Lock, NewPassword};
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
        next: same_site_path(query.next.as_deref()),
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

/// The answer to a refused password check, whoever asks: the login form and "change password".
pub fn too_many_attempts(refused: Refused) -> String {
    format!(
        "Too many failed attempts. Try again in {} s.",
        refused.retry_after_secs
    )
}

pub async fn login_submit(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> PageResult {
    let next = same_site_path(form.next.as_deref());
    let email = Email::parse(&form.email).ok();
    let account = throttle_key(email.as_ref(), &form.email);
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

    // The slot is taken before the password is checked: parallel guesses can't pass together.
    let now = now_unix();
    let attempt = match state
        .login_throttles
        .begin(state.client_address(&req), &account, now)
    {
        Ok(attempt) => attempt,
        Err(refused) => {
            return refuse(StatusCode::TOO_MANY_REQUESTS, too_many_attempts(refused));
        }
    };
    let lookup = email.clone();
    let (user, globally_enforced) = state.read(move |store| {
        let user = match lookup {
            Some(email) => match store.user_by_email(&email) {
                Ok(details) => Some(details.user),
                Err(StoreError::Refused(Refusal::UserNotFound)) => None,
                Err(error) => return Err(error),
            },
            None => None,
        };
        Ok((user, store.settings()?.globally_enforce_2fa))
    })?;
    // Always one argon2 computation, against a dummy when there is nothing to verify, so an
    // unknown email takes as long as a wrong password.
    let stored = user.as_ref().and_then(|u| u.password_hash.as_deref());
    let matches = match state.hasher.verify(&form.password, stored).await {
        Ok(matches) => matches,
        Err(error) => {
            attempt.cancelled();
            return Err(error.into());
        }
    };
    match user.filter(|_| matches) {
        Some(user) => {
            attempt.succeeded();
            if user.disabled {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "This account is disabled. Ask an administrator to enable it.".to_string(),
                );
            }
            after_password(&req, &session, &state, &user, &next, globally_enforced).await
        }
        None => {
            if let (Some(lock), Some(email)) = (attempt.failed(now), email) {
                keep_login_lock(&state, email, lock).await?;
            }
            refuse(
                StatusCode::UNAUTHORIZED,
                "The email or the password is wrong.".to_string(),
            )
        }
    }
}

/// The account a login attempt counts against: the address's canonical form, or for something
/// that isn't an address a fixed-size digest of it (a throttle key must not grow with the input).
fn throttle_key(email: Option<&Email>, raw: &str) -> String {
    match email {
        Some(email) => email.key(),
        None => format!("unparsed:{}", sha256_hex(&raw.trim().to_lowercase())),
    }
}

/// Stores a login lock that just engaged, so a restart doesn't lift it.
pub async fn keep_login_lock(state: &AppState, email: Email, lock: Lock) -> Result<(), WebError> {
    log::warn!(
        "login locked for {email} until {} after repeated wrong passwords",
        crate::api::views::timestamp(lock.until)
    );
    state
        .write(move |store| store.set_login_lock(&email, lock))
        .await?;
    Ok(())
}

/// Once a password is proven (login or a set-password link): the factor step if the user has a
/// second factor, else a session — confined to enrollment when 2FA is required of them.
async fn after_password(
    req: &HttpRequest,
    session: &Session,
    state: &AppState,
    user: &User,
    next: &str,
    globally_enforced: bool,
) -> PageResult {
    if user.has_second_factor() {
        session::start_pending(session, user, next)?;
        return Ok(see_other(FACTOR_STEP_PATH));
    }
    session::start(req, session, state, user).await?;
    log::info!("user {} logged in", user.email);
    if globally_enforced || user.two_factor_required {
        // Signed in, but the gate lets them reach nothing but enrollment until done.
        session::require_enrollment(session)?;
        return Ok(see_other(ENROLLMENT_PATH));
    }
    Ok(see_other(next))
}

pub async fn logout(
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    session::end(&session, &state).await?;
    Ok(see_other("/login?logged_out=1"))
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
/// answer takes the same time either way. Requests have limits of their own per account and per
/// client address (`LoginThrottles::allow_forgot_password`): past them no mail goes out, the page
/// still says the same, and logging in is never affected.
pub async fn forgot_submit(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<ForgotForm>,
) -> PageResult {
    let page = |sent: bool, error: Option<String>| ForgotPasswordPage {
        page: PageContext::anonymous(&session, "Forgot your password?"),
        email: form.email.clone(),
        sent,
        error,
    };
    let Ok(email) = Email::parse(&form.email) else {
        let error = "Email: enter a valid email address.".to_string();
        return render(StatusCode::BAD_REQUEST, &page(false, Some(error)));
    };
    let client = state.client_address(&req);
    if !state
        .login_throttles
        .allow_forgot_password(client, &email.key(), now_unix())
    {
        log::info!("forgot-password request over its limit: no mail sent");
        return ok(&page(true, None));
    }
    let background = state.get_ref().clone();
    actix_web::rt::spawn(async move {
        // A disabled account gets no self-service link; an admin can still send one.
        match crate::accounts::send_self_service_reset(&background, email).await {
            Ok(_)
            | Err(BlockingError::Store(
                StoreError::Refused(Refusal::UserNotFound)
                | StoreError::Refused(Refusal::UserDisabled),
            )) => {}
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
    let looked_up = state.read(move |store| {
        let token = store.live_one_time_token(&hash, &[token_purpose], now_unix())?;
        if token_purpose == TokenPurpose::Setup && store.user_count()? > 0 {
            return Err(StoreError::Refused(Refusal::LinkInvalid));
        }
        token.user_id.map(|id| store.user_by_id(id)).transpose()
    });
    let user: Option<User> = match looked_up {
        Ok(user) => user,
        Err(BlockingError::Store(
            StoreError::Refused(Refusal::LinkInvalid) | StoreError::Refused(Refusal::UserNotFound),
        )) => {
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
    req: HttpRequest,
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
        let looked_up = state.read(move |store| {
            let token = store.live_one_time_token(&hash, &[token_purpose], now)?;
            let id = token
                .user_id
                .ok_or(StoreError::Refused(Refusal::LinkInvalid))?;
            store.user_by_id(id)
        });
        match looked_up {
            Ok(user) => user.email.to_string(),
            Err(BlockingError::Store(
                StoreError::Refused(Refusal::LinkInvalid)
                | StoreError::Refused(Refusal::UserNotFound),
            )) => {
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
    let password_hash = state.hasher.hash(password.expose()).await?;

    let outcome = state
        .write(move |store| {
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
        Err(BlockingError::Store(StoreError::Refused(Refusal::LinkInvalid))) => {
            return link_invalid(&session);
        }
        Err(BlockingError::Store(StoreError::Refused(Refusal::UserExists(_)))) => {
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
    let response = after_password(&req, &session, &state, &user, "/", globally_enforced).await?;
    flash_success(
        &session,
        match token_purpose {
            TokenPurpose::Setup => "Your admin account is ready.",
            _ => "Your password is set.",
        },
    );
    Ok(response)
}
