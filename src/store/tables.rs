//! Table definitions. Keys are chosen so that every lookup the API makes is a point read or a
//! prefix range, never a scan: users by lowercase email, memberships both by user and by flock.

use super::WriteTxn;
use redb::{ReadableTable, TableDefinition};

use super::{StoreError, StoreResult};

/// Schema version, id sequence and settings.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub const SCHEMA_VERSION_KEY: &str = "schema_version";
pub const NEXT_USER_ID_KEY: &str = "next_user_id";
pub const SETTINGS_KEY: &str = "settings";
pub const NEXT_MAIL_ID_KEY: &str = "next_mail_id";
pub const NEXT_AUDIT_ID_KEY: &str = "next_audit_id";
/// A value sealed with the secrets key, to recognise the right key at open.
pub const SECRETS_KEY_CHECK_KEY: &str = "secrets_key_check";

/// user id -> JSON `UserRecord`.
pub const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");
/// lowercase email -> user id.
pub const USER_ID_BY_EMAIL: TableDefinition<&str, u64> = TableDefinition::new("user_id_by_email");
/// ids of enabled admins, so the last-admin rule needs no scan.
pub const ENABLED_ADMINS: TableDefinition<u64, ()> = TableDefinition::new("enabled_admins");

/// flock id -> JSON `FlockRecord`.
pub const FLOCKS: TableDefinition<&str, &[u8]> = TableDefinition::new("flocks");
/// (user id, flock id) -> role byte.
pub const ROLES_BY_USER: TableDefinition<(u64, &str), u8> = TableDefinition::new("roles_by_user");
/// (flock id, user id) -> role byte; the mirror of `ROLES_BY_USER`, written in the same txn.
pub const ROLES_BY_FLOCK: TableDefinition<(&str, u64), u8> = TableDefinition::new("roles_by_flock");

/// key id -> JSON `ApiKeyRecord` (holds only the secret's hash).
pub const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");

/// hex SHA-256 of a one-time link secret -> JSON `OneTimeToken`.
pub const ONE_TIME_TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("one_time_tokens");

/// mail id -> JSON `QueuedMail`: messages not yet accepted by a transport.
pub const MAIL_QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("mail_queue");

/// SHA-256 (hex) of a console session's id -> JSON `SessionRecord`.
pub const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// (user id, session hash) -> (): a user's sessions, to end them all in one transaction.
pub const SESSIONS_BY_USER: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("sessions_by_user");
/// lowercase email -> JSON `Lock`: login locks that outlive a restart.
pub const LOGIN_LOCKS: TableDefinition<&str, &[u8]> = TableDefinition::new("login_locks");

/// audit entry id (grows with time) -> JSON `AuditEntry`: the audit trail.
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// (action type, audit entry id) -> (): the trail by action, for `action_filter`.
pub const AUDIT_BY_ACTION: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("audit_by_action");

/// SHA-256 (hex) of an invitation link's secret -> JSON `Invitation`: the links that let people
/// make their own account; the secret itself is never stored.
pub const INVITATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("invitations");
/// webhook id -> JSON `Webhook` (its secret sealed with the secrets key).
pub const WEBHOOKS: TableDefinition<u64, &[u8]> = TableDefinition::new("webhooks");
/// delivery id -> JSON `QueuedDelivery`: events waiting for their webhook's receiver.
pub const WEBHOOK_QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("webhook_queue");
/// delivery id -> JSON `DeliveryRecord`: the last deliveries' outcomes, shown in Settings.
pub const WEBHOOK_DELIVERIES: TableDefinition<u64, &[u8]> =
    TableDefinition::new("webhook_deliveries");
/// (due time, user id) -> (): one entry for each user the scheduler has something to do for
/// (`User::next_due`: a scheduled offboarding, a grant's reminder, expiry or retry; the schedules
/// themselves are on the user), so it finds those due without reading every user.
pub const USER_SCHEDULE_DUE: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("user_schedule_due");
/// Takes the next id of the sequence kept under `key` in `META` (users, mails, changes), inside
/// the caller's transaction; sequences start at 1.
pub fn next_id(txn: &redb::WriteTransaction, key: &str) -> StoreResult<u64> {
    let mut meta = txn.open_table(META)?;
    let id = meta
        .get(key)?
        .map(|v| decode_u64(v.value()))
        .transpose()?
        .unwrap_or(1);
    meta.insert(key, (id + 1).to_le_bytes().as_slice())?;
    Ok(id)
}

pub fn create_all(txn: &WriteTxn<'_>) -> StoreResult<()> {
    txn.open_table(META)?;
    txn.open_table(USERS)?;
    txn.open_table(USER_ID_BY_EMAIL)?;
    txn.open_table(ENABLED_ADMINS)?;
    txn.open_table(FLOCKS)?;
    txn.open_table(ROLES_BY_USER)?;
    txn.open_table(ROLES_BY_FLOCK)?;
    txn.open_table(API_KEYS)?;
    txn.open_table(ONE_TIME_TOKENS)?;
    txn.open_table(MAIL_QUEUE)?;
    txn.open_table(SESSIONS)?;
    txn.open_table(SESSIONS_BY_USER)?;
    txn.open_table(LOGIN_LOCKS)?;
    txn.open_table(AUDIT)?;
    txn.open_table(AUDIT_BY_ACTION)?;
    txn.open_table(USER_SCHEDULE_DUE)?;
    txn.open_table(INVITATIONS)?;
    txn.open_table(WEBHOOKS)?;
    txn.open_table(WEBHOOK_QUEUE)?;
    txn.open_table(WEBHOOK_DELIVERIES)?;
    Ok(())
}

pub(super) fn decode_u64(bytes: &[u8]) -> StoreResult<u64> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("expected an 8-byte integer".into()))?;
    Ok(u64::from_le_bytes(array))
}

/// The schema version a file records: `None` for a new file (no `META` table, or no version in
/// it yet).
pub(super) fn recorded_schema_version(txn: &redb::ReadTransaction) -> StoreResult<Option<u64>> {
    match txn.open_table(META) {
        Ok(meta) => meta
            .get(SCHEMA_VERSION_KEY)?
            .map(|v| decode_u64(v.value()))
            .transpose(),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}
