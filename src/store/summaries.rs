use redb::ReadableTable;

use super::records::decode_u64;
use super::tables::META;
use super::{Store, StoreResult};

const LAST_SUMMARY_WEEK_KEY: &str = "last_summary_week";

impl Store {
    /// Claims weekly summary week `week` (weeks counted from the Unix epoch): true if no summary
    /// run has claimed it or a later one, in which case this run must send. Claiming and checking
    /// share one transaction, so two runs (a restart, a manual run) can't both send a week.
    /// With `force`, the week is recorded and claimed even if a run already sent it.
    pub fn claim_summary_week(&self, week: u64, force: bool) -> StoreResult<bool> {
        let txn = self.db.begin_write()?;
        let claimed = {
            let mut meta = txn.open_table(META)?;
            let last = meta
                .get(LAST_SUMMARY_WEEK_KEY)?
                .map(|v| decode_u64(v.value()))
                .transpose()?;
            if !force && last.is_some_and(|last| last >= week) {
                false
            } else {
                let recorded = week.max(last.unwrap_or(0));
                meta.insert(LAST_SUMMARY_WEEK_KEY, recorded.to_le_bytes().as_slice())?;
                true
            }
        };
        txn.commit()?;
        Ok(claimed)
    }
}
