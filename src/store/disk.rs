//! The stored form of the records that hold secrets: users (with their security keys) and API
//! keys. The types handed out (`User`, `WebauthnCredential`, `ApiKeyRecord`) keep their secrets
//! in `Secret`s, which neither print nor serialize; these forms, private to the store, are the
//! only place the secrets are plain values, on their way to and from the file.
//!
//! Each form is, field for field and in the same order, the JSON that schemas 1 to 3 wrote:
//! reordering, renaming or retyping a field changes the file format.

use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::Passkey;

use super::records::{decode, encode};
use super::sealing::SealedSecret;
use super::{
    ApiKeyRecord, ApiKeyScope, CredentialKind, ExpiringGrant, MadeAdmin, ScheduledOffboarding,
    StoreResult, User, WebauthnCredential,
};
use crate::domain::{AccessLevel, Email, Secret};

pub(super) fn decode_user(bytes: &[u8]) -> StoreResult<User> {
    decode::<UserJson>(bytes).map(User::from)
}

pub(super) fn encode_user(user: &User) -> StoreResult<Vec<u8>> {
    encode(&UserJson::from(user.clone()))
}

pub(super) fn decode_api_key(bytes: &[u8]) -> StoreResult<ApiKeyRecord> {
    decode::<ApiKeyJson>(bytes).map(ApiKeyRecord::from)
}

pub(super) fn encode_api_key(key: &ApiKeyRecord) -> StoreResult<Vec<u8>> {
    encode(&ApiKeyJson::from(key.clone()))
}

/// Fields added after schema 1 default, so older records read without a migration.
#[derive(Serialize, Deserialize)]
struct UserJson {
    id: u64,
    email: Email,
    access_level: AccessLevel,
    disabled: bool,
    note: Option<String>,
    summary_email_enabled: bool,
    #[serde(default)]
    two_factor_required: bool,
    #[serde(default)]
    password_hash: Option<String>,
    /// Sealed (`sealing`) since schema 2; schema 1 held the base32 secret.
    #[serde(default)]
    totp_secret: Option<String>,
    #[serde(default)]
    pending_totp_secret: Option<String>,
    #[serde(default)]
    totp_last_step: u64,
    #[serde(default)]
    recovery_code_hashes: Vec<String>,
    #[serde(default)]
    factor_failures: u32,
    #[serde(default)]
    factor_locked_until: u64,
    #[serde(default)]
    factor_lockouts: u32,
    #[serde(default)]
    factor_lockouts_since: u64,
    #[serde(default)]
    webauthn_credentials: Vec<CredentialJson>,
    #[serde(default)]
    session_generation: u64,
    created: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_login: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offboarding: Option<ScheduledOffboarding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    expiring: Vec<ExpiringGrant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    made_admin: Option<MadeAdmin>,
}

#[derive(Serialize, Deserialize)]
struct CredentialJson {
    id: String,
    name: String,
    created: u64,
    #[serde(default)]
    sign_count: u32,
    /// Schema 5 on; a credential without it is a security key.
    #[serde(default)]
    kind: CredentialKind,
    passkey: Passkey,
}

/// Only the credential ids of a stored user (serde skips the rest): a scan of every user for one
/// id decodes no more than it needs.
#[derive(Deserialize)]
struct CredentialIdsJson {
    #[serde(default)]
    webauthn_credentials: Vec<CredentialIdJson>,
}

#[derive(Deserialize)]
struct CredentialIdJson {
    passkey: Passkey,
}

/// The WebAuthn credential ids of the stored user `bytes`.
pub(super) fn credential_ids(bytes: &[u8]) -> StoreResult<Vec<Vec<u8>>> {
    let json: CredentialIdsJson = decode(bytes)?;
    Ok(json
        .webauthn_credentials
        .into_iter()
        .map(|credential| credential.passkey.cred_id().to_vec())
        .collect())
}

#[derive(Serialize, Deserialize)]
struct ApiKeyJson {
    key_id: String,
    secret_hash: String,
    scope: ApiKeyScope,
    note: String,
    created: u64,
    created_by: String,
    last_used: Option<u64>,
}

impl From<UserJson> for User {
    fn from(json: UserJson) -> User {
        User {
            id: json.id,
            email: json.email,
            access_level: json.access_level,
            disabled: json.disabled,
            note: json.note,
            summary_email_enabled: json.summary_email_enabled,
            two_factor_required: json.two_factor_required,
            password_hash: json.password_hash.map(Secret::new),
            totp_secret: json.totp_secret.map(SealedSecret::from_stored),
            pending_totp_secret: json.pending_totp_secret.map(SealedSecret::from_stored),
            totp_last_step: json.totp_last_step,
            recovery_code_hashes: json
                .recovery_code_hashes
                .into_iter()
                .map(Secret::new)
                .collect(),
            factor_failures: json.factor_failures,
            factor_locked_until: json.factor_locked_until,
            factor_lockouts: json.factor_lockouts,
            factor_lockouts_since: json.factor_lockouts_since,
            webauthn_credentials: json
                .webauthn_credentials
                .into_iter()
                .map(WebauthnCredential::from)
                .collect(),
            session_generation: json.session_generation,
            created: json.created,
            last_login: json.last_login,
            offboarding: json.offboarding,
            expiring: json.expiring,
            made_admin: json.made_admin,
        }
    }
}

