//! What the store keeps and hands out. Records are serialised as JSON so that fields can be added
//! with `#[serde(default)]` without a migration; those holding secrets are written through their
//! stored form (`disk`), so the types here that carry secrets don't serialize.

use serde::{Deserialize, Serialize};

use super::StoreResult;
use super::sealing::SealedSecret;
use crate::domain::{AccessLevel, ApiKeyType, Email, FlockId, FlockKeyType, FlockRole, Secret};

/// A user as every handler holds it. Its secrets print as `[redacted]` and it has no `Serialize`:
/// the API shows users through `api::views::UserView`, and the file holds them through the
/// store's own form (`disk::UserJson`).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: u64,
    pub email: Email,
    pub access_level: AccessLevel,
    pub disabled: bool,
    pub note: Option<String>,
    pub summary_email_enabled: bool,
    /// Set by `user/add totp_enabled=true`: a second factor is demanded at the next login.
    pub two_factor_required: bool,
    /// Argon2id PHC string; `None` until the user sets a password through a one-time link.
    pub password_hash: Option<Secret<String>>,
    /// Sealed with the secrets key (`sealing`); the store opens it only to check a code.
    pub totp_secret: Option<SealedSecret>,
    /// A secret shown for enrollment, not yet confirmed with a code; sealed likewise.
    pub pending_totp_secret: Option<SealedSecret>,
    /// The last TOTP step accepted: that step and earlier ones are refused (replay protection).
    pub totp_last_step: u64,
    /// SHA-256 of each unused recovery code.
    pub recovery_code_hashes: Vec<Secret<String>>,
    /// Consecutive wrong second-factor attempts, and until when the step is locked.
    pub factor_failures: u32,
    pub factor_locked_until: u64,
    /// Factor-step locks in the current series (see `domain::Escalation`), and when it began.
    pub factor_lockouts: u32,
    pub factor_lockouts_since: u64,
    pub webauthn_credentials: Vec<WebauthnCredential>,
    /// Bumped whenever the user's open sessions must end (disable, demote, factor reset…).
    pub session_generation: u64,
    pub created: u64,
    /// When the user last completed a login (both factors).
    pub last_login: Option<u64>,
    /// An offboarding set for a later time (`offboarding`).
    pub offboarding: Option<ScheduledOffboarding>,
    /// Admin access and flock roles granted until a time (`grants`); a right not listed here is
    /// held until taken away.
    pub expiring: Vec<ExpiringGrant>,
    /// When and by whom the user was last made an admin (the access review's new admins).
    pub made_admin: Option<MadeAdmin>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MadeAdmin {
    pub at: u64,
    pub by: String,
}

/// How long before a grant expires its reminder goes out.
pub const EXPIRY_REMINDER_SECS: u64 = 3 * 24 * 3600;

impl User {
    /// When the scheduler next has something to do for this user (a reminder, an expiry, a
    /// retry, an offboarding), if ever: the user's entry in `USER_SCHEDULE_DUE`.
    pub fn next_due(&self) -> Option<u64> {
        let grants = self.expiring.iter().map(ExpiringGrant::next_due);
        let offboarding = self.offboarding.iter().map(|schedule| schedule.at);
        grants.chain(offboarding).min()
    }
}

/// A right that ends at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "grant", rename_all = "snake_case")]
pub enum Grant {
    Admin,
    Role { flock: FlockId, role: FlockRole },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiringGrant {
    #[serde(flatten)]
    pub grant: Grant,
    pub expires_at: u64,
    /// Who granted it, as the trail names actors.
    pub granted_by: String,
    /// The reminder went out.
    #[serde(default)]
    pub reminded: bool,
    /// Expiry was deferred (it would have left no enabled admin): try again then.
    #[serde(default)]
    pub retry_at: Option<u64>,
}

impl ExpiringGrant {
    pub fn next_due(&self) -> u64 {
        if !self.reminded {
            self.expires_at.saturating_sub(EXPIRY_REMINDER_SECS)
        } else {
            self.retry_at.unwrap_or(self.expires_at)
        }
    }
}

/// An offboarding an admin set for a later time: run by the scheduler when due (or at the next
/// start, if the server was down then), in the name of who scheduled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledOffboarding {
    pub at: u64,
    pub revoke_api_keys: bool,
    /// The actor's name as the trail records it.
    pub scheduled_by: String,
    pub scheduled_at: u64,
}

impl User {
    /// A new account as it is first stored: enabled, summary mail on, no note, no password, no
    /// factor, nothing scheduled. Callers set what they know beyond that.
    pub fn new(id: u64, email: Email, access_level: AccessLevel, created: u64) -> User {
        User {
            id,
            email,
            access_level,
            disabled: false,
            note: None,
            summary_email_enabled: true,
            two_factor_required: false,
            password_hash: None,
            totp_secret: None,
            pending_totp_secret: None,
            totp_last_step: 0,
            recovery_code_hashes: Vec::new(),
            factor_failures: 0,
            factor_locked_until: 0,
            factor_lockouts: 0,
            factor_lockouts_since: 0,
            webauthn_credentials: Vec::new(),
            session_generation: 0,
            created,
            last_login: None,
            offboarding: None,
            expiring: Vec::new(),
            made_admin: None,
        }
    }

