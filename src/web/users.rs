//! The admin's user pages: the list with search and paging, adding a user, one user's page with a
//! small form per action, and removal behind a confirmation page. Every page and form is for
//! admins only; every action ends with a redirect back and a flash saying what happened.

use crate::domain::Refusal;
use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;
use serde::Deserialize;

use super::csrf::{CsrfForm, EmptyForm};
use super::error::{WebError, encode_query_value};
use super::format_time;
use super::page::{PageContext, PageResult, flash_error, flash_success, ok, render, see_other};
use super::session::SignedIn;
use super::sessions::{LockFacts, SessionRow, session_rows};
use crate::accounts;
use crate::domain::{AccessLevel, Email, FlockId, FlockRole, Note};
use crate::state::{AppState, BlockingError};
use crate::store::{NewUser, Store, StoreError, StoreResult, UserDetails};

/// Users per page of the list: a page is a bounded range read however many users there are.
const PAGE_SIZE: usize = 50;
/// How much of a note a list row shows; the whole note is on the user's page.
const NOTE_EXCERPT_CHARS: usize = 80;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // `/users/new` before `/users/{id}`: routes match in the order they are registered.
    cfg.route("/users", web::get().to(list))
        .route("/users/new", web::get().to(new_form))
        .route("/users/new", web::post().to(create))
        .route("/users/{id}", web::get().to(show))
        .route("/users/{id}/access-level", web::post().to(access_level))
        .route("/users/{id}/disable", web::post().to(disable))
        .route("/users/{id}/enable", web::post().to(enable))
        .route("/users/{id}/note", web::post().to(note_edit))
        .route("/users/{id}/note/delete", web::post().to(note_delete))
        .route("/users/{id}/summary-email", web::post().to(summary_email))
        .route("/users/{id}/totp/reset", web::post().to(totp_reset))
        .route("/users/{id}/webauthn/reset", web::post().to(webauthn_reset))
        .route("/users/{id}/password-reset", web::post().to(password_reset))
        .route("/users/{id}/flocks/assign", web::post().to(flock_assign))
        .route(
            "/users/{id}/flocks/unassign",
            web::post().to(flock_unassign),
        )
        .route("/users/{id}/remove", web::get().to(remove_confirm))
        .route("/users/{id}/remove", web::post().to(remove));
}

pub(super) fn user_path(id: u64) -> String {
    format!("/users/{id}")
}

/// The `{id}` of a path; anything but a number names no user.
pub(super) fn parse_user_id(raw: &str) -> Result<u64, WebError> {
    raw.parse().map_err(|_| WebError::NotFound)
}

// ---- the list ----

pub struct UserRow {
    pub id: u64,
    pub email: String,
    pub access_level: &'static str,
    pub disabled: bool,
    pub totp_enabled: bool,
    pub webauthn_enabled: bool,
    pub two_factor_required: bool,
    pub flock_count: usize,
    pub note_excerpt: String,
}

impl From<&UserDetails> for UserRow {
    fn from(details: &UserDetails) -> UserRow {
        let user = &details.user;
        UserRow {
            id: user.id,
            email: user.email.to_string(),
            access_level: user.access_level.as_str(),
            disabled: user.disabled,
            totp_enabled: user.totp_enabled(),
            webauthn_enabled: user.webauthn_enabled(),
            two_factor_required: user.two_factor_required,
            flock_count: details.managed_flocks.len() + details.watched_flocks.len(),
            note_excerpt: excerpt(user.note.as_deref().unwrap_or("")),
        }
    }
}

/// The start of a note on one line.
fn excerpt(note: &str) -> String {
    let one_line = note.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= NOTE_EXCERPT_CHARS {
        one_line
    } else {
        let cut: String = one_line.chars().take(NOTE_EXCERPT_CHARS - 1).collect();
        format!("{}…", cut.trim_end())
    }
}

