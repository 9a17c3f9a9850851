//! The forms of one user's page: each parses its fields, calls the service as the signed-in
//! admin, and goes back to the user's page with what happened.

use actix_web::web;
use serde::Deserialize;

use super::{note_too_long, parse_user_id, user_path};
use crate::domain::{AccessLevel, FlockId, FlockRole, Note, Refusal};
use crate::service::sessions;
use crate::service::{Principal, ServiceResult, flocks, users};
use crate::state::AppState;
use crate::store::{User, UserRef};
use crate::web::csrf::{CsrfForm, EmptyForm};
use crate::web::error::WebError;
use crate::web::forms::{ToggleForm, optional_utc_time};
use crate::web::page::{PageResult, back_with_outcome, flash_error, flash_success, see_other};
use crate::web::session::SignedIn;
use crate::web::sessions::{SessionForm, ended_message, parse_public_id};

/// Back to the user's page with the outcome as a flash. A refusal the admin can act on (the
/// last-admin rule, a flock deleted meanwhile) is shown there; anything else, an unknown user
/// included, is an error page.
fn back_to_user<T>(
    signed_in: &SignedIn,
    id: u64,
    outcome: ServiceResult<T>,
    done: impl FnOnce(T) -> String,
) -> PageResult {
    let shown = |refusal: &Refusal| {
        matches!(
            refusal,
            Refusal::LastEnabledAdmin
                | Refusal::FlockNotFound
                | Refusal::TwoRolesInOneFlock(_)
                | Refusal::NoOffboardingScheduled
                | Refusal::TimeInThePast
                | Refusal::ExpiryNeedsAdmin
        )
    };
    back_with_outcome(&signed_in.session, &user_path(id), outcome, shown, done)
}

/// A form value that can't be used: back to the user's page with the reason. The user is looked
/// up first so that an unknown id is a 404 here too.
fn refuse_input(signed_in: &SignedIn, state: &AppState, id: u64, message: &str) -> PageResult {
    users::get(state, &signed_in.principal, &UserRef::Id(id))?;
    flash_error(&signed_in.session, message);
    Ok(see_other(&user_path(id)))
}

/// The admin and the user id of an action's path.
fn target(signed_in: &SignedIn, path: &str) -> Result<u64, WebError> {
    signed_in.require_admin()?;
    parse_user_id(path)
}

#[derive(Deserialize)]
pub struct AccessLevelForm {
    #[serde(default)]
    access_level: String,
    /// `datetime-local` (UTC): admin access until then; empty for no end.
    #[serde(default)]
    until: String,
}

const BAD_UNTIL: &str =
    "Until: choose a date and time with the picker, or leave it empty for no end.";

pub(super) async fn access_level(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<AccessLevelForm>,
) -> PageResult {
    let id = target(&signed_in, &path)?;
    let Ok(level) = AccessLevel::parse(&form.access_level) else {
        return refuse_input(
            &signed_in,
            &state,
            id,
            "Access level: choose admin or user.",
        );
    };
    let Ok(until) = optional_utc_time(&form.until) else {
        return refuse_input(&signed_in, &state, id, BAD_UNTIL);
    };
    let outcome =
        users::set_access_level(&state, &signed_in.principal, UserRef::Id(id), level, until).await;
    back_to_user(&signed_in, id, outcome, |user: User| match until {
        Some(until) => format!(
            "Access level of {} set to {level} until {}.",
            user.email,
            crate::timestamps::console_minute(until)
        ),
        None => format!("Access level of {} set to {level}.", user.email),
    })
}

/// The buttons of a user's page that send no fields, by the last part of their path.
#[derive(Clone, Copy)]
enum Button {
    Disable,
    Enable,
    DeleteNote,
    ResetTotp,
    ResetWebauthn,
    SendPasswordReset,
    Unlock,
}

impl Button {
    fn parse(path: &str) -> Option<Button> {
        Some(match path {
            "disable" => Button::Disable,
            "enable" => Button::Enable,
            "note/delete" => Button::DeleteNote,
            "totp/reset" => Button::ResetTotp,
            "webauthn/reset" => Button::ResetWebauthn,
            "password-reset" => Button::SendPasswordReset,
            "unlock" => Button::Unlock,
            _ => return None,
        })
    }

