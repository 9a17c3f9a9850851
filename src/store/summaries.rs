//! Which week's summaries went out: recorded with the messages themselves, so a week is queued
//! exactly once across restarts, a scheduler and a manual run.

use redb::ReadableTable;

use super::audit::{Actor, AuditLine, record};
use super::mail_queue::enqueue;
use super::tables::META;
use super::tables::decode_u64;
use super::{Store, StoreResult};
use crate::domain::Email;
use crate::store::MailContent;

const LAST_SUMMARY_WEEK_KEY: &str = "last_summary_week";

impl Store {
    /// The latest week (counted from the Unix epoch) whose summaries were queued, if any.
    pub fn last_summary_week(&self) -> StoreResult<Option<u64>> {
        let txn = self.begin_read()?;
        let meta = txn.open_table(META)?;
        meta.get(LAST_SUMMARY_WEEK_KEY)?
            .map(|v| decode_u64(v.value()))
            .transpose()
    }

    /// Claims summary week `week` and queues its `mails` in one transaction: true if this run
    /// claimed it, false (nothing queued) if a run already queued this week or a later one.
    /// With `force` (an admin asked) the mails are queued even if the week went out already.
    pub fn queue_summaries(
        &self,
        actor: &Actor,
        week: u64,
        force: bool,
        mails: Vec<(Email, MailContent)>,
    ) -> StoreResult<bool> {
        let txn = self.begin_write()?;
        let claimed = {
            let mut meta = txn.open_table(META)?;
            let last = meta
                .get(LAST_SUMMARY_WEEK_KEY)?
                .map(|v| decode_u64(v.value()))
                .transpose()?;
            let claimed = force || last.is_none_or(|last| last < week);
            if claimed {
                let recorded = week.max(last.unwrap_or(0));
                meta.insert(LAST_SUMMARY_WEEK_KEY, recorded.to_le_bytes().as_slice())?;
            }
            claimed
        };
        if !claimed {
            txn.abort()?;
            return Ok(false);
        }
        let count = mails.len();
        for (to, content) in mails {
            enqueue(&txn, &to, content)?;
        }
        record(
            &txn,
            actor,
            AuditLine::new(
                "summaries_send",
                format!("Weekly summary queued for {count} user(s)"),
            )
            .details(serde_json::json!({ "week": week, "mails": count, "forced": force })),
        )?;
        txn.commit()?;
        Ok(true)
    }
}
