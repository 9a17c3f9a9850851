//! Offboarding: everything that lets a leaver act, taken away in one transaction (the account
//! disabled, sessions ended, flock roles removed, unused one-time links and mail to them voided,
//! the API keys they created revoked or listed), each step on the audit trail, and a receipt
//! queued for the other admins. It can also be scheduled: the schedule is kept on the user and
//! indexed by when it is due (`USER_SCHEDULE_DUE`), so the scheduler finds it without reading
//! every user, and a schedule that fell due while the server was down runs at the next start.

use redb::{ReadableTable, ReadableTableMetadata};
use serde_json::json;

use super::api_keys::key_line;
use super::audit::{Actor, AuditLine, record};
use super::disk::decode_api_key;
use super::due::{index_schedule, unindex};
use super::mail_queue::enqueue;
use super::records::decode;
use super::sessions::end_sessions_in;
use super::tables::{
    API_KEYS, ENABLED_ADMINS, FLOCKS, MAIL_QUEUE, ONE_TIME_TOKENS, ROLES_BY_USER, SESSIONS_BY_USER,
    USERS,
};
use super::users::{enabled_admins_but, read_user, remove_roles_of, resolve, roles_of, write_user};
use super::{
    ApiKeyRecord, MailContent, OneTimeToken, QueuedMail, ScheduledOffboarding, Store, StoreError,
    StoreResult, User, UserRef, WriteTxn,
};
use crate::domain::{Email, FlockId, Refusal, rules};

/// What an offboarding did (or, as a preview, would do), step by step.
#[derive(Debug, Clone, PartialEq)]
pub struct OffboardingReport {
    pub user: User,
    /// Whether the account was enabled before (it is disabled after either way).
    pub was_enabled: bool,
    pub sessions_ended: usize,
    pub managed_flocks: Vec<(FlockId, String)>,
    pub watched_flocks: Vec<(FlockId, String)>,
    pub links_voided: usize,
    pub mails_dropped: usize,
    /// The API keys the user created, and whether they were revoked (or only listed).
    pub api_keys: Vec<ApiKeyRecord>,
    pub api_keys_revoked: bool,
    /// The scheduled offboarding this run carried out, if it was one.
    pub scheduled: Option<ScheduledOffboarding>,
    /// The admins the receipt was queued for.
    pub receipt_to: Vec<Email>,
    /// False when the user was offboarded already and nothing was left to take away: nothing
    /// was written, audited or mailed (a repeated or concurrent call).
    pub changed: bool,
}

impl Store {
    /// What offboarding `user` would do now (the console's confirmation page).
    pub fn offboarding_preview(&self, user: &UserRef) -> StoreResult<OffboardingReport> {
        let txn = self.begin_read()?;
        let id = match user {
            UserRef::Id(id) => *id,
            UserRef::Email(email) => {
                super::users::user_id_of(&txn.open_table(super::tables::USER_ID_BY_EMAIL)?, email)?
            }
        };
        let user = read_user(&txn.open_table(USERS)?, id)?;
        let sessions = txn
            .open_table(SESSIONS_BY_USER)?
            .range((id, "")..(id.saturating_add(1), ""))?
            .count();
        let (managed, watched) = roles_of(&txn.open_table(ROLES_BY_USER)?, id)?;
        let flocks = txn.open_table(FLOCKS)?;
        let mut links = 0;
        for entry in txn.open_table(ONE_TIME_TOKENS)?.iter()? {
            let (_, bytes) = entry?;
            if decode::<OneTimeToken>(bytes.value())
                .is_ok_and(|token| token.user_id == Some(id) && !token.used)
            {
                links += 1;
            }
        }
        let mut mails = 0;
        for entry in txn.open_table(MAIL_QUEUE)?.iter()? {
            let (_, bytes) = entry?;
            mails += usize::from(mail_to(bytes.value(), &user.email));
        }
        let api_keys = keys_created_by(&txn.open_table(API_KEYS)?, &user.email)?;
        Ok(OffboardingReport {
            was_enabled: !user.disabled,
            sessions_ended: sessions,
            managed_flocks: named_flocks(&flocks, &managed)?,
            watched_flocks: named_flocks(&flocks, &watched)?,
            links_voided: links,
            mails_dropped: mails,
            api_keys,
            api_keys_revoked: false,
            scheduled: user.offboarding.clone(),
            receipt_to: Vec::new(),
            changed: true,
            user,
        })
    }

