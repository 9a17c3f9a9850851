//! Flocks in the console. Admins see and change everything; a flock's managers may add and remove
//! its members; its watchers may only look; anyone else is refused. What a person may do in a
//! flock is decided once per request by `access_to`, at the top of each handler.

use crate::domain::Refusal;
use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;
use serde::Deserialize;

use super::csrf::{CsrfForm, EmptyForm};
use super::error::WebError;
use super::keys::{KeyCreatedPage, KeyFormState, KeyRow, no_store, parse_note};
use super::page::{PageContext, PageResult, flash_error, flash_success, ok, render, see_other};
use super::session::SignedIn;
use crate::auth::api_keys;
use crate::domain::{Email, FlockId, FlockKeyType, FlockName, FlockRole};
use crate::state::{AppState, BlockingError};
use crate::store::{Flock, StoreError};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/flocks", web::get().to(list))
        .route("/flocks", web::post().to(create))
        .route("/flocks/{flock_id}", web::get().to(show))
        .route("/flocks/{flock_id}/rename", web::post().to(rename))
        .route("/flocks/{flock_id}/delete", web::get().to(confirm_delete))
        .route("/flocks/{flock_id}/delete", web::post().to(delete))
        .route("/flocks/{flock_id}/keys", web::post().to(create_key))
        .route(
            "/flocks/{flock_id}/keys/{key_id}/revoke",
            web::post().to(revoke_key),
        )
        .route("/flocks/{flock_id}/members/add", web::post().to(add_member))
        .route(
            "/flocks/{flock_id}/members/remove",
            web::post().to(remove_member),
        );
}

/// What the signed-in person may do in one flock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Everything: rename, delete, keys, members.
    Admin,
    /// Add and remove members.
    Manager,
    /// Look only.
    Watcher,
}

impl Access {
    fn may_change_members(self) -> bool {
        matches!(self, Access::Admin | Access::Manager)
    }

    fn require_member_changes(self) -> Result<(), WebError> {
        if self.may_change_members() {
            Ok(())
        } else {
            Err(WebError::Forbidden)
        }
    }

    fn require_admin(self) -> Result<(), WebError> {
        if self == Access::Admin {
            Ok(())
        } else {
            Err(WebError::Forbidden)
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Access::Admin => "admin",
            Access::Manager => "manager",
            Access::Watcher => "watcher",
        }
    }
}

/// The person's access to `flock`, from their current roles (not from the session, so a role
/// taken away a moment ago counts at once). Someone with no role gets a 403 whether or not the
/// flock exists, so flock ids can't be probed.
async fn access_to(
    signed_in: &SignedIn,
    state: &AppState,
    flock: &FlockId,
) -> Result<Access, WebError> {
    if signed_in.is_admin() {
        return Ok(Access::Admin);
    }
    let email = signed_in.user.email.clone();
    let details = state.read(move |store| store.user_by_email(&email))?;
    if details.managed_flocks.contains(flock) {
        Ok(Access::Manager)
    } else if details.watched_flocks.contains(flock) {
        Ok(Access::Watcher)
    } else {
        Err(WebError::Forbidden)
    }
}

/// A flock id from the path; a malformed one names no page.
fn flock_id_from(path: &str) -> Result<FlockId, WebError> {
    FlockId::parse(path).map_err(|_| WebError::NotFound)
}

fn flock_path(id: &FlockId) -> String {
    format!("/flocks/{id}")
}

// ---- the list ----

struct FlockRow {
    id: String,
    name: String,
    managers: usize,
    watchers: usize,
    /// The viewer's own role, for people who are not admins.
    role: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "flocks/list.html")]
struct FlocksPage {
    page: PageContext,
    is_admin: bool,
    flocks: Vec<FlockRow>,
    create_name: String,
    create_error: Option<String>,
}

