//! The scheduler: every minute, and once as the server starts (so what fell due while it was down
//! runs then), it carries out what is due by its clock: scheduled offboardings (`offboarding`),
//! and the reminders and ends of grants that expire (`store::schedule`). Each user's work is its
//! own transaction: one that fails doesn't hold back the others, and is tried again next minute.

use std::sync::Arc;
use std::time::Duration;

use super::offboarding::{receipt, user_url};
use super::{ServiceError, ServiceResult, render_or_log};
use crate::clock::Clock;
use crate::mail;
use crate::store::{Grant, OffboardingReport, ScheduledRun, Store, User};

/// How often the scheduler looks for work due.
const CHECK_EVERY: Duration = Duration::from_secs(60);

/// What one run of the scheduler did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DueRun {
    pub offboarded: Vec<OffboardingReport>,
    /// Users whose scheduled offboarding the rules refused (the schedule was dropped).
    pub refused: Vec<User>,
    /// (user id, grant) whose reminder went out.
    pub reminded: Vec<(u64, Grant)>,
    /// (user id, grant) taken back at their end.
    pub expired: Vec<(u64, Grant)>,
    /// (user id, grant) kept past their end: the last enabled admin's.
    pub deferred: Vec<(u64, Grant)>,
}

impl DueRun {
    fn queued_mail(&self) -> bool {
        !self.offboarded.is_empty()
            || !self.refused.is_empty()
            || !self.reminded.is_empty()
            || !self.deferred.is_empty()
    }
}

#[derive(Clone)]
pub struct Scheduler {
    store: Store,
    mail_queued: Arc<tokio::sync::Notify>,
    base_url: Arc<str>,
    clock: Clock,
}

impl Scheduler {
    pub fn new(
        store: Store,
        mail_queued: Arc<tokio::sync::Notify>,
        base_url: &str,
        clock: Clock,
    ) -> Scheduler {
        Scheduler {
            store,
            mail_queued,
            base_url: Arc::from(base_url),
            clock,
        }
    }

    /// Does everything due now (by the clock), user by user.
    pub async fn run_due(&self) -> ServiceResult<DueRun> {
        let now = self.clock.now();
        let due = self
            .store
            .off_async(move |store| store.due_users(now))
            .await?;
        let mut run = DueRun::default();
        for id in due {
            if let Err(error) = self.run_for(id, now, &mut run).await {
                tracing::error!(
                    "scheduled work for user {id} failed (tried again in a minute): {}",
                    crate::error_chain::error_chain(&error)
                );
            }
        }
        if run.queued_mail() {
            self.mail_queued.notify_one();
        }
        Ok(run)
    }

    async fn run_for(&self, id: u64, now: u64, run: &mut DueRun) -> ServiceResult<()> {
        let base_url = Arc::clone(&self.base_url);
        let offboarding = self
            .store
            .write_async(move |store| {
                store.run_scheduled_offboarding(
                    id,
                    now,
                    &|report| {
                        let by = report
                            .scheduled
                            .as_ref()
                            .map_or("system", |schedule| schedule.scheduled_by.as_str());
                        receipt(report, by, &base_url)
                    },
                    &|user, schedule| {
                        render_or_log(
                            "offboarding refusal",
                            mail::offboarding_refused(
                                &user.email,
                                schedule,
                                "it would have left the console without an enabled admin",
                                &user_url(&base_url, user.id),
                            ),
                        )
                    },
                )
            })
            .await;
        match offboarding.map_err(ServiceError::from)? {
            ScheduledRun::Done(report) => {
                tracing::info!("offboarded user {id} as scheduled");
                run.offboarded.push(*report);
            }
            ScheduledRun::Refused(user, refusal) => {
                tracing::warn!("the scheduled offboarding of user {id} was refused: {refusal}");
                run.refused.push(*user);
            }
            ScheduledRun::NothingDue => {}
        }
        let base_url = Arc::clone(&self.base_url);
        let grants = self
            .store
            .write_async(move |store| {
                let url = |user: &User| user_url(&base_url, user.id);
                store.run_grant_events(
                    id,
                    now,
                    &crate::store::GrantMails {
                        reminder_to_user: &|user, grant| {
                            render_or_log(
                                "expiry reminder",
                                mail::expiry_reminder(user, grant, false, &url(user)),
                            )
                        },
                        reminder_to_admins: &|user, grant| {
                            render_or_log(
                                "expiry reminder",
                                mail::expiry_reminder(user, grant, true, &url(user)),
                            )
                        },
                        deferred: &|user, grant| {
                            render_or_log(
                                "expiry deferral",
                                mail::expiry_deferred(user, grant, &url(user)),
                            )
                        },
                    },
                )
            })
            .await
            .map_err(ServiceError::from)?;
        for grant in grants.reminded {
            run.reminded.push((id, grant));
        }
        for grant in grants.expired {
            tracing::info!("a grant of user {id} ended");
            run.expired.push((id, grant));
        }
        for grant in grants.deferred {
            tracing::warn!(
                "a grant of user {id} ended but is kept: they are the last enabled admin"
            );
            run.deferred.push((id, grant));
        }
        Ok(())
    }

    /// Runs `run_due` now (what fell due while the server was down) and then every minute.
    pub fn spawn(self) {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CHECK_EVERY);
            loop {
                ticks.tick().await;
                if let Err(error) = self.run_due().await {
                    tracing::error!(
                        "the schedules could not be read: {}",
                        crate::error_chain::error_chain(&error)
                    );
                }
            }
        });
    }
}
