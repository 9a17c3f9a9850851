//! What people do to their own account: second factors and recovery codes. (Their password is in
//! `sign_in`, their summary mail in `users`, their sessions in `sessions`.)

use super::{Permission, Principal, ServiceResult};
use crate::auth::{recovery_codes, totp};
use crate::domain::{Refusal, Secret};
use crate::state::AppState;
use crate::store::{User, WebauthnCredential, now_unix};

/// The enrollment secret of the user's authenticator app, drawn (and kept, sealed) on first
/// need: `None` once TOTP is enrolled.
pub async fn pending_totp_secret(
    state: &AppState,
    who: &Principal,
    user: &User,
) -> ServiceResult<Option<Secret<String>>> {
    who.require(Permission::OwnAccount(user.id))?;
    if user.totp_enabled() {
        return Ok(None);
    }
    let user = if user.pending_totp_secret.is_none() {
        let id = user.id;
        state
            .write(move |store| store.set_pending_totp(id, totp::new_secret()))
            .await?
    } else {
        user.clone()
    };
    Ok(state.read(|store| store.reveal_pending_totp(&user))?)
}

/// Enrolls the pending secret if `code` matches it. Returns the user and, if these were their
/// first recovery codes, the codes to show once; `None` for a wrong code.
pub async fn confirm_totp(
    state: &AppState,
    who: &Principal,
    user_id: u64,
    code: String,
) -> ServiceResult<Option<(User, Option<Vec<String>>)>> {
    who.require(Permission::OwnAccount(user_id))?;
    let (codes, hashes) = recovery_codes::generate();
    let actor = who.actor();
    let now = now_unix();
    let confirmed = state
        .write(move |store| {
            let matched = |secret: &str| totp::matched_step(secret, code.trim(), now);
            store.confirm_totp(&actor, user_id, &matched, hashes.clone())
        })
        .await?;
    Ok(confirmed.map(|(user, stored)| (user, stored.then_some(codes))))
}

/// New recovery codes (the old ones stop working), to show once.
pub async fn new_recovery_codes(
    state: &AppState,
    who: &Principal,
    user_id: u64,
) -> ServiceResult<Vec<String>> {
    who.require(Permission::OwnAccount(user_id))?;
    let (codes, hashes) = recovery_codes::generate();
    let actor = who.actor();
    state
        .write(move |store| store.replace_recovery_codes(&actor, user_id, hashes.clone()))
        .await?;
    Ok(codes)
}

/// Registers a security key or passkey (refused if its credential id is anyone's already); if it
/// is the first factor, recovery codes come with it (returned to show once).
pub async fn add_security_key(
    state: &AppState,
    who: &Principal,
    user_id: u64,
    credential: WebauthnCredential,
) -> ServiceResult<(User, Option<Vec<String>>)> {
    who.require(Permission::OwnAccount(user_id))?;
    let credential_id = credential.passkey.expose().cred_id().to_vec();
    let owner = state
        .blocking(move |store| store.webauthn_credential_owner(&credential_id))
        .await?;
    if owner.is_some() {
        return Err(Refusal::CredentialRegistered.into());
    }
    let (codes, hashes) = recovery_codes::generate();
    let actor = who.actor();
    let (user, stored) = state
        .write(move |store| {
            store.add_webauthn_credential(&actor, user_id, credential.clone(), hashes.clone())
        })
        .await?;
    Ok((user, stored.then_some(codes)))
}

/// Renames one of the user's keys; false if they have no key with that id.
pub async fn rename_security_key(
    state: &AppState,
    who: &Principal,
    user_id: u64,
    credential_id: String,
    name: String,
) -> ServiceResult<bool> {
    who.require(Permission::OwnAccount(user_id))?;
    let actor = who.actor();
    Ok(state
        .write(move |store| {
            store.rename_webauthn_credential(&actor, user_id, &credential_id, name.clone())
        })
        .await?)
}

/// Removes one of the user's keys; false if they have no key with that id.
pub async fn remove_security_key(
    state: &AppState,
    who: &Principal,
    user_id: u64,
    credential_id: String,
) -> ServiceResult<bool> {
    who.require(Permission::OwnAccount(user_id))?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.remove_webauthn_credential(&actor, user_id, &credential_id))
        .await?)
}