    async fn press(self, state: &AppState, who: &Principal, user: UserRef) -> ServiceResult<User> {
        match self {
            Button::Disable => users::set_disabled(state, who, user, true).await,
            Button::Enable => users::set_disabled(state, who, user, false).await,
            Button::DeleteNote => users::set_note(state, who, user, None).await,
            Button::ResetTotp => users::reset_totp(state, who, user).await,
            Button::ResetWebauthn => users::reset_webauthn(state, who, user).await,
            Button::SendPasswordReset => users::send_password_reset(state, who, user).await,
            Button::Unlock => users::unlock(state, who, user).await,
        }
    }

    fn done(self, user: &User) -> String {
        let email = &user.email;
        match self {
            Button::Disable => format!("User {email} disabled. Their sessions have ended."),
            Button::Enable => format!("User {email} enabled."),
            Button::DeleteNote => format!("Note of {email} deleted."),
            Button::ResetTotp => {
                format!("Authenticator app (TOTP) of {email} removed. Their sessions have ended.")
            }
            Button::ResetWebauthn => {
                format!("Security keys (WebAuthn) of {email} removed. Their sessions have ended.")
            }
            Button::Unlock => format!("{email} is unlocked: they can log in again."),
            Button::SendPasswordReset => format!(
                "Password reset mail sent to {email}. Its link works once, within 1 hour; until then the current password keeps working."
            ),
        }
    }
}

/// A button of the user's page (`/users/{id}/{button}`, see `Button::parse`).
pub(super) async fn button(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    let (raw_id, raw_button) = path.into_inner();
    let id = target(&signed_in, &raw_id)?;
    let button = Button::parse(&raw_button).ok_or(WebError::NotFound)?;
    let outcome = button
        .press(&state, &signed_in.principal, UserRef::Id(id))
        .await;
    back_to_user(&signed_in, id, outcome, |user| button.done(&user))
}

/// An admin ends one session of a user (`session_id`) or all of them.
pub(super) async fn end_sessions(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<SessionForm>,
) -> PageResult {
    let id = target(&signed_in, &path)?;
    let public_id = match form.session_id.as_deref().filter(|raw| !raw.is_empty()) {
        Some(raw) => Some(parse_public_id(raw)?),
        None => None,
    };
    let user = UserRef::Id(id);
    let ended = sessions::revoke(&state, &signed_in.principal, user, public_id, None).await?;
    flash_success(&signed_in.session, ended_message(ended, ""));
    Ok(see_other(&format!("{}#sessions", user_path(id))))
}

#[derive(Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    note: String,
}

pub(super) async fn note_edit(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<NoteForm>,
) -> PageResult {
    let id = target(&signed_in, &path)?;
    let Ok(note) = Note::parse(&form.note) else {
        return refuse_input(&signed_in, &state, id, &note_too_long());
    };
    let saved = !note.as_str().is_empty();
    let outcome = users::set_note(&state, &signed_in.principal, UserRef::Id(id), Some(note)).await;
    back_to_user(&signed_in, id, outcome, |user: User| {
        if saved {
            format!("Note of {} saved.", user.email)
        } else {
            format!("Note of {} deleted.", user.email)
        }
    })
}

pub(super) async fn summary_email(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<ToggleForm>,
) -> PageResult {
    let id = target(&signed_in, &path)?;
    let Some(enabled) = form.parse() else {
        let message = "Weekly summary email: choose on or off.";
        return refuse_input(&signed_in, &state, id, message);
    };
    let outcome =
        users::set_summary_email(&state, &signed_in.principal, UserRef::Id(id), enabled).await;
    back_to_user(&signed_in, id, outcome, |user: User| {
        let state = if enabled { "on" } else { "off" };
        format!("Weekly summary email turned {state} for {}.", user.email)
    })
}

#[derive(Deserialize)]
pub struct FlockRoleForm {
    #[serde(default)]
    flock_id: String,
    #[serde(default)]
    role: String,
    /// `datetime-local` (UTC), assigning only: the role until then; empty for no end.
    #[serde(default)]
    until: String,
}

impl FlockRoleForm {
    fn parse(&self) -> Option<(FlockId, FlockRole)> {
        Some((
            FlockId::parse(&self.flock_id).ok()?,
            FlockRole::parse(&self.role).ok()?,
        ))
    }
}

