//! One flock's page: its members, its API keys (admins), renaming and deleting it.

use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;

use super::{Access, NameForm, access_to, flock_id_from, flock_path};
use crate::domain::{FlockId, FlockName, FlockRole, Refusal};
use crate::service::{ServiceError, flocks};
use crate::state::AppState;
use crate::store::{Flock, StoreError};
use crate::web::csrf::{CsrfForm, EmptyForm};
use crate::web::error::{WebError, refusal_message};
use crate::web::keys::{KeyFormState, KeyRow};
use crate::web::page::{
    PageContext, PageResult, flash_error, flash_success, ok, render, see_other,
};
use crate::web::session::SignedIn;

pub(super) struct MemberRow {
    email: String,
    /// For admins only: the user page the email links to.
    user_id: Option<u64>,
}

/// The managers or the watchers, shown the same way.
pub(super) struct MemberGroup {
    role: &'static str,
    title: &'static str,
    members: Vec<MemberRow>,
    /// Members past the first `MEMBERS_SHOWN`, not listed.
    more: usize,
}

/// Members listed per role on a flock's page (in email order); the API lists them all.
const MEMBERS_SHOWN: usize = 200;

/// What the forms of the flock page sent back, to show again with an error.
#[derive(Default)]
pub(super) struct FlockForms {
    pub rename: Option<String>,
    pub rename_error: Option<String>,
    pub member_email: String,
    pub member_role: String,
    pub member_error: Option<String>,
    pub key: KeyFormState,
}

#[derive(Template)]
#[template(path = "flocks/show.html")]
struct FlockPage {
    page: PageContext,
    flock_id: String,
    name: String,
    is_default: bool,
    access: &'static str,
    is_admin: bool,
    may_change_members: bool,
    groups: Vec<MemberGroup>,
    keys: Vec<KeyRow>,
    rename_value: String,
    forms: FlockForms,
}

async fn flock_page(
    signed_in: &SignedIn,
    state: &AppState,
    id: FlockId,
    access: Access,
    forms: FlockForms,
) -> Result<FlockPage, WebError> {
    let is_admin = access == Access::Admin;
    let flock = flocks::get(state, &signed_in.principal, &id)?;
    let target = id.clone();
    let groups = state
        .blocking(move |store| {
            let snapshot = store.snapshot()?;
            let (managers, watchers) = snapshot.flock_member_counts(&target)?;
            [
                (FlockRole::Manager, "Managers", managers),
                (FlockRole::Watcher, "Watchers", watchers),
            ]
            .into_iter()
            .map(|(role, title, count)| {
                let mut rows = Vec::new();
                snapshot.visit_flock_members(
                    &target,
                    role,
                    Some(MEMBERS_SHOWN),
                    |user_id, email| {
                        rows.push(MemberRow {
                            email: email.to_string(),
                            user_id: is_admin.then_some(user_id),
                        });
                        Ok::<(), StoreError>(())
                    },
                )?;
                Ok(MemberGroup {
                    role: role.as_str(),
                    title,
                    more: count.saturating_sub(rows.len()),
                    members: rows,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
        })
        .await?;
    let keys = if is_admin {
        crate::service::api_keys::list_for_flock(state, &signed_in.principal, id).await?
    } else {
        Vec::new()
    };
    Ok(FlockPage {
        page: PageContext::signed_in(signed_in, flock.name.clone()),
        flock_id: flock.id.to_string(),
        is_default: flock.id.is_default(),
        access: access.as_str(),
        is_admin,
        may_change_members: access.may_change_members(),
        groups,
        keys: keys.iter().map(KeyRow::from).collect(),
        rename_value: forms.rename.clone().unwrap_or_else(|| flock.name.clone()),
        name: flock.name,
        forms,
    })
}

pub(super) async fn show(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let id = flock_id_from(&path)?;
    let access = access_to(&signed_in, &id)?;
    ok(&flock_page(&signed_in, &state, id, access, FlockForms::default()).await?)
}

/// The flock page again with a form's error, answered 400.
pub(super) async fn refuse_form(
    signed_in: &SignedIn,
    state: &AppState,
    id: FlockId,
    access: Access,
    forms: FlockForms,
) -> PageResult {
    let page = flock_page(signed_in, state, id, access, forms).await?;
    render(StatusCode::BAD_REQUEST, &page)
}

pub(super) async fn rename(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<NameForm>,
) -> PageResult {
    let id = flock_id_from(&path)?;
    let access = access_to(&signed_in, &id)?;
    let name = match FlockName::parse(&form.name) {
        Ok(name) => name,
        Err(rule) if access == Access::Admin => {
            let forms = FlockForms {
                rename: Some(form.name),
                rename_error: Some(format!("Name: {rule}")),
                ..FlockForms::default()
            };
            return refuse_form(&signed_in, &state, id, access, forms).await;
        }
        Err(_) => return Err(WebError::Forbidden),
    };
    let flock = flocks::rename(&state, &signed_in.principal, id.clone(), name).await?;
    flash_success(
        &signed_in.session,
        format!("Flock renamed to \u{201c}{}\u{201d}.", flock.name),
    );
    Ok(see_other(&flock_path(&id)))
}

#[derive(Template)]
#[template(path = "flocks/delete.html")]
struct DeletePage {
    page: PageContext,
    flock_id: String,
    name: String,
    key_count: usize,
}

/// Why `flock` can't be deleted now, if it can't; checked before asking for confirmation so
/// nobody confirms a deletion that will be refused.
fn deletion_refusal(flock: &Flock, member_count: usize) -> Option<Refusal> {
    if flock.id.is_default() {
        Some(Refusal::DefaultFlock)
    } else if member_count > 0 {
        Some(Refusal::FlockNotEmpty)
    } else {
        None
    }
}

pub(super) async fn confirm_delete(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let id = flock_id_from(&path)?;
    if access_to(&signed_in, &id)? != Access::Admin {
        return Err(WebError::Forbidden);
    }
    let flock = flocks::get(&state, &signed_in.principal, &id)?;
    let target = id.clone();
    let (managers, watchers) = state
        .blocking(move |store| store.snapshot()?.flock_member_counts(&target))
        .await?;
    if let Some(refusal) = deletion_refusal(&flock, managers + watchers) {
        flash_error(&signed_in.session, refusal_message(&refusal));
        return Ok(see_other(&flock_path(&id)));
    }
    let keys = crate::service::api_keys::list_for_flock(&state, &signed_in.principal, id).await?;
    ok(&DeletePage {
        page: PageContext::signed_in(&signed_in, format!("Delete {}", flock.name)),
        flock_id: flock.id.to_string(),
        name: flock.name,
        key_count: keys.len(),
    })
}

pub(super) async fn delete(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    let id = flock_id_from(&path)?;
    if access_to(&signed_in, &id)? != Access::Admin {
        return Err(WebError::Forbidden);
    }
    match flocks::delete(&state, &signed_in.principal, id.clone()).await {
        Ok(flock) => {
            tracing::info!("flock {} deleted by {}", flock.id, signed_in.user.email);
            flash_success(
                &signed_in.session,
                format!("Flock \u{201c}{}\u{201d} deleted.", flock.name),
            );
            Ok(see_other("/flocks"))
        }
        Err(ServiceError::Refused(refusal @ (Refusal::DefaultFlock | Refusal::FlockNotEmpty))) => {
            flash_error(&signed_in.session, refusal_message(&refusal));
            Ok(see_other(&flock_path(&id)))
        }
        Err(error) => Err(error.into()),
    }
}