async fn flocks_page(
    signed_in: &SignedIn,
    state: &AppState,
    create_name: String,
    create_error: Option<String>,
) -> Result<FlocksPage, WebError> {
    let email = signed_in.user.email.clone();
    let flocks = state
        .blocking(move |store| {
            let details = store.user_by_email(&email)?;
            let snapshot = store.snapshot()?;
            let mut rows = Vec::new();
            for flock in store.flocks_visible_to(&email)? {
                let (managers, watchers) = snapshot.flock_member_counts(&flock.id)?;
                let role = if details.managed_flocks.contains(&flock.id) {
                    Some("manager")
                } else if details.watched_flocks.contains(&flock.id) {
                    Some("watcher")
                } else {
                    None
                };
                rows.push(FlockRow {
                    id: flock.id.to_string(),
                    name: flock.name,
                    managers,
                    watchers,
                    role,
                });
            }
            Ok(rows)
        })
        .await?;
    let is_admin = signed_in.is_admin();
    Ok(FlocksPage {
        page: PageContext::signed_in(signed_in, if is_admin { "Flocks" } else { "My flocks" }),
        is_admin,
        flocks,
        create_name,
        create_error,
    })
}

async fn list(signed_in: SignedIn, state: web::Data<AppState>) -> PageResult {
    ok(&flocks_page(&signed_in, &state, String::new(), None).await?)
}

#[derive(Deserialize)]
pub struct NameForm {
    name: String,
}

