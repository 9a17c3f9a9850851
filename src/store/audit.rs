//! The audit trail: one entry per change and per sign-in event, saying who did it, from where,
//! to whom. Entries are written in the transaction of the change itself, so a committed change
//! always has its entry and a refused one never does. Ids grow with time and only the oldest
//! entries are ever deleted (purge, retention), so the ids in the table are contiguous.

use super::WriteTxn;
use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::records::{decode, encode};
use super::tables::{AUDIT, AUDIT_BY_ACTION, NEXT_AUDIT_ID_KEY, next_id};
use super::{Store, StoreError, StoreResult, now_unix};
use crate::domain::Refusal;

/// Who acts, and from where, as the trail records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// A console user's email, `API key <note> (<key id>)`, `cli` or `system`.
    pub name: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub language: Option<String>,
}

impl Actor {
    /// Roost itself (the scheduler, sweeps).
    pub fn system() -> Actor {
        Actor::named("system")
    }

    /// The command line.
    pub fn cli() -> Actor {
        Actor::named("cli")
    }

    pub fn named(name: &str) -> Actor {
        Actor {
            name: name.to_string(),
            ip: None,
            user_agent: None,
            language: None,
        }
    }
}

/// What kind of action an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// Who may get in, with which rights, and how the console is set up: what the weekly summary
    /// and the Settings page list.
    Change,
    /// Sign-ins and what people do to their own account (and the trail's own housekeeping): on
    /// the trail, not among the changes.
    Activity,
}

use ActionKind::{Activity, Change};

/// Every action type the trail records, with its kind, so that a filter on one nobody could have
/// taken is an error rather than an empty page. `record` checks (in debug builds) that it knows
/// the action.
pub const ACTION_TYPES: &[(&str, ActionKind)] = &[
    // Users, as admins change them.
    ("user_add", Change),
    ("user_edit", Change),
    ("user_edit_access_level", Change),
    ("user_disable", Change),
    ("user_enable", Change),
    ("user_remove", Change),
    ("user_note_add", Change),
    ("user_note_remove", Change),
    ("user_2fa_disable", Change),
    ("user_webauthn_disable", Change),
    ("user_password_reset", Change),
    ("user_unlock", Change),
    ("user_offboard", Change),
    ("user_offboard_schedule", Change),
    ("user_offboard_cancel", Change),
    ("access_expire", Change),
    ("access_expire_defer", Change),
    ("access_expire_remind", Activity),
    ("invite_create", Change),
    ("invite_revoke", Change),
    ("invite_accept", Change),
    ("webhook_add", Change),
    ("webhook_remove", Change),
    ("webhook_test", Activity),
    // Sign-ins and people's own account.
    ("user_login", Activity),
    ("user_login_failed", Activity),
    ("user_login_disabled", Activity),
    ("user_login_locked", Activity),
    ("user_login_factor_failed", Activity),
    ("user_login_factor_locked", Activity),
    ("user_logout", Activity),
    ("user_password_reset_request", Activity),
    ("user_password_set", Activity),
    ("user_password_change", Activity),
    ("user_password_remove", Activity),
    ("user_password_change_failed", Activity),
    ("user_totp_enroll", Activity),
    ("user_webauthn_add", Activity),
    ("user_webauthn_rename", Activity),
    ("user_webauthn_remove", Activity),
    ("user_recovery_codes_regenerate", Activity),
    ("user_summary_email_enable", Activity),
    ("user_summary_email_disable", Activity),
    ("session_revoke", Activity),
    ("one_time_link_issue", Activity),
    // Flocks and their members.
    ("flock_create", Change),
    ("flock_rename", Change),
    ("flock_delete", Change),
    ("flock_assign", Change),
    ("flock_unassign", Change),
    ("flock_assign_managers", Change),
    ("flock_assign_watchers", Change),
    // API keys.
    ("api_key_add", Change),
    ("api_key_remove", Change),
    ("flock_api_key_add", Change),
    ("flock_api_key_remove", Change),
    // The console's settings, its summaries, and the trail itself.
    ("settings_2fa_enforce_enable", Change),
    ("settings_2fa_enforce_disable", Change),
    ("settings_api_enable", Change),
    ("settings_api_disable", Change),
    ("settings_passwordless_enable", Change),
    ("settings_passwordless_disable", Change),
    ("summaries_send", Activity),
    ("backup_create", Activity),
    ("backup_download", Activity),
    ("data_export", Activity),
    ("data_import", Change),
    ("audit_trail_purge", Change),
    ("audit_trail_retention", Activity),
    (LEGACY_ACTION, Change),
];

