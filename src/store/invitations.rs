//! Invitations: links an admin hands out so that people make their own account, with the access
//! level and flock roles the admin chose, within an expiry and a number of uses, optionally only
//! for addresses of one domain. Stored by the SHA-256 of the link's secret (never the secret);
//! listed and revoked by a public id (the hash's first characters, like sessions).

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit::{Actor, AuditLine, record};
use super::records::{decode, encode};
use super::sessions::public_id;
use super::tables::{FLOCKS, INVITATIONS, ROLES_BY_FLOCK, ROLES_BY_USER, USERS};
use super::users::{insert_new_user, write_user};
use super::{NewUser, Store, StoreError, StoreResult, User};
use crate::domain::{AccessLevel, Email, FlockId, FlockRole, Refusal, Secret};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// The public id (not stored: the key's first characters).
    #[serde(skip)]
    pub id: String,
    pub created: u64,
    pub created_by: String,
    pub expires_at: u64,
    pub max_uses: u32,
    pub access_level: AccessLevel,
    pub managed_flocks: Vec<FlockId>,
    pub watched_flocks: Vec<FlockId>,
    /// Only addresses at this domain (lowercase) may use it.
    pub email_domain: Option<String>,
    pub revoked: bool,
    /// Who made an account with it, and when.
    pub uses: Vec<InvitationUse>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationUse {
    pub email: String,
    pub at: u64,
}

impl Invitation {
    /// `active`, `revoked`, `expired` or `used` (every use taken).
    pub fn state(&self, now: u64) -> &'static str {
        if self.revoked {
            "revoked"
        } else if now >= self.expires_at {
            "expired"
        } else if self.uses.len() >= self.max_uses as usize {
            "used"
        } else {
            "active"
        }
    }

    /// Whether `email` is one this invitation is for.
    pub fn allows(&self, email: &Email) -> bool {
        self.email_domain.as_ref().is_none_or(|domain| {
            email
                .key()
                .rsplit_once('@')
                .is_some_and(|(_, at)| at == domain)
        })
    }
}

impl Store {
    /// Stores an invitation under `hash` (the SHA-256 of its secret), with its audit entry.
    pub fn create_invitation(
        &self,
        actor: &Actor,
        hash: &str,
        invitation: &Invitation,
    ) -> StoreResult<Invitation> {
        let txn = self.begin_write()?;
        {
            let flocks = txn.open_table(FLOCKS)?;
            for flock in invitation
                .managed_flocks
                .iter()
                .chain(&invitation.watched_flocks)
            {
                if flocks.get(flock.as_str())?.is_none() {
                    return Err(StoreError::Refused(Refusal::FlockNotFound));
                }
            }
            drop(flocks);
            txn.open_table(INVITATIONS)?
                .insert(hash, encode(invitation)?.as_slice())?;
            record(
                &txn,
                actor,
                AuditLine::new(
                    "invite_create",
                    format!(
                        "Invitation {} created ({}, {} use{})",
                        public_id(hash),
                        invitation.access_level,
                        invitation.max_uses,
                        if invitation.max_uses == 1 { "" } else { "s" }
                    ),
                )
                .details(json!({
                    "invitation": public_id(hash),
                    "access_level": invitation.access_level.as_str(),
                    "managed_flocks": invitation.managed_flocks,
                    "watched_flocks": invitation.watched_flocks,
                    "email_domain": invitation.email_domain,
                    "max_uses": invitation.max_uses,
                    "expires_at": crate::timestamps::rfc3339(invitation.expires_at),
                })),
            )?;
        }
        txn.commit()?;
        Ok(Invitation {
            id: public_id(hash).to_string(),
            ..invitation.clone()
        })
    }

    /// Every invitation, newest first.
    pub fn invitations(&self) -> StoreResult<Vec<Invitation>> {
        let txn = self.begin_read()?;
        let mut all = Vec::new();
        for entry in txn.open_table(INVITATIONS)?.iter()? {
            let (hash, bytes) = entry?;
            let mut invitation: Invitation = decode(bytes.value())?;
            invitation.id = public_id(hash.value()).to_string();
            all.push(invitation);
        }
        all.sort_by_key(|invitation| std::cmp::Reverse(invitation.created));
        Ok(all)
    }