async fn create(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<NameForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let name = match FlockName::parse(&form.name) {
        Ok(name) => name,
        Err(rule) => {
            let error = Some(format!("Name: {rule}"));
            let page = flocks_page(&signed_in, &state, form.name, error).await?;
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    let flock = state
        .write(move |store| store.create_flock(name, &[], &[]))
        .await?;
    log::info!("flock {} created by {}", flock.id, signed_in.user.email);
    flash_success(
        &signed_in.session,
        format!("Flock \u{201c}{}\u{201d} created.", flock.name),
    );
    Ok(see_other(&flock_path(&flock.id)))
}

// ---- one flock ----

struct MemberRow {
    email: String,
    /// For admins only: the user page the email links to.
    user_id: Option<u64>,
}

/// The managers or the watchers, shown the same way.
struct MemberGroup {
    role: &'static str,
    title: &'static str,
    members: Vec<MemberRow>,
    /// Members past the first `MEMBERS_SHOWN`, not listed.
    more: usize,
}

/// The first members of a role, and how many more there are.
struct MemberList {
    rows: Vec<MemberRow>,
    more: usize,
}

/// Members listed per role on a flock's page (in email order); the API lists them all.
const MEMBERS_SHOWN: usize = 200;

/// What the forms of the flock page sent back, to show again with an error.
#[derive(Default)]
struct FlockForms {
    rename: Option<String>,
    rename_error: Option<String>,
    member_email: String,
    member_role: String,
    member_error: Option<String>,
    key: KeyFormState,
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
    let (flock, managers, watchers, keys) = state
        .blocking(move |store| {
            let flock = store.flock(&id)?;
            let snapshot = store.snapshot()?;
            let (manager_count, watcher_count) = snapshot.flock_member_counts(&id)?;
            let group = |role: FlockRole, count: usize| -> Result<MemberList, StoreError> {
                let mut rows = Vec::new();
                snapshot.visit_flock_members(
                    &id,
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
                Ok(MemberList {
                    more: count.saturating_sub(rows.len()),
                    rows,
                })
            };
            let managers = group(FlockRole::Manager, manager_count)?;
            let watchers = group(FlockRole::Watcher, watcher_count)?;
            let keys = if is_admin {
                store.flock_api_keys(&id)?
            } else {
                Vec::new()
            };
            Ok((flock, managers, watchers, keys))
        })
        .await?;
    Ok(FlockPage {
        page: PageContext::signed_in(signed_in, flock.name.clone()),
        flock_id: flock.id.to_string(),
        is_default: flock.id.is_default(),
        access: access.as_str(),
        is_admin,
        may_change_members: access.may_change_members(),
        groups: vec![
            MemberGroup {
                role: FlockRole::Manager.as_str(),
                title: "Managers",
                members: managers.rows,
                more: managers.more,
            },
            MemberGroup {
                role: FlockRole::Watcher.as_str(),
                title: "Watchers",
                members: watchers.rows,
                more: watchers.more,
            },
        ],
        keys: keys.iter().map(KeyRow::from).collect(),
        rename_value: forms.rename.clone().unwrap_or_else(|| flock.name.clone()),
        name: flock.name,
        forms,
    })
}

async fn show(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let id = flock_id_from(&path)?;
    let access = access_to(&signed_in, &state, &id).await?;
    ok(&flock_page(&signed_in, &state, id, access, FlockForms::default()).await?)
}

/// The flock page again with a form's error, answered 400.
async fn refuse_form(
    signed_in: &SignedIn,
    state: &AppState,
    id: FlockId,
    access: Access,
    forms: FlockForms,
) -> PageResult {
    let page = flock_page(signed_in, state, id, access, forms).await?;
    render(StatusCode::BAD_REQUEST, &page)
}

async fn rename(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<NameForm>,
) -> PageResult {
    let id = flock_id_from(&path)?;
    let access = access_to(&signed_in, &state, &id).await?;
    access.require_admin()?;
    let name = match FlockName::parse(&form.name) {
        Ok(name) => name,
        Err(rule) => {
            let forms = FlockForms {
                rename: Some(form.name),
                rename_error: Some(format!("Name: {rule}")),
                ..FlockForms::default()
            };
            return refuse_form(&signed_in, &state, id, access, forms).await;
        }
    };
    let target = id.clone();
    let flock = state
        .write(move |store| store.rename_flock(&target, name))
        .await?;
    flash_success(
        &signed_in.session,
        format!("Flock renamed to \u{201c}{}\u{201d}.", flock.name),
    );
    Ok(see_other(&flock_path(&id)))
}

// ---- delete ----

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
fn deletion_refusal(flock: &Flock, member_count: usize) -> Option<String> {
    if flock.id.is_default() {
        Some("The default flock can't be deleted.".to_string())
    } else if member_count > 0 {
        Some(format!(
            "\u{201c}{}\u{201d} still has members: remove them before deleting the flock.",
            flock.name
        ))
    } else {
        None
    }
}

async fn confirm_delete(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let id = flock_id_from(&path)?;
    access_to(&signed_in, &state, &id).await?.require_admin()?;
    let target = id.clone();
    let (flock, member_count, key_count) = state
        .blocking(move |store| {
            let flock = store.flock(&target)?;
            let (managers, watchers) = store.snapshot()?.flock_member_counts(&target)?;
            let keys = store.flock_api_keys(&target)?;
            Ok((flock, managers + watchers, keys.len()))
        })
        .await?;
    if let Some(refusal) = deletion_refusal(&flock, member_count) {
        flash_error(&signed_in.session, refusal);
        return Ok(see_other(&flock_path(&id)));
    }
    ok(&DeletePage {
        page: PageContext::signed_in(&signed_in, format!("Delete {}", flock.name)),
        flock_id: flock.id.to_string(),
        name: flock.name,
        key_count,
    })
}

async fn delete(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    let id = flock_id_from(&path)?;
    access_to(&signed_in, &state, &id).await?.require_admin()?;
    let target = id.clone();
    let outcome = state
        .write(move |store| {
            let flock = store.flock(&target)?;
            store.delete_flock(&target)?;
            Ok(flock)
        })
        .await;
    match outcome {
        Ok(flock) => {
            log::info!("flock {} deleted by {}", flock.id, signed_in.user.email);
            flash_success(
                &signed_in.session,
                format!("Flock \u{201c}{}\u{201d} deleted.", flock.name),
            );
            Ok(see_other("/flocks"))
        }
        Err(BlockingError::Store(StoreError::Refused(Refusal::DefaultFlock))) => {
            flash_error(&signed_in.session, "The default flock can't be deleted.");
            Ok(see_other(&flock_path(&id)))
        }
        Err(BlockingError::Store(StoreError::Refused(Refusal::FlockNotEmpty))) => {
            flash_error(
                &signed_in.session,
                "The flock still has members: remove them before deleting the flock.",
            );
            Ok(see_other(&flock_path(&id)))
        }
        Err(error) => Err(error.into()),
    }
}

// ---- flock API keys ----

#[derive(Deserialize)]
pub struct FlockKeyForm {
    auth_token_type: String,
    #[serde(default)]
    note: String,
}

async fn create_key(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<FlockKeyForm>,
) -> PageResult {
    let id = flock_id_from(&path)?;
    let access = access_to(&signed_in, &state, &id).await?;
    access.require_admin()?;
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
    let creator = signed_in.user.email.to_string();
    let target = id.clone();
    let (flock, issued) = state
        .write(move |store| {
            let flock = store.flock(&target)?;
            let issued = api_keys::issue_flock_key(store, target, key_type, &note, &creator)?;
            Ok((flock, issued))
        })
        .await?;
    log::info!(
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

async fn revoke_key(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    let (raw_id, key_id) = path.into_inner();
    let id = flock_id_from(&raw_id)?;
    access_to(&signed_in, &state, &id).await?.require_admin()?;
    let (flock, key) = (id.clone(), key_id.clone());
    let outcome = state
        .write(move |store| match store.api_key(&key)? {
            // Only this flock's keys: another flock's page must not revoke them.
            Some(record) if record.scope.flock_id() == Some(&flock) => {
                store.remove_api_key(&key, true)
            }
            _ => Err(StoreError::Refused(Refusal::ApiKeyNotFound)),
        })
        .await;
    match outcome {
        Ok(_) => {
            log::info!(
                "API key {key_id} of {id} revoked by {}",
                signed_in.user.email
            );
            flash_success(&signed_in.session, format!("API key {key_id} revoked."));
        }
        Err(BlockingError::Store(StoreError::Refused(Refusal::ApiKeyNotFound))) => flash_error(
            &signed_in.session,
            format!("This flock has no API key {key_id} (already revoked?)."),
        ),
        Err(error) => return Err(error.into()),
    }
    Ok(see_other(&flock_path(&id)))
}

// ---- members ----

#[derive(Deserialize)]
pub struct MemberForm {
    email: String,
    role: String,
}

/// Email and role of a member form, or the message for the form.
fn parse_member_form(form: &MemberForm) -> Result<(Email, FlockRole), String> {
    let email =
        Email::parse(&form.email).map_err(|_| "Email: enter a valid email address.".to_string())?;
    let role =
        FlockRole::parse(&form.role).map_err(|_| "Role: choose manager or watcher.".to_string())?;
    Ok((email, role))
}

async fn add_member(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<MemberForm>,
) -> PageResult {
    let id = flock_id_from(&path)?;
    let access = access_to(&signed_in, &state, &id).await?;
    access.require_member_changes()?;
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
    let (target, flock) = (email.clone(), id.clone());
    let outcome = state
        .write(move |store| {
            let before = store.user_by_email(&target)?;
            store.assign_role(&target, std::slice::from_ref(&flock), role)?;
            let previous = if before.managed_flocks.contains(&flock) {
                Some(FlockRole::Manager)
            } else if before.watched_flocks.contains(&flock) {
                Some(FlockRole::Watcher)
            } else {
                None
            };
            Ok((before.user.email, previous))
        })
        .await;
    let (member, previous) = match outcome {
        Ok(done) => done,
        Err(BlockingError::Store(StoreError::Refused(Refusal::UserNotFound))) => {
            let forms = refuse("Email: no user has this address.".to_string(), form);
            return refuse_form(&signed_in, &state, id, access, forms).await;
        }
        Err(error) => return Err(error.into()),
    };
    log::info!(
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

async fn remove_member(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<MemberForm>,
) -> PageResult {
    let id = flock_id_from(&path)?;
    let access = access_to(&signed_in, &state, &id).await?;
    access.require_member_changes()?;
    let back = flock_path(&id);
    let (email, role) = match parse_member_form(&form) {
        Ok(parsed) => parsed,
        Err(error) => {
            flash_error(&signed_in.session, error);
            return Ok(see_other(&back));
        }
    };
    let (target, flock) = (email.clone(), id.clone());
    let outcome = state
        .write(move |store| {
            let details = store.user_by_email(&target)?;
            let holds = match role {
                FlockRole::Manager => details.managed_flocks.contains(&flock),
                FlockRole::Watcher => details.watched_flocks.contains(&flock),
            };
            if holds {
                store.unassign_role(&target, std::slice::from_ref(&flock), role)?;
            }
            Ok((details.user, holds))
        })
        .await;
    let (member, held) = match outcome {
        Ok(done) => done,
        Err(BlockingError::Store(StoreError::Refused(Refusal::UserNotFound))) => {
            flash_error(
                &signed_in.session,
                format!("No user has the address {email}."),
            );
            return Ok(see_other(&back));
        }
        Err(error) => return Err(error.into()),
    };
    if !held {
        flash_error(
            &signed_in.session,
            format!("{} is not a {} of this flock.", member.email, role.as_str()),
        );
        return Ok(see_other(&back));
    }
    log::info!(
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