/// How entries moved from the change log (schema 3) name their actor and action.
pub const LEGACY_ACTOR: &str = "unknown (change log before the audit trail)";
pub const LEGACY_ACTION: &str = "change_log";

fn kind_of(action_type: &str) -> Option<ActionKind> {
    ACTION_TYPES
        .iter()
        .find(|(name, _)| *name == action_type)
        .map(|(_, kind)| *kind)
}

/// Whether the trail records actions of this type.
pub fn is_action_type(action_type: &str) -> bool {
    kind_of(action_type).is_some()
}

/// Whether an action type is a change rather than account activity; one nobody classified
/// counts as a change, so it is reported rather than missed.
pub fn is_change(action_type: &str) -> bool {
    kind_of(action_type).is_none_or(|kind| kind == Change)
}

/// What one entry says; the store adds when and who.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditLine {
    /// snake_case, as the canary console names them: `user_add`, `user_login`, `flock_assign`…
    pub action: &'static str,
    /// For people: "User ann@x.io disabled".
    pub message: String,
    pub flock_id: Option<String>,
    /// The user the action was about (their email), for filtering.
    pub target: Option<String>,
    /// Structured: before/after values, counts.
    pub details: Value,
}

impl AuditLine {
    pub fn new(action: &'static str, message: impl Into<String>) -> AuditLine {
        AuditLine {
            action,
            message: message.into(),
            flock_id: None,
            target: None,
            details: Value::Null,
        }
    }

    pub fn target(mut self, email: impl ToString) -> AuditLine {
        self.target = Some(email.to_string());
        self
    }

    pub fn flock(mut self, flock: impl ToString) -> AuditLine {
        self.flock_id = Some(flock.to_string());
        self
    }

    pub fn details(mut self, details: Value) -> AuditLine {
        self.details = details;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    #[serde(skip)]
    pub id: u64,
    /// Unix seconds.
    pub at: u64,
    pub action_type: String,
    pub message: String,
    pub actor: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub language: Option<String>,
    pub flock_id: Option<String>,
    pub target: Option<String>,
    #[serde(default)]
    pub details: Value,
}

/// Records `line` by `actor` inside the caller's transaction.
pub(super) fn record(txn: &WriteTxn<'_>, actor: &Actor, line: AuditLine) -> StoreResult<u64> {
    record_at(txn, actor, line, now_unix())
}

/// Takes a bare redb transaction: migrations record with it too (the audit trail is not kept in
/// memory, so no commit needs to see it written).
pub(super) fn record_at(
    txn: &redb::WriteTransaction,
    actor: &Actor,
    line: AuditLine,
    at: u64,
) -> StoreResult<u64> {
    debug_assert!(
        is_action_type(line.action),
        "audit action {:?} is missing from ACTION_TYPES",
        line.action
    );
    let id = next_id(txn, NEXT_AUDIT_ID_KEY)?;
    let entry = AuditEntry {
        id,
        at,
        action_type: line.action.to_string(),
        message: line.message,
        actor: actor.name.clone(),
        ip: actor.ip.clone(),
        user_agent: actor.user_agent.clone(),
        language: actor.language.clone(),
        flock_id: line.flock_id,
        target: line.target,
        details: line.details,
    };
    txn.open_table(AUDIT)?
        .insert(id, encode(&entry)?.as_slice())?;
    txn.open_table(AUDIT_BY_ACTION)?
        .insert((line.action, id), ())?;
    super::webhook_queue::enqueue_for(txn, &webhook_event(&entry), is_change(&entry.action_type))?;
    Ok(id)
}

/// An entry as webhooks are sent it.
pub(super) fn webhook_event(entry: &AuditEntry) -> super::webhook_queue::WebhookEvent {
    super::webhook_queue::WebhookEvent {
        id: entry.id,
        at: entry.at,
        action_type: entry.action_type.clone(),
        message: entry.message.clone(),
        actor: entry.actor.clone(),
        target: entry.target.clone(),
        flock_id: entry.flock_id.clone(),
        details: entry.details.clone(),
    }
}

/// Deletes the entries with ids up to `last` (inclusive) from both tables; returns how many.
fn delete_up_to(txn: &WriteTxn<'_>, last: u64) -> StoreResult<u64> {
    let mut audit = txn.open_table(AUDIT)?;
    let mut doomed = Vec::new();
    for entry in audit.range(..=last)? {
        let (id, bytes) = entry?;
        let action = decode::<AuditEntry>(bytes.value())
            .map(|entry| entry.action_type)
            .unwrap_or_default();
        doomed.push((id.value(), action));
    }
    let mut by_action = txn.open_table(AUDIT_BY_ACTION)?;
    for (id, action) in &doomed {
        audit.remove(*id)?;
        by_action.remove((action.as_str(), *id))?;
    }
    Ok(doomed.len() as u64)
}

/// A page of the trail, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Whether older entries follow the page, and newer ones precede it.
    pub has_older: bool,
    pub has_newer: bool,
    /// How many entries match in all, and how many are newer than the page.
    pub total: u64,
    pub newer_than_page: u64,
}