const BAD_FLOCK_ROLE: &str = "Flock role: choose a flock and a role (manager or watcher).";

pub(super) async fn flock_assign(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<FlockRoleForm>,
) -> PageResult {
    flock_role(signed_in, state, path, form, true).await
}

pub(super) async fn flock_unassign(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<FlockRoleForm>,
) -> PageResult {
    flock_role(signed_in, state, path, form, false).await
}

async fn flock_role(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: FlockRoleForm,
    assign: bool,
) -> PageResult {
    let id = target(&signed_in, &path)?;
    let Some((flock, role)) = form.parse() else {
        return refuse_input(&signed_in, &state, id, BAD_FLOCK_ROLE);
    };
    let Ok(until) = optional_utc_time(&form.until) else {
        return refuse_input(&signed_in, &state, id, BAD_UNTIL);
    };
    let who = &signed_in.principal;
    let name = match flocks::get(&state, who, &flock) {
        Ok(flock) => flock.name,
        // The admin's list of flocks was stale: say so on the user's page.
        Err(error) => return back_to_user(&signed_in, id, Err::<(), _>(error), |_| String::new()),
    };
    let (user, flocks) = (UserRef::Id(id), vec![flock]);
    let outcome = if assign {
        flocks::assign(&state, who, user, flocks, role, until).await
    } else {
        flocks::unassign(&state, who, user, flocks, role).await
    };
    back_to_user(&signed_in, id, outcome, |(user, _)| {
        if assign {
            format!("{} is now {} of {name}.", user.email, role.as_str())
        } else {
            format!("{} is no longer {} of {name}.", user.email, role.as_str())
        }
    })
}

pub(super) async fn remove(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    let id = target(&signed_in, &path)?;
    match users::remove(&state, &signed_in.principal, UserRef::Id(id)).await {
        Ok(user) => {
            flash_success(&signed_in.session, format!("User {} removed.", user.email));
            Ok(see_other("/users"))
        }
        outcome => back_to_user(&signed_in, id, outcome, |_| String::new()),
    }
}

#[derive(Deserialize)]
pub(super) struct OffboardForm {
    /// A checkbox: present when ticked.
    #[serde(default)]
    revoke_api_keys: Option<String>,
    /// `datetime-local` (UTC); empty for now.
    #[serde(default)]
    at: String,
}

pub(super) async fn offboard(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<OffboardForm>,
) -> PageResult {
    use crate::service::offboarding::{self, Offboarding};
    let id = target(&signed_in, &path)?;
    let Ok(at) = optional_utc_time(&form.at) else {
        flash_error(
            &signed_in.session,
            format!(
                "'{}' is not a date and time: use the picker, or leave it empty to offboard now.",
                form.at.trim()
            ),
        );
        return Ok(see_other(&user_path(id)));
    };
    let revoke = form.revoke_api_keys.is_some();
    let outcome =
        offboarding::offboard(&state, &signed_in.principal, UserRef::Id(id), at, revoke).await;
    back_to_user(&signed_in, id, outcome, |done| match done {
        Offboarding::Done(report) if !report.changed => format!(
            "{} was offboarded already: nothing was left to take away.",
            report.user.email
        ),
        Offboarding::Done(report) => format!(
            "{} offboarded: {} sessions ended, {} flock roles removed, {} API keys {}.",
            report.user.email,
            report.sessions_ended,
            report.managed_flocks.len() + report.watched_flocks.len(),
            report.api_keys.len(),
            if report.api_keys_revoked {
                "revoked"
            } else {
                "kept"
            },
        ),
        Offboarding::Scheduled { user, schedule, .. } => format!(
            "Offboarding of {} scheduled for {}.",
            user.email,
            crate::timestamps::console_minute(schedule.at)
        ),
    })
}

pub(super) async fn offboard_cancel(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    let id = target(&signed_in, &path)?;
    let outcome =
        crate::service::offboarding::cancel(&state, &signed_in.principal, UserRef::Id(id)).await;
    back_to_user(&signed_in, id, outcome, |(user, _)| {
        format!("The scheduled offboarding of {} is cancelled.", user.email)
    })
}
