use super::WriteTxn;
use std::ops::Bound;

use std::sync::Arc;

use super::memory::DetailsKey;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, Table};

use super::audit::{Actor, AuditLine, record};
use super::disk::{decode_user, encode_user};
use super::mail_queue::enqueue;
use super::records::encode;
use super::sessions::{end_sessions_in, forget_login_lock};
use super::tables::{
    ENABLED_ADMINS, NEXT_USER_ID_KEY, ONE_TIME_TOKENS, ROLES_BY_FLOCK, ROLES_BY_USER,
    USER_ID_BY_EMAIL, USERS, next_id,
};
use super::{
    MailContent, OneTimeToken, Store, StoreError, StoreResult, User, UserDetails, now_unix,
};
use crate::domain::{AccessLevel, Email, FlockId, FlockRole, Refusal, rules};

/// What `user/add` asks for.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub access_level: AccessLevel,
    pub note: Option<String>,
    pub two_factor_required: bool,
}

/// A user named by id (the console) or by email (the API), resolved inside the transaction that
/// changes them: a removed and re-added address can't receive a change meant for the old user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(u64),
    Email(Email),
}

impl From<&Email> for UserRef {
    fn from(email: &Email) -> UserRef {
        UserRef::Email(email.clone())
    }
}

/// The id `user` names, in the caller's transaction.
pub(super) fn resolve(txn: &WriteTxn<'_>, user: &UserRef) -> StoreResult<u64> {
    match user {
        UserRef::Id(id) => Ok(*id),
        UserRef::Email(email) => user_id_of(&txn.open_table(USER_ID_BY_EMAIL)?, email),
    }
}

/// One page of users in email order; `next_cursor` is set when more follow.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<UserDetails>,
    pub next_cursor: Option<String>,
}

impl Store {
    pub fn user_count(&self) -> StoreResult<u64> {
        let txn = self.begin_read()?;
        Ok(txn.open_table(USERS)?.len()?)
    }

    /// Adds a user, and in the same transaction the one-time link of their welcome mail, if any.
    pub fn add_user(
        &self,
        actor: &Actor,
        new: NewUser,
        link: Option<(&str, OneTimeToken)>,
    ) -> StoreResult<User> {
        self.add_user_with_mail(actor, new, link.map(|(hash, token)| (hash, token, None)))
    }

    /// Adds a user and, in the same transaction, the one-time link of their welcome mail and the
    /// queued mail itself: a created user always gets the mail, and a queued mail always has its
    /// user and link.
    pub fn add_user_with_mail(
        &self,
        actor: &Actor,
        new: NewUser,
        link: Option<(&str, OneTimeToken, Option<MailContent>)>,
    ) -> StoreResult<User> {
        self.add_user_until(actor, new, link, None, now_unix())
    }

    /// `add_user_with_mail`, with admin access that ends at `admin_until`.
    pub fn add_user_until(
        &self,
        actor: &Actor,
        new: NewUser,
        link: Option<(&str, OneTimeToken, Option<MailContent>)>,
        admin_until: Option<u64>,
        now: u64,
    ) -> StoreResult<User> {
        if admin_until.is_some() && new.access_level != AccessLevel::Admin {
            return Err(StoreError::Refused(Refusal::ExpiryNeedsAdmin));
        }
        if admin_until.is_some_and(|until| until <= now) {
            return Err(StoreError::Refused(Refusal::TimeInThePast));
        }
        let txn = self.begin_write()?;
        let user = {
            let mut user = insert_new_user(&txn, new, actor)?;
            if admin_until.is_some() {
                super::due::set_grant_expiry(
                    &mut user,
                    super::Grant::Admin,
                    admin_until,
                    &actor.name,
                    now,
                );
                write_user(&mut txn.open_table(USERS)?, &user)?;
                super::due::index_schedule(&txn, &user)?;
            }
            let welcome = link.as_ref().is_some_and(|(_, _, mail)| mail.is_some());
            record(
                &txn,
                actor,
                AuditLine::new(
                    "user_add",
                    format!("User ({}) created as {}", user.email, user.access_level),
                )
                .target(&user.email)
                .details(serde_json::json!({
                    "access_level": user.access_level.as_str(),
                    "two_factor_required": user.two_factor_required,
                    "note": user.note.is_some(),
                    "welcome_mail": welcome,
                    "expires_at": admin_until.map(crate::timestamps::rfc3339),
                })),
            )?;
            if let Some((hash, mut token, mail)) = link {
                token.user_id = Some(user.id);
                txn.open_table(ONE_TIME_TOKENS)?
                    .insert(hash, encode(&token)?.as_slice())?;
                if let Some(mail) = mail {
                    enqueue(&txn, &user.email, mail)?;
                }
            }
            user
        };
        txn.commit()?;
        Ok(user)
    }