impl From<User> for UserJson {
    fn from(user: User) -> UserJson {
        UserJson {
            id: user.id,
            email: user.email,
            access_level: user.access_level,
            disabled: user.disabled,
            note: user.note,
            summary_email_enabled: user.summary_email_enabled,
            two_factor_required: user.two_factor_required,
            password_hash: user.password_hash.map(Secret::into_exposed),
            totp_secret: user.totp_secret.map(SealedSecret::into_stored),
            pending_totp_secret: user.pending_totp_secret.map(SealedSecret::into_stored),
            totp_last_step: user.totp_last_step,
            recovery_code_hashes: user
                .recovery_code_hashes
                .into_iter()
                .map(Secret::into_exposed)
                .collect(),
            factor_failures: user.factor_failures,
            factor_locked_until: user.factor_locked_until,
            factor_lockouts: user.factor_lockouts,
            factor_lockouts_since: user.factor_lockouts_since,
            webauthn_credentials: user
                .webauthn_credentials
                .into_iter()
                .map(CredentialJson::from)
                .collect(),
            session_generation: user.session_generation,
            created: user.created,
            last_login: user.last_login,
            offboarding: user.offboarding,
            expiring: user.expiring,
            made_admin: user.made_admin,
        }
    }
}

impl From<CredentialJson> for WebauthnCredential {
    fn from(json: CredentialJson) -> WebauthnCredential {
        WebauthnCredential {
            id: json.id,
            name: json.name,
            created: json.created,
            sign_count: json.sign_count,
            kind: json.kind,
            passkey: Secret::new(json.passkey),
        }
    }
}

impl From<WebauthnCredential> for CredentialJson {
    fn from(credential: WebauthnCredential) -> CredentialJson {
        CredentialJson {
            id: credential.id,
            name: credential.name,
            created: credential.created,
            sign_count: credential.sign_count,
            kind: credential.kind,
            passkey: credential.passkey.into_exposed(),
        }
    }
}

impl From<ApiKeyJson> for ApiKeyRecord {
    fn from(json: ApiKeyJson) -> ApiKeyRecord {
        ApiKeyRecord {
            key_id: json.key_id,
            secret_hash: Secret::new(json.secret_hash),
            scope: json.scope,
            note: json.note,
            created: json.created,
            created_by: json.created_by,
            last_used: json.last_used,
        }
    }
}