    pub fn is_enabled_admin(&self) -> bool {
        self.access_level == AccessLevel::Admin && !self.disabled
    }

    pub fn totp_enabled(&self) -> bool {
        self.totp_secret.is_some()
    }

    pub fn webauthn_enabled(&self) -> bool {
        !self.webauthn_credentials.is_empty()
    }

    /// How many of their WebAuthn credentials can sign them in on their own.
    pub fn passkey_count(&self) -> usize {
        self.webauthn_credentials
            .iter()
            .filter(|c| c.kind == CredentialKind::Passkey)
            .count()
    }

    /// Whether one of their WebAuthn credentials can sign them in on its own.
    pub fn has_passkey(&self) -> bool {
        self.webauthn_credentials
            .iter()
            .any(|c| c.kind == CredentialKind::Passkey)
    }

    /// Whether they have a way to sign in: a password, or a passkey. A change they make to their
    /// own credentials must keep one (else only an admin's reset link lets them back in).
    pub fn has_a_way_in(&self) -> bool {
        self.password_hash.is_some() || self.has_passkey()
    }

    pub fn has_second_factor(&self) -> bool {
        self.totp_enabled() || self.webauthn_enabled()
    }

    /// The factor step's lock series, if a lock was ever engaged.
    pub fn factor_lock(&self) -> Option<crate::domain::Lock> {
        (self.factor_lockouts > 0 || self.factor_locked_until > 0).then_some(crate::domain::Lock {
            until: self.factor_locked_until,
            lockouts: self.factor_lockouts,
            since: self.factor_lockouts_since,
        })
    }
}

/// A registered security key or passkey, with the name its owner gave it.
#[derive(Debug, Clone)]
pub struct WebauthnCredential {
    pub id: String,
    pub name: String,
    pub created: u64,
    /// The highest signature counter seen; an assertion must go beyond it (a cloned key can't).
    pub sign_count: u32,
    pub kind: CredentialKind,
    pub passkey: Secret<webauthn_rs::prelude::Passkey>,
}

/// What a WebAuthn credential is registered for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// A second factor after the password (kept on the server's list; the authenticator need not
    /// store anything). Every credential of schema 4 and before is one.
    #[default]
    SecurityKey,
    /// A discoverable credential with user verification: both factors at once, so it can sign
    /// its owner in without a password (when the console allows that); also accepted as the
    /// second factor.
    Passkey,
}

impl CredentialKind {
    pub fn label(self) -> &'static str {
        match self {
            CredentialKind::SecurityKey => "security key",
            CredentialKind::Passkey => "passkey",
        }
    }
}

impl PartialEq for WebauthnCredential {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.name == other.name && self.created == other.created
    }
}

/// A user with their flock roles, as the read endpoints show them.
#[derive(Debug, Clone, PartialEq)]
pub struct UserDetails {
    pub user: User,
    pub managed_flocks: Vec<FlockId>,
    pub watched_flocks: Vec<FlockId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Flock {
    pub id: FlockId,
    pub name: String,
    pub created: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct FlockRecord {
    pub name: String,
    pub created: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlockMembers {
    pub managers: Vec<Email>,
    pub watchers: Vec<Email>,
}

/// What a key may reach: the whole console with a global type, or one flock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "lowercase")]
pub enum ApiKeyScope {
    Global {
        key_type: ApiKeyType,
    },
    Flock {
        flock_id: FlockId,
        key_type: FlockKeyType,
    },
}

impl ApiKeyScope {
    pub fn type_name(&self) -> &'static str {
        match self {
            ApiKeyScope::Global { key_type } => key_type.as_str(),
            ApiKeyScope::Flock { key_type, .. } => key_type.as_str(),
        }
    }

    pub fn flock_id(&self) -> Option<&FlockId> {
        match self {
            ApiKeyScope::Global { .. } => None,
            ApiKeyScope::Flock { flock_id, .. } => Some(flock_id),
        }
    }
}

/// An API key as the store hands it out; stored through `disk::ApiKeyJson`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub key_id: String,
    /// Hex SHA-256 of the secret part of the token; the secret itself is never stored.
    pub secret_hash: Secret<String>,
    pub scope: ApiKeyScope,
    pub note: String,
    pub created: u64,
    pub created_by: String,
    pub last_used: Option<u64>,
}

/// `last_used` is only rewritten when the stored value is this much older, so that reads with a
/// key don't each cost a durable write.
pub const LAST_USED_GRANULARITY_SECS: u64 = 60;

impl ApiKeyRecord {
    /// Whether a use at `now` should be recorded: `last_used` is kept to the minute.
    pub fn last_used_is_stale(&self, now: u64) -> bool {
        self.last_used
            .is_none_or(|last| now.saturating_sub(last) >= LAST_USED_GRANULARITY_SECS)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub globally_enforce_2fa: bool,
    pub api_enabled: bool,
    /// Whether a passkey alone signs its owner in (else passkeys serve as a second factor only).
    /// Absent before schema 5: allowed, as no credential of then is a passkey.
    #[serde(default = "passwordless_default")]
    pub passwordless_sign_in: bool,
}

fn passwordless_default() -> bool {
    true
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            globally_enforce_2fa: false,
            api_enabled: true,
            passwordless_sign_in: passwordless_default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenPurpose {
    /// Creates the first admin on an empty console.
    Setup,
    /// Lets a new user (welcome mail, `roost admin create`) choose a password.
    SetPassword,
    /// Lets an existing user replace a forgotten password.
    PasswordReset,
}

/// A single-use link secret, stored under the hash of the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTimeToken {
    pub purpose: TokenPurpose,
    pub user_id: Option<u64>,
    pub created: u64,
    pub expires: u64,
    pub used: bool,
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    Ok(serde_json::from_slice(bytes)?)
}

pub(super) fn encode<T: Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

#[cfg(test)]
mod tests {
    use super::super::disk::tests::{
        CRED_ID, PASSWORD_HASH, RECOVERY_HASH, SEALED_PENDING, SEALED_TOTP, passkey,
    };
    use super::*;

