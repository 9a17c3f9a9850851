//! Flocks: create, rename, delete, and who holds which role in them.

use super::{Permission, Principal, ServiceResult};
use crate::domain::{Email, FlockId, FlockName, FlockRole, Refusal, rules};
use crate::state::AppState;
use crate::store::{Flock, RoleChange, User, UserRef};

pub async fn create(
    state: &AppState,
    who: &Principal,
    name: FlockName,
    managers: Vec<Email>,
    watchers: Vec<Email>,
) -> ServiceResult<Flock> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.create_flock(&actor, name.clone(), &managers, &watchers))
        .await?)
}

pub async fn rename(
    state: &AppState,
    who: &Principal,
    flock: FlockId,
    name: FlockName,
) -> ServiceResult<Flock> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.rename_flock(&actor, &flock, name.clone()))
        .await?)
}

/// Deletes an empty flock other than the default one, with its API keys; returns it.
pub async fn delete(state: &AppState, who: &Principal, flock: FlockId) -> ServiceResult<Flock> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.delete_flock(&actor, &flock))
        .await?)
}

/// Gives `user` `role` in each of `flocks` (replacing their other role there), until `until` if
/// given; one unknown flock changes nothing. Returns each flock's role before and after.
pub async fn assign(
    state: &AppState,
    who: &Principal,
    user: UserRef,
    flocks: Vec<FlockId>,
    role: FlockRole,
    until: Option<u64>,
) -> ServiceResult<(User, Vec<RoleChange>)> {
    change_role(state, who, user, flocks, role, Some(until)).await
}

/// Takes `role` away from `user` in each of `flocks` where they hold it.
pub async fn unassign(
    state: &AppState,
    who: &Principal,
    user: UserRef,
    flocks: Vec<FlockId>,
    role: FlockRole,
) -> ServiceResult<(User, Vec<RoleChange>)> {
    change_role(state, who, user, flocks, role, None).await
}

async fn change_role(
    state: &AppState,
    who: &Principal,
    user: UserRef,
    flocks: Vec<FlockId>,
    role: FlockRole,
    // `Some` to assign (until a time, or not), `None` to unassign.
    assign: Option<Option<u64>>,
) -> ServiceResult<(User, Vec<RoleChange>)> {
    who.require(Permission::ChangeMembers(&flocks))?;
    let actor = who.actor();
    let now = state.clock.now();
    Ok(state
        .write(move |store| match assign {
            Some(until) => store.assign_role_until(&actor, &user, &flocks, role, until, now),
            None => store.unassign_role(&actor, &user, &flocks, role),
        })
        .await?)
}

/// Makes `emails` exactly the holders of `role` in `flock`.
pub async fn replace_holders(
    state: &AppState,
    who: &Principal,
    flock: FlockId,
    role: FlockRole,
    emails: Vec<Email>,
) -> ServiceResult<()> {
    who.require(Permission::ChangeMembers(std::slice::from_ref(&flock)))?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.replace_role_holders(&actor, &flock, role, &emails))
        .await?)
}

/// A flock the principal may read.
pub fn get(state: &AppState, who: &Principal, flock: &FlockId) -> ServiceResult<Flock> {
    who.require(Permission::ReadFlock(flock))?;
    Ok(state.read(|store| store.flock(flock))?)
}

/// The flocks the principal may see: all for those who read everything, a flock key's own
/// flock, a console user's flocks. With `of`, the flocks that user may see.
pub fn visible(state: &AppState, who: &Principal, of: Option<&Email>) -> ServiceResult<Vec<Flock>> {
    let all = state.read(|store| store.list_flocks())?;
    if let Some(email) = of {
        who.require(Permission::ReadAll)?;
        let details = state.read(|store| store.user_details(&UserRef::from(email)))?;
        return Ok(all
            .into_iter()
            .filter(|flock| {
                let role = if details.managed_flocks.contains(&flock.id) {
                    Some(FlockRole::Manager)
                } else if details.watched_flocks.contains(&flock.id) {
                    Some(FlockRole::Watcher)
                } else {
                    None
                };
                rules::may_view_flock(details.user.access_level, role)
            })
            .collect());
    }
    Ok(all
        .into_iter()
        .filter(|flock| who.may(Permission::ReadFlock(&flock.id)))
        .collect())
}

/// Refuses unless the flock exists (for answers that must refuse before they stream).
pub fn require_exists(state: &AppState, who: &Principal, flock: &FlockId) -> ServiceResult<()> {
    who.require(Permission::ReadFlock(flock))?;
    if state.read(|store| store.snapshot()?.flock_exists(flock))? {
        Ok(())
    } else {
        Err(Refusal::FlockNotFound.into())
    }
}