/// Where a page starts: the newest entries, or those older or newer than an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFrom {
    Newest,
    OlderThan(u64),
    NewerThan(u64),
}

/// What the console's audit page may filter on besides the action type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub action: Option<String>,
    /// Part of the actor's name, any case.
    pub actor: Option<String>,
    /// Part of the target's email, any case.
    pub target: Option<String>,
    /// Unix seconds, inclusive.
    pub since: Option<u64>,
    pub until: Option<u64>,
}

impl AuditFilter {
    fn only_action(&self) -> bool {
        self.actor.is_none()
            && self.target.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    fn matches(&self, entry: &AuditEntry) -> bool {
        let contains = |haystack: Option<&str>, needle: &Option<String>| match needle {
            None => true,
            Some(needle) => {
                haystack.is_some_and(|text| text.to_lowercase().contains(&needle.to_lowercase()))
            }
        };
        self.action.as_ref().is_none_or(|a| *a == entry.action_type)
            && contains(Some(&entry.actor), &self.actor)
            && contains(entry.target.as_deref(), &self.target)
            && self.since.is_none_or(|since| entry.at >= since)
            && self.until.is_none_or(|until| entry.at <= until)
    }
}

impl Store {
    /// Records an event that changes nothing else (a login, a failed login, a logout).
    pub fn record_event(&self, actor: &Actor, line: AuditLine) -> StoreResult<()> {
        let txn = self.begin_write()?;
        record(&txn, actor, line)?;
        txn.commit()?;
        Ok(())
    }

