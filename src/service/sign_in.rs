//! Proving who one is: the password (login, change password, set-password links), the second
//! factor, forgotten passwords. The limits of `auth::login_throttle` apply here, every check runs
//! on the hashing workers, and each outcome is on the audit trail.

use super::{Principal, ServiceError, ServiceResult, Who};
use crate::auth::throttle::Refused;
use crate::domain::{Email, NewPassword, Refusal};
use crate::state::AppState;
use crate::store::audit::AuditLine;
use crate::store::{
    CredentialKind, FactorAttempt, FactorOutcome, PasskeyOutcome, TokenPurpose, User, UserRef,
    WebauthnCredential, now_unix,
};
use webauthn_rs::prelude::{AuthenticationResult, DiscoverableAuthentication, PublicKeyCredential};

/// How a password check ended.
#[derive(Debug)]
pub enum PasswordCheck {
    /// Right password for an enabled account.
    Verified(Box<User>),
    /// Right password, disabled account.
    Disabled,
    /// Wrong password, or no such account (the same answer either way).
    Wrong,
    /// Too many attempts: no check ran.
    Throttled(Refused),
}

/// The account a login attempt counts against: the address's canonical form, or for something
/// that isn't an address a fixed-size digest of it (a throttle key must not grow with the input).
fn throttle_key(email: Option<&Email>, raw: &str) -> String {
    match email {
        Some(email) => email.key(),
        None => format!(
            "unparsed:{}",
            crate::auth::sha256_hex(&raw.trim().to_lowercase())
        ),
    }
}

/// The login form's check: the slot is taken before the password is checked (parallel guesses
/// can't pass together), one argon2 computation runs whatever the outcome (against a dummy for
/// an unknown address), and failures are recorded.
pub async fn check_password(
    state: &AppState,
    who: &Principal,
    raw_email: &str,
    password: &str,
) -> ServiceResult<PasswordCheck> {
    let checked = check_password_counted(state, who, raw_email, password).await;
    let outcome = match &checked {
        Ok(PasswordCheck::Verified(_)) => "verified",
        Ok(PasswordCheck::Disabled) => "disabled",
        Ok(PasswordCheck::Wrong) => "wrong",
        Ok(PasswordCheck::Throttled(_)) => "throttled",
        Err(_) => "error",
    };
    state.metrics.login("password", outcome);
    checked
}

async fn check_password_counted(
    state: &AppState,
    who: &Principal,
    raw_email: &str,
    password: &str,
) -> ServiceResult<PasswordCheck> {
    let email = Email::parse(raw_email).ok();
    let account = throttle_key(email.as_ref(), raw_email);
    let now = now_unix();
    let ip = who.origin.ip_addr();
    let attempt = match state.login_throttles.begin(ip, &account, now) {
        Ok(attempt) => attempt,
        Err(refused) => return Ok(PasswordCheck::Throttled(refused)),
    };
    let user = match &email {
        Some(email) => match state.read(|store| store.user_details(&UserRef::from(email))) {
            Ok(details) => Some(details.user.clone()),
            Err(crate::store::StoreError::Refused(Refusal::UserNotFound)) => None,
            Err(error) => return Err(error.into()),
        },
        None => None,
    };
    let stored = user.as_ref().and_then(|u| u.password_hash.as_ref());
    let matches = match state.hasher.verify(password, stored).await {
        Ok(matches) => matches,
        Err(error) => {
            attempt.cancelled();
            return Err(error.into());
        }
    };
    let who = Principal::new(
        Who::Anonymous {
            claimed: email.clone(),
        },
        who.origin.clone(),
    );
    match user.filter(|_| matches) {
        Some(user) => {
            attempt.succeeded();
            if user.disabled {
                record(
                    state,
                    &who,
                    AuditLine::new(
                        "user_login_disabled",
                        format!("Login of disabled user ({}) refused", user.email),
                    )
                    .target(&user.email),
                )
                .await?;
                return Ok(PasswordCheck::Disabled);
            }
            Ok(PasswordCheck::Verified(Box::new(user)))
        }
        None => {
            let lock = attempt.failed(now);
            let target = email.as_ref().map_or_else(
                || {
                    raw_email
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(254)
                        .collect()
                },
                Email::to_string,
            );
            record(
                state,
                &who,
                AuditLine::new(
                    "user_login_failed",
                    format!("Failed login for ({target}): wrong email or password"),
                )
                .target(&target),
            )
            .await?;
            if let (Some(lock), Some(email)) = (lock, email) {
                keep_login_lock(state, &who, email, lock).await?;
            }
            Ok(PasswordCheck::Wrong)
        }
    }
}

