//! JSON shapes of stored things, as the API shows them.

use serde::Serialize;

use crate::domain::FlockId;
use crate::store::{ApiKeyRecord, UserDetails};
use crate::timestamps;

/// Fields in alphabetical order: serialized directly (as streamed lists do) it gives the same
/// bytes as through a `serde_json::Value`, whose keys are sorted.
#[derive(Serialize)]
pub struct UserView<'a> {
    pub access_level: &'static str,
    pub disabled: bool,
    pub email: &'a str,
    /// Rights held until a time; absent when none ends.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expiring_access: Vec<GrantView<'a>>,
    pub id: u64,
    /// RFC 3339; `null` until their first login.
    pub last_login: Option<String>,
    pub managed_flocks: &'a [FlockId],
    pub note: Option<&'a str>,
    /// Present while an offboarding is scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offboarding: Option<OffboardingView<'a>>,
    pub summary_email_enabled: bool,
    pub totp_enabled: bool,
    pub two_factor_required: bool,
    pub watched_flocks: &'a [FlockId],
    pub webauthn_enabled: bool,
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
            expiring_access: user
                .expiring
                .iter()
                .filter(|grant| {
                    crate::store::holds_grant(
                        user,
                        &details.managed_flocks,
                        &details.watched_flocks,
                        &grant.grant,
                    )
                })
                .map(GrantView::from)
                .collect(),
            last_login: user.last_login.map(crate::timestamps::rfc3339),
            offboarding: user.offboarding.as_ref().map(OffboardingView::from),
            summary_email_enabled: user.summary_email_enabled,
            totp_enabled: user.totp_enabled(),
            webauthn_enabled: user.webauthn_enabled(),
            two_factor_required: user.two_factor_required,
            managed_flocks: &details.managed_flocks,
            watched_flocks: &details.watched_flocks,
        }
    }
}

/// A right held until a time, as `user/get` shows it.
#[derive(Serialize)]
pub struct GrantView<'a> {
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flock_id: Option<&'a FlockId>,
    /// `admin`, `manager` or `watcher`.
    pub grant: &'static str,
    pub granted_by: &'a str,
}

impl<'a> From<&'a crate::store::ExpiringGrant> for GrantView<'a> {
    fn from(grant: &'a crate::store::ExpiringGrant) -> Self {
        let (name, flock_id) = match &grant.grant {
            crate::store::Grant::Admin => ("admin", None),
            crate::store::Grant::Role { flock, role } => (role.as_str(), Some(flock)),
        };
        GrantView {
            expires_at: crate::timestamps::rfc3339(grant.expires_at),
            flock_id,
            grant: name,
            granted_by: &grant.granted_by,
        }
    }
}

/// A scheduled offboarding, as `user/get` and `user/offboard` show it.
#[derive(Serialize)]
pub struct OffboardingView<'a> {
    pub at: String,
    pub revoke_api_keys: bool,
    pub scheduled_at: String,
    pub scheduled_by: &'a str,
}

impl<'a> From<&'a crate::store::ScheduledOffboarding> for OffboardingView<'a> {
    fn from(schedule: &'a crate::store::ScheduledOffboarding) -> Self {
        OffboardingView {
            at: crate::timestamps::rfc3339(schedule.at),
            revoke_api_keys: schedule.revoke_api_keys,
            scheduled_at: crate::timestamps::rfc3339(schedule.scheduled_at),
            scheduled_by: &schedule.scheduled_by,
        }
    }
}

/// What an offboarding did, step by step (`user/offboard`).
pub fn offboarding_report(report: &crate::store::OffboardingReport) -> serde_json::Value {
    let flocks = |list: &[(FlockId, String)]| {
        list.iter()
            .map(|(id, name)| serde_json::json!({ "flock_id": id, "name": name }))
            .collect::<Vec<_>>()
    };
    serde_json::json!({
        "changed": report.changed,
        "disabled": true,
        "was_enabled": report.was_enabled,
        "sessions_ended": report.sessions_ended,
        "managed_flocks_removed": flocks(&report.managed_flocks),
        "watched_flocks_removed": flocks(&report.watched_flocks),
        "links_voided": report.links_voided,
        "mails_dropped": report.mails_dropped,
        "api_keys": report.api_keys.iter().map(|key| serde_json::json!({
            "key_id": key.key_id,
            "note": key.note,
            "auth_token_type": key.scope.type_name(),
            "flock_id": key.scope.flock_id(),
        })).collect::<Vec<_>>(),
        "api_keys_revoked": report.api_keys_revoked,
        "receipt_sent_to": report.receipt_to.iter().map(|email| email.as_str()).collect::<Vec<_>>(),
    })
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
            created: timestamps::rfc3339(key.created),
            created_by: &key.created_by,
            last_used: key.last_used.map(timestamps::rfc3339),
        }
    }
}

/// A queued mail without its content; fields in alphabetical order like `UserView`.
#[derive(Serialize)]
pub struct QueuedMailView<'a> {
    pub attempts: u32,
    pub created: u64,
    pub id: u64,
    pub kind: &'a str,
    pub last_error: Option<&'a str>,
    /// Unix seconds, 0 = now.
    pub next_attempt: u64,
    pub to: &'a str,
}

impl<'a> From<&'a crate::store::QueuedMail> for QueuedMailView<'a> {
    fn from(mail: &'a crate::store::QueuedMail) -> Self {
        QueuedMailView {
            attempts: mail.attempts,
            created: mail.created,
            id: mail.id,
            kind: &mail.content.kind,
            last_error: mail.last_error.as_deref(),
            next_attempt: mail.next_attempt_at_ms / 1000,
            to: mail.to.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccessLevel, Email};
    use crate::store::{MailContent, QueuedMail, User, UserDetails};

    /// Streamed lists write these structs directly; the whole answers used to go through
    /// `serde_json::Value` (sorted keys). The bytes must be the same.
    #[test]
    fn views_serialize_with_sorted_keys() {
        let details = UserDetails {
            user: User {
                note: Some("a \"note\" ü".into()),
                two_factor_required: true,
                ..User::new(7, Email::parse("Ann@X.io").unwrap(), AccessLevel::Admin, 1)
            },
            managed_flocks: vec![FlockId::default_flock()],
            watched_flocks: Vec::new(),
        };
        let view = UserView::from(&details);
        let direct = serde_json::to_string(&view).unwrap();
        let through_value = serde_json::to_string(&serde_json::to_value(&view).unwrap()).unwrap();
        assert_eq!(direct, through_value);

        let mail = QueuedMail {
            id: 3,
            to: Email::parse("b@x.io").unwrap(),
            content: MailContent {
                kind: "welcome".into(),
                subject: "s".into(),
                text: "t".into(),
                html: None,
            },
            attempts: 2,
            next_attempt_at_ms: 5000,
            last_error: Some("refused".into()),
            created: 9,
        };
        let view = QueuedMailView::from(&mail);
        let direct = serde_json::to_string(&view).unwrap();
        let through_value = serde_json::to_string(&serde_json::to_value(&view).unwrap()).unwrap();
        assert_eq!(direct, through_value);
    }
}