    /// Offboards `user` now, in one transaction with every step's audit entry and the receipt
    /// (`receipt` writes it from the report) queued for every other enabled admin. Refused for
    /// the last enabled admin.
    pub fn offboard_user(
        &self,
        actor: &Actor,
        user: &UserRef,
        revoke_api_keys: bool,
        receipt: &dyn Fn(&OffboardingReport) -> Option<MailContent>,
    ) -> StoreResult<OffboardingReport> {
        let txn = self.begin_write()?;
        let id = resolve(&txn, user)?;
        let report = offboard_in(&txn, actor, id, revoke_api_keys, None, receipt)?;
        txn.commit()?;
        Ok(report)
    }

    /// Sets (or replaces) the offboarding of `user` for `at`, which must be after `now`.
    pub fn schedule_offboarding(
        &self,
        actor: &Actor,
        user: &UserRef,
        at: u64,
        revoke_api_keys: bool,
        now: u64,
    ) -> StoreResult<(User, Option<ScheduledOffboarding>)> {
        if at <= now {
            return Err(StoreError::Refused(Refusal::TimeInThePast));
        }
        let txn = self.begin_write()?;
        let outcome = {
            let id = resolve(&txn, user)?;
            let mut users = txn.open_table(USERS)?;
            let mut user = read_user(&users, id)?;
            // Refused now rather than failing at its time.
            let admins = txn.open_table(ENABLED_ADMINS)?.len()?;
            rules::keeps_an_enabled_admin(admins, user.is_enabled_admin(), false)?;
            let replaced = user.offboarding.take();
            let schedule = ScheduledOffboarding {
                at,
                revoke_api_keys,
                scheduled_by: actor.name.clone(),
                scheduled_at: now,
            };
            user.offboarding = Some(schedule);
            write_user(&mut users, &user)?;
            index_schedule(&txn, &user)?;
            let when = crate::timestamps::rfc3339(at);
            record(
                &txn,
                actor,
                AuditLine::new(
                    "user_offboard_schedule",
                    format!("Offboarding of user ({}) scheduled for {when}", user.email),
                )
                .target(&user.email)
                .details(json!({
                    "at": when,
                    "revoke_api_keys": revoke_api_keys,
                    "replaced": replaced.as_ref().map(|old| crate::timestamps::rfc3339(old.at)),
                })),
            )?;
            (user, replaced)
        };
        txn.commit()?;
        Ok(outcome)
    }

    /// Cancels the scheduled offboarding of `user`; refused when none is scheduled.
    pub fn cancel_offboarding(
        &self,
        actor: &Actor,
        user: &UserRef,
    ) -> StoreResult<(User, ScheduledOffboarding)> {
        let txn = self.begin_write()?;
        let outcome = {
            let id = resolve(&txn, user)?;
            let mut users = txn.open_table(USERS)?;
            let mut user = read_user(&users, id)?;
            let schedule = user
                .offboarding
                .take()
                .ok_or(StoreError::Refused(Refusal::NoOffboardingScheduled))?;
            write_user(&mut users, &user)?;
            index_schedule(&txn, &user)?;
            record(
                &txn,
                actor,
                AuditLine::new(
                    "user_offboard_cancel",
                    format!("Scheduled offboarding of user ({}) cancelled", user.email),
                )
                .target(&user.email)
                .details(json!({
                    "at": crate::timestamps::rfc3339(schedule.at),
                    "scheduled_by": schedule.scheduled_by,
                })),
            )?;
            (user, schedule)
        };
        txn.commit()?;
        Ok(outcome)
    }

