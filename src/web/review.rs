//! The access review page (admins only): each section of `service::review` with the action for
//! each row in place (disable, offboard, require a second factor, revoke a key, extend a grant,
//! unlock), every form CSRF-protected, every action the service's (so audited), and back here
//! with a flash saying what happened.

use actix_web::web;
use askama::Template;
use serde::Deserialize;

use super::csrf::{CsrfForm, EmptyForm};
use super::error::WebError;
use super::page::{PageContext, PageResult, back_with_outcome, flash_error, ok, see_other};
use super::session::SignedIn;
use crate::domain::{AccessLevel, FlockId, FlockRole, Refusal};
use crate::review::AccessReview;
use crate::service::review;
use crate::service::{ServiceResult, api_keys, flocks, users};
use crate::state::AppState;
use crate::store::{Grant, UserRef};
use crate::timestamps;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/review", web::get().to(show))
        .route(
            "/review/users/{id}/{action:disable|require-2fa|unlock}",
            web::post().to(user_action),
        )
        .route("/review/keys/revoke", web::post().to(revoke_key))
        .route("/review/grants/extend", web::post().to(extend));
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    page: PageContext,
    review: AccessReview,
}

/// How the template writes times and rights.
impl ReviewPage {
    fn minute(&self, unix: &u64) -> String {
        timestamps::console_minute(*unix)
    }

    fn last_login(&self, unix: &Option<u64>) -> String {
        unix.map_or_else(|| "never".to_string(), timestamps::console_minute)
    }

    fn grant(&self, grant: &Grant) -> String {
        crate::store::describe_grant(grant)
    }

    fn grant_fields(&self, grant: &Grant) -> (String, String) {
        match grant {
            Grant::Admin => (String::new(), "admin".to_string()),
            Grant::Role { flock, role } => (flock.to_string(), role.as_str().to_string()),
        }
    }
}

async fn show(signed_in: SignedIn, state: web::Data<AppState>) -> PageResult {
    signed_in.require_admin()?;
    let review = review::review(&state, &signed_in.principal).await?;
    ok(&ReviewPage {
        page: PageContext::signed_in(&signed_in, "Access review"),
        review,
    })
}

/// Back to the review with what happened; a refusal the admin can act on is a flash, anything
/// else an error page.
fn back<T>(
    signed_in: &SignedIn,
    outcome: ServiceResult<T>,
    done: impl FnOnce(T) -> String,
) -> PageResult {
    let shown = |refusal: &Refusal| {
        matches!(
            refusal,
            Refusal::LastEnabledAdmin
                | Refusal::UserNotFound
                | Refusal::ApiKeyNotFound
                | Refusal::FlockNotFound
                | Refusal::TimeInThePast
        )
    };
    back_with_outcome(&signed_in.session, "/review", outcome, shown, done)
}

async fn user_action(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let (id, action) = path.into_inner();
    let id = super::users::parse_user_id(&id)?;
    let who = &signed_in.principal;
    let user = UserRef::Id(id);
    let outcome = match action.as_str() {
        "disable" => users::set_disabled(&state, who, user, true).await,
        "require-2fa" => users::require_two_factor(&state, who, user).await,
        "unlock" => users::unlock(&state, who, user).await,
        _ => return Err(WebError::NotFound),
    };
    back(&signed_in, outcome, |user| match action.as_str() {
        "disable" => format!("{} disabled.", user.email),
        "require-2fa" => format!(
            "{} must set up a second factor at their next login.",
            user.email
        ),
        _ => format!("{} unlocked.", user.email),
    })
}

#[derive(Deserialize)]
struct KeyForm {
    #[serde(default)]
    key_id: String,
}

async fn revoke_key(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<KeyForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let who = &signed_in.principal;
    let key_id = form.key_id;
    let is_flock_key = state
        .read(|store| store.api_key(&key_id))?
        .is_some_and(|key| key.scope.flock_id().is_some());
    let outcome = if is_flock_key {
        api_keys::revoke_flock_key(&state, who, key_id, None).await
    } else {
        api_keys::revoke_global(&state, who, key_id).await
    };
    back(&signed_in, outcome, |key| {
        format!("API key {} ({}) revoked.", key.note, key.key_id)
    })
}

#[derive(Deserialize)]
struct ExtendForm {
    #[serde(default)]
    user_id: String,
    /// Empty for admin access, else the flock of the role.
    #[serde(default)]
    flock_id: String,
    /// `admin`, `manager` or `watcher`.
    #[serde(default)]
    grant: String,
    /// `datetime-local` (UTC).
    #[serde(default)]
    until: String,
}

async fn extend(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<ExtendForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let who = &signed_in.principal;
    let (Ok(id), Some(until)) = (
        form.user_id.parse::<u64>(),
        timestamps::parse_utc_minute(&form.until),
    ) else {
        flash_error(
            &signed_in.session,
            "Extend: choose a new end with the picker.",
        );
        return Ok(see_other("/review"));
    };
    let user = UserRef::Id(id);
    let outcome = match (form.grant.as_str(), FlockId::parse(&form.flock_id)) {
        ("admin", _) => users::set_access_level(&state, who, user, AccessLevel::Admin, Some(until))
            .await
            .map(|user| user.email),
        (role, Ok(flock)) => match FlockRole::parse(role) {
            Ok(role) => flocks::assign(&state, who, user, vec![flock], role, Some(until))
                .await
                .map(|(user, _)| user.email),
            Err(_) => return Err(WebError::BadRequest("Extend: no such right.".into())),
        },
        _ => return Err(WebError::BadRequest("Extend: no such right.".into())),
    };
    back(&signed_in, outcome, |email| {
        format!(
            "Extended for {email} until {}.",
            timestamps::console_minute(until)
        )
    })
}
