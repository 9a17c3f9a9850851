//! Second factors: TOTP enrollment, the factor step of login, recovery codes. Each check and the
//! failure counter it updates share one write transaction, so parallel guesses can't slip past the
//! limit and a TOTP step can't be accepted twice.

use super::audit::{self, Actor, AuditLine};
use super::sealing::totp_context;
use super::tables::USERS;
use super::users::UserRef;
use super::users::{read_user, write_user};
use super::{Store, StoreError, StoreResult, User, WebauthnCredential};
use crate::domain::{Escalation, Refusal, Secret};

/// Wrong attempts in a row before the factor step locks.
pub const FACTOR_FAILURE_LIMIT: u32 = 5;

/// What the person typed at the factor step.
pub enum FactorAttempt<'a> {
    /// Finds the TOTP step a code matches for the stored secret.
    Totp(&'a dyn Fn(&str) -> Option<u64>),
    /// The hash of a recovery code.
    RecoveryCode(String),
    /// Verifies a WebAuthn assertion against the user's credentials, updating the one it used
    /// (its signature counter); true if it verified.
    WebAuthn(&'a dyn Fn(&mut [WebauthnCredential]) -> bool),
}

/// How a passkey sign-in (both factors at once) ended.
#[derive(Debug, Clone, PartialEq)]
pub enum PasskeyOutcome {
    Accepted(Box<User>),
    /// The passkey verified, but the account is disabled.
    Disabled,
    /// No such user, no such passkey, or its answer didn't verify (the same answer for all).
    Rejected,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FactorOutcome {
    Accepted(Box<User>),
    Rejected,
    Locked { retry_after_secs: u64 },
}

impl Store {
    /// Keeps a secret shown for enrollment (sealed) until the user confirms it with a code.
    pub fn set_pending_totp(&self, user_id: u64, secret: String) -> StoreResult<User> {
        let sealed = self.sealer.seal(&secret, &totp_context(user_id))?;
        self.change_user_by_id(user_id, |user| {
            user.pending_totp_secret = Some(sealed);
            Ok(())
        })
    }

    /// The clear text of the user's pending TOTP secret, to show it for enrollment.
    pub fn reveal_pending_totp(&self, user: &User) -> StoreResult<Option<Secret<String>>> {
        user.pending_totp_secret
            .as_ref()
            .map(|sealed| {
                self.sealer
                    .open(sealed, &totp_context(user.id))
                    .map(Secret::new)
            })
            .transpose()
    }

    /// Confirms the pending secret if `matched_step` finds a step for it: TOTP becomes enrolled and,
    /// if the user had no recovery codes, `recovery_hashes` become theirs. Returns the user and
    /// whether the codes were stored, or `None` for a wrong code.
    pub fn confirm_totp(
        &self,
        actor: &Actor,
        user_id: u64,
        matched_step: &dyn Fn(&str) -> Option<u64>,
        recovery_hashes: Vec<Secret<String>>,
    ) -> StoreResult<Option<(User, bool)>> {
        let txn = self.begin_write()?;
        let outcome = {
            let mut users = txn.open_table(USERS)?;
            let mut user = read_user(&users, user_id)?;
            let Some(sealed) = user.pending_totp_secret.clone() else {
                return Ok(None);
            };
            let secret = self.sealer.open(&sealed, &totp_context(user_id))?;
            let Some(step) = matched_step(&secret) else {
                return Ok(None);
            };
            user.totp_secret = Some(sealed);
            user.pending_totp_secret = None;
            user.totp_last_step = step;
            let codes_stored = user.recovery_code_hashes.is_empty();
            if codes_stored {
                user.recovery_code_hashes = recovery_hashes;
            }
            write_user(&mut users, &user)?;
            audit::record(
                &txn,
                actor,
                AuditLine::new(
                    "user_totp_enroll",
                    format!("User ({}) enrolled an authenticator app", user.email),
                )
                .target(&user.email),
            )?;
            (user, codes_stored)
        };
        txn.commit()?;
        Ok(Some(outcome))
    }

    /// The factor step of login: checks the attempt, records success or failure, and locks the
    /// step after `FACTOR_FAILURE_LIMIT` failures, all in one transaction. Each further lock
    /// within a day lasts twice as long (`Escalation::ACCOUNT`).
    pub fn check_second_factor(
        &self,
        actor: &Actor,
        user_id: u64,
        attempt: FactorAttempt<'_>,
        now: u64,
    ) -> StoreResult<FactorOutcome> {
        let txn = self.begin_write()?;
        let outcome = {
            let mut users = txn.open_table(USERS)?;
            let mut user = read_user(&users, user_id)?;
            if user.factor_locked_until > now {
                audit::record(
                    &txn,
                    actor,
                    AuditLine::new(
                        "user_login_factor_locked",
                        format!(
                            "Second factor step of user ({}) refused: locked",
                            user.email
                        ),
                    )
                    .target(&user.email)
                    .details(serde_json::json!({ "locked_until": user.factor_locked_until })),
                )?;
                drop(users);
                txn.commit()?;
                return Ok(FactorOutcome::Locked {
                    retry_after_secs: user.factor_locked_until - now,
                });
            }
            let accepted = match attempt {
                FactorAttempt::Totp(matched_step) => match &user.totp_secret {
                    Some(sealed) => {
                        match matched_step(&self.sealer.open(sealed, &totp_context(user_id))?) {
                            Some(step) if step > user.totp_last_step => {
                                user.totp_last_step = step;
                                true
                            }
                            _ => false,
                        }
                    }
                    None => false,
                },
                FactorAttempt::WebAuthn(verify) => verify(&mut user.webauthn_credentials),
                FactorAttempt::RecoveryCode(hash) => {
                    let before = user.recovery_code_hashes.len();
                    user.recovery_code_hashes
                        .retain(|stored| !stored.matches(&hash));
                    user.recovery_code_hashes.len() < before
                }
            };
            let outcome = if accepted {
                user.factor_failures = 0;
                FactorOutcome::Accepted(Box::new(user.clone()))
            } else {
                user.factor_failures += 1;
                let mut details = serde_json::json!({ "failures": user.factor_failures });
                if user.factor_failures >= FACTOR_FAILURE_LIMIT {
                    let lock = Escalation::ACCOUNT.next_lock(user.factor_lock(), now);
                    user.factor_failures = 0;
                    user.factor_locked_until = lock.until;
                    user.factor_lockouts = lock.lockouts;
                    user.factor_lockouts_since = lock.since;
                    details = serde_json::json!({
                        "failures": FACTOR_FAILURE_LIMIT,
                        "locked_until": lock.until,
                        "lockouts_in_series": lock.lockouts,
                    });
                }
                audit::record(
                    &txn,
                    actor,
                    AuditLine::new(
                        "user_login_factor_failed",
                        format!("Wrong second factor for user ({})", user.email),
                    )
                    .target(&user.email)
                    .details(details),
                )?;
                FactorOutcome::Rejected
            };
            write_user(&mut users, &user)?;
            outcome
        };
        txn.commit()?;
        Ok(outcome)
    }

    /// A passkey sign-in: `verify` checks the answer against the passkeys of the user it names
    /// (updating the one it used, its signature counter) in the same transaction that stores the
    /// counter, so a replayed or cloned answer can't pass twice; a failure is on the trail.
    pub fn check_passkey_sign_in(
        &self,
        actor: &Actor,
        user_id: Option<u64>,
        verify: &dyn Fn(&mut [WebauthnCredential]) -> bool,
    ) -> StoreResult<PasskeyOutcome> {
        let txn = self.begin_write()?;
        let outcome = {
            let mut users = txn.open_table(USERS)?;
            let mut user = match user_id.map(|id| read_user(&users, id)).transpose() {
                Ok(user) => user,
                Err(StoreError::Refused(Refusal::UserNotFound)) => None,
                Err(error) => return Err(error),
            };
            let verified = user
                .as_mut()
                .is_some_and(|user| verify(&mut user.webauthn_credentials));
            match user {
                Some(user) if verified => {
                    write_user(&mut users, &user)?;
                    if user.disabled {
                        audit::record(
                            &txn,
                            actor,
                            AuditLine::new(
                                "user_login_disabled",
                                format!(
                                    "Passkey sign-in of disabled user ({}) refused",
                                    user.email
                                ),
                            )
                            .target(&user.email)
                            .details(serde_json::json!({ "method": "passkey" })),
                        )?;
                        PasskeyOutcome::Disabled
                    } else {
                        PasskeyOutcome::Accepted(Box::new(user))
                    }
                }
                user => {
                    let target = user.map_or_else(
                        || "unknown passkey".to_string(),
                        |user| user.email.to_string(),
                    );
                    audit::record(
                        &txn,
                        actor,
                        AuditLine::new(
                            "user_login_failed",
                            format!("Failed passkey sign-in for ({target}): not accepted"),
                        )
                        .target(&target)
                        .details(serde_json::json!({ "method": "passkey" })),
                    )?;
                    PasskeyOutcome::Rejected
                }
            }
        };
        txn.commit()?;
        Ok(outcome)
    }

    /// The user who holds the WebAuthn credential `credential_id`, if anyone does: a credential
    /// id must name one credential of one account (webauthn-rs asks it of every registration).
    /// Reads every user, so the caller runs it off the async workers; registrations are rare.
    pub fn webauthn_credential_owner(&self, credential_id: &[u8]) -> StoreResult<Option<u64>> {
        let txn = self.begin_read()?;
        let users = txn.open_table(USERS)?;
        for entry in redb::ReadableTable::iter(&users)? {
            let (id, bytes) = entry?;
            let ids = super::disk::credential_ids(bytes.value())?;
            if ids.iter().any(|id| id.as_slice() == credential_id) {
                return Ok(Some(id.value()));
            }
        }
        Ok(None)
    }

    /// The enabled users who have no password and sign in with a passkey only, by email: those
    /// a console forbidding passwordless sign-in leaves without a way in until they get a reset
    /// link. Reads every user (asked when the switch is turned off, not per page).
    pub fn passkey_only_users(&self) -> StoreResult<Vec<crate::domain::Email>> {
        let txn = self.begin_read()?;
        let users = txn.open_table(USERS)?;
        let mut found = Vec::new();
        for entry in redb::ReadableTable::iter(&users)? {
            let user = super::disk::decode_user(entry?.1.value())?;
            if user.password_hash.is_none() && user.has_passkey() && !user.disabled {
                found.push(user.email);
            }
        }
        Ok(found)
    }

    /// Registers a security key; if it is the user's first factor and they have no recovery codes,
    /// `recovery_hashes` become theirs. Returns the user and whether the codes were stored.
    pub fn add_webauthn_credential(
        &self,
        actor: &Actor,
        user_id: u64,
        credential: WebauthnCredential,
        recovery_hashes: Vec<Secret<String>>,
    ) -> StoreResult<(User, bool)> {
        let mut codes_stored = false;
        let user = self.update_user(actor, &UserRef::Id(user_id), |user| {
            let line = AuditLine::new(
                "user_webauthn_add",
                format!(
                    "User ({}) registered {} \"{}\"",
                    user.email,
                    credential.kind.label(),
                    credential.name
                ),
            )
            .details(serde_json::json!({ "kind": credential.kind }));
            user.webauthn_credentials.push(credential);
            if user.recovery_code_hashes.is_empty() {
                user.recovery_code_hashes = recovery_hashes;
                codes_stored = true;
            }
            Ok(line)
        })?;
        Ok((user, codes_stored))
    }

    /// Renames one of the user's keys; false if they have no key with that id.
    pub fn rename_webauthn_credential(
        &self,
        actor: &Actor,
        user_id: u64,
        credential_id: &str,
        name: String,
    ) -> StoreResult<bool> {
        let mut found = false;
        self.update_user(actor, &UserRef::Id(user_id), |user| {
            let credential = user
                .webauthn_credentials
                .iter_mut()
                .find(|c| c.id == credential_id)
                .ok_or(StoreError::Refused(Refusal::NotAllowed))?;
            let before = std::mem::replace(&mut credential.name, name);
            found = true;
            Ok(AuditLine::new(
                "user_webauthn_rename",
                format!(
                    "User ({}) renamed security key \"{before}\" to \"{}\"",
                    user.email, credential.name
                ),
            ))
        })
        .map(|_| found)
        .or_else(|error| match error {
            StoreError::Refused(Refusal::NotAllowed) => Ok(false),
            other => Err(other),
        })
    }

    /// Removes one of the user's keys; false if they have no key with that id. Recovery codes go
    /// with the last factor.
    pub fn remove_webauthn_credential(
        &self,
        actor: &Actor,
        user_id: u64,
        credential_id: &str,
    ) -> StoreResult<bool> {
        let removed = self.update_user(actor, &UserRef::Id(user_id), |user| {
            let Some(at) = user
                .webauthn_credentials
                .iter()
                .position(|c| c.id == credential_id)
            else {
                return Err(StoreError::Refused(Refusal::NotAllowed));
            };
            let credential = user.webauthn_credentials.remove(at);
            if !user.has_a_way_in() {
                return Err(StoreError::Refused(Refusal::LastWayIn));
            }
            if !user.has_second_factor() {
                user.recovery_code_hashes.clear();
            }
            Ok(AuditLine::new(
                "user_webauthn_remove",
                format!(
                    "User ({}) removed {} \"{}\"",
                    user.email,
                    credential.kind.label(),
                    credential.name
                ),
            )
            .details(serde_json::json!({ "kind": credential.kind })))
        });
        match removed {
            Ok(_) => Ok(true),
            Err(StoreError::Refused(Refusal::NotAllowed)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Replaces the user's recovery codes (the old ones stop working).
    pub fn replace_recovery_codes(
        &self,
        actor: &Actor,
        user_id: u64,
        hashes: Vec<Secret<String>>,
    ) -> StoreResult<User> {
        self.update_user(actor, &UserRef::Id(user_id), |user| {
            user.recovery_code_hashes = hashes;
            Ok(AuditLine::new(
                "user_recovery_codes_regenerate",
                format!("User ({}) made new recovery codes", user.email),
            ))
        })
    }

    fn change_user_by_id(
        &self,
        user_id: u64,
        change: impl FnOnce(&mut User) -> StoreResult<()>,
    ) -> StoreResult<User> {
        let txn = self.begin_write()?;
        let user = {
            let mut users = txn.open_table(USERS)?;
            let mut user = read_user(&users, user_id)?;
            change(&mut user)?;
            write_user(&mut users, &user)?;
            user
        };
        txn.commit()?;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::super::audit::Actor;
    use super::super::disk::tests::passkey;
    use super::super::{CredentialKind, NewUser, Store, WebauthnCredential};
    use crate::domain::{AccessLevel, Email, Secret};

    #[test]
    fn a_credential_id_names_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut ids = Vec::new();
        for raw in ["ann@x.io", "bob@x.io", "cy@x.io"] {
            let new = NewUser {
                email: Email::parse(raw).unwrap(),
                access_level: AccessLevel::User,
                note: None,
                two_factor_required: false,
            };
            ids.push(store.add_user(&Actor::system(), new, None).unwrap().id);
        }
        let credential = WebauthnCredential {
            id: "0a1b2c3d4e5f6071".into(),
            name: "Key".into(),
            created: 1,
            sign_count: 0,
            kind: CredentialKind::Passkey,
            passkey: Secret::new(passkey()),
        };
        let cred_id = passkey().cred_id().to_vec();
        assert_eq!(store.webauthn_credential_owner(&cred_id).unwrap(), None);
        store
            .add_webauthn_credential(&Actor::system(), ids[1], credential, Vec::new())
            .unwrap();
        assert_eq!(
            store.webauthn_credential_owner(&cred_id).unwrap(),
            Some(ids[1])
        );
        assert_eq!(
            store.webauthn_credential_owner(b"another id").unwrap(),
            None
        );
    }
}
