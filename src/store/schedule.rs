//! What the scheduler does for users at set times, besides offboarding (`offboarding`): grants
//! (admin access, flock roles) that expire. Each user's schedules are on the user; the index
//! `USER_SCHEDULE_DUE` holds one entry per user at `User::next_due`, rewritten by every change
//! of those schedules (`due::index_schedule`), so the scheduler reads only the users with
//! something due.
//!
//! A grant's reminder goes to the user and the admins three days before it ends (once); at its
//! end the right is taken back (admin → user, the flock role removed) and the user's sessions,
//! which carried it, end. Never the last enabled admin's: they keep it, the admins are told, and
//! it is tried again a day later.

use redb::ReadableTableMetadata;
use serde_json::json;

use super::audit::{Actor, AuditLine, record};
use super::due::{index_schedule, unindex};
use super::mail_queue::enqueue;
use super::sessions::end_sessions_in;
use super::tables::{ENABLED_ADMINS, ROLES_BY_FLOCK, ROLES_BY_USER, USER_SCHEDULE_DUE, USERS};
use super::users::enabled_admins_but;
use super::users::{read_user, write_user};
use super::{
    EXPIRY_REMINDER_SECS, ExpiringGrant, Grant, MailContent, Store, StoreError, StoreResult, User,
};
use crate::domain::{AccessLevel, FlockRole, Refusal, rules};

/// A deferred expiry (the last enabled admin) is tried again this much later.
pub const EXPIRY_RETRY_SECS: u64 = 24 * 3600;

/// Whether `user` holds `grant` now (with `roles` their roles): a grant whose right was taken
/// away another way is not shown and not acted on.
pub fn holds(
    user: &User,
    managed: &[crate::domain::FlockId],
    watched: &[crate::domain::FlockId],
    grant: &Grant,
) -> bool {
    match grant {
        Grant::Admin => user.access_level == AccessLevel::Admin,
        Grant::Role {
            flock,
            role: FlockRole::Manager,
        } => managed.contains(flock),
        Grant::Role {
            flock,
            role: FlockRole::Watcher,
        } => watched.contains(flock),
    }
}

/// What the scheduler did about one user's grants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GrantRun {
    pub reminded: Vec<Grant>,
    pub expired: Vec<Grant>,
    /// Kept past their end: taking them would have left no enabled admin.
    pub deferred: Vec<Grant>,
}

/// The messages of a grant run, written by the caller (the store doesn't render mail).
pub struct GrantMails<'a> {
    /// To the user, three days before.
    pub reminder_to_user: &'a dyn Fn(&User, &ExpiringGrant) -> Option<MailContent>,
    /// To the admins, three days before.
    pub reminder_to_admins: &'a dyn Fn(&User, &ExpiringGrant) -> Option<MailContent>,
    /// To the admins, when an expiry is deferred.
    pub deferred: &'a dyn Fn(&User, &ExpiringGrant) -> Option<MailContent>,
}

impl Store {
    /// The users the scheduler has something due for at `now`, soonest first.
    pub fn due_users(&self, now: u64) -> StoreResult<Vec<u64>> {
        let txn = self.begin_read()?;
        let due = txn.open_table(USER_SCHEDULE_DUE)?;
        let mut users = Vec::new();
        for entry in due.range((0, 0)..=(now, u64::MAX))? {
            let (key, _) = entry?;
            let id = key.value().1;
            if !users.contains(&id) {
                users.push(id);
            }
        }
        Ok(users)
    }