    fn user_with_every_secret() -> User {
        User {
            two_factor_required: true,
            password_hash: Some(Secret::new(PASSWORD_HASH.to_string())),
            totp_secret: Some(SealedSecret::from_stored(SEALED_TOTP.to_string())),
            pending_totp_secret: Some(SealedSecret::from_stored(SEALED_PENDING.to_string())),
            totp_last_step: 1,
            recovery_code_hashes: vec![Secret::new(RECOVERY_HASH.to_string())],
            webauthn_credentials: vec![WebauthnCredential {
                id: "0a1b2c3d4e5f6071".into(),
                name: "YubiKey".into(),
                created: 1,
                sign_count: 3,
                kind: CredentialKind::Passkey,
                passkey: Secret::new(passkey()),
            }],
            ..User::new(7, Email::parse("ann@x.io").unwrap(), AccessLevel::Admin, 1)
        }
    }

    /// What a log line would carry if someone wrote `{:?}` of a user, as handlers hold them.
    #[test]
    fn debug_of_a_user_shows_none_of_its_secrets() {
        let user = user_with_every_secret();
        let details = UserDetails {
            user: user.clone(),
            managed_flocks: Vec::new(),
            watched_flocks: Vec::new(),
        };
        let sealed_totp_hex = SEALED_TOTP.trim_start_matches("sealed:v1:");
        let sealed_pending_hex = SEALED_PENDING.trim_start_matches("sealed:v1:");
        // The key's id and public point, as Debug of webauthn-rs's types lists their bytes.
        let cred_id_bytes = "185, 151, 21, 12";
        let public_key_bytes = "194, 126, 127, 109";
        let bare = format!("{:?}", passkey());
        assert!(
            bare.contains(cred_id_bytes) && bare.contains(public_key_bytes),
            "{bare}"
        );
        for debug in [
            format!("{user:?}"),
            format!("{user:#?}"),
            format!("{details:?}"),
            format!("{:?}", user.webauthn_credentials),
        ] {
            for secret in [
                PASSWORD_HASH,
                "argon2id",
                sealed_totp_hex,
                sealed_pending_hex,
                RECOVERY_HASH,
                CRED_ID,
                cred_id_bytes,
                public_key_bytes,
            ] {
                assert!(!debug.contains(secret), "{secret} in {debug}");
            }
            assert!(debug.contains("[redacted]"), "{debug}");
        }
        let debug = format!("{user:?}");
        assert!(
            debug.contains("ann@x.io") && debug.contains("YubiKey"),
            "{debug}"
        );
    }

    #[test]
    fn debug_of_an_api_key_shows_no_hash() {
        let key = ApiKeyRecord {
            key_id: "7c6939fb3cb84886".into(),
            secret_hash: Secret::new(RECOVERY_HASH.to_string()),
            scope: ApiKeyScope::Global {
                key_type: ApiKeyType::Admin,
            },
            note: "nightly".into(),
            created: 1,
            created_by: "cli".into(),
            last_used: None,
        };
        let debug = format!("{key:?}");
        assert!(!debug.contains(RECOVERY_HASH), "{debug}");
        assert!(debug.contains("7c6939fb3cb84886"), "{debug}");
    }
}