/// Stores a login lock that just engaged (recorded as `user_login_locked`), so a restart doesn't
/// lift it.
async fn keep_login_lock(
    state: &AppState,
    who: &Principal,
    email: Email,
    lock: crate::domain::Lock,
) -> ServiceResult<()> {
    tracing::warn!(
        "login locked for {email} until {} after repeated wrong passwords",
        crate::timestamps::console_second(lock.until)
    );
    let actor = who.actor();
    state
        .write(move |store| store.set_login_lock(&actor, &email, lock))
        .await?;
    Ok(())
}

async fn record(state: &AppState, who: &Principal, line: AuditLine) -> ServiceResult<()> {
    let actor = who.actor();
    state
        .write(move |store| store.record_event(&actor, line.clone()))
        .await?;
    Ok(())
}

/// How a password change ended.
pub enum PasswordChange {
    Changed(Box<User>),
    /// The current password was wrong.
    WrongCurrent,
    Throttled(Refused),
}

/// Changes the signed-in user's password: the current one is checked under the login limits
/// (it is a password guess like any other), then every other session ends (`keep` stays).
pub async fn change_password(
    state: &AppState,
    who: &Principal,
    user: &User,
    current: &str,
    new: NewPassword,
    keep: String,
) -> ServiceResult<PasswordChange> {
    who.require(super::Permission::OwnAccount(user.id))?;
    if let Some(refused) = check_current_password(state, who, user, current).await? {
        return Ok(refused);
    }
    let hash = state.hasher.hash(new.expose()).await?;
    let (actor, id) = (who.actor(), user.id);
    let changed = state
        .write(move |store| store.change_password(&actor, id, hash.clone(), Some(&keep)))
        .await?;
    Ok(PasswordChange::Changed(Box::new(changed)))
}

/// The signed-in user stops using a password and signs in with a passkey only, once their
/// current password is checked (as for a change); every other session ends. Refused while the
/// console doesn't let a passkey sign anyone in, and when they have no passkey (`LastWayIn`).
pub async fn remove_password(
    state: &AppState,
    who: &Principal,
    user: &User,
    current: &str,
    keep: String,
) -> ServiceResult<PasswordChange> {
    who.require(super::Permission::OwnAccount(user.id))?;
    if !passwordless_allowed(state)? {
        return Err(Refusal::NotAllowed.into());
    }
    if !user.has_passkey() {
        return Err(Refusal::LastWayIn.into());
    }
    if let Some(refused) = check_current_password(state, who, user, current).await? {
        return Ok(refused);
    }
    let (actor, id) = (who.actor(), user.id);
    let changed = state
        .write(move |store| store.remove_password(&actor, id, &keep))
        .await?;
    Ok(PasswordChange::Changed(Box::new(changed)))
}

/// The current-password check of a change: `None` if it is right, else how it was refused
/// (wrong: recorded, and counted towards the login lock; or throttled).
async fn check_current_password(
    state: &AppState,
    who: &Principal,
    user: &User,
    current: &str,
) -> ServiceResult<Option<PasswordChange>> {
    let now = now_unix();
    let ip = who.origin.ip_addr();
    let attempt = match state.login_throttles.begin(ip, &user.email.key(), now) {
        Ok(attempt) => attempt,
        Err(refused) => return Ok(Some(PasswordChange::Throttled(refused))),
    };
    let current_ok = match state
        .hasher
        .verify(current, user.password_hash.as_ref())
        .await
    {
        Ok(matches) => matches,
        Err(error) => {
            attempt.cancelled();
            return Err(error.into());
        }
    };
    if current_ok {
        attempt.succeeded();
        return Ok(None);
    }
    if let Some(lock) = attempt.failed(now) {
        keep_login_lock(state, who, user.email.clone(), lock).await?;
    }
    record(
        state,
        who,
        AuditLine::new(
            "user_password_change_failed",
            format!("User ({}) gave a wrong current password", user.email),
        )
        .target(&user.email),
    )
    .await?;
    Ok(Some(PasswordChange::WrongCurrent))
}

/// Uses a one-time link to set a password: for the setup link, creates the first admin with
/// `email`; else sets the password of the link's user (and ends their sessions).
pub async fn set_password_with_link(
    state: &AppState,
    who: &Principal,
    link_hash: String,
    purpose: TokenPurpose,
    email: Email,
    password: NewPassword,
) -> ServiceResult<User> {
    let hash = state.hasher.hash(password.expose()).await?;
    let actor = who.actor();
    let now = now_unix();
    Ok(state
        .write(move |store| {
            if purpose == TokenPurpose::Setup {
                store.complete_setup(&actor, &link_hash, email.clone(), hash.clone(), now)
            } else {
                store.set_password_with_token(&actor, &link_hash, &[purpose], hash.clone(), now)
            }
        })
        .await?)
}