#[derive(Template)]
#[template(path = "users/list.html")]
struct ListPage {
    page: PageContext,
    q: String,
    users: Vec<UserRow>,
    /// All users, or all matches of `q`.
    total: u64,
    next_href: Option<String>,
    first_href: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    cursor: Option<String>,
}

async fn list(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> PageResult {
    signed_in.require_admin()?;
    let q = query.q.as_deref().unwrap_or("").trim().to_string();
    let cursor = query.cursor.clone().filter(|c| !c.is_empty());
    let (users, next_cursor, total) = if q.is_empty() {
        state.read(|store| {
            let page = store.list_users(cursor.as_deref(), Some(PAGE_SIZE))?;
            Ok((page.users, page.next_cursor, store.user_count()?))
        })?
    } else {
        // A search reads every user: it is a scan, run off the async workers and counted
        // against the scan limit. Only the page is kept.
        let _permit = std::sync::Arc::clone(&state.scans)
            .try_acquire_owned()
            .map_err(|_| WebError::Busy {
                retry_after_secs: 1,
            })?;
        let (needle, after) = (q.clone(), cursor.clone());
        state
            .blocking(move |store| {
                store
                    .snapshot()?
                    .search_users(&needle, after.as_deref(), PAGE_SIZE)
            })
            .await?
    };
    ok(&ListPage {
        page: PageContext::signed_in(&signed_in, "Users"),
        users: users.iter().map(UserRow::from).collect(),
        total,
        next_href: next_cursor.map(|next| list_href(&q, Some(&next))),
        first_href: cursor.is_some().then(|| list_href(&q, None)),
        q,
    })
}

fn list_href(q: &str, cursor: Option<&str>) -> String {
    let mut params = Vec::new();
    if !q.is_empty() {
        params.push(format!("q={}", encode_query_value(q)));
    }
    if let Some(cursor) = cursor {
        params.push(format!("cursor={}", encode_query_value(cursor)));
    }
    if params.is_empty() {
        "/users".to_string()
    } else {
        format!("/users?{}", params.join("&"))
    }
}

// ---- adding a user ----

/// What the add form shows: empty at first, what was typed after a refusal.
pub struct NewUserValues {
    pub email: String,
    pub access_level: String,
    pub totp_enabled: bool,
    pub note: String,
    pub send_welcome_mail: bool,
}

#[derive(Template)]
#[template(path = "users/new.html")]
struct NewUserPage {
    page: PageContext,
    form: NewUserValues,
    error: Option<String>,
}

async fn new_form(signed_in: SignedIn) -> PageResult {
    signed_in.require_admin()?;
    ok(&NewUserPage {
        page: PageContext::signed_in(&signed_in, "Add user"),
        form: NewUserValues {
            email: String::new(),
            access_level: AccessLevel::User.as_str().to_string(),
            totp_enabled: false,
            note: String::new(),
            send_welcome_mail: true,
        },
        error: None,
    })
}

/// Checkboxes are absent when unticked, so every field may be missing.
#[derive(Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    access_level: String,
    totp_enabled: Option<String>,
    #[serde(default)]
    note: String,
    send_welcome_mail: Option<String>,
}