    /// A page of at most `limit` entries matching `filter`, newest first, from `from`.
    pub fn audit_page(
        &self,
        filter: &AuditFilter,
        from: AuditFrom,
        limit: usize,
    ) -> StoreResult<AuditPage> {
        let txn = self.begin_read()?;
        let audit = txn.open_table(AUDIT)?;
        let by_action = txn.open_table(AUDIT_BY_ACTION)?;
        // Up to `take` matching ids between `low` and `high` (inclusive), newest or oldest first:
        // through the action index when only the action is filtered on, else entry by entry.
        let matching =
            |low: u64, high: u64, newest_first: bool, take: usize| -> StoreResult<Vec<u64>> {
                let mut ids = Vec::new();
                if low > high || take == 0 {
                    return Ok(ids);
                }
                if filter.only_action()
                    && let Some(action) = &filter.action
                {
                    let range =
                        by_action.range((action.as_str(), low)..=(action.as_str(), high))?;
                    let keys: Box<dyn Iterator<Item = _>> = if newest_first {
                        Box::new(range.rev())
                    } else {
                        Box::new(range)
                    };
                    for entry in keys.take(take) {
                        ids.push(entry?.0.value().1);
                    }
                    return Ok(ids);
                }
                let range = audit.range(low..=high)?;
                let entries: Box<dyn Iterator<Item = _>> = if newest_first {
                    Box::new(range.rev())
                } else {
                    Box::new(range)
                };
                for entry in entries {
                    let (id, bytes) = entry?;
                    let entry = AuditEntry {
                        id: id.value(),
                        ..decode(bytes.value())?
                    };
                    if filter.matches(&entry) {
                        ids.push(entry.id);
                        if ids.len() == take {
                            break;
                        }
                    }
                }
                Ok(ids)
            };
        let ids = match from {
            AuditFrom::Newest => matching(0, u64::MAX, true, limit)?,
            AuditFrom::OlderThan(0) => Vec::new(),
            AuditFrom::OlderThan(id) => matching(0, id - 1, true, limit)?,
            AuditFrom::NewerThan(id) => {
                let mut ids = matching(id.saturating_add(1), u64::MAX, false, limit)?;
                ids.reverse();
                ids
            }
        };
        let has_older = match (ids.last(), from) {
            (Some(&last), _) => last > 0 && !matching(0, last - 1, true, 1)?.is_empty(),
            (None, AuditFrom::NewerThan(id)) => !matching(0, id, true, 1)?.is_empty(),
            (None, _) => false,
        };
        let has_newer = match (ids.first(), from) {
            (Some(&first), _) => !matching(first.saturating_add(1), u64::MAX, false, 1)?.is_empty(),
            (None, AuditFrom::OlderThan(id)) => !matching(id, u64::MAX, false, 1)?.is_empty(),
            (None, _) => false,
        };
        let (total, newer_than_page) = self.audit_counts(&txn, filter, ids.first().copied())?;
        let mut entries = Vec::with_capacity(ids.len());
        for id in ids {
            let bytes = audit.get(id)?.ok_or_else(|| {
                StoreError::Corrupt(format!("audit entry {id} is indexed but gone"))
            })?;
            entries.push(AuditEntry {
                id,
                ..decode(bytes.value())?
            });
        }
        Ok(AuditPage {
            entries,
            has_older,
            has_newer,
            total,
            newer_than_page,
        })
    }

    /// How many entries match, and how many of them are newer than `first`: arithmetic without a
    /// filter (the ids are contiguous), a count of index keys with only an action filter, else a
    /// count of matching entries.
    fn audit_counts(
        &self,
        txn: &redb::ReadTransaction,
        filter: &AuditFilter,
        first: Option<u64>,
    ) -> StoreResult<(u64, u64)> {
        let audit = txn.open_table(AUDIT)?;
        if filter.only_action() && filter.action.is_none() {
            let total = audit.len()?;
            let newest = audit.last()?.map(|(id, _)| id.value()).unwrap_or(0);
            let newer = first.map_or(0, |first| newest.saturating_sub(first));
            return Ok((total, newer));
        }
        let mut total = 0;
        let mut newer = 0;
        if filter.only_action()
            && let Some(action) = &filter.action
        {
            let by_action = txn.open_table(AUDIT_BY_ACTION)?;
            for entry in by_action.range((action.as_str(), 0)..=(action.as_str(), u64::MAX))? {
                let id = entry?.0.value().1;
                total += 1;
                if first.is_some_and(|first| id > first) {
                    newer += 1;
                }
            }
            return Ok((total, newer));
        }
        for entry in audit.iter()? {
            let (id, bytes) = entry?;
            let entry: AuditEntry = decode(bytes.value())?;
            if filter.matches(&entry) {
                total += 1;
                if first.is_some_and(|first| id.value() > first) {
                    newer += 1;
                }
            }
        }
        Ok((total, newer))
    }