/// A forgot-password request: within its own limits a reset mail is queued in the background for
/// an enabled account; past them, or for an unknown or disabled address, nothing is sent. The
/// caller answers the same page whatever happened.
pub fn forgot_password(state: &AppState, who: &Principal, email: Email) {
    let ip = who.origin.ip_addr();
    if !state
        .login_throttles
        .allow_forgot_password(ip, &email.key(), now_unix())
    {
        tracing::info!("forgot-password request over its limit: no mail sent");
        return;
    }
    let background = state.clone();
    let who = Principal::new(
        Who::Anonymous {
            claimed: Some(email.clone()),
        },
        who.origin.clone(),
    );
    tokio::spawn(async move {
        let sent =
            super::users::request_password_reset(&background, &who, UserRef::Email(email)).await;
        match sent {
            Ok(_) | Err(ServiceError::Refused(Refusal::UserNotFound | Refusal::UserDisabled)) => {}
            Err(error) => tracing::error!(
                "forgot-password request failed: {}",
                crate::error_chain::error_chain(&error)
            ),
        }
    });
}

/// What someone offers at the factor step.
pub enum FactorProof {
    /// A code of their authenticator app.
    Totp(String),
    /// One of their recovery codes.
    RecoveryCode(String),
    /// A security key's answer to the challenge of `authentication`.
    SecurityKey {
        credential: Box<webauthn_rs::prelude::PublicKeyCredential>,
        authentication: Box<webauthn_rs::prelude::PasskeyAuthentication>,
    },
}

/// The factor step of login, for `user_id` who proved their password: checks the proof against
/// what is stored now and records a failure (or the lock) in the same transaction.
pub async fn check_second_factor(
    state: &AppState,
    who: &Principal,
    user_id: u64,
    proof: FactorProof,
) -> ServiceResult<FactorOutcome> {
    let step = match &proof {
        FactorProof::Totp(_) => "totp",
        FactorProof::RecoveryCode(_) => "recovery_code",
        FactorProof::SecurityKey { .. } => "security_key",
    };
    let checked = check_second_factor_counted(state, who, user_id, proof).await;
    let outcome = match &checked {
        Ok(FactorOutcome::Accepted(_)) => "accepted",
        Ok(FactorOutcome::Rejected) => "rejected",
        Ok(FactorOutcome::Locked { .. }) => "locked",
        Err(_) => "error",
    };
    state.metrics.login(step, outcome);
    checked
}

async fn check_second_factor_counted(
    state: &AppState,
    who: &Principal,
    user_id: u64,
    proof: FactorProof,
) -> ServiceResult<FactorOutcome> {
    let actor = who.actor();
    let now = now_unix();
    let webauthn = state.webauthn.clone();
    Ok(state
        .write(move |store| match &proof {
            FactorProof::Totp(code) => {
                let matched =
                    |secret: &str| crate::auth::totp::matched_step(secret, code.trim(), now);
                store.check_second_factor(&actor, user_id, FactorAttempt::Totp(&matched), now)
            }
            FactorProof::RecoveryCode(code) => {
                let hash = crate::auth::recovery_codes::hash(code.trim());
                store.check_second_factor(&actor, user_id, FactorAttempt::RecoveryCode(hash), now)
            }
            FactorProof::SecurityKey {
                credential,
                authentication,
            } => {
                // Inside the factor transaction, against the stored credentials: the counter is
                // compared with what is stored now, not with a copy from when the login began.
                let verify = |credentials: &mut [WebauthnCredential]| {
                    let Some(webauthn) = &webauthn else {
                        return false;
                    };
                    let Ok(result) =
                        webauthn.finish_passkey_authentication(credential, authentication)
                    else {
                        return false;
                    };
                    credentials
                        .iter_mut()
                        .find(|c| c.passkey.expose().cred_id() == result.cred_id())
                        .is_some_and(|stored| counter_moved_on(stored, &result))
                };
                store.check_second_factor(&actor, user_id, FactorAttempt::WebAuthn(&verify), now)
            }
        })
        .await?)
}

/// Takes a verified assertion's signature counter into the credential it used, unless the counter
/// went backwards (a cloned authenticator): an authenticator that counts must count up.
fn counter_moved_on(stored: &mut WebauthnCredential, result: &AuthenticationResult) -> bool {
    let counter = result.counter();
    if (counter > 0 || stored.sign_count > 0) && counter <= stored.sign_count {
        tracing::warn!("security key counter went backwards: a cloned key?");
        return false;
    }
    stored.sign_count = counter;
    stored.passkey.expose_mut().update_credential(result);
    true
}

/// How a passkey sign-in ended.
#[derive(Debug)]
pub enum PasskeyCheck {
    /// A passkey of an enabled account, verified: both factors proven.
    Verified(Box<User>),
    /// A passkey of a disabled account, verified.
    Disabled,
    /// Not a passkey of anyone's here, or its answer didn't verify.
    Rejected,
    /// Too many failed sign-ins from this address: no check ran.
    Throttled(Refused),
    /// The console doesn't allow signing in without a password.
    Forbidden,
}

