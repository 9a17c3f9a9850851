//! Invitations: admins create, list and revoke them; whoever holds a live link makes their own
//! account with it (their email, checked against the invitation's domain, and a password) and is
//! signed in.

use super::{Permission, Principal, ServiceResult};
use crate::auth::{random_hex, sha256_hex};
use crate::domain::{AccessLevel, Email, FlockId, NewPassword, Refusal};
use crate::state::AppState;
use crate::store::{Invitation, User};

/// Days an invitation lasts unless told otherwise, and at most.
pub const DEFAULT_DAYS: u64 = 7;
pub const MAX_DAYS: u64 = 90;
/// Uses an invitation may allow at most.
pub const MAX_USES: u32 = 1000;

/// What an admin asks an invitation to grant.
#[derive(Debug, Clone)]
pub struct InvitationRequest {
    pub access_level: AccessLevel,
    pub managed_flocks: Vec<FlockId>,
    pub watched_flocks: Vec<FlockId>,
    /// Unix seconds; `None` for `DEFAULT_DAYS` from now.
    pub expires_at: Option<u64>,
    pub max_uses: u32,
    pub email_domain: Option<String>,
}

/// A created invitation with its link (the only time the link is shown).
pub struct CreatedInvitation {
    pub invitation: Invitation,
    pub link: String,
}

/// Why an invitation request is refused before anything is stored (the edges word it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRequest {
    ExpiresTooLate,
    Uses,
    Domain,
    BothRoles(FlockId),
}

pub async fn create(
    state: &AppState,
    who: &Principal,
    request: InvitationRequest,
) -> ServiceResult<Result<CreatedInvitation, BadRequest>> {
    who.require(Permission::Administer)?;
    let now = state.clock.now();
    let expires_at = request.expires_at.unwrap_or(now + DEFAULT_DAYS * 24 * 3600);
    if expires_at <= now {
        return Err(Refusal::TimeInThePast.into());
    }
    if expires_at > now + MAX_DAYS * 24 * 3600 {
        return Ok(Err(BadRequest::ExpiresTooLate));
    }
    if request.max_uses == 0 || request.max_uses > MAX_USES {
        return Ok(Err(BadRequest::Uses));
    }
    let email_domain = match request.email_domain.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(domain) => match Email::parse(&format!("x@{domain}")) {
            Ok(_) => Some(domain.to_ascii_lowercase()),
            Err(_) => return Ok(Err(BadRequest::Domain)),
        },
    };
    if let Some(both) = request
        .managed_flocks
        .iter()
        .find(|flock| request.watched_flocks.contains(flock))
    {
        return Ok(Err(BadRequest::BothRoles(both.clone())));
    }
    let secret = random_hex(32);
    let hash = sha256_hex(&secret);
    let invitation = Invitation {
        id: String::new(),
        created: now,
        created_by: who.name(),
        expires_at,
        max_uses: request.max_uses,
        access_level: request.access_level,
        managed_flocks: request.managed_flocks,
        watched_flocks: request.watched_flocks,
        email_domain,
        revoked: false,
        uses: Vec::new(),
    };
    let actor = who.actor();
    let stored = state
        .write(move |store| store.create_invitation(&actor, &hash, &invitation))
        .await?;
    Ok(Ok(CreatedInvitation {
        invitation: stored,
        link: format!("{}/invite/{secret}", state.base_url),
    }))
}

pub fn list(state: &AppState, who: &Principal) -> ServiceResult<Vec<Invitation>> {
    who.require(Permission::Administer)?;
    Ok(state.read(|store| store.invitations())?)
}

pub async fn revoke(state: &AppState, who: &Principal, id: String) -> ServiceResult<Invitation> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.revoke_invitation(&actor, &id))
        .await?)
}

/// The invitation behind a link, if it can still be used.
pub fn live(state: &AppState, secret: &str) -> ServiceResult<Invitation> {
    let hash = sha256_hex(secret);
    let now = state.clock.now();
    Ok(state.read(|store| store.live_invitation(&hash, now))?)
}

/// Makes the invitee's account (the password hashed off the async workers first).
pub async fn accept(
    state: &AppState,
    who: &Principal,
    secret: &str,
    email: Email,
    password: NewPassword,
) -> ServiceResult<User> {
    // Refused before the (slow) hashing when the link can't be used or the address is wrong.
    let invitation = live(state, secret)?;
    if let (false, Some(domain)) = (invitation.allows(&email), &invitation.email_domain) {
        return Err(Refusal::EmailDomainNotAllowed(domain.clone()).into());
    }
    let hash = state.hasher.hash(password.expose()).await?;
    let link_hash = sha256_hex(secret);
    let actor = who.actor();
    let now = state.clock.now();
    Ok(state
        .write(move |store| {
            store.accept_invitation(&actor, &link_hash, email.clone(), hash.clone(), now)
        })
        .await?)
}
