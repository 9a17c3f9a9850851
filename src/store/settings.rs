use redb::{ReadableDatabase, ReadableTable};

use super::records::{decode, encode};
use super::tables::{META, SETTINGS_KEY};
use super::{Settings, Store, StoreResult};

impl Store {
    pub fn settings(&self) -> StoreResult<Settings> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let settings = meta
            .get(SETTINGS_KEY)?
            .map(|bytes| decode(bytes.value()))
            .transpose()?;
        Ok(settings.unwrap_or_default())
    }

    /// Applies `change` to the settings in one transaction and returns the result.
    pub fn update_settings(&self, change: impl FnOnce(&mut Settings)) -> StoreResult<Settings> {
        let txn = self.db.begin_write()?;
        let settings = {
            let mut meta = txn.open_table(META)?;
            let mut settings: Settings = meta
                .get(SETTINGS_KEY)?
                .map(|bytes| decode(bytes.value()))
                .transpose()?
                .unwrap_or_default();
            change(&mut settings);
            meta.insert(SETTINGS_KEY, encode(&settings)?.as_slice())?;
            settings
        };
        txn.commit()?;
        Ok(settings)
    }
}