    /// Sends the reminders and carries out the expiries of user `id` due at `now`, in one
    /// transaction with their audit entries and mail.
    pub fn run_grant_events(
        &self,
        id: u64,
        now: u64,
        mails: &GrantMails<'_>,
    ) -> StoreResult<GrantRun> {
        let txn = self.begin_write()?;
        let read = read_user(&txn.open_for_reading(USERS)?, id);
        let mut user = match read {
            Ok(user) => user,
            Err(StoreError::Refused(Refusal::UserNotFound)) => {
                unindex(&txn, id)?;
                txn.commit()?;
                return Ok(GrantRun::default());
            }
            Err(error) => return Err(error),
        };
        let before = user.clone();
        let (managed, watched) = super::users::roles_of(&txn.open_for_reading(ROLES_BY_USER)?, id)?;
        let mut run = GrantRun::default();
        let actor = Actor::system();
        let email = user.email.clone();
        let mut kept = Vec::new();
        let grants = std::mem::take(&mut user.expiring);
        let mut end_sessions = false;
        for mut grant in grants {
            // One grant per right, so the roles read before the loop still hold for this one.
            if !holds(&user, &managed, &watched, &grant.grant) {
                // Taken away another way meanwhile: nothing left to end.
                continue;
            }
            let ends = crate::timestamps::rfc3339(grant.expires_at);
            let what = describe(&grant.grant);
            if grant.expires_at <= now && grant.retry_at.is_none_or(|retry| retry <= now) {
                match &grant.grant {
                    Grant::Admin => {
                        let admins = txn.open_table(ENABLED_ADMINS)?.len()?;
                        if rules::keeps_an_enabled_admin(admins, user.is_enabled_admin(), false)
                            .is_err()
                        {
                            grant.retry_at = Some(now + EXPIRY_RETRY_SECS);
                            grant.reminded = true;
                            record(
                                &txn,
                                &actor,
                                AuditLine::new(
                                    "access_expire_defer",
                                    format!(
                                        "Admin access of user ({email}) ended at {ends} but is kept: they are the last enabled admin"
                                    ),
                                )
                                .target(&email)
                                .details(json!({ "grant": what, "expires_at": ends, "retry_at": crate::timestamps::rfc3339(now + EXPIRY_RETRY_SECS) })),
                            )?;
                            if let Some(mail) = (mails.deferred)(&user, &grant) {
                                for admin in enabled_admins_but(&txn, u64::MAX)? {
                                    enqueue(&txn, &admin, mail.clone())?;
                                }
                            }
                            run.deferred.push(grant.grant.clone());
                            kept.push(grant);
                            continue;
                        }
                        user.access_level = AccessLevel::User;
                        txn.open_table(ENABLED_ADMINS)?.remove(id)?;
                    }
                    Grant::Role { flock, .. } => {
                        txn.open_table(ROLES_BY_USER)?
                            .remove((id, flock.as_str()))?;
                        txn.open_table(ROLES_BY_FLOCK)?
                            .remove((flock.as_str(), id))?;
                    }
                }
                end_sessions = true;
                let mut line = AuditLine::new(
                    "access_expire",
                    format!("{what} of user ({email}) ended at {ends}"),
                )
                .target(&email)
                .details(json!({
                    "grant": what,
                    "expires_at": ends,
                    "granted_by": grant.granted_by,
                }));
                if let Grant::Role { flock, .. } = &grant.grant {
                    line = line.flock(flock);
                }
                record(&txn, &actor, line)?;
                run.expired.push(grant.grant.clone());
            } else if !grant.reminded
                && grant.expires_at.saturating_sub(EXPIRY_REMINDER_SECS) <= now
            {
                grant.reminded = true;
                if let Some(mail) = (mails.reminder_to_user)(&user, &grant) {
                    enqueue(&txn, &email, mail)?;
                }
                if let Some(mail) = (mails.reminder_to_admins)(&user, &grant) {
                    for admin in enabled_admins_but(&txn, id)? {
                        enqueue(&txn, &admin, mail.clone())?;
                    }
                }
                record(
                    &txn,
                    &actor,
                    AuditLine::new(
                        "access_expire_remind",
                        format!("{what} of user ({email}) ends at {ends}: reminder sent"),
                    )
                    .target(&email)
                    .details(json!({ "grant": what, "expires_at": ends })),
                )?;
                run.reminded.push(grant.grant.clone());
                kept.push(grant);
            } else {
                kept.push(grant);
            }
        }
        user.expiring = kept;
        if end_sessions {
            user.session_generation += 1;
            end_sessions_in(&txn, id, None, None)?;
        }
        if user != before {
            write_user(&mut txn.open_table(USERS)?, &user)?;
        }
        index_schedule(&txn, &user)?;
        txn.commit()?;
        Ok(run)
    }
}

/// "Admin access", "Manager role in flock:…": how the trail and the mails name a right.
pub fn describe(grant: &Grant) -> String {
    match grant {
        Grant::Admin => "Admin access".to_string(),
        Grant::Role { flock, role } => {
            let role = match role {
                FlockRole::Manager => "Manager",
                FlockRole::Watcher => "Watcher",
            };
            format!("{role} role in flock {flock}")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::audit::Actor;
    use super::super::{NewUser, ScheduledRun, Store, UserRef};
    use super::*;
    use crate::domain::Email;

    fn add(store: &Store, email: &str) -> u64 {
        let new = NewUser {
            email: Email::parse(email).unwrap(),
            access_level: AccessLevel::User,
            note: None,
            two_factor_required: false,
        };
        store.add_user(&Actor::system(), new, None).unwrap().id
    }

    /// The scheduler's look at a user with nothing yet to do writes nothing: the other users'
    /// copies in memory stay (a pass that counted as writing users would drop them all).
    #[test]
    fn a_scheduler_pass_that_changes_nothing_keeps_the_copies_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = crate::store::now_unix();
        let ann = add(&store, "ann@x.io");
        let bob = add(&store, "bob@x.io");
        store
            .set_access_level_until(
                &Actor::system(),
                &UserRef::Id(ann),
                AccessLevel::Admin,
                Some(now + 30 * 24 * 3600),
                now,
            )
            .unwrap();
        store.warm_user_copies().unwrap();
        let bob_before = store.user_details(&UserRef::Id(bob)).unwrap();
        let mails = GrantMails {
            reminder_to_user: &|_, _| None,
            reminder_to_admins: &|_, _| None,
            deferred: &|_, _| None,
        };
        let run = store
            .run_scheduled_offboarding(ann, now, &|_| None, &|_, _| None)
            .unwrap();
        assert_eq!(run, ScheduledRun::NothingDue);
        assert_eq!(
            store.run_grant_events(ann, now, &mails).unwrap(),
            GrantRun::default()
        );
        let bob_after = store.user_details(&UserRef::Id(bob)).unwrap();
        assert!(
            Arc::ptr_eq(&bob_before, &bob_after),
            "the copies were dropped"
        );
        // Its reminder day: the grant is marked reminded, only ann's copy is new.
        let reminder_day = now + 27 * 24 * 3600 + 1;
        let run = store.run_grant_events(ann, reminder_day, &mails).unwrap();
        assert_eq!(run.reminded, vec![Grant::Admin]);
        let bob_after = store.user_details(&UserRef::Id(bob)).unwrap();
        assert!(Arc::ptr_eq(&bob_before, &bob_after));
        assert!(store.user_details(&UserRef::Id(ann)).unwrap().user.expiring[0].reminded);
    }
}
