use redb::ReadableTable;

use super::audit::{Actor, AuditLine, record};
use super::records::{decode, encode};
use super::tables::{META, SETTINGS_KEY};
use super::{Settings, Store, StoreResult};

impl Store {
    /// The settings, from memory once read (a change to them drops the copy as it commits).
    pub fn settings(&self) -> StoreResult<Settings> {
        // Even from memory: the copy is of the last commit.
        super::writer::reading();
        let generation = match self.memory.settings.get(&()) {
            Ok(settings) => return Ok(settings),
            Err(generation) => generation,
        };
        let settings = self.read_settings()?;
        self.memory.settings.keep(generation, (), settings);
        Ok(settings)
    }

    fn read_settings(&self) -> StoreResult<Settings> {
        let txn = self.begin_read()?;
        let meta = txn.open_table(META)?;
        let settings = meta
            .get(SETTINGS_KEY)?
            .map(|bytes| decode(bytes.value()))
            .transpose()?;
        Ok(settings.unwrap_or_default())
    }

    /// Applies `change` to the settings in one transaction and returns the result.
    /// Applies `change` and records `line` (what was asked) in one transaction.
    pub fn update_settings(
        &self,
        actor: &Actor,
        line: AuditLine,
        change: impl FnOnce(&mut Settings),
    ) -> StoreResult<Settings> {
        let txn = self.begin_write()?;
        txn.writes_settings();
        let (before, settings) = {
            let mut meta = txn.open_table(META)?;
            let before: Settings = meta
                .get(SETTINGS_KEY)?
                .map(|bytes| decode(bytes.value()))
                .transpose()?
                .unwrap_or_default();
            let mut settings = before;
            change(&mut settings);
            meta.insert(SETTINGS_KEY, encode(&settings)?.as_slice())?;
            (before, settings)
        };
        record(
            &txn,
            actor,
            line.details(serde_json::json!({ "before": before, "after": settings })),
        )?;
        txn.commit()?;
        Ok(settings)
    }
}