    /// Runs the scheduled offboarding of user `id` if it is due at `now`, in the name of who
    /// scheduled it. A run the rules refuse (the last enabled admin) drops the schedule, records
    /// why and queues the refusal for the admins (`refused` writes it), rather than trying every
    /// minute.
    pub fn run_scheduled_offboarding(
        &self,
        id: u64,
        now: u64,
        receipt: &dyn Fn(&OffboardingReport) -> Option<MailContent>,
        refused: &dyn Fn(&User, &ScheduledOffboarding) -> Option<MailContent>,
    ) -> StoreResult<ScheduledRun> {
        let txn = self.begin_write()?;
        let read = read_user(&txn.open_for_reading(USERS)?, id);
        let user = match read {
            Ok(user) => user,
            Err(StoreError::Refused(Refusal::UserNotFound)) => {
                // Removed since: its index entries go with it.
                unindex(&txn, id)?;
                txn.commit()?;
                return Ok(ScheduledRun::NothingDue);
            }
            Err(error) => return Err(error),
        };
        let Some(schedule) = user.offboarding.clone().filter(|s| s.at <= now) else {
            // Nothing of this to do (or the index was behind the user): the user is the truth.
            index_schedule(&txn, &user)?;
            txn.commit()?;
            return Ok(ScheduledRun::NothingDue);
        };
        let actor = Actor::named(&format!(
            "system (offboarding scheduled by {})",
            schedule.scheduled_by
        ));
        let admins = txn.open_table(ENABLED_ADMINS)?.len()?;
        if let Err(refusal) = rules::keeps_an_enabled_admin(admins, user.is_enabled_admin(), false)
        {
            let mut user = user;
            user.offboarding = None;
            write_user(&mut txn.open_table(USERS)?, &user)?;
            index_schedule(&txn, &user)?;
            record(
                &txn,
                &actor,
                AuditLine::new(
                    "user_offboard_cancel",
                    format!(
                        "Scheduled offboarding of user ({}) refused: {refusal}",
                        user.email
                    ),
                )
                .target(&user.email)
                .details(json!({
                    "at": crate::timestamps::rfc3339(schedule.at),
                    "scheduled_by": schedule.scheduled_by,
                    "refused": refusal.to_string(),
                })),
            )?;
            if let Some(mail) = refused(&user, &schedule) {
                for admin in enabled_admins_but(&txn, id)? {
                    enqueue(&txn, &admin, mail.clone())?;
                }
            }
            txn.commit()?;
            return Ok(ScheduledRun::Refused(Box::new(user), refusal));
        }
        let report = offboard_in(
            &txn,
            &actor,
            id,
            schedule.revoke_api_keys,
            Some(schedule),
            receipt,
        )?;
        txn.commit()?;
        Ok(ScheduledRun::Done(Box::new(report)))
    }
}

/// What became of a scheduled offboarding the scheduler found due.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduledRun {
    Done(Box<OffboardingReport>),
    /// Refused by a rule: the schedule was dropped and the admins told.
    Refused(Box<User>, Refusal),
    /// Cancelled, moved or the user removed since the index was read.
    NothingDue,
}

/// The API keys the user with `email` created (keys record their creator's name as the trail
/// does: a console user's email).
fn keys_created_by(
    keys: &impl ReadableTable<&'static str, &'static [u8]>,
    email: &Email,
) -> StoreResult<Vec<ApiKeyRecord>> {
    let mut theirs = Vec::new();
    for entry in keys.iter()? {
        let (_, bytes) = entry?;
        let key = decode_api_key(bytes.value())?;
        if Email::parse(&key.created_by).is_ok_and(|creator| creator.key() == email.key()) {
            theirs.push(key);
        }
    }
    Ok(theirs)
}