    pub fn user_by_email(&self, email: &Email) -> StoreResult<UserDetails> {
        let txn = self.begin_read()?;
        let id = user_id_of(&txn.open_table(USER_ID_BY_EMAIL)?, email)?;
        let user = read_user(&txn.open_table(USERS)?, id)?;
        let (managed_flocks, watched_flocks) = roles_of(&txn.open_table(ROLES_BY_USER)?, id)?;
        Ok(UserDetails {
            user,
            managed_flocks,
            watched_flocks,
        })
    }

    /// The user `user` names, with their flock roles: from memory once read or warmed (a commit
    /// that writes a user drops that user's copy, one that writes roles all of them, before it
    /// is answered).
    pub fn user_details(&self, user: &UserRef) -> StoreResult<Arc<UserDetails>> {
        let key = DetailsKey::from(user);
        // Even from memory: the copy is of the last commit.
        super::writer::reading();
        let generation = match self.memory.user_details.get(&key) {
            Ok(details) => return Ok(details),
            Err(generation) => generation,
        };
        let details = Arc::new(self.read_user_details(user)?);
        self.memory
            .user_details
            .keep(generation, [Arc::clone(&details)]);
        Ok(details)
    }

    /// Reads users into memory, in id order, while there is room (at start, in the background,
    /// so that reading any user costs no database read). Returns how many were kept.
    ///
    /// A chunk at a time, each from its own read transaction: a commit while a chunk is read
    /// makes only that chunk not kept (those users are read when asked for).
    pub fn warm_user_copies(&self) -> StoreResult<usize> {
        const CHUNK: usize = 4_096;
        let copies = &self.memory.user_details;
        let mut after = None;
        loop {
            if !copies.has_room(CHUNK) {
                break;
            }
            let generation = copies.generation();
            let txn = self.begin_read()?;
            let users = txn.open_table(USERS)?;
            let roles = txn.open_table(ROLES_BY_USER)?;
            let range = match after {
                Some(id) => users.range((Bound::Excluded(id), Bound::Unbounded))?,
                None => users.range::<u64>(..)?,
            };
            let mut chunk = Vec::with_capacity(CHUNK);
            for entry in range.take(CHUNK) {
                let (id, bytes) = entry?;
                let user = decode_user(bytes.value())?;
                let (managed_flocks, watched_flocks) = roles_of(&roles, id.value())?;
                chunk.push(Arc::new(UserDetails {
                    user,
                    managed_flocks,
                    watched_flocks,
                }));
            }
            let Some(last) = chunk.last() else { break };
            after = Some(last.user.id);
            let full_chunk = chunk.len() == CHUNK;
            copies.keep(generation, chunk);
            if !full_chunk {
                break;
            }
        }
        Ok(copies.len())
    }

    /// Reads users `ids` just written back into memory, so that all users stay there (as
    /// `warm_user_copies` put them) and not only those asked for since. Best effort: a user not
    /// read now is read when asked for.
    pub(super) fn refresh_user_copies(&self, ids: &[u64]) {
        let copies = &self.memory.user_details;
        if ids.is_empty() || !copies.has_room(ids.len()) {
            return;
        }
        let generation = copies.generation();
        let read = || -> StoreResult<Vec<Arc<UserDetails>>> {
            // Straight from the database, not `begin_read`: this runs as the writer commits,
            // after its batch.
            let txn = self.db.begin_read()?;
            let users = txn.open_table(USERS)?;
            let roles = txn.open_table(ROLES_BY_USER)?;
            let mut fresh = Vec::with_capacity(ids.len());
            for &id in ids {
                // Removed users have nothing to keep.
                if let Some(bytes) = users.get(id)? {
                    let user = decode_user(bytes.value())?;
                    let (managed_flocks, watched_flocks) = roles_of(&roles, id)?;
                    fresh.push(Arc::new(UserDetails {
                        user,
                        managed_flocks,
                        watched_flocks,
                    }));
                }
            }
            Ok(fresh)
        };
        if let Ok(fresh) = read() {
            copies.keep(generation, fresh);
        }
    }

