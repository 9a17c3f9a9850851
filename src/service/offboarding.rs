//! Offboarding a user in one action, now or at a set time (the scheduler, `scheduler`, carries
//! out those that fall due).

use std::sync::Arc;

use super::{Permission, Principal, ServiceError, ServiceResult};
use crate::mail;
use crate::state::AppState;
use crate::store::{MailContent, OffboardingReport, ScheduledOffboarding, User, UserRef};

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

pub(super) fn user_url(base_url: &str, id: u64) -> String {
    format!("{base_url}/users/{id}")
}

/// The receipt mail; a template that can't render is logged and the mail skipped (mail never
/// fails the action).
pub(super) fn receipt(
    report: &OffboardingReport,
    actor: &str,
    base_url: &str,
) -> Option<MailContent> {
    super::render_or_log(
        "offboarding receipt",
        mail::offboarding_receipt(report, actor, &user_url(base_url, report.user.id)),
    )
}
