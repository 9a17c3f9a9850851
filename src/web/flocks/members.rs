//! Changing a flock: its members (managers and admins) and its API keys (admins).

use actix_web::http::StatusCode;
use actix_web::web;
use serde::Deserialize;

use super::page::{FlockForms, refuse_form};
use super::{Access, access_to, flock_id_from, flock_path};
use crate::domain::{Email, FlockId, FlockKeyType, FlockRole, Refusal};
use crate::service::{ServiceError, api_keys, flocks};
use crate::state::AppState;
use crate::store::UserRef;
use crate::web::csrf::{CsrfForm, EmptyForm};
use crate::web::error::WebError;
use crate::web::keys::{KeyCreatedPage, KeyFormState, no_store, parse_note};
use crate::web::page::{PageResult, flash_error, flash_success, see_other};
use crate::web::session::SignedIn;

#[derive(Deserialize)]
pub struct FlockKeyForm {
    auth_token_type: String,
    #[serde(default)]
    note: String,
}

pub(super) async fn create_key(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<FlockKeyForm>,
) -> PageResult {
    let id = flock_id_from(&path)?;
    let access = access_to(&signed_in, &id)?;
    if access != Access::Admin {
        return Err(WebError::Forbidden);
    }
    let parsed = FlockKeyType::parse(&form.auth_token_type)
        .map_err(|_| "Type: choose admin or read-only.".to_string())
        .and_then(|key_type| Ok((key_type, parse_note(&form.note)?)));
    let (key_type, note) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let forms = FlockForms {
                key: KeyFormState {
                    key_type: form.auth_token_type,
                    note: form.note,
                    error: Some(error),
                },
                ..FlockForms::default()
            };
            return refuse_form(&signed_in, &state, id, access, forms).await;
        }
    };
    let flock = flocks::get(&state, &signed_in.principal, &id)?;
    let issued =
        api_keys::create_for_flock(&state, &signed_in.principal, id.clone(), key_type, note)
            .await?;
    tracing::info!(
        "{} API key {} for {} created by {}",
        issued.record.scope.type_name(),
        issued.record.key_id,
        flock.id,
        signed_in.user.email
    );
    let page = KeyCreatedPage::new(
        &signed_in,
        &issued,
        Some((flock.id.to_string(), flock.name)),
        flock_path(&id),
    );
    no_store(StatusCode::OK, &page)
}

pub(super) async fn revoke_key(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    let (raw_id, key_id) = path.into_inner();
    let id = flock_id_from(&raw_id)?;
    if access_to(&signed_in, &id)? != Access::Admin {
        return Err(WebError::Forbidden);
    }
    let revoked = api_keys::revoke_flock_key(
        &state,
        &signed_in.principal,
        key_id.clone(),
        Some(id.clone()),
    )
    .await;
    match revoked {
        Ok(_) => {
            tracing::info!(
                "API key {key_id} of {id} revoked by {}",
                signed_in.user.email
            );
            flash_success(&signed_in.session, format!("API key {key_id} revoked."));
        }
        Err(ServiceError::Refused(Refusal::ApiKeyNotFound)) => flash_error(
            &signed_in.session,
            format!("This flock has no API key {key_id} (already revoked?)."),
        ),
        Err(error) => return Err(error.into()),
    }
    Ok(see_other(&flock_path(&id)))
}

#[derive(Deserialize)]
pub struct MemberForm {
    email: String,
    role: String,
}

/// The flock of the path and the signed-in person's access to it, if they may change its members.
fn member_changer(signed_in: &SignedIn, path: &str) -> Result<(FlockId, Access), WebError> {
    let id = flock_id_from(path)?;
    let access = access_to(signed_in, &id)?;
    if access.may_change_members() {
        Ok((id, access))
    } else {
        Err(WebError::Forbidden)
    }
}

/// Email and role of a member form, or the message for the form.
fn parse_member_form(form: &MemberForm) -> Result<(Email, FlockRole), String> {
    let email =
        Email::parse(&form.email).map_err(|_| "Email: enter a valid email address.".to_string())?;
    let role =
        FlockRole::parse(&form.role).map_err(|_| "Role: choose manager or watcher.".to_string())?;
    Ok((email, role))
}

pub(super) async fn add_member(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<MemberForm>,
) -> PageResult {
    let (id, access) = member_changer(&signed_in, &path)?;
    let refuse = |error: String, form: MemberForm| FlockForms {
        member_email: form.email,
        member_role: form.role,
        member_error: Some(error),
        ..FlockForms::default()
    };
    let (email, role) = match parse_member_form(&form) {
        Ok(parsed) => parsed,
        Err(error) => {
            let forms = refuse(error, form);
            return refuse_form(&signed_in, &state, id, access, forms).await;
        }
    };
    let assigned = flocks::assign(
        &state,
        &signed_in.principal,
        UserRef::Email(email),
        vec![id.clone()],
        role,
        None,
    )
    .await;
    let (member, changes) = match assigned {
        Ok(done) => done,
        Err(ServiceError::Refused(Refusal::UserNotFound)) => {
            let forms = refuse("Email: no user has this address.".to_string(), form);
            return refuse_form(&signed_in, &state, id, access, forms).await;
        }
        Err(error) => return Err(error.into()),
    };
    let previous = changes.first().and_then(|change| change.before);
    let member = member.email;
    tracing::info!(
        "{member} made {} of {id} by {}",
        role.as_str(),
        signed_in.user.email
    );
    let message = match previous {
        Some(held) if held == role => format!("{member} already is a {} here.", role.as_str()),
        Some(held) => format!(
            "{member} is now a {} here (was a {}).",
            role.as_str(),
            held.as_str()
        ),
        None => format!("{member} added as {}.", role.as_str()),
    };
    flash_success(&signed_in.session, message);
    Ok(see_other(&flock_path(&id)))
}

pub(super) async fn remove_member(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<MemberForm>,
) -> PageResult {
    let (id, access) = member_changer(&signed_in, &path)?;
    let back = flock_path(&id);
    let (email, role) = match parse_member_form(&form) {
        Ok(parsed) => parsed,
        Err(error) => {
            flash_error(&signed_in.session, error);
            return Ok(see_other(&back));
        }
    };
    let user = UserRef::Email(email.clone());
    let details = match state.read(|store| store.user_details(&user)) {
        Ok(details) => details,
        Err(crate::store::StoreError::Refused(Refusal::UserNotFound)) => {
            flash_error(
                &signed_in.session,
                format!("No user has the address {email}."),
            );
            return Ok(see_other(&back));
        }
        Err(error) => return Err(error.into()),
    };
    let held = match role {
        FlockRole::Manager => details.managed_flocks.contains(&id),
        FlockRole::Watcher => details.watched_flocks.contains(&id),
    };
    if !held {
        flash_error(
            &signed_in.session,
            format!(
                "{} is not a {} of this flock.",
                details.user.email,
                role.as_str()
            ),
        );
        return Ok(see_other(&back));
    }
    let target = UserRef::Id(details.user.id);
    let (member, _) =
        flocks::unassign(&state, &signed_in.principal, target, vec![id.clone()], role).await?;
    tracing::info!(
        "{} removed as {} of {id} by {}",
        member.email,
        role.as_str(),
        signed_in.user.email
    );
    flash_success(
        &signed_in.session,
        format!("{} removed as {}.", member.email, role.as_str()),
    );
    // A manager who removed themselves can no longer see the flock's page.
    if access != Access::Admin && member.id == signed_in.user.id {
        return Ok(see_other("/flocks"));
    }
    Ok(see_other(&back))
}
