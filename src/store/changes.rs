//! The change log: one line per administrative change (users, roles, flocks, API keys,
//! settings), written in the transaction of the change itself, so a change that committed is
//! always in the log and a refused one never is. The weekly summary reports from it.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::records::{FlockRecord, decode, encode};
use super::tables::{CHANGES, FLOCKS, NEXT_CHANGE_ID_KEY, next_id};
use super::{Store, StoreResult, now_unix};
use crate::domain::{Email, FlockId, FlockRole};

/// Changes older than this are dropped when the store opens.
pub const KEEP_CHANGES_SECS: u64 = 400 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Unix seconds.
    pub at: u64,
    /// What happened, in words: "ann@x.io disabled".
    pub text: String,
}

impl Store {
    /// The changes made at or after `since`, oldest first.
    pub fn changes_since(&self, since: u64) -> StoreResult<Vec<Change>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CHANGES)?;
        let mut changes = Vec::new();
        // Ids grow with time: walk back from the newest and stop at the first older change.
        for entry in table.iter()?.rev() {
            let (_, bytes) = entry?;
            let change: Change = decode(bytes.value())?;
            if change.at < since {
                break;
            }
            changes.push(change);
        }
        changes.reverse();
        Ok(changes)
    }
}

/// Logs a change inside the caller's transaction.
pub(super) fn record_change(txn: &WriteTransaction, text: String) -> StoreResult<()> {
    let id = next_id(txn, NEXT_CHANGE_ID_KEY)?;
    let change = Change {
        at: now_unix(),
        text,
    };
    txn.open_table(CHANGES)?
        .insert(id, encode(&change)?.as_slice())?;
    Ok(())
}

/// Drops changes older than `KEEP_CHANGES_SECS`.
pub(super) fn sweep_old_changes(txn: &WriteTransaction, now: u64) -> StoreResult<()> {
    let cutoff = now.saturating_sub(KEEP_CHANGES_SECS);
    txn.open_table(CHANGES)?.retain(|_, bytes| {
        serde_json::from_slice::<Change>(bytes)
            .map(|change| change.at >= cutoff)
            .unwrap_or(true)
    })?;
    Ok(())
}

/// A flock's name for the log ("flock Night shift"), or its id if it is gone.
pub(super) fn flock_label(txn: &WriteTransaction, id: &FlockId) -> StoreResult<String> {
    let name = txn
        .open_table(FLOCKS)?
        .get(id.as_str())?
        .map(|bytes| decode::<FlockRecord>(bytes.value()))
        .transpose()?
        .map_or_else(|| id.to_string(), |record| record.name);
    Ok(format!("flock {name}"))
}

/// Logs a user's role change in a flock, if there was one.
pub(super) fn record_role_change(
    txn: &WriteTransaction,
    email: &Email,
    flock: &FlockId,
    before: Option<FlockRole>,
    after: Option<FlockRole>,
) -> StoreResult<()> {
    let flock = || flock_label(txn, flock);
    let text = match (before, after) {
        (None, Some(role)) => format!("{email} made {} of {}", role.as_str(), flock()?),
        (Some(role), None) => format!("{email} no longer {} of {}", role.as_str(), flock()?),
        (Some(from), Some(to)) if from != to => format!(
            "{email} changed from {} to {} in {}",
            from.as_str(),
            to.as_str(),
            flock()?
        ),
        _ => return Ok(()),
    };
    record_change(txn, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_read_newest_window_and_old_ones_swept_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = now_unix();
        {
            let txn = store.db.begin_write().unwrap();
            record_change(&txn, "recent".to_string()).unwrap();
            // An entry from before the retention period, written as an old release would have.
            let old = Change {
                at: now - KEEP_CHANGES_SECS - 10,
                text: "ancient".to_string(),
            };
            txn.open_table(CHANGES)
                .unwrap()
                .insert(0, encode(&old).unwrap().as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let texts = |since| -> Vec<String> {
            store
                .changes_since(since)
                .unwrap()
                .into_iter()
                .map(|c| c.text)
                .collect()
        };
        assert_eq!(texts(now - 60), ["recent"]);
        assert_eq!(texts(0), ["ancient", "recent"]);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let all: Vec<String> = store
            .changes_since(0)
            .unwrap()
            .into_iter()
            .map(|c| c.text)
            .collect();
        assert_eq!(all, ["recent"]);
    }
}
