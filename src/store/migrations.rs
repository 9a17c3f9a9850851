//! Schema migrations: numbered, applied in order at open, each in its own transaction that also
//! records the new version, so a crash between two leaves a file at a known version. Before the
//! first migration runs, the file is copied aside (`backups/roost-schema-vN-<time>.redb`).
//!
//! A migration reads and rewrites stored JSON as `serde_json::Value`, touching only what it
//! changes, so it doesn't depend on today's record types.

use redb::{ReadableTable, WriteTransaction};
use serde_json::Value;

use super::audit::{Actor, AuditLine, LEGACY_ACTION, LEGACY_ACTOR, record_at};
use super::sealing::{SealedSecret, Sealer, totp_context};
use super::tables::{META, SCHEMA_VERSION_KEY, USERS};
use super::{StoreError, StoreResult};

pub struct Migration {
    /// The schema version the file has after it.
    pub to: u64,
    pub what: &'static str,
    pub apply: fn(&WriteTransaction, &Sealer) -> StoreResult<()>,
}

/// Every migration, oldest first; the last one's `to` is `SCHEMA_VERSION`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        to: 2,
        what: "seal TOTP secrets (enrolled and pending) with the secrets key",
        apply: seal_totp_secrets,
    },
    Migration {
        to: 3,
        what: "move the change log into the audit trail",
        apply: change_log_into_audit_trail,
    },
    Migration {
        to: 4,
        what: "users may carry their last login, when they were made admin, a scheduled offboarding and grants that expire, indexed by when they are due; invitations; webhooks",
        apply: index_user_schedules,
    },
    Migration {
        to: 5,
        what: "WebAuthn credentials say whether they are a security key or a passkey; the passwordless sign-in setting",
        apply: tell_security_keys_from_passkeys,
    },
];

/// 4 -> 5: nothing to rewrite: a credential without a kind reads as a security key (all of them
/// were), settings without the passwordless switch read as allowing it. The version says a Roost
/// of schema 4, which would drop both when it rewrites a user or the settings, must not open the
/// file.
fn tell_security_keys_from_passkeys(_: &WriteTransaction, _: &Sealer) -> StoreResult<()> {
    Ok(())
}

/// What the change log of schemas 1 and 2 kept of each change.
#[derive(serde::Deserialize)]
struct LoggedChange {
    at: u64,
    text: String,
}

/// The change log of schemas 1–2, table `changes`: id -> JSON {at, text}.
const CHANGES: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("changes");

/// 3 -> 4: the index of users' schedules, empty (no schema-3 user has one). The new user fields
/// are optional: schema-3 records read as having none. The version says a Roost of schema 3,
/// which would drop them when it rewrites a user, must not open the file.
fn index_user_schedules(txn: &WriteTransaction, _: &Sealer) -> StoreResult<()> {
    txn.open_table(super::tables::USER_SCHEDULE_DUE)?;
    txn.open_table(super::tables::INVITATIONS)?;
    txn.open_table(super::tables::WEBHOOKS)?;
    txn.open_table(super::tables::WEBHOOK_QUEUE)?;
    txn.open_table(super::tables::WEBHOOK_DELIVERIES)?;
    Ok(())
}

/// 2 -> 3: every change-log line becomes an audit entry at its own time. The log didn't say who
/// acted; the entries say so.
fn change_log_into_audit_trail(txn: &WriteTransaction, _: &Sealer) -> StoreResult<()> {
    let changes = match txn.open_table(CHANGES) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    let mut logged = Vec::new();
    for entry in changes.iter()? {
        let (_, bytes) = entry?;
        logged.push(serde_json::from_slice::<LoggedChange>(bytes.value())?);
    }
    drop(changes);
    let actor = Actor::named(LEGACY_ACTOR);
    for change in logged {
        record_at(
            txn,
            &actor,
            AuditLine::new(LEGACY_ACTION, change.text),
            change.at,
        )?;
    }
    txn.delete_table(CHANGES)?;
    Ok(())
}