    fn read_user_details(&self, user: &UserRef) -> StoreResult<UserDetails> {
        let txn = self.begin_read()?;
        let id = match user {
            UserRef::Id(id) => *id,
            UserRef::Email(email) => user_id_of(&txn.open_table(USER_ID_BY_EMAIL)?, email)?,
        };
        let user = read_user(&txn.open_table(USERS)?, id)?;
        let (managed_flocks, watched_flocks) = roles_of(&txn.open_table(ROLES_BY_USER)?, id)?;
        Ok(UserDetails {
            user,
            managed_flocks,
            watched_flocks,
        })
    }

    pub fn user_by_id(&self, id: u64) -> StoreResult<User> {
        let txn = self.begin_read()?;
        read_user(&txn.open_table(USERS)?, id)
    }

    /// Users in email order, starting after `cursor` (a lowercase email from a previous page).
    pub fn list_users(&self, cursor: Option<&str>, limit: Option<usize>) -> StoreResult<UserPage> {
        let txn = self.begin_read()?;
        let by_email = txn.open_table(USER_ID_BY_EMAIL)?;
        let users = txn.open_table(USERS)?;
        let roles = txn.open_table(ROLES_BY_USER)?;
        let lower = match cursor {
            Some(cursor) => Bound::Excluded(cursor),
            None => Bound::Unbounded,
        };
        let mut page = Vec::new();
        let mut next_cursor = None;
        for entry in by_email.range::<&str>((lower, Bound::Unbounded))? {
            let (_, id) = entry?;
            if limit.is_some_and(|limit| page.len() == limit) {
                next_cursor = page
                    .last()
                    .map(|details: &UserDetails| details.user.email.key());
                break;
            }
            page.push(details_of(&users, &roles, id.value())?);
        }
        Ok(UserPage {
            users: page,
            next_cursor,
        })
    }

    /// Sets or (with `None`) removes the note.
    pub fn set_note(
        &self,
        actor: &Actor,
        user: &UserRef,
        note: Option<String>,
    ) -> StoreResult<User> {
        let action = if note.is_some() {
            "user_note_add"
        } else {
            "user_note_remove"
        };
        self.update_user(actor, user, |user| {
            let had = user.note.is_some();
            user.note = note;
            let message = match &user.note {
                Some(_) => format!("User ({}) note set", user.email),
                None => format!("User ({}) note removed", user.email),
            };
            Ok(AuditLine::new(action, message)
                .details(serde_json::json!({ "had_note": had, "has_note": user.note.is_some() })))
        })
    }

    /// Disabling also stops summary mail and ends the user's sessions; enabling turns summary mail
    /// back on.
    pub fn set_disabled(&self, actor: &Actor, user: &UserRef, disabled: bool) -> StoreResult<User> {
        self.update_user(actor, user, |user| {
            let was = user.disabled;
            if disabled && !user.disabled {
                user.session_generation += 1;
            }
            user.disabled = disabled;
            user.summary_email_enabled = !disabled;
            let (action, verb) = if disabled {
                ("user_disable", "disabled")
            } else {
                ("user_enable", "enabled")
            };
            Ok(AuditLine::new(action, format!("User ({}) {verb}", user.email))
                .details(serde_json::json!({ "before": { "disabled": was }, "after": { "disabled": disabled } })))
        })
    }

    pub fn set_access_level(
        &self,
        actor: &Actor,
        user: &UserRef,
        level: AccessLevel,
    ) -> StoreResult<User> {
        self.set_access_level_until(actor, user, level, None, now_unix())
    }

