//! Flocks in the console. Admins see and change everything; a flock's managers may add and remove
//! its members; its watchers may only look; anyone else is refused. What a person may do in a
//! flock is decided once per request by `access_to`, from the roles read for the request; the
//! services check again.

mod members;
mod page;

use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;
use serde::Deserialize;

use super::csrf::CsrfForm;
use super::error::WebError;
use super::page::{PageContext, PageResult, flash_success, ok, render, see_other};
use super::session::SignedIn;
use crate::domain::{FlockId, FlockName};
use crate::service::flocks;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/flocks", web::get().to(list))
        .route("/flocks", web::post().to(create))
        .route("/flocks/{flock_id}", web::get().to(page::show))
        .route("/flocks/{flock_id}/rename", web::post().to(page::rename))
        .route(
            "/flocks/{flock_id}/delete",
            web::get().to(page::confirm_delete),
        )
        .route("/flocks/{flock_id}/delete", web::post().to(page::delete))
        .route(
            "/flocks/{flock_id}/keys",
            web::post().to(members::create_key),
        )
        .route(
            "/flocks/{flock_id}/keys/{key_id}/revoke",
            web::post().to(members::revoke_key),
        )
        .route(
            "/flocks/{flock_id}/members/add",
            web::post().to(members::add_member),
        )
        .route(
            "/flocks/{flock_id}/members/remove",
            web::post().to(members::remove_member),
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

    fn as_str(self) -> &'static str {
        match self {
            Access::Admin => "admin",
            Access::Manager => "manager",
            Access::Watcher => "watcher",
        }
    }
}

/// The person's access to `flock`, from their roles as read for this request. Someone with no
/// role gets a 403 whether or not the flock exists, so flock ids can't be probed.
fn access_to(signed_in: &SignedIn, flock: &FlockId) -> Result<Access, WebError> {
    if signed_in.is_admin() {
        return Ok(Access::Admin);
    }
    match signed_in.principal.role_in(flock) {
        Some(crate::domain::FlockRole::Manager) => Ok(Access::Manager),
        Some(crate::domain::FlockRole::Watcher) => Ok(Access::Watcher),
        None => Err(WebError::Forbidden),
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
    let visible = flocks::visible(state, &signed_in.principal, None)?;
    let ids: Vec<FlockId> = visible.iter().map(|flock| flock.id.clone()).collect();
    let counts = state
        .blocking(move |store| {
            let snapshot = store.snapshot()?;
            ids.iter()
                .map(|id| snapshot.flock_member_counts(id))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let rows = visible
        .into_iter()
        .zip(counts)
        .map(|(flock, (managers, watchers))| FlockRow {
            role: signed_in.principal.role_in(&flock.id).map(|r| r.as_str()),
            id: flock.id.to_string(),
            name: flock.name,
            managers,
            watchers,
        })
        .collect();
    let is_admin = signed_in.is_admin();
    Ok(FlocksPage {
        page: PageContext::signed_in(signed_in, if is_admin { "Flocks" } else { "My flocks" }),
        is_admin,
        flocks: rows,
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
    let flock = flocks::create(&state, &signed_in.principal, name, vec![], vec![]).await?;
    tracing::info!("flock {} created by {}", flock.id, signed_in.user.email);
    flash_success(
        &signed_in.session,
        format!("Flock \u{201c}{}\u{201d} created.", flock.name),
    );
    Ok(see_other(&flock_path(&flock.id)))
}