    /// Revokes the invitation with public id `id`: its link makes no more accounts.
    pub fn revoke_invitation(&self, actor: &Actor, id: &str) -> StoreResult<Invitation> {
        let txn = self.begin_write()?;
        let revoked = {
            let mut table = txn.open_table(INVITATIONS)?;
            let mut found = None;
            for entry in table.iter()? {
                let (hash, bytes) = entry?;
                if public_id(hash.value()) == id {
                    found = Some((
                        hash.value().to_string(),
                        decode::<Invitation>(bytes.value())?,
                    ));
                    break;
                }
            }
            let (hash, mut invitation) =
                found.ok_or(StoreError::Refused(Refusal::InvitationNotFound))?;
            invitation.revoked = true;
            table.insert(hash.as_str(), encode(&invitation)?.as_slice())?;
            drop(table);
            record(
                &txn,
                actor,
                AuditLine::new("invite_revoke", format!("Invitation {id} revoked"))
                    .details(json!({ "invitation": id, "uses": invitation.uses.len() })),
            )?;
            Invitation {
                id: id.to_string(),
                ..invitation
            }
        };
        txn.commit()?;
        Ok(revoked)
    }

    /// The invitation stored under `hash` if it can still be used at `now`.
    pub fn live_invitation(&self, hash: &str, now: u64) -> StoreResult<Invitation> {
        let txn = self.begin_read()?;
        let bytes = txn
            .open_table(INVITATIONS)?
            .get(hash)?
            .ok_or(StoreError::Refused(Refusal::LinkInvalid))?;
        let mut invitation: Invitation = decode(bytes.value())?;
        if invitation.state(now) != "active" {
            return Err(StoreError::Refused(Refusal::LinkInvalid));
        }
        invitation.id = public_id(hash).to_string();
        Ok(invitation)
    }

    /// Makes the account an invitation offers, in one transaction: the user with its access
    /// level, password and flock roles (those of flocks still there), the use counted, and the
    /// trail's entries. Refused when the link can't be used any more, the address is of another
    /// domain or already has an account.
    pub fn accept_invitation(
        &self,
        actor: &Actor,
        hash: &str,
        email: Email,
        password_hash: Secret<String>,
        now: u64,
    ) -> StoreResult<User> {
        let txn = self.begin_write()?;
        let user = {
            let mut table = txn.open_table(INVITATIONS)?;
            let mut invitation: Invitation = match table.get(hash)? {
                Some(bytes) => decode(bytes.value())?,
                None => return Err(StoreError::Refused(Refusal::LinkInvalid)),
            };
            if invitation.state(now) != "active" {
                return Err(StoreError::Refused(Refusal::LinkInvalid));
            }
            if let (false, Some(domain)) = (invitation.allows(&email), &invitation.email_domain) {
                return Err(StoreError::Refused(Refusal::EmailDomainNotAllowed(
                    domain.clone(),
                )));
            }
            let id = public_id(hash).to_string();
            let via = Actor {
                name: format!("{} (invitation {id})", actor.name),
                ..actor.clone()
            };
            let new = NewUser {
                email: email.clone(),
                access_level: invitation.access_level,
                note: None,
                two_factor_required: false,
            };
            let mut user = insert_new_user(&txn, new, &via)?;
            user.password_hash = Some(password_hash.clone());
            // Made admin by whoever made the invitation, not by the invitee.
            if let Some(made) = user.made_admin.as_mut() {
                made.by = format!("{} (invitation {id})", invitation.created_by);
            }
            write_user(&mut txn.open_table(USERS)?, &user)?;
            let flocks = txn.open_table(FLOCKS)?;
            let mut by_user = txn.open_table(ROLES_BY_USER)?;
            let mut by_flock = txn.open_table(ROLES_BY_FLOCK)?;
            let mut granted = Vec::new();
            for (flock, role) in invitation
                .managed_flocks
                .iter()
                .map(|flock| (flock, FlockRole::Manager))
                .chain(
                    invitation
                        .watched_flocks
                        .iter()
                        .map(|flock| (flock, FlockRole::Watcher)),
                )
            {
                // A flock deleted since the invitation was made grants nothing.
                if flocks.get(flock.as_str())?.is_some() {
                    by_user.insert((user.id, flock.as_str()), role.to_byte())?;
                    by_flock.insert((flock.as_str(), user.id), role.to_byte())?;
                    granted.push(json!({ "flock_id": flock, "role": role.as_str() }));
                }
            }
            drop((flocks, by_user, by_flock));
            invitation.uses.push(InvitationUse {
                email: email.to_string(),
                at: now,
            });
            table.insert(hash, encode(&invitation)?.as_slice())?;
            drop(table);
            record(
                &txn,
                &via,
                AuditLine::new(
                    "invite_accept",
                    format!(
                        "User ({email}) created as {} through invitation {id}",
                        user.access_level
                    ),
                )
                .target(&email)
                .details(json!({
                    "invitation": id,
                    "created_by": invitation.created_by,
                    "access_level": user.access_level.as_str(),
                    "roles": granted,
                    "uses": invitation.uses.len(),
                    "max_uses": invitation.max_uses,
                })),
            )?;
            user
        };
        txn.commit()?;
        Ok(user)
    }
}
