//! Console sessions: opened at login, closed at logout, listed and ended by their owner or an
//! admin.

use super::{Permission, Principal, ServiceResult};
use crate::auth::{random_hex, sha256_hex};
use crate::domain::Refusal;
use crate::state::AppState;
use crate::store::{SessionRecord, StoredSession, UserRef, now_unix};

/// A session just opened: the id for the cookie (never stored) and the hash it is stored under.
pub struct OpenedSession {
    pub id: String,
    pub hash: String,
}

/// Opens a session for `user_id` after they proved who they are (`how`: "password",
/// "authenticator app"…); the login is recorded in the same transaction.
pub async fn open(
    state: &AppState,
    who: &Principal,
    user_id: u64,
    how: &'static str,
) -> ServiceResult<OpenedSession> {
    let id = random_hex(32);
    let hash = sha256_hex(&id);
    let now = now_unix();
    let record = SessionRecord {
        user_id,
        created: now,
        last_seen: now,
        ip: who.origin.ip.clone(),
        user_agent: who.origin.user_agent.clone().unwrap_or_default(),
    };
    let actor = who.actor();
    let stored = hash.clone();
    state
        .write(move |store| store.create_session(&actor, &stored, &record, how))
        .await?;
    Ok(OpenedSession { id, hash })
}

/// Ends the session stored under `hash` (logout).
pub async fn close(state: &AppState, who: &Principal, hash: String) -> ServiceResult<bool> {
    let actor = who.actor();
    Ok(state
        .write(move |store| store.end_session(&actor, &hash))
        .await?)
}

/// The user's sessions, most recently used first: their own, or anyone's for an admin.
pub fn list(
    state: &AppState,
    who: &Principal,
    user: &UserRef,
) -> ServiceResult<Vec<StoredSession>> {
    let details = state.read(|store| store.user_details(user))?;
    require_own_or_admin(who, details.user.id)?;
    Ok(state.read(|store| store.sessions_of(details.user.id))?)
}

/// Ends the user's session with `public_id`, or all of them (but `keep`, the caller's own, when
/// given). Returns how many ended; naming a session the user doesn't have is refused.
pub async fn revoke(
    state: &AppState,
    who: &Principal,
    user: UserRef,
    public_id: Option<String>,
    keep: Option<String>,
) -> ServiceResult<usize> {
    let details = state.read(|store| store.user_details(&user))?;
    require_own_or_admin(who, details.user.id)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| {
            store.end_sessions_of(
                &actor,
                &UserRef::Id(details.user.id),
                public_id.as_deref(),
                keep.as_deref(),
            )
        })
        .await?)
}

fn require_own_or_admin(who: &Principal, user_id: u64) -> Result<(), Refusal> {
    if who.may(Permission::OwnAccount(user_id)) {
        Ok(())
    } else {
        who.require(Permission::Administer)
    }
}
