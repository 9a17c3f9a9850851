//! Signing in and out, the first-run setup link, and the set-password links of welcome and reset
//! mails.

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
use crate::domain::{Email, NewPassword, Refusal};
use crate::service::sign_in::{self, PasswordCheck};
use crate::service::{Principal, ServiceError, Who};
use crate::state::AppState;
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
    /// "Sign in with a passkey" is offered: WebAuthn is available and the console allows it.
    passkey_sign_in: bool,
}

/// Whether the login page offers signing in with a passkey alone.
fn passkey_sign_in_offered(state: &AppState) -> Result<bool, WebError> {
    Ok(state.webauthn.is_some() && sign_in::passwordless_allowed(state)?)
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    logged_out: Option<String>,
}

pub async fn login_form(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<LoginQuery>,
) -> PageResult {
    ok(&LoginPage {
        passkey_sign_in: passkey_sign_in_offered(&state)?,
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
    let passkey_sign_in = passkey_sign_in_offered(&state)?;
    let refuse = |status: StatusCode, error: &str| {
        render(
            status,
            &LoginPage {
                passkey_sign_in,
                page: PageContext::anonymous(&session, "Log in"),
                email: form.email.clone(),
                next: next.clone(),
                error: Some(error.to_string()),
                notice: None,
            },
        )
    };
    let who = anonymous(&state, &req);
    match sign_in::check_password(&state, &who, &form.email, &form.password).await? {
        PasswordCheck::Verified(user) => {
            let enforced = state.read(|store| store.settings())?.globally_enforce_2fa;
            after_password(&req, &session, &state, &user, &next, enforced).await
        }
        PasswordCheck::Disabled => refuse(
            StatusCode::FORBIDDEN,
            "This account is disabled. Ask an administrator to enable it.",
        ),
        PasswordCheck::Wrong => refuse(
            StatusCode::UNAUTHORIZED,
            "The email or the password is wrong.",
        ),
        PasswordCheck::Throttled(refused) => {
            refuse(StatusCode::TOO_MANY_REQUESTS, &too_many_attempts(refused))
        }
    }
}

/// Somebody not signed in, from where the request came.
pub(super) fn anonymous(state: &AppState, req: &HttpRequest) -> Principal {
    Principal::new(Who::Anonymous { claimed: None }, state.origin(req))
}

/// Once a password is proven (login or a set-password link): the factor step if the user has a
/// second factor, else a session — confined to enrollment when 2FA is required of them.
pub(super) async fn after_password(
    req: &HttpRequest,
    session: &Session,
    state: &AppState,
    user: &User,
    next: &str,
    globally_enforced: bool,
) -> PageResult {
    let how = "password";
    if user.has_second_factor() {
        session::start_pending(session, user, next)?;
        return Ok(see_other(FACTOR_STEP_PATH));
    }
    session::start(req, session, state, user, how).await?;
    tracing::info!("user {} logged in", user.email);
    if globally_enforced || user.two_factor_required {
        // Signed in, but the gate lets them reach nothing but enrollment until done.
        session::require_enrollment(session)?;
        return Ok(see_other(ENROLLMENT_PATH));
    }
    Ok(see_other(next))
}

pub async fn logout(
    session: Session,
    signed_in: Option<SignedIn>,
    state: web::Data<AppState>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    match signed_in {
        Some(signed_in) => session::end(&signed_in, &state).await?,
        // Half-way through the factor step, or already ended: only the cookie to drop.
        None => session::forget(&session),
    }
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
/// client address: past them no mail goes out, the page still says the same, and logging in is
/// never affected.
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
    sign_in::forgot_password(&state, &anonymous(&state, &req), email);
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

pub(super) fn link_invalid(session: &Session) -> PageResult {
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
    let Some(user) = link_user(&state, &secret, token_purpose)? else {
        return link_invalid(&session);
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

/// Whose link this is: `Some(None)` for a live setup link (while there are no users),
/// `Some(Some(user))` for a live link of a user, `None` if the link can't be used.
fn link_user(
    state: &AppState,
    secret: &str,
    purpose: TokenPurpose,
) -> Result<Option<Option<User>>, WebError> {
    let hash = sha256_hex(secret);
    let found = state.read(|store| {
        let token = store.live_one_time_token(&hash, &[purpose], now_unix())?;
        if purpose == TokenPurpose::Setup && store.user_count()? > 0 {
            return Err(Refusal::LinkInvalid.into());
        }
        token.user_id.map(|id| store.user_by_id(id)).transpose()
    });
    match found {
        Ok(user) => Ok(Some(user)),
        Err(StoreError::Refused(Refusal::LinkInvalid | Refusal::UserNotFound)) => Ok(None),
        Err(error) => Err(error.into()),
    }
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
    // Whose password: typed on the setup page, else the link's user.
    let email = match link_user(&state, &secret, token_purpose)? {
        None => return link_invalid(&session),
        Some(Some(user)) => user.email.to_string(),
        Some(None) if token_purpose == TokenPurpose::Setup => {
            form.email.clone().unwrap_or_default()
        }
        Some(None) => return link_invalid(&session),
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
    // Whoever holds the link acts as its user (or, on the setup page, as the address typed).
    let who = Principal::new(
        Who::Anonymous {
            claimed: Some(parsed_email.clone()),
        },
        state.origin(&req),
    );
    let hash = sha256_hex(&secret);
    let outcome =
        sign_in::set_password_with_link(&state, &who, hash, token_purpose, parsed_email, password)
            .await;
    let user = match outcome {
        Ok(user) => user,
        Err(ServiceError::Refused(Refusal::LinkInvalid)) => return link_invalid(&session),
        Err(ServiceError::Refused(Refusal::UserExists(_))) => {
            return form_error("Email: this address already has an account.".to_string());
        }
        Err(error) => return Err(error.into()),
    };
    let globally_enforced = state.read(|store| store.settings())?.globally_enforce_2fa;
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
