//! One user's page (their facts, roles, sessions and locks, with a form per action) and the page
//! that confirms their removal.

use actix_web::web;
use askama::Template;

use super::parse_user_id;
use crate::domain::{FlockId, FlockRole};
use crate::service::{flocks, offboarding, sessions, users};
use crate::state::AppState;
use crate::store::UserRef;
use crate::timestamps;
use crate::web::page::{PageContext, PageResult, ok};
use crate::web::session::SignedIn;
use crate::web::sessions::{LockFacts, SessionRow, session_rows};

pub struct UserFacts {
    pub id: u64,
    pub email: String,
    pub access_level: &'static str,
    pub disabled: bool,
    pub summary_email_enabled: bool,
    pub totp_enabled: bool,
    pub webauthn_enabled: bool,
    /// Of the WebAuthn credentials, how many can sign them in alone.
    pub passkeys: usize,
    pub security_keys: usize,
    pub has_password: bool,
    pub two_factor_required: bool,
    pub note: Option<String>,
    pub created: String,
    pub last_login: String,
    /// When admin access ends, if it does.
    pub admin_until: Option<String>,
    /// The audit trail filtered to entries about this user.
    pub activity_href: String,
}

pub struct RoleRow {
    pub flock_id: String,
    /// The flock id made safe for an HTML id and a CSS selector (no colon).
    pub dom_id: String,
    pub name: String,
    pub role: &'static str,
    /// When the role ends, if it does.
    pub until: Option<String>,
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
    offboarding: Option<ScheduledFacts>,
}

/// A scheduled offboarding as the user's page shows it.
pub struct ScheduledFacts {
    pub at: String,
    pub by: String,
    pub revoke_api_keys: bool,
}

pub(super) async fn show(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    signed_in.require_admin()?;
    let target = UserRef::Id(parse_user_id(&path)?);
    let who = &signed_in.principal;
    let details = users::get(&state, who, &target)?;
    let all_flocks = flocks::visible(&state, who, None)?;
    let user_sessions = sessions::list(&state, who, &target)?;
    let name_of = |id: &FlockId| {
        all_flocks
            .iter()
            .find(|flock| &flock.id == id)
            .map(|flock| flock.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let until_of = |wanted: &crate::store::Grant| {
        details
            .user
            .expiring
            .iter()
            .find(|grant| &grant.grant == wanted)
            .map(|grant| timestamps::console_minute(grant.expires_at))
    };
    let role_row = |id: &FlockId, role: FlockRole| RoleRow {
        flock_id: id.to_string(),
        dom_id: id.as_str().replace(':', "-"),
        name: name_of(id),
        role: role.as_str(),
        until: until_of(&crate::store::Grant::Role {
            flock: id.clone(),
            role,
        }),
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
    let user = &details.user;
    let passkeys = user.passkey_count();
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
            passkeys,
            security_keys: user.webauthn_credentials.len() - passkeys,
            has_password: user.password_hash.is_some(),
            two_factor_required: user.two_factor_required,
            note: user.note.clone().filter(|note| !note.is_empty()),
            created: timestamps::console_second(user.created),
            admin_until: if user.access_level == crate::domain::AccessLevel::Admin {
                until_of(&crate::store::Grant::Admin)
            } else {
                None
            },
            last_login: user
                .last_login
                .map_or_else(|| "never".to_string(), timestamps::console_second),
            activity_href: format!(
                "/audit?target={}",
                crate::web::error::encode_query_value(user.email.as_str())
            ),
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
        sessions: session_rows(&user_sessions, Some(&signed_in.session_hash)),
        lock: LockFacts::of(&state, user),
        offboarding: user.offboarding.as_ref().map(|schedule| ScheduledFacts {
            at: timestamps::console_minute(schedule.at),
            by: schedule.scheduled_by.clone(),
            revoke_api_keys: schedule.revoke_api_keys,
        }),
    })
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

pub(super) async fn remove_confirm(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    let details = users::get(&state, &signed_in.principal, &UserRef::Id(id))?;
    ok(&RemovePage {
        page: PageContext::signed_in(&signed_in, "Remove user"),
        id,
        email: details.user.email.to_string(),
        flock_count: details.managed_flocks.len() + details.watched_flocks.len(),
        is_self: id == signed_in.user.id,
    })
}

#[derive(Template)]
#[template(path = "users/offboard.html")]
struct OffboardPage {
    page: PageContext,
    id: u64,
    email: String,
    already_disabled: bool,
    sessions: usize,
    roles: Vec<String>,
    links: usize,
    mails: usize,
    keys: Vec<String>,
    scheduled: Option<String>,
    is_self: bool,
}

/// What offboarding the user would do, with the form that does it (now or at a time).
pub(super) async fn offboard_confirm(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    signed_in.require_admin()?;
    let id = parse_user_id(&path)?;
    let preview = offboarding::preview(&state, &signed_in.principal, UserRef::Id(id)).await?;
    let roles = preview
        .managed_flocks
        .iter()
        .map(|(_, name)| format!("manager of {name}"))
        .chain(
            preview
                .watched_flocks
                .iter()
                .map(|(_, name)| format!("watcher of {name}")),
        )
        .collect();
    ok(&OffboardPage {
        page: PageContext::signed_in(&signed_in, "Offboard user"),
        id,
        email: preview.user.email.to_string(),
        already_disabled: !preview.was_enabled,
        sessions: preview.sessions_ended,
        roles,
        links: preview.links_voided,
        mails: preview.mails_dropped,
        keys: preview
            .api_keys
            .iter()
            .map(|key| format!("{} ({})", key.note, key.key_id))
            .collect(),
        scheduled: preview
            .scheduled
            .as_ref()
            .map(|schedule| timestamps::console_minute(schedule.at)),
        is_self: id == signed_in.user.id,
    })
}
