//! JSON shapes of stored things, as the API shows them.

use serde::Serialize;

use crate::domain::FlockId;
use crate::store::{ApiKeyRecord, UserDetails};

#[derive(Serialize)]
pub struct UserView<'a> {
    pub id: u64,
    pub email: &'a str,
    pub access_level: &'static str,
    pub disabled: bool,
    pub note: Option<&'a str>,
    pub summary_email_enabled: bool,
    pub totp_enabled: bool,
    pub webauthn_enabled: bool,
    pub two_factor_required: bool,
    pub managed_flocks: &'a [FlockId],
    pub watched_flocks: &'a [FlockId],
}

impl<'a> From<&'a UserDetails> for UserView<'a> {
    fn from(details: &'a UserDetails) -> Self {
        let user = &details.user;
        UserView {
            id: user.id,
            email: user.email.as_str(),
            access_level: user.access_level.as_str(),
            disabled: user.disabled,
            note: user.note.as_deref(),
            summary_email_enabled: user.summary_email_enabled,
            totp_enabled: user.totp_enabled(),
            webauthn_enabled: user.webauthn_enabled(),
            two_factor_required: user.two_factor_required,
            managed_flocks: &details.managed_flocks,
            watched_flocks: &details.watched_flocks,
        }
    }
}

/// A key without its secret. `flock_id` is present for flock keys only.
#[derive(Serialize)]
pub struct ApiKeyView<'a> {
    pub key_id: &'a str,
    pub auth_token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flock_id: Option<&'a FlockId>,
    pub note: &'a str,
    pub created: String,
    pub created_by: &'a str,
    pub last_used: Option<String>,
}

impl<'a> From<&'a ApiKeyRecord> for ApiKeyView<'a> {
    fn from(key: &'a ApiKeyRecord) -> Self {
        ApiKeyView {
            key_id: &key.key_id,
            auth_token_type: key.scope.type_name(),
            flock_id: key.scope.flock_id(),
            note: &key.note,
            created: timestamp(key.created),
            created_by: &key.created_by,
            last_used: key.last_used.map(timestamp),
        }
    }
}

/// RFC 3339 in UTC, to the second.
pub fn timestamp(unix_seconds: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_seconds);
    humantime::format_rfc3339_seconds(time).to_string()
}