    /// Hands on every entry, oldest first (for downloads).
    pub fn visit_audit<E: From<StoreError>>(
        &self,
        filter: &AuditFilter,
        mut visit: impl FnMut(AuditEntry) -> Result<(), E>,
    ) -> Result<(), E> {
        let txn = self.begin_read()?;
        let audit = txn.open_table(AUDIT).map_err(StoreError::from)?;
        for entry in audit.iter().map_err(StoreError::from)? {
            let (id, bytes) = entry.map_err(StoreError::from)?;
            let entry = AuditEntry {
                id: id.value(),
                ..decode(bytes.value())?
            };
            if filter.matches(&entry) {
                visit(entry)?;
            }
        }
        Ok(())
    }

    /// Deletes entry `id` and every older one, then records the purge itself (by `actor`), in one
    /// transaction. Returns how many were deleted.
    pub fn purge_audit(&self, actor: &Actor, id: u64) -> StoreResult<u64> {
        let txn = self.begin_write()?;
        if txn.open_table(AUDIT)?.get(id)?.is_none() {
            return Err(Refusal::AuditEntryNotFound.into());
        }
        let purged = delete_up_to(&txn, id)?;
        record(
            &txn,
            actor,
            AuditLine::new(
                "audit_trail_purge",
                format!("Successfully purged {purged} logs before id:{id}"),
            )
            .details(serde_json::json!({ "purged": purged, "up_to_id": id })),
        )?;
        txn.commit()?;
        Ok(purged)
    }

    /// Deletes the entries older than `cutoff` (unix seconds) and, if any went, records it as the
    /// system. Returns how many were deleted.
    pub fn sweep_audit(&self, cutoff: u64, retention_days: u64) -> StoreResult<u64> {
        let txn = self.begin_write()?;
        let last_old = {
            let audit = txn.open_table(AUDIT)?;
            let mut last = None;
            for entry in audit.iter()? {
                let (id, bytes) = entry?;
                let entry: AuditEntry = decode(bytes.value())?;
                if entry.at >= cutoff {
                    break;
                }
                last = Some(id.value());
            }
            last
        };
        let Some(last_old) = last_old else {
            return Ok(0);
        };
        let swept = delete_up_to(&txn, last_old)?;
        record(
            &txn,
            &Actor::system(),
            AuditLine::new(
                "audit_trail_retention",
                format!("{swept} entries older than {retention_days} days deleted"),
            )
            .details(serde_json::json!({ "deleted": swept, "up_to_id": last_old })),
        )?;
        txn.commit()?;
        Ok(swept)
    }

    /// The action types the trail holds, in order: one index lookup per type, however many
    /// entries each has.
    pub fn audit_actions(&self) -> StoreResult<Vec<String>> {
        let txn = self.begin_read()?;
        let by_action = txn.open_table(AUDIT_BY_ACTION)?;
        let mut actions: Vec<String> = Vec::new();
        loop {
            let next = match actions.last() {
                None => by_action.first()?,
                Some(last) => {
                    let after = (
                        std::ops::Bound::Excluded((last.as_str(), u64::MAX)),
                        std::ops::Bound::Unbounded,
                    );
                    by_action.range::<(&str, u64)>(after)?.next().transpose()?
                }
            };
            match next {
                Some((key, _)) => actions.push(key.value().0.to_string()),
                None => return Ok(actions),
            }
        }
    }

    /// How many entries the trail holds.
    pub fn audit_len(&self) -> StoreResult<u64> {
        let txn = self.begin_read()?;
        Ok(txn.open_table(AUDIT)?.len()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_type_is_listed_once_in_snake_case() {
        let mut names: Vec<&str> = ACTION_TYPES.iter().map(|(name, _)| *name).collect();
        assert!(names.iter().all(|name| {
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        }));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ACTION_TYPES.len(), "listed twice");
    }

    #[test]
    fn sign_ins_are_activity_and_admin_actions_are_changes() {
        for activity in [
            "user_login",
            "user_login_failed",
            "user_logout",
            "user_totp_enroll",
        ] {
            assert!(!is_change(activity), "{activity}");
        }
        for change in [
            "user_add",
            "user_disable",
            "flock_assign",
            "audit_trail_purge",
        ] {
            assert!(is_change(change), "{change}");
        }
        assert!(is_change("an_action_nobody_classified"));
        assert!(!is_action_type("an_action_nobody_classified"));
    }
}