impl From<ApiKeyRecord> for ApiKeyJson {
    fn from(key: ApiKeyRecord) -> ApiKeyJson {
        ApiKeyJson {
            key_id: key.key_id,
            secret_hash: key.secret_hash.into_exposed(),
            scope: key.scope,
            note: key.note,
            created: key.created,
            created_by: key.created_by,
            last_used: key.last_used,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// webauthn-rs's own test credential (a YubiKey's ES256 key), without its attestation.
    const PASSKEY: &str = concat!(
        r#"{"cred":{"cred_id":"uZcVDBVS68E_MtAgeQpElJxldF_6cY9sSvbWqx_qRh8wiu42lyRBRmh5yFeD_r9k130d"#,
        r#"MbFHBHI9RTFgdJQIzQ","cred":{"type_":"ES256","key":{"EC_EC2":{"curve":"SECP256R1","#,
        r#""x":[194,126,127,109,252,23,131,21,252,6,223,99,44,254,140,27,230,17,94,5,133,28,104,"#,
        r#"41,144,69,171,149,161,26,200,243],"#,
        r#""y":[143,123,183,156,24,178,21,248,117,159,162,69,171,52,188,252,26,59,6,47,103,92,19,"#,
        r#"58,117,103,249,0,219,8,95,196]}}},"counter":2,"transports":null,"#,
        r#""user_verified":false,"backup_eligible":false,"backup_state":false,"#,
        r#""registration_policy":"preferred","#,
        r#""extensions":{"cred_protect":"NotRequested","hmac_create_secret":"NotRequested"},"#,
        r#""attestation":{"data":"None","metadata":"None"},"attestation_format":"Packed"}}"#
    );
    pub(in crate::store) const CRED_ID: &str =
        "uZcVDBVS68E_MtAgeQpElJxldF_6cY9sSvbWqx_qRh8wiu42lyRBRmh5yFeD_r9k130dMbFHBHI9RTFgdJQIzQ";
    pub(in crate::store) const PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
    pub(in crate::store) const SEALED_TOTP: &str =
        "sealed:v1:5e1ed70757e1ed70757e1ed70757e1ed70757e1ed707";
    pub(in crate::store) const SEALED_PENDING: &str = "sealed:v1:9e9d1n9e9d1n9e9d1n";
    pub(in crate::store) const RECOVERY_HASH: &str =
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    pub(in crate::store) fn passkey() -> Passkey {
        serde_json::from_str(PASSKEY).unwrap()
    }

    /// A user record with every secret, as schema 5 writes it: fields in declaration order,
    /// compact JSON.
    fn stored_user() -> String {
        let passkey = serde_json::to_string(&passkey()).unwrap();
        format!(
            concat!(
                r#"{{"id":7,"email":"Ann@X.io","access_level":"admin","disabled":false,"#,
                r#""note":"a \"note\" ü","summary_email_enabled":true,"two_factor_required":true,"#,
                r#""password_hash":"{PASSWORD_HASH}","totp_secret":"{SEALED_TOTP}","#,
                r#""pending_totp_secret":"{SEALED_PENDING}","totp_last_step":59833333,"#,
                r#""recovery_code_hashes":["{RECOVERY_HASH}"],"factor_failures":1,"#,
                r#""factor_locked_until":0,"factor_lockouts":2,"factor_lockouts_since":1796140000,"#,
                r#""webauthn_credentials":[{{"id":"0a1b2c3d4e5f6071","name":"YubiKey","#,
                r#""created":1796145793,"sign_count":3,"kind":"passkey","passkey":{passkey}}}],"#,
                r#""session_generation":2,"created":1796145700}}"#
            ),
            PASSWORD_HASH = PASSWORD_HASH,
            SEALED_TOTP = SEALED_TOTP,
            SEALED_PENDING = SEALED_PENDING,
            RECOVERY_HASH = RECOVERY_HASH,
            passkey = passkey,
        )
    }

    #[test]
    fn a_user_is_written_back_byte_for_byte() {
        let stored = stored_user();
        let user = decode_user(stored.as_bytes()).unwrap();
        assert_eq!(
            user.password_hash.as_ref().map(|h| h.expose().as_str()),
            Some(PASSWORD_HASH)
        );
        assert_eq!(user.recovery_code_hashes[0].expose(), RECOVERY_HASH);
        assert_eq!(user.webauthn_credentials[0].sign_count, 3);
        assert_eq!(
            user.webauthn_credentials[0].passkey.expose().cred_id(),
            passkey().cred_id()
        );
        assert_eq!(user.webauthn_credentials[0].kind, CredentialKind::Passkey);
        let written = encode_user(&user).unwrap();
        assert_eq!(String::from_utf8(written).unwrap(), stored);
    }

    /// Before schema 5 every credential was a security key, and said nothing of its kind.
    #[test]
    fn a_schema_4_credential_reads_as_a_security_key() {
        let stored = stored_user().replace(r#""kind":"passkey","#, "");
        let user = decode_user(stored.as_bytes()).unwrap();
        assert_eq!(
            user.webauthn_credentials[0].kind,
            CredentialKind::SecurityKey
        );
        assert!(!user.has_passkey());
        let written = String::from_utf8(encode_user(&user).unwrap()).unwrap();
        assert!(written.contains(r#""sign_count":3,"kind":"security_key","passkey""#));
    }

    /// Schema 1 had no second-factor counters, flags or security keys, and a clear TOTP secret.
    #[test]
    fn a_schema_1_user_reads_with_defaults() {
        let stored = concat!(
            r#"{"id":3,"email":"bob@x.io","access_level":"user","disabled":true,"note":null,"#,
            r#""summary_email_enabled":false,"totp_secret":"JBSWY3DPEHPK3PXP","created":5}"#
        );
        let user = decode_user(stored.as_bytes()).unwrap();
        assert!(user.totp_enabled() && user.password_hash.is_none());
        assert!(user.recovery_code_hashes.is_empty() && !user.webauthn_enabled());
        assert_eq!((user.session_generation, user.created), (0, 5));
    }

    #[test]
    fn an_api_key_is_written_back_byte_for_byte() {
        for stored in [
            concat!(
                r#"{"key_id":"7c6939fb3cb84886","#,
                r#""secret_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","#,
                r#""scope":{"scope":"global","key_type":"admin"},"note":"nightly","#,
                r#""created":1796145793,"created_by":"cli","last_used":null}"#
            ),
            concat!(
                r#"{"key_id":"a9a8df23a26c4e8f","secret_hash":"00ff","#,
                r#""scope":{"scope":"flock","flock_id":"flock:9f755e85fde3c3f4b6db1e1c94ec985c","#,
                r#""key_type":"read-only"},"note":"","created":1,"created_by":"api key x","#,
                r#""last_used":1796145800}"#
            ),
        ] {
            let key = decode_api_key(stored.as_bytes()).unwrap();
            let written = encode_api_key(&key).unwrap();
            assert_eq!(String::from_utf8(written).unwrap(), stored);
        }
    }
}
