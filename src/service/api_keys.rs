//! API keys: create (the secret is returned here only), list, revoke.

use super::{Permission, Principal, ServiceResult};
use crate::auth::api_keys::{self, IssuedKey};
use crate::domain::{ApiKeyType, FlockId, FlockKeyType, Note, Refusal};
use crate::state::AppState;
use crate::store::{ApiKeyRecord, ApiKeyScope};

pub async fn create_global(
    state: &AppState,
    who: &Principal,
    key_type: ApiKeyType,
    note: Note,
) -> ServiceResult<IssuedKey> {
    who.require(Permission::Administer)?;
    issue(state, who, ApiKeyScope::Global { key_type }, note).await
}

/// A key bound to `flock`, which must exist.
pub async fn create_for_flock(
    state: &AppState,
    who: &Principal,
    flock_id: FlockId,
    key_type: FlockKeyType,
    note: Note,
) -> ServiceResult<IssuedKey> {
    who.require(Permission::Administer)?;
    issue(state, who, ApiKeyScope::Flock { flock_id, key_type }, note).await
}

async fn issue(
    state: &AppState,
    who: &Principal,
    scope: ApiKeyScope,
    note: Note,
) -> ServiceResult<IssuedKey> {
    let actor = who.actor();
    let created_by = who.name();
    Ok(state
        .write(move |store| {
            api_keys::issue(store, &actor, scope.clone(), note.as_str(), &created_by)
        })
        .await?)
}

/// Revokes a global key; a flock key's id counts as unknown here.
pub async fn revoke_global(
    state: &AppState,
    who: &Principal,
    key_id: String,
) -> ServiceResult<ApiKeyRecord> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.remove_api_key(&actor, &key_id, false))
        .await?)
}

/// Revokes a flock key; with `of`, only a key of that flock (another flock's page must not
/// revoke it).
pub async fn revoke_flock_key(
    state: &AppState,
    who: &Principal,
    key_id: String,
    of: Option<FlockId>,
) -> ServiceResult<ApiKeyRecord> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| {
            if let Some(flock) = &of {
                let key = store.api_key(&key_id)?;
                if key.as_ref().and_then(|k| k.scope.flock_id()) != Some(flock) {
                    return Err(Refusal::ApiKeyNotFound.into());
                }
            }
            store.remove_api_key(&actor, &key_id, true)
        })
        .await?)
}

/// Global keys, oldest first, without secrets.
pub async fn list_global(state: &AppState, who: &Principal) -> ServiceResult<Vec<ApiKeyRecord>> {
    who.require(Permission::ReadAll)?;
    Ok(state.blocking(|store| store.global_api_keys()).await?)
}

/// The keys of `flock`, oldest first, without secrets.
pub async fn list_for_flock(
    state: &AppState,
    who: &Principal,
    flock: FlockId,
) -> ServiceResult<Vec<ApiKeyRecord>> {
    who.require(Permission::ReadAll)?;
    Ok(state
        .blocking(move |store| store.flock_api_keys(&flock))
        .await?)
}
