//! The weekly summary mail: once a week (on a configurable weekday, Monday by default), every
//! enabled user who opted in gets a summary of the console within their scope — admins the whole
//! console and its changes of the past week, others their flocks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::domain::{AccessLevel, Email, FlockId};
use crate::mail::{
    AdminSummary, Excerpt, FlockLine, MailError, MemberSummary, admin_summary, member_summary,
};
use crate::store::audit::{Actor, AuditEntry};
use crate::store::{Flock, MailContent, Settings, Store, StoreError, UserDetails, now_unix};
use crate::timestamps;

const DAY_SECS: u64 = 24 * 3600;
const WEEK_SECS: u64 = 7 * DAY_SECS;
/// How often the scheduler looks whether a summary is due.
pub const CHECK_EVERY: Duration = Duration::from_secs(15 * 60);

/// Unix time of the Monday (00:00 UTC) that starts week `week`.
pub fn week_start(week: u64) -> u64 {
    (week * 7).saturating_sub(3) * DAY_SECS
}

/// Monday-based week number since the epoch (1970-01-01 was a Thursday) and the weekday.
fn week_and_weekday(unix: u64) -> (u64, u64) {
    let days = unix / DAY_SECS;
    ((days + 3) / 7, (days + 3) % 7)
}

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot render the summary")]
    Render(#[from] MailError),
}

/// Queues the weekly summary mails; the mail queue's sender delivers them (and retries).
#[derive(Clone)]
pub struct Summaries {
    store: Store,
    /// Wakes the mail sender when summaries were queued.
    mail_queued: Arc<Notify>,
    console_url: String,
    weekday: u64,
    /// `--dormant-after`, for the access review's counts.
    dormant_after_days: u64,
}

impl Summaries {
    pub fn new(
        store: Store,
        mail_queued: Arc<Notify>,
        console_url: &str,
        weekday: u64,
        dormant_after_days: u64,
    ) -> Self {
        Summaries {
            store,
            mail_queued,
            console_url: console_url.trim_end_matches('/').to_string(),
            weekday,
            dormant_after_days,
        }
    }

    /// 0 = Monday … 6 = Sunday.
    pub fn weekday(&self) -> u64 {
        self.weekday
    }

    /// Queues this week's summaries if `now` is on or after the configured weekday and no run
    /// has queued this week yet. Returns how many were queued (0 when not due).
    pub async fn queue_if_due(&self, now: u64) -> Result<usize, SummaryError> {
        let (week, today) = week_and_weekday(now);
        if today < self.weekday {
            return Ok(0);
        }
        // A cheap look first: the scheduler asks every 15 minutes all week long, and rendering
        // every summary only to have the claim refused would be wasted work.
        let last = self
            .store
            .off_async(|store| store.last_summary_week())
            .await?;
        if last.is_some_and(|last| last >= week) {
            return Ok(0);
        }
        self.queue_for_week(Actor::system(), week, now, false).await
    }

    /// Queues the summaries now, whatever the weekday and even if this week's went out already
    /// (an admin asked), and records the week so the scheduler doesn't send it again.
    pub async fn queue_now(&self, actor: Actor, now: u64) -> Result<usize, SummaryError> {
        self.queue_for_week(actor, week_and_weekday(now).0, now, true)
            .await
    }

    async fn queue_for_week(
        &self,
        actor: Actor,
        week: u64,
        now: u64,
        force: bool,
    ) -> Result<usize, SummaryError> {
        let console_url = self.console_url.clone();
        let dormant_after_days = self.dormant_after_days;
        let queued = self
            .store
            .write_async(move |store| -> Result<_, SummaryError> {
                let users = store.list_users(None, None)?.users;
                let flocks = store.list_flocks()?;
                let settings = store.settings()?;
                let (changes, _) = store
                    .snapshot()?
                    .newest_changes(now.saturating_sub(WEEK_SECS), usize::MAX)?;
                let undelivered_mail = store
                    .mail_queue()?
                    .iter()
                    .filter(|mail| mail.attempts > 0)
                    .count();
                let review = crate::review::build(store, now, dormant_after_days)?;
                let snapshot = Snapshot {
                    review: &review,
                    users: &users,
                    flocks: &flocks,
                    changes: &changes,
                    settings,
                    undelivered_mail,
                    now,
                    console_url: &console_url,
                };
                let mails = snapshot.mails()?;
                let count = mails.len();
                let claimed = store.queue_summaries(&actor, week, force, mails)?;
                Ok(claimed.then_some(count))
            })
            .await?;
        match queued {
            Some(count) => {
                self.mail_queued.notify_one();
                tracing::info!("weekly summary of week {week} queued for {count} users");
                Ok(count)
            }
            None => Ok(0),
        }
    }

    /// Checks every `CHECK_EVERY`, the first time a minute after start (not racing start-up),
    /// whether the week's summaries are due.
    pub fn spawn_scheduler(self) {
        tokio::spawn(async move {
            let first = tokio::time::Instant::now() + Duration::from_secs(60);
            let mut ticks = tokio::time::interval_at(first, CHECK_EVERY);
            loop {
                ticks.tick().await;
                if let Err(error) = self.queue_if_due(now_unix()).await {
                    tracing::error!("weekly summary run failed: {error}");
                }
            }
        });
    }
}