/// Records `version` as the file's schema version, inside the migration's transaction.
pub(super) fn record_version(txn: &WriteTransaction, version: u64) -> StoreResult<()> {
    txn.open_table(META)?
        .insert(SCHEMA_VERSION_KEY, version.to_le_bytes().as_slice())?;
    Ok(())
}

/// 1 -> 2: TOTP secrets were stored in clear.
fn seal_totp_secrets(txn: &WriteTransaction, sealer: &Sealer) -> StoreResult<()> {
    let mut users = txn.open_table(USERS)?;
    let mut rewritten = Vec::new();
    for entry in users.iter()? {
        let (id, bytes) = entry?;
        let id = id.value();
        let mut record: Value = serde_json::from_slice(bytes.value())?;
        let mut changed = false;
        for field in ["totp_secret", "pending_totp_secret"] {
            let Some(Value::String(text)) = record.get(field) else {
                continue;
            };
            if SealedSecret::is_sealed(text) {
                continue;
            }
            let sealed = sealer.seal(text, &totp_context(id))?;
            record[field] = Value::String(sealed.into_stored());
            changed = true;
        }
        if changed {
            rewritten.push((id, serde_json::to_vec(&record)?));
        }
    }
    for (id, bytes) in rewritten {
        users.insert(id, bytes.as_slice())?;
    }
    Ok(())
}

/// The migrations a file at `found` needs, refusing a file from a newer schema.
pub(super) fn pending(found: u64, supported: u64) -> StoreResult<&'static [Migration]> {
    if found > supported {
        return Err(StoreError::NewerSchema { found, supported });
    }
    let first = MIGRATIONS
        .iter()
        .position(|migration| migration.to > found)
        .unwrap_or(MIGRATIONS.len());
    Ok(&MIGRATIONS[first..])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// redb frees the pages of rewritten records without clearing them: with enough users, the
    /// migration alone would leave most clear secrets in the file (425 of 500 when measured).
    /// The file is written anew after migrating, so none is left.
    #[test]
    fn sealing_leaves_no_clear_secret_anywhere_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::DATABASE_FILE);
        let secret_of = |id: u64| format!("CLEARSECRET{id:06}ABCDEFGHIJKLMNOP");
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            record_version(&txn, 1).unwrap();
            {
                let mut users = txn.open_table(USERS).unwrap();
                for id in 1..=500u64 {
                    let record = serde_json::json!({
                        "id": id,
                        "totp_secret": secret_of(id),
                        "pending_totp_secret": null,
                        "padding": "x".repeat(200),
                    });
                    users
                        .insert(id, serde_json::to_vec(&record).unwrap().as_slice())
                        .unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let store = super::super::Store::open(dir.path()).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            super::super::SCHEMA_VERSION
        );
        let bytes = std::fs::read(&path).unwrap();
        let leftovers = bytes.windows(11).filter(|w| w == b"CLEARSECRET").count();
        assert_eq!(leftovers, 0);
        // Each one is sealed for its own user.
        let txn = redb::ReadableDatabase::begin_read(&*store.db).unwrap();
        let users = txn.open_table(USERS).unwrap();
        let record: Value = serde_json::from_slice(users.get(7).unwrap().unwrap().value()).unwrap();
        let sealed = SealedSecret::from_stored(record["totp_secret"].as_str().unwrap().to_string());
        assert_eq!(
            store.sealer.open(&sealed, &totp_context(7)).unwrap(),
            secret_of(7)
        );
    }

    #[test]
    fn migrations_are_numbered_in_order_and_end_at_the_schema_version() {
        let versions: Vec<u64> = MIGRATIONS.iter().map(|m| m.to).collect();
        let expected: Vec<u64> = (2..=super::super::SCHEMA_VERSION).collect();
        assert_eq!(versions, expected);
        assert_eq!(pending(1, 5).unwrap().len(), 4);
        assert_eq!(pending(2, 5).unwrap().len(), 3);
        assert_eq!(pending(3, 5).unwrap().len(), 2);
        assert_eq!(pending(4, 5).unwrap().len(), 1);
        assert!(pending(5, 5).unwrap().is_empty());
        assert!(matches!(
            pending(3, 2),
            Err(StoreError::NewerSchema {
                found: 3,
                supported: 2
            })
        ));
    }
}
