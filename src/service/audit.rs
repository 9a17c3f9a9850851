//! Reading the audit trail, purging it, and its retention. Only admins (global admin keys, console
//! admins) may read it.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Permission, Principal, ServiceResult};
use crate::state::AppState;
use crate::store::audit::{AuditEntry, AuditFilter, AuditFrom, AuditPage};
use crate::store::now_unix;
use crate::timestamps::{self, TimeZone};

/// A page of the trail, newest first.
pub async fn page(
    state: &AppState,
    who: &Principal,
    filter: AuditFilter,
    from: AuditFrom,
    limit: usize,
) -> ServiceResult<AuditPage> {
    who.require(Permission::Administer)?;
    Ok(state
        .blocking(move |store| store.audit_page(&filter, from, limit))
        .await?)
}

/// Deletes entry `id` and every older one, and records that it did; returns how many went.
pub async fn purge(state: &AppState, who: &Principal, id: u64) -> ServiceResult<u64> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.purge_audit(&actor, id))
        .await?)
}

/// The action types the trail holds (for the console's filter).
pub fn actions(state: &AppState, who: &Principal) -> ServiceResult<Vec<String>> {
    who.require(Permission::Administer)?;
    Ok(state.read(|store| store.audit_actions())?)
}

/// May `who` read the trail (for the streamed downloads, which read the store themselves)?
pub fn require_reader(who: &Principal) -> ServiceResult<()> {
    Ok(who.require(Permission::Administer)?)
}

/// Deletes entries older than `days` days, as the system, recording it when any went; 0 days
/// keeps everything.
pub async fn sweep(store: &crate::store::Store, days: u64) -> crate::store::StoreResult<u64> {
    if days == 0 {
        return Ok(0);
    }
    let cutoff = now_unix().saturating_sub(days.saturating_mul(24 * 3600));
    store
        .write_async(move |store| store.sweep_audit(cutoff, days))
        .await
}

/// An entry as the canary console's audit API shows it.
#[derive(Serialize)]
pub struct CanaryEntry<'a> {
    pub action_type: &'a str,
    pub additional_information: Value,
    pub flock_id: Option<&'a str>,
    pub id: u64,
    pub message: &'a str,
    pub timestamp: String,
    pub user: &'a str,
    pub user_browser_agent: Option<&'a str>,
    pub user_browser_language: Option<&'a str>,
    pub user_ip: Option<&'a str>,
}

impl<'a> CanaryEntry<'a> {
    pub fn of(entry: &'a AuditEntry, zone: &TimeZone) -> CanaryEntry<'a> {
        CanaryEntry {
            action_type: &entry.action_type,
            additional_information: additional_information(entry),
            flock_id: entry.flock_id.as_deref(),
            id: entry.id,
            message: &entry.message,
            timestamp: timestamps::canary(entry.at, zone),
            user: &entry.actor,
            user_browser_agent: entry.user_agent.as_deref(),
            user_browser_language: entry.language.as_deref(),
            user_ip: entry.ip.as_deref(),
        }
    }
}

/// The target and the structured details of an entry, or null when it has neither.
fn additional_information(entry: &AuditEntry) -> Value {
    let mut fields = match &entry.details {
        Value::Object(fields) => fields.clone(),
        Value::Null => Map::new(),
        other => {
            let mut fields = Map::new();
            fields.insert("details".into(), other.clone());
            fields
        }
    };
    if let Some(target) = &entry.target {
        fields.insert("target".into(), Value::from(target.as_str()));
    }
    if fields.is_empty() {
        Value::Null
    } else {
        Value::Object(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additional_information_carries_target_and_details() {
        let entry = AuditEntry {
            id: 1,
            at: 0,
            action_type: "user_disable".into(),
            message: "m".into(),
            actor: "a".into(),
            ip: None,
            user_agent: None,
            language: None,
            flock_id: None,
            target: Some("ann@x.io".into()),
            details: serde_json::json!({ "before": { "disabled": false } }),
        };
        assert_eq!(
            additional_information(&entry),
            serde_json::json!({ "before": { "disabled": false }, "target": "ann@x.io" })
        );
        let bare = AuditEntry {
            target: None,
            details: Value::Null,
            ..entry
        };
        assert_eq!(additional_information(&bare), Value::Null);
    }
}