    /// Sets the access level; admin access `until` a time ends then (`schedule`), without it
    /// it is held until taken away (an earlier end is dropped).
    pub fn set_access_level_until(
        &self,
        actor: &Actor,
        user: &UserRef,
        level: AccessLevel,
        until: Option<u64>,
        now: u64,
    ) -> StoreResult<User> {
        if until.is_some() && level != AccessLevel::Admin {
            return Err(StoreError::Refused(Refusal::ExpiryNeedsAdmin));
        }
        if until.is_some_and(|until| until <= now) {
            return Err(StoreError::Refused(Refusal::TimeInThePast));
        }
        self.update_user(actor, user, |user| {
            let before = user.access_level;
            if before == AccessLevel::Admin && level == AccessLevel::User {
                user.session_generation += 1;
            }
            super::due::set_grant_expiry(
                user,
                super::Grant::Admin,
                until.filter(|_| level == AccessLevel::Admin),
                &actor.name,
                now,
            );
            if before != AccessLevel::Admin && level == AccessLevel::Admin {
                user.made_admin = Some(super::MadeAdmin {
                    at: now,
                    by: actor.name.clone(),
                });
            }
            user.access_level = level;
            Ok(AuditLine::new(
                "user_edit_access_level",
                format!(
                    "User ({}) access level changed from {before} to {level}",
                    user.email
                ),
            )
            .details(serde_json::json!({
                "before": { "access_level": before.as_str() },
                "after": { "access_level": level.as_str() },
                "expires_at": until.map(crate::timestamps::rfc3339),
            })))
        })
    }

    /// Demands a second factor at the user's next login (`user/add totp_enabled=true` for an
    /// existing account: the access review's "require 2FA").
    pub fn set_two_factor_required(
        &self,
        actor: &Actor,
        user: &UserRef,
        required: bool,
    ) -> StoreResult<User> {
        self.update_user(actor, user, |user| {
            let before = user.two_factor_required;
            user.two_factor_required = required;
            let verb = if required {
                "required"
            } else {
                "no longer required"
            };
            Ok(AuditLine::new(
                "user_edit",
                format!("Second factor {verb} for user ({})", user.email),
            )
            .details(serde_json::json!({
                "before": { "two_factor_required": before },
                "after": { "two_factor_required": required },
            })))
        })
    }

    pub fn set_summary_email(
        &self,
        actor: &Actor,
        user: &UserRef,
        enabled: bool,
    ) -> StoreResult<User> {
        self.update_user(actor, user, |user| {
            let before = user.summary_email_enabled;
            user.summary_email_enabled = enabled;
            let (action, verb) = if enabled {
                ("user_summary_email_enable", "enabled")
            } else {
                ("user_summary_email_disable", "disabled")
            };
            Ok(AuditLine::new(
                action,
                format!("Summary email {verb} for user ({})", user.email),
            )
            .details(serde_json::json!({
                "before": { "summary_email_enabled": before },
                "after": { "summary_email_enabled": enabled },
            })))
        })
    }

    /// Removes TOTP and ends the user's sessions, so they can log in with the password alone.
    pub fn clear_totp(&self, actor: &Actor, user: &UserRef) -> StoreResult<User> {
        self.update_user(actor, user, |user| {
            let had = user.totp_enabled();
            user.totp_secret = None;
            user.pending_totp_secret = None;
            if !user.has_second_factor() {
                user.recovery_code_hashes.clear();
            }
            user.session_generation += 1;
            Ok(AuditLine::new(
                "user_2fa_disable",
                format!(
                    "Two-factor authentication (TOTP) disabled for user ({})",
                    user.email
                ),
            )
            .details(serde_json::json!({ "had_totp": had })))
        })
    }

    /// Removes every WebAuthn credential and ends the user's sessions.
    pub fn clear_webauthn(&self, actor: &Actor, user: &UserRef) -> StoreResult<User> {
        self.update_user(actor, user, |user| {
            let removed = user.webauthn_credentials.len();
            user.webauthn_credentials.clear();
            if !user.has_second_factor() {
                user.recovery_code_hashes.clear();
            }
            user.session_generation += 1;
            Ok(AuditLine::new(
                "user_webauthn_disable",
                format!("Security keys removed for user ({})", user.email),
            )
            .details(serde_json::json!({ "removed": removed })))
        })
    }

