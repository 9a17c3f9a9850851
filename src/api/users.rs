//! user/* and users/*: accounts, notes, access levels and factor resets. Each handler parses its
//! parameters, calls one action of `service::users`, and answers.

use actix_web::web;
use serde_json::json;

use super::caller::ApiCall;
use super::error::ApiError;
use super::views::UserView;
use super::{ApiResult, success, success_msg, success_with, success_with_field};
use crate::domain::{AccessLevel, Note};
use crate::service::{Permission, users};
use crate::state::AppState;
use crate::store::{NewUser, UserRef};
use crate::stream::{ChunkSink, JsonWriter, StreamError, scan_permit, stream_json};

const MAX_PAGE: usize = 1000;

/// The 503 of a list past the scan limit.
pub(super) fn lists_busy() -> ApiError {
    crate::service::ServiceError::ScansBusy.into()
}

/// The user named by the `email` parameter.
fn target(call: &ApiCall) -> Result<UserRef, ApiError> {
    Ok(UserRef::Email(call.params.email("email")?))
}

pub async fn add(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let params = &call.params;
    let email = params.email("email")?;
    let new_user = NewUser {
        email: email.clone(),
        access_level: params.parse("access_level", AccessLevel::parse)?,
        note: params
            .parse_optional("note", Note::parse)?
            .map(Note::into_string),
        two_factor_required: params.flag("totp_enabled", false)?,
    };
    let welcome = params.flag("send_welcome_mail", true)?;
    let until = params.optional_time("expires_at")?;
    users::add(&state, &call.principal, new_user, welcome, until).await?;
    success_msg(format!("User ({email}) successfully created."))
}

pub async fn get(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let details = users::get(&state, &call.principal, &target(&call)?)?;
    success_with_field("user", &UserView::from(details.as_ref()))
}

pub async fn auth(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let details = users::get(&state, &call.principal, &target(&call)?)?;
    success_with(json!({
        "email": details.user.email.as_str(),
        "access_level": details.user.access_level.as_str(),
        "managed_flocks": details.managed_flocks,
        "watched_flocks": details.watched_flocks,
    }))
}

/// `limit` (1–1000) when given.
fn page_limit(call: &ApiCall) -> Result<Option<usize>, ApiError> {
    match call.params.optional("limit") {
        None => Ok(None),
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(Some(limit)),
            _ => Err(ApiError::bad_request(format!(
                "Parameter 'limit' must be a whole number from 1 to {MAX_PAGE}."
            ))),
        },
    }
}

/// Streamed as the store is read (`stream`): `{"next_cursor":…,"result":"success","users":[…]}`
/// with the cursor first (keys in order), so it is found before the users are listed.
pub async fn list(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.principal.require(Permission::ReadAll)?;
    let limit = page_limit(&call)?;
    let cursor = call.params.optional("cursor").map(str::to_string);
    let permit = scan_permit(&state).ok_or_else(lists_busy)?;
    Ok(stream_json(&state, permit, move |store, out| {
        let snapshot = store.snapshot()?;
        out.raw("{")?;
        if let Some(limit) = limit {
            next_cursor_field(out, snapshot.next_user_cursor(cursor.as_deref(), limit)?)?;
        }
        out.raw(r#""result":"success","#)?;
        out.open_list("users")?;
        snapshot.visit_users(cursor.as_deref(), limit, |details| {
            out.element(&UserView::from(&details))
        })?;
        out.close_list()?;
        out.raw("}")
    }))
}

/// `"next_cursor":"…",` when another page follows.
fn next_cursor_field(
    out: &mut JsonWriter<&mut ChunkSink>,
    next: Option<String>,
) -> Result<(), StreamError> {
    if let Some(next) = next {
        out.value(&"next_cursor")?;
        out.raw(":")?;
        out.value(&next)?;
        out.raw(",")?;
    }
    Ok(())
}

/// Users whose email or note contains `filter_str`, any case, streamed like `list`; with `limit`
/// (extension) the matches come in pages with `next_cursor`.
pub async fn filter(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.principal.require(Permission::ReadAll)?;
    let needle = call.params.non_empty("filter_str")?.to_string();
    let limit = page_limit(&call)?;
    let cursor = call.params.optional("cursor").map(str::to_string);
    let permit = scan_permit(&state).ok_or_else(lists_busy)?;
    Ok(stream_json(&state, permit, move |store, out| {
        let snapshot = store.snapshot()?;
        out.raw("{")?;
        let Some(limit) = limit else {
            out.raw(r#""result":"success","#)?;
            out.open_list("users")?;
            snapshot.visit_matching_users(&needle, cursor.as_deref(), None, |details| {
                out.element(&UserView::from(&details))
            })?;
            out.close_list()?;
            return out.raw("}");
        };
        // The next page's cursor goes first: find this page's matches (ids only), then list them.
        let (ids, next) = snapshot.matching_user_ids(&needle, cursor.as_deref(), limit)?;
        next_cursor_field(out, next)?;
        out.raw(r#""result":"success","#)?;
        out.open_list("users")?;
        snapshot.visit_users_by_id(&ids, |details| out.element(&UserView::from(&details)))?;
        out.close_list()?;
        out.raw("}")
    }))
}

pub async fn edit(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let email = call.params.email("email")?;
    let note = call.params.parse_optional("note", Note::parse)?;
    let user = UserRef::Email(email.clone());
    match note {
        Some(note) => users::set_note(&state, &call.principal, user, Some(note)).await?,
        None => users::edit_nothing(&state, &call.principal, user).await?,
    };
    success_msg(format!("User ({email}) successfully edited."))
}

pub async fn edit_access_level(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let user = target(&call)?;
    let level = call.params.parse("access_level", AccessLevel::parse)?;
    let until = call.params.optional_time("expires_at")?;
    users::set_access_level(&state, &call.principal, user, level, until).await?;
    success()
}

pub async fn disable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    set_disabled(call, state, true).await
}

pub async fn enable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    set_disabled(call, state, false).await
}

async fn set_disabled(call: ApiCall, state: web::Data<AppState>, disabled: bool) -> ApiResult {
    let email = call.params.email("email")?;
    users::set_disabled(
        &state,
        &call.principal,
        UserRef::Email(email.clone()),
        disabled,
    )
    .await?;
    let verb = if disabled { "disabled" } else { "enabled" };
    success_msg(format!("User ({email}) successfully {verb}."))
}

pub async fn remove(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let email = call.params.email("email")?;
    users::remove(&state, &call.principal, UserRef::Email(email.clone())).await?;
    success_msg(format!("User ({email}) successfully removed."))
}

pub async fn note_add(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let email = call.params.email("email")?;
    let note = call.params.parse("note", Note::parse)?;
    users::set_note(
        &state,
        &call.principal,
        UserRef::Email(email.clone()),
        Some(note),
    )
    .await?;
    success_msg(format!("User ({email}) note successfully added."))
}

pub async fn note_delete(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let email = call.params.email("email")?;
    users::set_note(&state, &call.principal, UserRef::Email(email.clone()), None).await?;
    success_msg(format!("User ({email}) note successfully removed."))
}

pub async fn totp_disable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let email = call.params.email("email")?;
    users::reset_totp(&state, &call.principal, UserRef::Email(email.clone())).await?;
    success_msg(format!(
        "Successfully disabled two-factor authentication for user {email}"
    ))
}

