//! Offboarding a user in one action, now or at a set time, and the scheduler that carries out
//! those that fall due (`Offboarder`), at start too, so one due while the server was down runs
//! at the next start.

use std::sync::Arc;
use std::time::Duration;

use super::{Permission, Principal, ServiceError, ServiceResult};
use crate::clock::Clock;
use crate::mail;
use crate::state::AppState;
use crate::store::{
    MailContent, OffboardingReport, ScheduledOffboarding, ScheduledRun, Store, User, UserRef,
};

/// How often the scheduler looks for offboardings due.
const CHECK_EVERY: Duration = Duration::from_secs(60);

/// What `offboard` did: offboarded now, or set for later.
#[derive(Debug)]
pub enum Offboarding {
    Done(Box<OffboardingReport>),
    Scheduled {
        user: Box<User>,
        schedule: ScheduledOffboarding,
        /// The schedule it replaced, if there was one.
        replaced: Option<ScheduledOffboarding>,
    },
}

/// What offboarding `user` would do now: the console's confirmation page.
pub async fn preview(
    state: &AppState,
    who: &Principal,
    user: UserRef,
) -> ServiceResult<OffboardingReport> {
    who.require(Permission::Administer)?;
    Ok(state
        .blocking(move |store| store.offboarding_preview(&user))
        .await?)
}

/// Offboards `user` now (`at` absent), or sets it for `at`, which must be in the future.
pub async fn offboard(
    state: &AppState,
    who: &Principal,
    user: UserRef,
    at: Option<u64>,
    revoke_api_keys: bool,
) -> ServiceResult<Offboarding> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    let outcome = match at {
        Some(at) => {
            let now = state.clock.now();
            let (user, replaced) = state
                .write(move |store| {
                    store.schedule_offboarding(&actor, &user, at, revoke_api_keys, now)
                })
                .await?;
            let schedule = user.offboarding.clone().ok_or_else(|| {
                ServiceError::Store(crate::store::StoreError::Corrupt(
                    "a scheduled offboarding was not kept on the user".into(),
                ))
            })?;
            Offboarding::Scheduled {
                user: Box::new(user),
                schedule,
                replaced,
            }
        }
        None => {
            let base_url = Arc::clone(&state.base_url);
            let report = state
                .write(move |store| {
                    store.offboard_user(&actor, &user, revoke_api_keys, &|report| {
                        receipt(report, &actor.name, &base_url)
                    })
                })
                .await?;
            Offboarding::Done(Box::new(report))
        }
    };
    if let Offboarding::Done(report) = &outcome
        && !report.receipt_to.is_empty()
    {
        state.mail_queued.notify_one();
    }
    Ok(outcome)
}

/// Cancels the scheduled offboarding of `user`.
pub async fn cancel(
    state: &AppState,
    who: &Principal,
    user: UserRef,
) -> ServiceResult<(User, ScheduledOffboarding)> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.cancel_offboarding(&actor, &user))
        .await?)
}

fn user_url(base_url: &str, id: u64) -> String {
    format!("{base_url}/users/{id}")
}

/// The receipt mail; a template that can't render is logged and the mail skipped (mail never
/// fails the action).
fn receipt(report: &OffboardingReport, actor: &str, base_url: &str) -> Option<MailContent> {
    mail::offboarding_receipt(report, actor, &user_url(base_url, report.user.id))
        .map_err(|error| tracing::error!("cannot render the offboarding receipt: {error}"))
        .ok()
}

/// Carries out the scheduled offboardings that are due, by its clock.
#[derive(Clone)]
pub struct Offboarder {
    store: Store,
    mail_queued: Arc<tokio::sync::Notify>,
    base_url: Arc<str>,
    clock: Clock,
}

/// What one run of the scheduler did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DueRun {
    pub offboarded: Vec<OffboardingReport>,
    /// Users whose scheduled offboarding the rules refused (the schedule was dropped).
    pub refused: Vec<User>,
}

impl Offboarder {
    pub fn new(
        store: Store,
        mail_queued: Arc<tokio::sync::Notify>,
        base_url: &str,
        clock: Clock,
    ) -> Offboarder {
        Offboarder {
            store,
            mail_queued,
            base_url: Arc::from(base_url),
            clock,
        }
    }

    /// Offboards every user whose schedule is due now (by the clock), each in its own
    /// transaction: one that fails doesn't hold back the others.
    pub async fn run_due(&self) -> ServiceResult<DueRun> {
        let now = self.clock.now();
        let due = self
            .store
            .off_async(move |store| store.due_offboardings(now))
            .await?;
        let mut run = DueRun::default();
        for id in due {
            let base_url = Arc::clone(&self.base_url);
            let outcome = self
                .store
                .write_async(move |store| {
                    let actor_of = |report: &OffboardingReport| {
                        report.scheduled.as_ref().map_or_else(
                            || "system".to_string(),
                            |schedule| schedule.scheduled_by.clone(),
                        )
                    };
                    store.run_scheduled_offboarding(
                        id,
                        now,
                        &|report| receipt(report, &actor_of(report), &base_url),
                        &|user, schedule| {
                            mail::offboarding_refused(
                                &user.email,
                                schedule,
                                "it would have left the console without an enabled admin",
                                &user_url(&base_url, user.id),
                            )
                            .map_err(|error| {
                                tracing::error!("cannot render the offboarding refusal: {error}")
                            })
                            .ok()
                        },
                    )
                })
                .await;
            match outcome {
                Ok(ScheduledRun::Done(report)) => {
                    tracing::info!("offboarded user {id} as scheduled");
                    run.offboarded.push(*report);
                }
                Ok(ScheduledRun::Refused(user, refusal)) => {
                    tracing::warn!("the scheduled offboarding of user {id} was refused: {refusal}");
                    run.refused.push(*user);
                }
                Ok(ScheduledRun::NothingDue) => {}
                Err(error) => {
                    tracing::error!(
                        "the scheduled offboarding of user {id} failed (tried again in a minute): {}",
                        crate::error_chain::error_chain(&error)
                    );
                }
            }
        }
        if !run.offboarded.is_empty() || !run.refused.is_empty() {
            self.mail_queued.notify_one();
        }
        Ok(run)
    }

    /// Runs `run_due` now (what fell due while the server was down) and then every minute.
    pub fn spawn_scheduler(self) {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CHECK_EVERY);
            loop {
                ticks.tick().await;
                if let Err(error) = self.run_due().await {
                    tracing::error!(
                        "scheduled offboardings could not be read: {}",
                        crate::error_chain::error_chain(&error)
                    );
                }
            }
        });
    }
}