/// Whether a queued mail (stored bytes) is addressed to `email`.
fn mail_to(bytes: &[u8], email: &Email) -> bool {
    serde_json::from_slice::<QueuedMail>(bytes).is_ok_and(|mail| mail.to.key() == email.key())
}

/// Flocks `ids` with their names (the id where a flock has no record).
fn named_flocks(
    flocks: &impl ReadableTable<&'static str, &'static [u8]>,
    ids: &[FlockId],
) -> StoreResult<Vec<(FlockId, String)>> {
    ids.iter()
        .map(|flock| {
            let name = flocks
                .get(flock.as_str())?
                .map(|bytes| decode::<super::records::FlockRecord>(bytes.value()))
                .transpose()?
                .map_or_else(|| flock.to_string(), |record| record.name);
            Ok((flock.clone(), name))
        })
        .collect()
}

/// Whether a disabled user still has anything offboarding takes away. Only reads (a repeated
/// call must not count as writing the roles).
fn anything_left(txn: &WriteTxn<'_>, user: &User, revoke_api_keys: bool) -> StoreResult<bool> {
    let id = user.id;
    if user.offboarding.is_some() {
        return Ok(true);
    }
    if txn
        .open_for_reading(SESSIONS_BY_USER)?
        .range((id, "")..(id.saturating_add(1), ""))?
        .next()
        .is_some()
        || txn
            .open_for_reading(ROLES_BY_USER)?
            .range((id, "")..(id.saturating_add(1), ""))?
            .next()
            .is_some()
    {
        return Ok(true);
    }
    for entry in txn.open_for_reading(ONE_TIME_TOKENS)?.iter()? {
        let (_, bytes) = entry?;
        if decode::<OneTimeToken>(bytes.value()).is_ok_and(|token| token.user_id == Some(id)) {
            return Ok(true);
        }
    }
    for entry in txn.open_for_reading(MAIL_QUEUE)?.iter()? {
        let (_, bytes) = entry?;
        if mail_to(bytes.value(), &user.email) {
            return Ok(true);
        }
    }
    Ok(revoke_api_keys
        && !keys_created_by(&txn.open_for_reading(API_KEYS)?, &user.email)?.is_empty())
}