pub async fn webauthn_disable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    users::reset_webauthn(&state, &call.principal, target(&call)?).await?;
    success()
}

pub async fn summary_email_enable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    set_summary_email(call, state, true).await
}

pub async fn summary_email_disable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    set_summary_email(call, state, false).await
}

async fn set_summary_email(call: ApiCall, state: web::Data<AppState>, enabled: bool) -> ApiResult {
    let email = call.params.email("email")?;
    users::set_summary_email(
        &state,
        &call.principal,
        UserRef::Email(email.clone()),
        enabled,
    )
    .await?;
    let verb = if enabled { "enabled" } else { "disabled" };
    success_msg(format!(
        "Successfully {verb} summary email for email {email}"
    ))
}

pub async fn password_reset(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let email = call.params.email("email")?;
    users::send_password_reset(&state, &call.principal, UserRef::Email(email.clone())).await?;
    success_msg(format!("Password reset email sent to {email}"))
}

/// `user/offboard`: now, or at `at` (RFC 3339); `revoke_api_keys` (default true) revokes the keys
/// the user created, or with false only lists them.
pub async fn offboard(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    use crate::service::offboarding::{self, Offboarding};
    let params = &call.params;
    let email = params.email("email")?;
    let at = params.optional_time("at")?;
    let revoke_api_keys = params.flag("revoke_api_keys", true)?;
    let outcome = offboarding::offboard(
        &state,
        &call.principal,
        UserRef::Email(email.clone()),
        at,
        revoke_api_keys,
    )
    .await?;
    match outcome {
        Offboarding::Done(report) if !report.changed => success_with(json!({
            "msg": format!("User ({email}) was offboarded already: nothing was left to take away."),
            "offboarding": super::views::offboarding_report(&report),
        })),
        Offboarding::Done(report) => success_with(json!({
            "msg": format!("User ({email}) successfully offboarded."),
            "offboarding": super::views::offboarding_report(&report),
        })),
        Offboarding::Scheduled {
            schedule, replaced, ..
        } => success_with(json!({
            "msg": format!(
                "Offboarding of user ({email}) scheduled for {}.",
                crate::timestamps::rfc3339(schedule.at)
            ),
            "offboarding": super::views::OffboardingView::from(&schedule),
            "replaced": replaced.as_ref().map(super::views::OffboardingView::from),
        })),
    }
}

/// `user/offboard/cancel`: drops the scheduled offboarding of `email`.
pub async fn offboard_cancel(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    let email = call.params.email("email")?;
    let (_, schedule) =
        crate::service::offboarding::cancel(&state, &call.principal, UserRef::Email(email.clone()))
            .await?;
    success_with(json!({
        "msg": format!("Scheduled offboarding of user ({email}) cancelled."),
        "cancelled": super::views::OffboardingView::from(&schedule),
    }))
}