/// The console as one read saw it, from which every recipient's summary is written.
struct Snapshot<'a> {
    review: &'a crate::review::AccessReview,
    users: &'a [UserDetails],
    flocks: &'a [Flock],
    changes: &'a [AuditEntry],
    settings: Settings,
    undelivered_mail: usize,
    now: u64,
    console_url: &'a str,
}

impl Snapshot<'_> {
    /// One summary for each enabled user who opted in.
    fn mails(&self) -> Result<Vec<(Email, MailContent)>, SummaryError> {
        let mut admin_mail: Option<MailContent> = None;
        let members = self.members_per_flock();
        let mut mails = Vec::new();
        for recipient in self
            .users
            .iter()
            .filter(|d| !d.user.disabled && d.user.summary_email_enabled)
        {
            let content = if recipient.user.access_level == AccessLevel::Admin {
                // Every admin reads the same console: render it once.
                match &admin_mail {
                    Some(content) => content.clone(),
                    None => {
                        let content = admin_summary(&self.admin_summary())?;
                        admin_mail = Some(content.clone());
                        content
                    }
                }
            } else {
                member_summary(&self.member_summary(recipient, &members))?
            };
            mails.push((recipient.user.email.clone(), content));
        }
        Ok(mails)
    }

    fn admin_summary(&self) -> AdminSummary {
        let since = self.now.saturating_sub(WEEK_SECS);
        let users = self.users;
        let enabled: Vec<&UserDetails> = users.iter().filter(|d| !d.user.disabled).collect();
        let emails = |keep: &dyn Fn(&UserDetails) -> bool| {
            users
                .iter()
                .filter(|d| keep(d))
                .map(|d| d.user.email.to_string())
                .collect::<Vec<_>>()
        };
        AdminSummary {
            console_url: self.console_url.to_string(),
            users: users.len(),
            admins: users
                .iter()
                .filter(|d| d.user.access_level == AccessLevel::Admin)
                .count(),
            disabled: users.len() - enabled.len(),
            enabled: enabled.len(),
            with_factor: enabled
                .iter()
                .filter(|d| d.user.has_second_factor())
                .count(),
            flocks: self.flocks.len(),
            new_users: users.iter().filter(|d| d.user.created >= since).count(),
            new_flocks: self.flocks.iter().filter(|f| f.created >= since).count(),
            changes: Excerpt::of(
                self.changes
                    .iter()
                    .map(|change| {
                        format!(
                            "{}: {} (by {})",
                            timestamps::console_minute(change.at),
                            change.message,
                            change.actor
                        )
                    })
                    .collect(),
            ),
            without_factor: Excerpt::of(emails(&|d| {
                !d.user.disabled && !d.user.has_second_factor()
            })),
            globally_enforce_2fa: self.settings.globally_enforce_2fa,
            api_enabled: self.settings.api_enabled,
            undelivered_mail: self.undelivered_mail,
            review: {
                let review = self.review;
                crate::mail::ReviewCounts {
                    dormant_after_days: review.dormant_after_days,
                    dormant: review.dormant.total,
                    new_admins: review.new_admins.total,
                    expiring_soon: review.expiring_soon.total,
                    stale_api_keys: review.stale_api_keys.total,
                    locked_recently: review.locked_recently.total,
                    failed_past_week: review.failed_logins.past_week,
                    failed_week_before: review.failed_logins.week_before,
                }
            },
        }
    }

    /// (managers, watchers) of each flock.
    fn members_per_flock(&self) -> BTreeMap<&FlockId, (usize, usize)> {
        let mut members: BTreeMap<&FlockId, (usize, usize)> = BTreeMap::new();
        for details in self.users {
            for id in &details.managed_flocks {
                members.entry(id).or_default().0 += 1;
            }
            for id in &details.watched_flocks {
                members.entry(id).or_default().1 += 1;
            }
        }
        members
    }

    fn member_summary(
        &self,
        recipient: &UserDetails,
        members: &BTreeMap<&FlockId, (usize, usize)>,
    ) -> MemberSummary {
        let roles = recipient
            .managed_flocks
            .iter()
            .map(|id| (id, "manager"))
            .chain(recipient.watched_flocks.iter().map(|id| (id, "watcher")));
        let flocks = roles
            .map(|(id, role)| {
                let (managers, watchers) = members.get(id).copied().unwrap_or_default();
                FlockLine {
                    name: flock_name(self.flocks, id).to_string(),
                    role,
                    managers,
                    watchers,
                }
            })
            .collect();
        MemberSummary {
            console_url: self.console_url.to_string(),
            flocks,
        }
    }
}

fn flock_name<'a>(flocks: &'a [Flock], id: &FlockId) -> &'a str {
    flocks
        .iter()
        .find(|f| &f.id == id)
        .map_or("(removed flock)", |f| f.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday() {
        // 2026-11-30 is a Monday, 2026-11-29 a Sunday.
        let monday = 1_795_996_800;
        let (week, day) = week_and_weekday(monday);
        assert_eq!(day, 0);
        assert_eq!(week_and_weekday(monday - DAY_SECS), (week - 1, 6));
        assert_eq!(week_start(week), monday);
        assert_eq!(
            week_start(week_and_weekday(monday + 4 * DAY_SECS).0),
            monday
        );
    }
}
