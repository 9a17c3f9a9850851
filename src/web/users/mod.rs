//! The admin's user pages: the list with search and paging, adding a user, one user's page with a
//! small form per action (`show`, `actions`), and removal behind a confirmation page. Every page
//! and form is for admins only; every action ends with a redirect back and a flash saying what
//! happened.

mod actions;
mod show;

use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;
use serde::Deserialize;

use super::csrf::CsrfForm;
use super::error::{WebError, encode_query_value, refusal_message};
use super::page::{PageContext, PageResult, flash_success, ok, render, see_other};
use super::session::SignedIn;
use crate::domain::{AccessLevel, Email, Note, Refusal};
use crate::service::{ServiceError, users};
use crate::state::AppState;
use crate::store::{NewUser, UserDetails};

/// Users per page of the list: a page is a bounded range read however many users there are.
const PAGE_SIZE: usize = 50;
/// How much of a note a list row shows; the whole note is on the user's page.
const NOTE_EXCERPT_CHARS: usize = 80;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // `/users/new` before `/users/{id}`: routes match in the order they are registered.
    cfg.route("/users", web::get().to(list))
        .route("/users/new", web::get().to(new_form))
        .route("/users/new", web::post().to(create))
        .route("/users/{id}", web::get().to(show::show))
        .route(
            "/users/{id}/access-level",
            web::post().to(actions::access_level),
        )
        .route("/users/{id}/note", web::post().to(actions::note_edit))
        .route(
            "/users/{id}/summary-email",
            web::post().to(actions::summary_email),
        )
        .route(
            "/users/{id}/{button:disable|enable|note/delete|totp/reset|webauthn/reset|password-reset|unlock}",
            web::post().to(actions::button),
        )
        .route(
            "/users/{id}/sessions/end",
            web::post().to(actions::end_sessions),
        )
        .route(
            "/users/{id}/flocks/assign",
            web::post().to(actions::flock_assign),
        )
        .route(
            "/users/{id}/flocks/unassign",
            web::post().to(actions::flock_unassign),
        )
        .route("/users/{id}/offboard", web::get().to(show::offboard_confirm))
        .route("/users/{id}/offboard", web::post().to(actions::offboard))
        .route(
            "/users/{id}/offboard/cancel",
            web::post().to(actions::offboard_cancel),
        )
        .route("/users/{id}/remove", web::get().to(show::remove_confirm))
        .route("/users/{id}/remove", web::post().to(actions::remove));
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
    let search = Some(q.clone()).filter(|q| !q.is_empty());
    let page = users::page(
        &state,
        &signed_in.principal,
        search,
        cursor.clone(),
        PAGE_SIZE,
    )
    .await?;
    ok(&ListPage {
        page: PageContext::signed_in(&signed_in, "Users"),
        users: page.users.iter().map(UserRow::from).collect(),
        total: page.total,
        next_href: page.next_cursor.map(|next| list_href(&q, Some(&next))),
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
    /// `datetime-local` (UTC): admin access until then.
    pub until: String,
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
            until: String::new(),
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
    #[serde(default)]
    until: String,
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
        until: form.until,
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
            Ok(note) => Some(note.into_string()).filter(|note| !note.is_empty()),
            Err(_) => return refuse_new_user(&signed_in, values, &note_too_long()),
        }
    };
    let Ok(until) = super::forms::optional_utc_time(&values.until) else {
        let error = "Admin until: choose a date and time with the picker, or leave it empty.";
        return refuse_new_user(&signed_in, values, error);
    };
    let new_user = NewUser {
        email,
        access_level,
        note,
        two_factor_required: values.totp_enabled,
    };
    let added = users::add(
        &state,
        &signed_in.principal,
        new_user,
        values.send_welcome_mail,
        until,
    )
    .await;
    let user = match added {
        Ok(user) => user,
        Err(ServiceError::Refused(Refusal::UserExists(email))) => {
            let error = format!("Email: {email} already has an account.");
            return refuse_new_user(&signed_in, values, &error);
        }
        Err(ServiceError::Refused(
            refusal @ (Refusal::ExpiryNeedsAdmin | Refusal::TimeInThePast),
        )) => {
            let error = format!("Admin until: {}", refusal_message(&refusal));
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

pub(super) fn note_too_long() -> String {
    format!(
        "Note: longer than the maximum of {} characters.",
        Note::MAX_CHARS
    )
}