    /// Removes the user, their flock roles, sessions and pending links. Keys they created stay.
    pub fn remove_user(&self, actor: &Actor, user: &UserRef) -> StoreResult<User> {
        let txn = self.begin_write()?;
        let user = {
            let id = resolve(&txn, user)?;
            let mut by_email = txn.open_table(USER_ID_BY_EMAIL)?;
            let mut users = txn.open_table(USERS)?;
            let user = read_user(&users, id)?;
            let mut admins = txn.open_table(ENABLED_ADMINS)?;
            rules::keeps_an_enabled_admin(admins.len()?, user.is_enabled_admin(), false)?;
            admins.remove(id)?;
            by_email.remove(user.email.key().as_str())?;
            users.remove(id)?;
            super::search::removed(id);
            let (managed, watched) = remove_roles_of(&txn, id)?;
            let sessions = end_sessions_in(&txn, id, None, None)?;
            super::due::unindex(&txn, id)?;
            record(
                &txn,
                actor,
                AuditLine::new("user_remove", format!("User ({}) removed", user.email))
                    .target(&user.email)
                    .details(serde_json::json!({
                        "access_level": user.access_level.as_str(),
                        "managed_flocks": managed,
                        "watched_flocks": watched,
                        "sessions_ended": sessions,
                    })),
            )?;
            forget_login_lock(&txn, &user.email)?;
            let mut tokens = txn.open_table(ONE_TIME_TOKENS)?;
            tokens.retain(|_, bytes| {
                serde_json::from_slice::<OneTimeToken>(bytes)
                    .map(|token| token.user_id != Some(id))
                    .unwrap_or(true)
            })?;
            user
        };
        txn.commit()?;
        Ok(user)
    }

    /// Read-modify-write of one user in one transaction, keeping the enabled-admin index right,
    /// refusing any change that would leave the console without an enabled admin, ending the
    /// user's sessions when the change bumps their generation, and recording the audit line the
    /// change returns (with the user as its target).
    pub(super) fn update_user(
        &self,
        actor: &Actor,
        user: &UserRef,
        change: impl FnOnce(&mut User) -> StoreResult<AuditLine>,
    ) -> StoreResult<User> {
        let txn = self.begin_write()?;
        let user = {
            let id = resolve(&txn, user)?;
            let mut users = txn.open_table(USERS)?;
            let mut user = read_user(&users, id)?;
            let before = user.clone();
            let line = change(&mut user)?;
            let mut admins = txn.open_table(ENABLED_ADMINS)?;
            rules::keeps_an_enabled_admin(
                admins.len()?,
                before.is_enabled_admin(),
                user.is_enabled_admin(),
            )?;
            if user.is_enabled_admin() {
                admins.insert(id, ())?;
            } else {
                admins.remove(id)?;
            }
            if user.session_generation != before.session_generation {
                end_sessions_in(&txn, id, None, None)?;
            }
            write_user(&mut users, &user)?;
            if user.next_due() != before.next_due() {
                super::due::index_schedule(&txn, &user)?;
            }
            record(&txn, actor, line.target(&user.email))?;
            user
        };
        txn.commit()?;
        Ok(user)
    }
}

/// Inserts a new enabled user with its email index entry (and admin index entry), refusing a
/// taken email.
pub(super) fn insert_new_user(
    txn: &WriteTxn<'_>,
    new: NewUser,
    actor: &Actor,
) -> StoreResult<User> {
    let mut by_email = txn.open_table(USER_ID_BY_EMAIL)?;
    let key = new.email.key();
    if by_email.get(key.as_str())?.is_some() {
        return Err(StoreError::Refused(Refusal::UserExists(new.email)));
    }
    let id = next_id(txn, NEXT_USER_ID_KEY)?;
    let user = User {
        note: new.note,
        two_factor_required: new.two_factor_required,
        made_admin: (new.access_level == AccessLevel::Admin).then(|| super::MadeAdmin {
            at: now_unix(),
            by: actor.name.clone(),
        }),
        ..User::new(id, new.email, new.access_level, now_unix())
    };
    by_email.insert(key.as_str(), id)?;
    write_user(&mut txn.open_table(USERS)?, &user)?;
    if user.is_enabled_admin() {
        txn.open_table(ENABLED_ADMINS)?.insert(id, ())?;
    }
    Ok(user)
}