async fn create(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<NewUserForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let values = NewUserValues {
        email: form.email,
        access_level: form.access_level,
        totp_enabled: form.totp_enabled.is_some(),
        note: form.note,
        send_welcome_mail: form.send_welcome_mail.is_some(),
    };
    let Ok(email) = Email::parse(&values.email) else {
        return refuse_new_user(&signed_in, values, "Email: enter a valid email address.");
    };
    let Ok(access_level) = AccessLevel::parse(&values.access_level) else {
        return refuse_new_user(&signed_in, values, "Access level: choose admin or user.");
    };
    let note = if values.note.is_empty() {
        None
    } else {
        match Note::parse(&values.note) {
            Ok(note) => Some(note.into_string()),
            Err(_) => return refuse_new_user(&signed_in, values, &note_too_long()),
        }
    };
    let new_user = NewUser {
        email,
        access_level,
        note,
        two_factor_required: values.totp_enabled,
    };
    let user = match accounts::add_user(&state, new_user, values.send_welcome_mail).await {
        Ok(user) => user,
        Err(BlockingError::Store(StoreError::Refused(Refusal::UserExists(email)))) => {
            let error = format!("Email: {email} already has an account.");
            return refuse_new_user(&signed_in, values, &error);
        }
        Err(error) => return Err(error.into()),
    };
    let mail = if values.send_welcome_mail {
        "A welcome mail with a link to choose a password was sent."
    } else {
        "No welcome mail was sent; send a password reset when they need to log in."
    };
    flash_success(
        &signed_in.session,
        format!("User {} added. {mail}", user.email),
    );
    Ok(see_other(&user_path(user.id)))
}

fn refuse_new_user(signed_in: &SignedIn, form: NewUserValues, error: &str) -> PageResult {
    render(
        StatusCode::BAD_REQUEST,
        &NewUserPage {
            page: PageContext::signed_in(signed_in, "Add user"),
            form,
            error: Some(error.to_string()),
        },
    )
}

fn note_too_long() -> String {
    format!(
        "Note: longer than the maximum of {} characters.",
        Note::MAX_CHARS
    )
}

// ---- one user's page ----

pub struct UserFacts {
    pub id: u64,
    pub email: String,
    pub access_level: &'static str,
    pub disabled: bool,
    pub summary_email_enabled: bool,
    pub totp_enabled: bool,
    pub webauthn_enabled: bool,
    pub two_factor_required: bool,
    pub note: Option<String>,
    pub created: String,
}

pub struct RoleRow {
    pub flock_id: String,
    /// The flock id made safe for an HTML id and a CSS selector (no colon).
    pub dom_id: String,
    pub name: String,
    pub role: &'static str,
}

pub struct FlockChoice {
    pub id: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "users/show.html")]
struct UserPage {
    page: PageContext,
    user: UserFacts,
    roles: Vec<RoleRow>,
    flocks: Vec<FlockChoice>,
    is_self: bool,
    sessions: Vec<SessionRow>,
    lock: LockFacts,
}

