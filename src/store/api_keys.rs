use super::WriteTxn;
use redb::ReadableTable;

use super::audit::{Actor, AuditLine, record};
use super::disk::{decode_api_key, encode_api_key};
use super::records::{FlockRecord, decode};
use super::tables::{API_KEYS, FLOCKS};
use super::{ApiKeyRecord, Store, StoreError, StoreResult};
use crate::domain::{FlockId, Refusal};

impl Store {
    /// Stores a new key; a flock key's flock must exist.
    pub fn insert_api_key(&self, actor: &Actor, key: &ApiKeyRecord) -> StoreResult<()> {
        let txn = self.begin_write()?;
        {
            if let Some(flock) = key.scope.flock_id()
                && txn.open_table(FLOCKS)?.get(flock.as_str())?.is_none()
            {
                return Err(StoreError::Refused(Refusal::FlockNotFound));
            }
            txn.open_table(API_KEYS)?
                .insert(key.key_id.as_str(), encode_api_key(key)?.as_slice())?;
            record(&txn, actor, key_line(&txn, key, true)?)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The key, from memory once it has been read (any commit that writes the keys' table
    /// drops those copies before it is answered).
    pub fn api_key(&self, key_id: &str) -> StoreResult<Option<ApiKeyRecord>> {
        // Looked up by the borrowed id: a hit on every API call allocates nothing.
        // Even from memory: the copy is of the last commit.
        super::writer::reading();
        let generation = match self.memory.api_keys.get(key_id) {
            Ok(key) => return Ok(Some(key)),
            Err(generation) => generation,
        };
        let txn = self.begin_read()?;
        let table = txn.open_table(API_KEYS)?;
        let found = table
            .get(key_id)?
            .map(|bytes| decode_api_key(bytes.value()))
            .transpose()?;
        if let Some(key) = &found {
            self.memory
                .api_keys
                .keep(generation, key_id.to_string(), key.clone());
        }
        Ok(found)
    }

    /// Records a use of the key at `now`, at most once per `LAST_USED_GRANULARITY_SECS`.
    pub fn touch_api_key(&self, key: &ApiKeyRecord, now: u64) -> StoreResult<()> {
        if !key.last_used_is_stale(now) {
            return Ok(());
        }
        let txn = self.begin_write()?;
        {
            let mut table = txn.open_table(API_KEYS)?;
            let mut stored = match table.get(key.key_id.as_str())? {
                Some(bytes) => decode_api_key(bytes.value())?,
                // Removed meanwhile: nothing to record.
                None => return Ok(()),
            };
            stored.last_used = Some(now);
            table.insert(key.key_id.as_str(), encode_api_key(&stored)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Global keys, oldest first.
    pub fn global_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.api_keys_where(|key| key.scope.flock_id().is_none())
    }

    /// Keys bound to `flock`, oldest first; the flock must exist.
    pub fn flock_api_keys(&self, flock: &FlockId) -> StoreResult<Vec<ApiKeyRecord>> {
        self.flock(flock)?;
        self.api_keys_where(|key| key.scope.flock_id() == Some(flock))
    }

    fn api_keys_where(
        &self,
        wanted: impl Fn(&ApiKeyRecord) -> bool,
    ) -> StoreResult<Vec<ApiKeyRecord>> {
        let txn = self.begin_read()?;
        let table = txn.open_table(API_KEYS)?;
        let mut keys = Vec::new();
        for entry in table.iter()? {
            let (_, bytes) = entry?;
            let key = decode_api_key(bytes.value())?;
            if wanted(&key) {
                keys.push(key);
            }
        }
        keys.sort_by(|a, b| (a.created, &a.key_id).cmp(&(b.created, &b.key_id)));
        Ok(keys)
    }

    /// Removes a key of the given kind (global when `flock_key` is false); a key of the other
    /// kind counts as unknown, so one endpoint can't remove the other's keys.
    pub fn remove_api_key(
        &self,
        actor: &Actor,
        key_id: &str,
        flock_key: bool,
    ) -> StoreResult<ApiKeyRecord> {
        let txn = self.begin_write()?;
        let removed = {
            let mut table = txn.open_table(API_KEYS)?;
            let key = match table.get(key_id)? {
                Some(bytes) => decode_api_key(bytes.value())?,
                None => return Err(StoreError::Refused(Refusal::ApiKeyNotFound)),
            };
            if key.scope.flock_id().is_some() != flock_key {
                return Err(StoreError::Refused(Refusal::ApiKeyNotFound));
            }
            table.remove(key_id)?;
            record(&txn, actor, key_line(&txn, &key, false)?)?;
            key
        };
        txn.commit()?;
        Ok(removed)
    }
}

/// The audit line of a key created or revoked: "API key nightly export (read-only, flock Ops)
/// created".
pub(super) fn key_line(
    txn: &WriteTxn<'_>,
    key: &ApiKeyRecord,
    created: bool,
) -> StoreResult<AuditLine> {
    let flock_name = match key.scope.flock_id() {
        Some(flock) => Some(
            txn.open_table(FLOCKS)?
                .get(flock.as_str())?
                .map(|bytes| decode::<FlockRecord>(bytes.value()))
                .transpose()?
                .map_or_else(|| flock.to_string(), |record| record.name),
        ),
        None => None,
    };
    let scope = match &flock_name {
        Some(name) => format!("flock {name}"),
        None => "global".to_string(),
    };
    let note = if key.note.is_empty() {
        "(no note)"
    } else {
        key.note.as_str()
    };
    let (action, verb) = match (key.scope.flock_id().is_some(), created) {
        (false, true) => ("api_key_add", "created"),
        (false, false) => ("api_key_remove", "revoked"),
        (true, true) => ("flock_api_key_add", "created"),
        (true, false) => ("flock_api_key_remove", "revoked"),
    };
    let mut line = AuditLine::new(
        action,
        format!("API key {note} ({}, {scope}) {verb}", key.scope.type_name()),
    )
    .details(serde_json::json!({
        "key_id": key.key_id,
        "auth_token_type": key.scope.type_name(),
        "note": key.note,
    }));
    if let Some(flock) = key.scope.flock_id() {
        line = line.flock(flock);
    }
    Ok(line)
}
