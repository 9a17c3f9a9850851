//! user/* and users/*: accounts, notes, access levels and factor resets.

use actix_web::web;
use serde_json::json;

use super::caller::ApiCall;
use super::error::ApiError;
use super::stream::{JsonWriter, StreamError, scan_permit, stream_json};
use super::views::UserView;
use super::{ApiResult, success, success_msg, success_with};
use crate::accounts;
use crate::domain::{AccessLevel, Note};
use crate::state::AppState;
use crate::store::NewUser;

const MAX_PAGE: usize = 1000;

pub async fn add(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let params = &call.params;
    let email = params.email("email")?;
    let access_level = params.parse("access_level", AccessLevel::parse)?;
    let two_factor_required = params.flag("totp_enabled", false)?;
    let note = params
        .parse_optional("note", Note::parse)?
        .map(Note::into_string);
    let send_welcome_mail = params.flag("send_welcome_mail", true)?;

    let new_user = NewUser {
        email: email.clone(),
        access_level,
        note,
        two_factor_required,
    };
    accounts::add_user(&state, new_user, send_welcome_mail).await?;
    success_msg(format!("User ({email}) successfully created."))
}

pub async fn get(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_global_reader()?;
    let email = call.params.email("email")?;
    let details = state.read(move |store| store.user_by_email(&email))?;
    success_with(json!({ "user": UserView::from(&details) }))
}

pub async fn auth(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_global_reader()?;
    let email = call.params.email("email")?;
    let details = state.read(move |store| store.user_by_email(&email))?;
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
    call.caller.require_global_reader()?;
    let limit = page_limit(&call)?;
    let cursor = call.params.optional("cursor").map(str::to_string);
    let permit = scan_permit(&state)?;
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
fn next_cursor_field(out: &mut JsonWriter, next: Option<String>) -> Result<(), StreamError> {
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
    call.caller.require_global_reader()?;
    let needle = call.params.non_empty("filter_str")?.to_string();
    let limit = page_limit(&call)?;
    let cursor = call.params.optional("cursor").map(str::to_string);
    let permit = scan_permit(&state)?;
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
    call.caller.require_admin()?;
    let email = call.params.email("email")?;
    let note = call.params.parse_optional("note", Note::parse)?;
    let target = email.clone();
    state
        .write(move |store| match note {
            Some(note) => store.set_note(&target, Some(note.into_string())).map(drop),
            None => store.user_by_email(&target).map(drop),
        })
        .await?;
    success_msg(format!("User ({email}) successfully edited."))
}

pub async fn edit_access_level(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let email = call.params.email("email")?;
    let level = call.params.parse("access_level", AccessLevel::parse)?;
    state
        .write(move |store| store.set_access_level(&email, level))
        .await?;
    success()
}

pub async fn disable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let email = call.params.email("email")?;
    let target = email.clone();
    state
        .write(move |store| store.set_disabled(&target, true))
        .await?;
    success_msg(format!("User ({email}) successfully disabled."))
}

pub async fn enable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let email = call.params.email("email")?;
    let target = email.clone();
    state
        .write(move |store| store.set_disabled(&target, false))
        .await?;
    success_msg(format!("User ({email}) successfully enabled."))
}

pub async fn remove(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let email = call.params.email("email")?;
    let target = email.clone();
    state.write(move |store| store.remove_user(&target)).await?;
    success_msg(format!("User ({email}) successfully removed."))
}

pub async fn note_add(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let email = call.params.email("email")?;
    let note = call.params.parse("note", Note::parse)?;
    let target = email.clone();
    state
        .write(move |store| store.set_note(&target, Some(note.into_string())))
        .await?;
    success_msg(format!("User ({email}) note successfully added."))
}

pub async fn note_delete(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let email = call.params.email("email")?;
    let target = email.clone();
    state
        .write(move |store| store.set_note(&target, None))
        .await?;
    success_msg(format!("User ({email}) note successfully removed."))
}

pub async fn totp_disable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let email = call.params.email("email")?;
    let target = email.clone();
    state.write(move |store| store.clear_totp(&target)).await?;
    success_msg(format!(
        "Successfully disabled two-factor authentication for user {email}"
    ))
}

pub async fn webauthn_disable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let email = call.params.email("email")?;
    state
        .write(move |store| store.clear_webauthn(&email))
        .await?;
    success()
}

pub async fn summary_email_enable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    set_summary_email(call, state, true).await
}

pub async fn summary_email_disable(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    set_summary_email(call, state, false).await
}

async fn set_summary_email(call: ApiCall, state: web::Data<AppState>, enabled: bool) -> ApiResult {
    call.caller.require_admin()?;
    let email = call.params.email("email")?;
    let target = email.clone();
    state
        .write(move |store| store.set_summary_email(&target, enabled))
        .await?;
    let verb = if enabled { "enabled" } else { "disabled" };
    success_msg(format!(
        "Successfully {verb} summary email for email {email}"
    ))
}

pub async fn password_reset(call: ApiCall, state: web::Data<AppState>) -> ApiResult {
    call.caller.require_admin()?;
    let email = call.params.email("email")?;
    accounts::send_password_reset(&state, email.clone()).await?;
    success_msg(format!("Password reset email sent to {email}"))
}