/// Every step of an offboarding, inside the caller's transaction.
fn offboard_in(
    txn: &WriteTxn<'_>,
    actor: &Actor,
    id: u64,
    revoke_api_keys: bool,
    scheduled: Option<ScheduledOffboarding>,
    receipt: &dyn Fn(&OffboardingReport) -> Option<MailContent>,
) -> StoreResult<OffboardingReport> {
    // Read first without counting as a write (see `anything_left`).
    let user = read_user(&txn.open_for_reading(USERS)?, id)?;
    let enabled_admins = txn.open_for_reading(ENABLED_ADMINS)?.len()?;
    rules::keeps_an_enabled_admin(enabled_admins, user.is_enabled_admin(), false)?;
    if user.disabled && !anything_left(txn, &user, revoke_api_keys)? {
        return Ok(OffboardingReport {
            was_enabled: false,
            sessions_ended: 0,
            managed_flocks: Vec::new(),
            watched_flocks: Vec::new(),
            links_voided: 0,
            mails_dropped: 0,
            api_keys: Vec::new(),
            api_keys_revoked: revoke_api_keys,
            scheduled,
            receipt_to: Vec::new(),
            changed: false,
            user,
        });
    }
    let mut users = txn.open_table(USERS)?;
    let mut user = user;
    let mut admins = txn.open_table(ENABLED_ADMINS)?;
    let email = user.email.clone();

    // 1. The account: disabled, no summary mail, every session's generation over.
    let was_enabled = !user.disabled;
    user.disabled = true;
    user.summary_email_enabled = false;
    user.session_generation += 1;
    user.offboarding = None;
    write_user(&mut users, &user)?;
    index_schedule(txn, &user)?;
    admins.remove(id)?;
    drop(admins);
    drop(users);
    let step = |action: &'static str, message: String, details: serde_json::Value| {
        AuditLine::new(action, message)
            .target(&email)
            .details(details)
    };
    record(
        txn,
        actor,
        step(
            "user_disable",
            format!("User ({email}) disabled (offboarding)"),
            json!({ "before": { "disabled": !was_enabled }, "after": { "disabled": true }, "offboarding": true }),
        ),
    )?;

    // 2. Sessions.
    let sessions_ended = end_sessions_in(txn, id, None, None)?;
    record(
        txn,
        actor,
        step(
            "session_revoke",
            format!("{sessions_ended} sessions of user ({email}) ended (offboarding)"),
            json!({ "sessions_ended": sessions_ended, "offboarding": true }),
        ),
    )?;

    // 3. Flock roles.
    let (managed, watched) = remove_roles_of(txn, id)?;
    let flocks = txn.open_table(FLOCKS)?;
    let managed_flocks = named_flocks(&flocks, &managed)?;
    let watched_flocks = named_flocks(&flocks, &watched)?;
    drop(flocks);
    if !managed.is_empty() || !watched.is_empty() {
        record(
            txn,
            actor,
            step(
                "flock_unassign",
                format!(
                    "User ({email}) removed from {} flocks (offboarding)",
                    managed.len() + watched.len()
                ),
                json!({ "managed_flocks": managed, "watched_flocks": watched, "offboarding": true }),
            ),
        )?;
    }

    // 4. Unused one-time links (used ones not yet swept go too, but void nothing), and mail to
    // the user still queued.
    let mut links_voided = 0;
    txn.open_table(ONE_TIME_TOKENS)?.retain(|_, bytes| {
        let Some(token) = serde_json::from_slice::<OneTimeToken>(bytes)
            .ok()
            .filter(|token| token.user_id == Some(id))
        else {
            return true;
        };
        links_voided += usize::from(!token.used);
        false
    })?;
    let mut mails_dropped = 0;
    txn.open_table(MAIL_QUEUE)?.retain(|_, bytes| {
        let theirs = mail_to(bytes, &email);
        mails_dropped += usize::from(theirs);
        !theirs
    })?;

    // 5. The API keys they created.
    let api_keys = keys_created_by(&txn.open_table(API_KEYS)?, &email)?;
    if revoke_api_keys {
        for key in &api_keys {
            txn.open_table(API_KEYS)?.remove(key.key_id.as_str())?;
            let line = key_line(txn, key, false)?;
            record(txn, actor, line.target(&email))?;
        }
    }

    let mut report = OffboardingReport {
        user,
        was_enabled,
        sessions_ended,
        managed_flocks,
        watched_flocks,
        links_voided,
        mails_dropped,
        api_keys,
        api_keys_revoked: revoke_api_keys,
        scheduled,
        receipt_to: Vec::new(),
        changed: true,
    };

    // 6. The receipt, for every other enabled admin.
    if let Some(mail) = receipt(&report) {
        for admin in enabled_admins_but(txn, id)? {
            enqueue(txn, &admin, mail.clone())?;
            report.receipt_to.push(admin);
        }
    }
    let key_ids: Vec<&str> = report.api_keys.iter().map(|k| k.key_id.as_str()).collect();
    record(
        txn,
        actor,
        step(
            "user_offboard",
            format!("User ({email}) offboarded"),
            json!({
                "disabled": true,
                "was_enabled": was_enabled,
                "sessions_ended": sessions_ended,
                "managed_flocks": managed,
                "watched_flocks": watched,
                "links_voided": links_voided,
                "mails_dropped": mails_dropped,
                "api_keys": key_ids,
                "api_keys_revoked": revoke_api_keys,
                "receipt_to": report.receipt_to.len(),
                "scheduled_by": report.scheduled.as_ref().map(|s| s.scheduled_by.clone()),
            }),
        ),
    )?;
    Ok(report)
}