async fn show(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    let (details, all_flocks, sessions) = state
        .blocking(move |store| {
            let user = store.user_by_id(id)?;
            Ok((
                store.user_by_email(&user.email)?,
                store.list_flocks()?,
                store.sessions_of(id)?,
            ))
        })
        .await?;
    let name_of = |id: &FlockId| {
        all_flocks
            .iter()
            .find(|flock| &flock.id == id)
            .map(|flock| flock.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let role_row = |id: &FlockId, role: FlockRole| RoleRow {
        flock_id: id.to_string(),
        dom_id: id.as_str().replace(':', "-"),
        name: name_of(id),
        role: role.as_str(),
    };
    let roles = details
        .managed_flocks
        .iter()
        .map(|id| role_row(id, FlockRole::Manager))
        .chain(
            details
                .watched_flocks
                .iter()
                .map(|id| role_row(id, FlockRole::Watcher)),
        )
        .collect();
    let user = details.user;
    let is_self = user.id == signed_in.user.id;
    ok(&UserPage {
        page: PageContext::signed_in(&signed_in, user.email.to_string()),
        user: UserFacts {
            id: user.id,
            email: user.email.to_string(),
            access_level: user.access_level.as_str(),
            disabled: user.disabled,
            summary_email_enabled: user.summary_email_enabled,
            totp_enabled: user.totp_enabled(),
            webauthn_enabled: user.webauthn_enabled(),
            two_factor_required: user.two_factor_required,
            note: user.note.clone().filter(|note| !note.is_empty()),
            created: format_time(user.created),
        },
        roles,
        flocks: all_flocks
            .iter()
            .map(|flock| FlockChoice {
                id: flock.id.to_string(),
                name: flock.name.clone(),
            })
            .collect(),
        is_self,
        sessions: session_rows(&sessions, Some(&signed_in.session_hash)),
        lock: LockFacts::of(&state, &user),
    })
}

// ---- actions on one user ----

/// Runs `change` on the user with `id`, then goes back to their page with the outcome as a flash.
async fn change_user<T, F>(
    signed_in: &SignedIn,
    state: &AppState,
    id: u64,
    change: F,
    done: impl FnOnce(&Email, T) -> String,
) -> PageResult
where
    T: Send + 'static,
    F: FnOnce(&Store, &Email) -> StoreResult<T> + Send + 'static,
{
    let (email, outcome) = state.read(move |store| {
        let email = store.user_by_id(id)?.email;
        let outcome = change(store, &email);
        Ok((email, outcome))
    })?;
    match outcome {
        Ok(value) => flash_success(&signed_in.session, done(&email, value)),
        Err(error) => flash_error(&signed_in.session, refusal(error)?),
    }
    Ok(see_other(&user_path(id)))
}

/// A store refusal the admin can act on is shown on the page (the last-admin rule, a flock
/// deleted meanwhile); anything else, an unknown user included, is an error page.
fn refusal(error: StoreError) -> Result<String, WebError> {
    match error {
        StoreError::Refused(
            refusal @ (Refusal::LastEnabledAdmin
            | Refusal::FlockNotFound
            | Refusal::TwoRolesInOneFlock(_)),
        ) => Ok(super::error::refusal_message(&refusal)),
        other => Err(other.into()),
    }
}

/// A form value that can't be used: back to the user's page with the reason. The user is looked
/// up first so that an unknown id is a 404 here too.
async fn refuse_input(
    signed_in: &SignedIn,
    state: &AppState,
    id: u64,
    message: &str,
) -> PageResult {
    state.read(move |store| store.user_by_id(id))?;
    flash_error(&signed_in.session, message);
    Ok(see_other(&user_path(id)))
}

#[derive(Deserialize)]
pub struct AccessLevelForm {
    #[serde(default)]
    access_level: String,
}

async fn access_level(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<AccessLevelForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    let Ok(level) = AccessLevel::parse(&form.access_level) else {
        let message = "Access level: choose admin or user.";
        return refuse_input(&signed_in, &state, id, message).await;
    };
    change_user(
        &signed_in,
        &state,
        id,
        move |store, email| store.set_access_level(email, level),
        |email, _| format!("Access level of {email} set to {level}."),
    )
    .await
}

async fn disable(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    change_user(
        &signed_in,
        &state,
        id,
        |store, email| store.set_disabled(email, true),
        |email, _| format!("User {email} disabled. Their sessions have ended."),
    )
    .await
}

async fn enable(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    change_user(
        &signed_in,
        &state,
        id,
        |store, email| store.set_disabled(email, false),
        |email, _| format!("User {email} enabled."),
    )
    .await
}

#[derive(Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    note: String,
}

async fn note_edit(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<NoteForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    let Ok(note) = Note::parse(&form.note) else {
        return refuse_input(&signed_in, &state, id, &note_too_long()).await;
    };
    // An emptied note is no note, as the list and the API show it.
    let note = Some(note.into_string()).filter(|note| !note.is_empty());
    let saved = note.is_some();
    change_user(
        &signed_in,
        &state,
        id,
        move |store, email| store.set_note(email, note),
        move |email, _| {
            if saved {
                format!("Note of {email} saved.")
            } else {
                format!("Note of {email} deleted.")
            }
        },
    )
    .await
}

async fn note_delete(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    change_user(
        &signed_in,
        &state,
        id,
        |store, email| store.set_note(email, None),
        |email, _| format!("Note of {email} deleted."),
    )
    .await
}

#[derive(Deserialize)]
pub struct SummaryEmailForm {
    #[serde(default)]
    enabled: String,
}

async fn summary_email(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<SummaryEmailForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    let enabled = match form.enabled.as_str() {
        "on" => true,
        "off" => false,
        _ => {
            let message = "Weekly summary email: choose on or off.";
            return refuse_input(&signed_in, &state, id, message).await;
        }
    };
    change_user(
        &signed_in,
        &state,
        id,
        move |store, email| store.set_summary_email(email, enabled),
        move |email, _| {
            let state = if enabled { "on" } else { "off" };
            format!("Weekly summary email turned {state} for {email}.")
        },
    )
    .await
}

async fn totp_reset(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    change_user(
        &signed_in,
        &state,
        id,
        |store, email| store.clear_totp(email),
        |email, _| {
            format!("Authenticator app (TOTP) of {email} removed. Their sessions have ended.")
        },
    )
    .await
}

async fn webauthn_reset(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    change_user(
        &signed_in,
        &state,
        id,
        |store, email| store.clear_webauthn(email),
        |email, _| {
            format!("Security keys (WebAuthn) of {email} removed. Their sessions have ended.")
        },
    )
    .await
}

async fn password_reset(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    let email = state.read(move |store| Ok(store.user_by_id(id)?.email))?;
    let user = accounts::send_password_reset(&state, email).await?;
    flash_success(
        &signed_in.session,
        format!(
            "Password reset mail sent to {}. Its link works once, within 1 hour; until then the current password keeps working.",
            user.email
        ),
    );
    Ok(see_other(&user_path(id)))
}

#[derive(Deserialize)]
pub struct FlockRoleForm {
    #[serde(default)]
    flock_id: String,
    #[serde(default)]
    role: String,
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

async fn flock_assign(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<FlockRoleForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    let Some((flock, role)) = form.parse() else {
        return refuse_input(&signed_in, &state, id, BAD_FLOCK_ROLE).await;
    };
    change_user(
        &signed_in,
        &state,
        id,
        move |store, email| {
            let name = store.flock(&flock)?.name;
            store.assign_role(email, std::slice::from_ref(&flock), role)?;
            Ok(name)
        },
        |email, name| format!("{email} is now {} of {name}.", role.as_str()),
    )
    .await
}

async fn flock_unassign(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<FlockRoleForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    let Some((flock, role)) = form.parse() else {
        return refuse_input(&signed_in, &state, id, BAD_FLOCK_ROLE).await;
    };
    change_user(
        &signed_in,
        &state,
        id,
        move |store, email| {
            let name = store.flock(&flock)?.name;
            store.unassign_role(email, std::slice::from_ref(&flock), role)?;
            Ok(name)
        },
        |email, name| format!("{email} is no longer {} of {name}.", role.as_str()),
    )
    .await
}

#[derive(Template)]
#[template(path = "users/remove.html")]
struct RemovePage {
    page: PageContext,
    id: u64,
    email: String,
    flock_count: usize,
    is_self: bool,
}

async fn remove_confirm(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    let details = state.read(move |store| {
        let user = store.user_by_id(id)?;
        store.user_by_email(&user.email)
    })?;
    ok(&RemovePage {
        page: PageContext::signed_in(&signed_in, "Remove user"),
        id,
        email: details.user.email.to_string(),
        flock_count: details.managed_flocks.len() + details.watched_flocks.len(),
        is_self: id == signed_in.user.id,
    })
}

async fn remove(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    let (email, outcome) = state
        .write(move |store| {
            let email = store.user_by_id(id)?.email;
            let outcome = store.remove_user(&email);
            Ok((email, outcome))
        })
        .await?;
    match outcome {
        Ok(_) => {
            flash_success(&signed_in.session, format!("User {email} removed."));
            Ok(see_other("/users"))
        }
        Err(error) => {
            flash_error(&signed_in.session, refusal(error)?);
            Ok(see_other(&user_path(id)))
        }
    }
}