pub(super) fn read_user(
    users: &impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> StoreResult<User> {
    let bytes = users
        .get(id)?
        .ok_or(StoreError::Refused(Refusal::UserNotFound))?;
    decode_user(bytes.value())
}

pub(super) fn write_user(users: &mut Table<u64, &'static [u8]>, user: &User) -> StoreResult<()> {
    users.insert(user.id, encode_user(user)?.as_slice())?;
    super::search::written(user);
    Ok(())
}

/// The id of the user with `email`.
pub(super) fn user_id_of(
    by_email: &impl ReadableTable<&'static str, u64>,
    email: &Email,
) -> StoreResult<u64> {
    by_email
        .get(email.key().as_str())?
        .map(|v| v.value())
        .ok_or(StoreError::Refused(Refusal::UserNotFound))
}

/// Looks up the ids of the given emails, failing on the first unknown one.
pub(super) fn user_ids_of(
    by_email: &impl ReadableTable<&'static str, u64>,
    emails: &[Email],
) -> StoreResult<Vec<u64>> {
    emails
        .iter()
        .map(|email| user_id_of(by_email, email))
        .collect()
}

/// The flocks a user manages and watches, each in id order.
pub(super) fn roles_of(
    by_user: &impl ReadableTable<(u64, &'static str), u8>,
    id: u64,
) -> StoreResult<(Vec<FlockId>, Vec<FlockId>)> {
    let mut managed = Vec::new();
    let mut watched = Vec::new();
    for entry in by_user.range((id, "")..(id.saturating_add(1), ""))? {
        let (key, role) = entry?;
        let flock = FlockId::parse(key.value().1)
            .map_err(|_| StoreError::Corrupt(format!("bad flock id in roles of user {id}")))?;
        match FlockRole::from_byte(role.value()) {
            Some(FlockRole::Manager) => managed.push(flock),
            Some(FlockRole::Watcher) => watched.push(flock),
            None => return Err(StoreError::Corrupt(format!("bad role of user {id}"))),
        }
    }
    Ok((managed, watched))
}

/// Takes every flock role of user `id` away (both indexes); returns the flocks they managed and
/// watched.
pub(super) fn remove_roles_of(
    txn: &WriteTxn<'_>,
    id: u64,
) -> StoreResult<(Vec<FlockId>, Vec<FlockId>)> {
    let mut by_user = txn.open_table(ROLES_BY_USER)?;
    let mut by_flock = txn.open_table(ROLES_BY_FLOCK)?;
    let (managed, watched) = roles_of(&by_user, id)?;
    for flock in managed.iter().chain(watched.iter()) {
        by_user.remove((id, flock.as_str()))?;
        by_flock.remove((flock.as_str(), id))?;
    }
    Ok((managed, watched))
}

pub(super) fn details_of(
    users: &impl ReadableTable<u64, &'static [u8]>,
    roles: &impl ReadableTable<(u64, &'static str), u8>,
    id: u64,
) -> StoreResult<UserDetails> {
    let user = read_user(users, id)?;
    let (managed_flocks, watched_flocks) = roles_of(roles, id)?;
    Ok(UserDetails {
        user,
        managed_flocks,
        watched_flocks,
    })
}

/// The enabled admins other than user `but`: who gets a receipt.
pub(super) fn enabled_admins_but(txn: &WriteTxn<'_>, but: u64) -> StoreResult<Vec<Email>> {
    let admins = txn.open_table(ENABLED_ADMINS)?;
    let users = txn.open_table(USERS)?;
    let mut emails = Vec::new();
    for entry in admins.iter()? {
        let (id, _) = entry?;
        if id.value() != but {
            emails.push(read_user(&users, id.value())?.email);
        }
    }
    Ok(emails)
}

#[cfg(test)]
mod tests {
    use super::super::audit::Actor;
    use super::super::{NewUser, Store, StoreError, UserRef};
    use super::*;
    use crate::domain::{AccessLevel, Email, FlockName, FlockRole, Refusal};

    fn email(raw: &str) -> Email {
        Email::parse(raw).unwrap()
    }

    fn add(store: &Store, raw: &str) -> u64 {
        let new = NewUser {
            email: email(raw),
            access_level: AccessLevel::User,
            note: None,
            two_factor_required: false,
        };
        store.add_user(&Actor::system(), new, None).unwrap().id
    }

    fn not_found(result: StoreResult<Arc<UserDetails>>) -> bool {
        matches!(result, Err(StoreError::Refused(Refusal::UserNotFound)))
    }

    /// The copies read at start follow every kind of write: the written user's copy is dropped
    /// (the others stay, the same copies), roles drop all of them, and a removed user's id and
    /// email both stop answering.
    #[test]
    fn user_copies_follow_each_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ann = add(&store, "ann@x.io");
        let bob = add(&store, "Bob@x.io");
        assert_eq!(store.warm_user_copies().unwrap(), 2);
        let bob_before = store.user_details(&UserRef::Id(bob)).unwrap();
        let by_email = store
            .user_details(&UserRef::Email(email("BOB@X.IO")))
            .unwrap();
        assert!(
            Arc::ptr_eq(&bob_before, &by_email),
            "both keys find one copy"
        );

        let ann_ref = UserRef::Email(email("ann@x.io"));
        store
            .set_note(&Actor::system(), &ann_ref, Some("on leave".into()))
            .unwrap();
        let kept = store.memory.user_details.get(&DetailsKey::Id(ann));
        let kept = kept.expect("the written user was read back into memory at the commit");
        assert_eq!(kept.user.note.as_deref(), Some("on leave"));
        let bob_after = store.user_details(&UserRef::Id(bob)).unwrap();
        assert!(Arc::ptr_eq(&bob_before, &bob_after), "bob's copy was kept");

        store
            .set_disabled(&Actor::system(), &ann_ref, true)
            .unwrap();
        assert!(store.user_details(&ann_ref).unwrap().user.disabled);

        let flock = store
            .create_flock(&Actor::system(), FlockName::parse("Ops").unwrap(), &[], &[])
            .unwrap();
        store
            .assign_role(
                &Actor::system(),
                &UserRef::Id(bob),
                std::slice::from_ref(&flock.id),
                FlockRole::Manager,
            )
            .unwrap();
        let bob_manager = store.user_details(&UserRef::Id(bob)).unwrap();
        assert_eq!(bob_manager.managed_flocks, vec![flock.id.clone()]);
        store
            .unassign_role(
                &Actor::system(),
                &UserRef::Id(bob),
                std::slice::from_ref(&flock.id),
                FlockRole::Manager,
            )
            .unwrap();
        let bob_email = UserRef::Email(email("bob@x.io"));
        assert!(
            store
                .user_details(&bob_email)
                .unwrap()
                .managed_flocks
                .is_empty()
        );

        store.remove_user(&Actor::system(), &bob_email).unwrap();
        assert!(not_found(store.user_details(&UserRef::Id(bob))));
        assert!(not_found(store.user_details(&bob_email)));
        // The email taken again names the new user, not the removed one's copy.
        let bob_again = add(&store, "bob@x.io");
        assert_eq!(store.user_details(&bob_email).unwrap().user.id, bob_again);
    }

    /// A read that began before a commit dropped copies doesn't put back what it read.
    #[test]
    fn a_read_overtaken_by_a_commit_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ann = add(&store, "ann@x.io");
        let copies = &store.memory.user_details;
        let generation = copies.generation();
        let stale = Arc::new(store.read_user_details(&UserRef::Id(ann)).unwrap());
        store
            .set_note(&Actor::system(), &UserRef::Id(ann), Some("new".into()))
            .unwrap();
        copies.keep(generation, [stale]);
        let now = store.user_details(&UserRef::Id(ann)).unwrap();
        assert_eq!(now.user.note.as_deref(), Some("new"));
    }
}