/// Signing in with a passkey alone (a discoverable credential with user verification): the
/// answer names its user; it must verify against one of that user's passkeys (not a security
/// key, which is a second factor only), within the client's sign-in limit, while the console
/// allows it. Each failure is on the trail.
pub async fn check_passkey(
    state: &AppState,
    who: &Principal,
    credential: Box<PublicKeyCredential>,
    authentication: Box<DiscoverableAuthentication>,
) -> ServiceResult<PasskeyCheck> {
    let checked = check_passkey_counted(state, who, credential, authentication).await;
    let outcome = match &checked {
        Ok(PasskeyCheck::Verified(_)) => "verified",
        Ok(PasskeyCheck::Disabled) => "disabled",
        Ok(PasskeyCheck::Rejected) => "rejected",
        Ok(PasskeyCheck::Throttled(_)) => "throttled",
        Ok(PasskeyCheck::Forbidden) => "forbidden",
        Err(_) => "error",
    };
    state.metrics.login("passkey", outcome);
    checked
}

/// Whether a passkey sign-in may start for `who`: the console must allow it, and the client's
/// address is within its limit of ceremonies started (each is kept in memory, and the kept ones
/// are bounded, so one address must not push out those of people signing in).
pub fn may_start_passkey(state: &AppState, who: &Principal) -> ServiceResult<PasskeyStartCheck> {
    if !passwordless_allowed(state)? {
        return Ok(PasskeyStartCheck::Forbidden);
    }
    match state
        .login_throttles
        .allow_passkey_start(who.origin.ip_addr(), now_unix())
    {
        Ok(()) => Ok(PasskeyStartCheck::Allowed),
        Err(refused) => Ok(PasskeyStartCheck::Throttled(refused)),
    }
}

/// Whether a passkey sign-in may start.
pub enum PasskeyStartCheck {
    Allowed,
    /// The console doesn't allow signing in without a password.
    Forbidden,
    /// Too many started from this address.
    Throttled(Refused),
}

/// Whether the console lets a passkey alone sign someone in.
pub fn passwordless_allowed(state: &AppState) -> ServiceResult<bool> {
    Ok(state.read(|store| store.settings())?.passwordless_sign_in)
}

async fn check_passkey_counted(
    state: &AppState,
    who: &Principal,
    credential: Box<PublicKeyCredential>,
    authentication: Box<DiscoverableAuthentication>,
) -> ServiceResult<PasskeyCheck> {
    if !passwordless_allowed(state)? {
        return Ok(PasskeyCheck::Forbidden);
    }
    let Some(webauthn) = state.webauthn.clone() else {
        return Ok(PasskeyCheck::Rejected);
    };
    let now = now_unix();
    let ip = who.origin.ip_addr();
    let attempt = match state.login_throttles.begin_passkey(ip, now) {
        Ok(attempt) => attempt,
        Err(refused) => return Ok(PasskeyCheck::Throttled(refused)),
    };
    let named = webauthn
        .identify_discoverable_authentication(&credential)
        .ok()
        .and_then(|(handle, credential_id)| {
            let user_id = crate::auth::webauthn::user_of_handle(handle)?;
            Some((user_id, credential_id.to_vec()))
        });
    let user_id = named.as_ref().map(|(user_id, _)| *user_id);
    let verify = move |credentials: &mut [WebauthnCredential]| {
        let Some((_, credential_id)) = &named else {
            return false;
        };
        let Some(stored) = credentials.iter_mut().find(|c| {
            c.kind == CredentialKind::Passkey
                && c.passkey.expose().cred_id().as_slice() == credential_id.as_slice()
        }) else {
            return false;
        };
        let Ok(result) = webauthn.finish_discoverable_authentication_v2(
            &credential,
            (*authentication).clone(),
            stored.passkey.expose(),
        ) else {
            return false;
        };
        // Required at the ceremony's start; checked here too, as it is what makes one step enough.
        result.user_verified() && counter_moved_on(stored, &result)
    };
    let actor = who.actor();
    let outcome = state
        .write(move |store| store.check_passkey_sign_in(&actor, user_id, &verify))
        .await;
    match outcome {
        Ok(PasskeyOutcome::Accepted(user)) => {
            attempt.succeeded();
            Ok(PasskeyCheck::Verified(user))
        }
        Ok(PasskeyOutcome::Disabled) => {
            attempt.succeeded();
            Ok(PasskeyCheck::Disabled)
        }
        Ok(PasskeyOutcome::Rejected) => {
            attempt.failed(now);
            Ok(PasskeyCheck::Rejected)
        }
        Err(error) => {
            attempt.cancelled();
            Err(error.into())
        }
    }
}
