//! The signed-in user's own account: password (or none, for a passkey user), summary email,
//! flocks.

use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;
use serde::Deserialize;

use super::csrf::CsrfForm;
use super::error::{WebError, refusal_message};
use super::forms::ToggleForm;
use super::login::too_many_attempts;
use super::page::{PageContext, PageResult, flash_success, ok, render, see_other};
use super::session::SignedIn;
use super::sessions::{SessionRow, session_rows};
use crate::domain::{NewPassword, Refusal};
use crate::service::sign_in::{self, PasswordChange};
use crate::service::users;
use crate::state::AppState;
use crate::store::UserRef;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account", web::get().to(show))
        .route("/account/password", web::post().to(change_password))
        .route("/account/password/remove", web::post().to(remove_password))
        .route("/account/summary-email", web::post().to(summary_email));
}

pub struct FlockRow {
    pub id: String,
    pub name: String,
    pub role: &'static str,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    page: PageContext,
    email: String,
    access_level: &'static str,
    summary_email_enabled: bool,
    totp_enabled: bool,
    security_keys: usize,
    passkeys: usize,
    has_password: bool,
    /// "Stop using a password" is offered: they have a passkey and the console allows it.
    may_remove_password: bool,
    flocks: Vec<FlockRow>,
    password_error: Option<String>,
    sessions: Vec<SessionRow>,
}

async fn account_page(
    signed_in: &SignedIn,
    state: &AppState,
    password_error: Option<String>,
) -> Result<AccountPage, WebError> {
    let email = signed_in.user.email.clone();
    let user_id = signed_in.user.id;
    let (details, all_flocks, sessions) = state
        .blocking(move |store| {
            Ok((
                store.user_by_email(&email)?,
                store.list_flocks()?,
                store.sessions_of(user_id)?,
            ))
        })
        .await?;
    let name_of = |id: &crate::domain::FlockId| {
        all_flocks
            .iter()
            .find(|f| &f.id == id)
            .map(|f| f.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let mut flocks: Vec<FlockRow> = details
        .managed_flocks
        .iter()
        .map(|id| FlockRow {
            id: id.to_string(),
            name: name_of(id),
            role: "manager",
        })
        .collect();
    flocks.extend(details.watched_flocks.iter().map(|id| FlockRow {
        id: id.to_string(),
        name: name_of(id),
        role: "watcher",
    }));
    let user = &details.user;
    let passkeys = user.passkey_count();
    Ok(AccountPage {
        page: PageContext::signed_in(signed_in, "Your account"),
        email: user.email.to_string(),
        access_level: user.access_level.as_str(),
        summary_email_enabled: user.summary_email_enabled,
        totp_enabled: user.totp_enabled(),
        security_keys: user.webauthn_credentials.len() - passkeys,
        passkeys,
        has_password: user.password_hash.is_some(),
        may_remove_password: user.password_hash.is_some()
            && passkeys > 0
            && sign_in::passwordless_allowed(state)?,
        flocks,
        password_error,
        sessions: session_rows(&sessions, Some(&signed_in.session_hash)),
    })
}

async fn show(signed_in: SignedIn, state: web::Data<AppState>) -> PageResult {
    ok(&account_page(&signed_in, &state, None).await?)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current: String,
    password: String,
    confirm: String,
}

/// Checks the current password under the same limits as the login form (it is a password guess
/// like any other), then sets the new one and ends every other session of the user.
async fn change_password(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> PageResult {
    let password = match NewPassword::parse(&form.password, &form.confirm, &signed_in.user.email) {
        Ok(password) => password,
        Err(rule) => {
            return refuse_password(&signed_in, &state, format!("New password: {rule}")).await;
        }
    };
    let changed = sign_in::change_password(
        &state,
        &signed_in.principal,
        &signed_in.user,
        &form.current,
        password,
        signed_in.session_hash.clone(),
    )
    .await?;
    match changed {
        PasswordChange::Changed(_) => {
            flash_success(
                &signed_in.session,
                "Password changed. Your other sessions have ended.",
            );
            Ok(see_other("/account"))
        }
        PasswordChange::WrongCurrent => {
            let error = "Current password: it is not your current password.".to_string();
            refuse_password(&signed_in, &state, error).await
        }
        PasswordChange::Throttled(refused) => {
            let error = format!("Current password: {}", too_many_attempts(refused));
            let page = account_page(&signed_in, &state, Some(error)).await?;
            render(StatusCode::TOO_MANY_REQUESTS, &page)
        }
    }
}

#[derive(Deserialize)]
pub struct RemovePasswordForm {
    current: String,
}

/// The user stops using a password (their passkey signs them in); the current password is
/// checked like a change's, and their other sessions end.
async fn remove_password(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<RemovePasswordForm>,
) -> PageResult {
    let removed = sign_in::remove_password(
        &state,
        &signed_in.principal,
        &signed_in.user,
        &form.current,
        signed_in.session_hash.clone(),
    )
    .await;
    match removed {
        Ok(PasswordChange::Changed(_)) => {
            flash_success(
                &signed_in.session,
                "You no longer have a password: sign in with your passkey. Your other sessions have ended.",
            );
            Ok(see_other("/account"))
        }
        Ok(PasswordChange::WrongCurrent) => {
            let error = "Current password: it is not your current password.".to_string();
            refuse_password(&signed_in, &state, error).await
        }
        Ok(PasswordChange::Throttled(refused)) => {
            let error = format!("Current password: {}", too_many_attempts(refused));
            let page = account_page(&signed_in, &state, Some(error)).await?;
            render(StatusCode::TOO_MANY_REQUESTS, &page)
        }
        Err(crate::service::ServiceError::Refused(
            refusal @ (Refusal::LastWayIn | Refusal::NotAllowed),
        )) => {
            let error = match refusal {
                Refusal::NotAllowed => "Signing in with a passkey alone is turned off on this console: you keep your password.".to_string(),
                other => refusal_message(&other),
            };
            refuse_password(&signed_in, &state, error).await
        }
        Err(error) => Err(error.into()),
    }
}

/// The account page again, with the password form's error.
async fn refuse_password(signed_in: &SignedIn, state: &AppState, error: String) -> PageResult {
    let page = account_page(signed_in, state, Some(error)).await?;
    render(StatusCode::BAD_REQUEST, &page)
}

async fn summary_email(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<ToggleForm>,
) -> PageResult {
    let enabled = form
        .parse()
        .ok_or_else(|| WebError::BadRequest("Weekly summary email: choose on or off.".into()))?;
    let own = UserRef::Id(signed_in.user.id);
    users::set_summary_email(&state, &signed_in.principal, own, enabled).await?;
    flash_success(
        &signed_in.session,
        if enabled {
            "Weekly summary email turned on."
        } else {
            "Weekly summary email turned off."
        },
    );
    Ok(see_other("/account"))
}
