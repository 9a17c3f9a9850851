use redb::{ReadableDatabase, ReadableTable};

use super::changes::record_change;
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
        if before.globally_enforce_2fa != settings.globally_enforce_2fa {
            let text = if settings.globally_enforce_2fa {
                "two-factor authentication enforced for everyone"
            } else {
                "two-factor authentication no longer enforced for everyone"
            };
            record_change(&txn, text.to_string())?;
        }
        if before.api_enabled != settings.api_enabled {
            let text = if settings.api_enabled {
                "API access turned on"
            } else {
                "API access turned off"
            };
            record_change(&txn, text.to_string())?;
        }
        txn.commit()?;
        Ok(settings)
    }
}
