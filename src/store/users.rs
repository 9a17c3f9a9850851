use std::ops::Bound;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, WriteTransaction};

use super::changes::record_change;
use super::mail_queue::enqueue;
use super::records::{decode, encode};
use super::sessions::{end_sessions_in, forget_login_lock};
use super::tables::{
    ENABLED_ADMINS, NEXT_USER_ID_KEY, ONE_TIME_TOKENS, ROLES_BY_FLOCK, ROLES_BY_USER,
    USER_ID_BY_EMAIL, USERS, next_id,
};
use super::{
    MailContent, OneTimeToken, Store, StoreError, StoreResult, User, UserDetails, now_unix,
};
use crate::domain::{AccessLevel, Email, FlockId, FlockRole, Refusal};

/// What `user/add` asks for.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub access_level: AccessLevel,
    pub note: Option<String>,
    pub two_factor_required: bool,
}

/// One page of users in email order; `next_cursor` is set when more follow.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<UserDetails>,
    pub next_cursor: Option<String>,
}

impl Store {
    pub fn user_count(&self) -> StoreResult<u64> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(USERS)?.len()?)
    }

    /// Adds a user, and in the same transaction the one-time link of their welcome mail, if any.
    pub fn add_user(&self, new: NewUser, link: Option<(&str, OneTimeToken)>) -> StoreResult<User> {
        self.add_user_with_mail(new, link.map(|(hash, token)| (hash, token, None)))
    }

    /// Adds a user and, in the same transaction, the one-time link of their welcome mail and the
    /// queued mail itself: a created user always gets the mail, and a queued mail always has its
    /// user and link.
    pub fn add_user_with_mail(
        &self,
        new: NewUser,
        link: Option<(&str, OneTimeToken, Option<MailContent>)>,
    ) -> StoreResult<User> {
        let txn = self.db.begin_write()?;
        let user = {
            let user = insert_new_user(&txn, new)?;
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
        let txn = self.db.begin_read()?;
        let id = user_id_of(&txn.open_table(USER_ID_BY_EMAIL)?, email)?;
        let user = read_user(&txn.open_table(USERS)?, id)?;
        let (managed_flocks, watched_flocks) = roles_of(&txn.open_table(ROLES_BY_USER)?, id)?;
        Ok(UserDetails {
            user,
            managed_flocks,
            watched_flocks,
        })
    }

    pub fn user_by_id(&self, id: u64) -> StoreResult<User> {
        let txn = self.db.begin_read()?;
        read_user(&txn.open_table(USERS)?, id)
    }

    /// Users in email order, starting after `cursor` (a lowercase email from a previous page).
    pub fn list_users(&self, cursor: Option<&str>, limit: Option<usize>) -> StoreResult<UserPage> {
        let txn = self.db.begin_read()?;
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

    /// Users whose email or note contains `needle`, ignoring case, in email order.
    pub fn filter_users(&self, needle: &str) -> StoreResult<Vec<UserDetails>> {
        let needle = needle.to_lowercase();
        let txn = self.db.begin_read()?;
        let by_email = txn.open_table(USER_ID_BY_EMAIL)?;
        let users = txn.open_table(USERS)?;
        let roles = txn.open_table(ROLES_BY_USER)?;
        let mut found = Vec::new();
        for entry in by_email.iter()? {
            let (_, id) = entry?;
            let user = read_user(&users, id.value())?;
            let matches = user.email.key().contains(&needle)
                || user
                    .note
                    .as_deref()
                    .is_some_and(|note| note.to_lowercase().contains(&needle));
            if matches {
                let (managed_flocks, watched_flocks) = roles_of(&roles, user.id)?;
                found.push(UserDetails {
                    user,
                    managed_flocks,
                    watched_flocks,
                });
            }
        }
        Ok(found)
    }

    pub fn set_note(&self, email: &Email, note: Option<String>) -> StoreResult<User> {
        self.update_user(email, |user| {
            user.note = note;
            Ok(())
        })
    }

    /// Disabling also stops summary mail and ends the user's sessions; enabling turns summary mail
    /// back on.
    pub fn set_disabled(&self, email: &Email, disabled: bool) -> StoreResult<User> {
        self.update_user(email, |user| {
            if disabled && !user.disabled {
                user.session_generation += 1;
            }
            user.disabled = disabled;
            user.summary_email_enabled = !disabled;
            Ok(())
        })
    }

    pub fn set_access_level(&self, email: &Email, level: AccessLevel) -> StoreResult<User> {
        self.update_user(email, |user| {
            if user.access_level == AccessLevel::Admin && level == AccessLevel::User {
                user.session_generation += 1;
            }
            user.access_level = level;
            Ok(())
        })
    }

    pub fn set_summary_email(&self, email: &Email, enabled: bool) -> StoreResult<User> {
        self.update_user(email, |user| {
            user.summary_email_enabled = enabled;
            Ok(())
        })
    }

    /// Removes TOTP and ends the user's sessions, so they can log in with the password alone.
    pub fn clear_totp(&self, email: &Email) -> StoreResult<User> {
        self.update_user(email, |user| {
            user.totp_secret = None;
            user.pending_totp_secret = None;
            if !user.has_second_factor() {
                user.recovery_code_hashes.clear();
            }
            user.session_generation += 1;
            Ok(())
        })
    }

    /// Removes every WebAuthn credential and ends the user's sessions.
    pub fn clear_webauthn(&self, email: &Email) -> StoreResult<User> {
        self.update_user(email, |user| {
            user.webauthn_credentials.clear();
            if !user.has_second_factor() {
                user.recovery_code_hashes.clear();
            }
            user.session_generation += 1;
            Ok(())
        })
    }

    /// Removes the user, their flock roles, sessions and pending links. Keys they created stay.
    pub fn remove_user(&self, email: &Email) -> StoreResult<User> {
        let txn = self.db.begin_write()?;
        let user = {
            let mut by_email = txn.open_table(USER_ID_BY_EMAIL)?;
            let id = user_id_of(&by_email, email)?;
            let mut users = txn.open_table(USERS)?;
            let user = read_user(&users, id)?;
            let mut admins = txn.open_table(ENABLED_ADMINS)?;
            if user.is_enabled_admin() && admins.len()? <= 1 {
                return Err(StoreError::Refused(Refusal::LastEnabledAdmin));
            }
            record_change(&txn, format!("{} removed", user.email))?;
            admins.remove(id)?;
            by_email.remove(email.key().as_str())?;
            users.remove(id)?;
            let mut by_user = txn.open_table(ROLES_BY_USER)?;
            let mut by_flock = txn.open_table(ROLES_BY_FLOCK)?;
            let (managed, watched) = roles_of(&by_user, id)?;
            for flock in managed.iter().chain(watched.iter()) {
                by_user.remove((id, flock.as_str()))?;
                by_flock.remove((flock.as_str(), id))?;
            }
            end_sessions_in(&txn, id, None, None)?;
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

    /// Read-modify-write of one user in one transaction, keeping the enabled-admin index right and
    /// refusing any change that would leave the console without an enabled admin.
    fn update_user(
        &self,
        email: &Email,
        change: impl FnOnce(&mut User) -> StoreResult<()>,
    ) -> StoreResult<User> {
        let txn = self.db.begin_write()?;
        let user = {
            let id = user_id_of(&txn.open_table(USER_ID_BY_EMAIL)?, email)?;
            let mut users = txn.open_table(USERS)?;
            let mut user = read_user(&users, id)?;
            let before = user.clone();
            let was_enabled_admin = user.is_enabled_admin();
            change(&mut user)?;
            for text in administrative_changes(&before, &user) {
                record_change(&txn, text)?;
            }
            if user.session_generation != before.session_generation {
                end_sessions_in(&txn, id, None, None)?;
            }
            let mut admins = txn.open_table(ENABLED_ADMINS)?;
            match (was_enabled_admin, user.is_enabled_admin()) {
                (true, false) => {
                    if admins.len()? <= 1 {
                        return Err(StoreError::Refused(Refusal::LastEnabledAdmin));
                    }
                    admins.remove(id)?;
                }
                (false, true) => {
                    admins.insert(id, ())?;
                }
                _ => {}
            }
            write_user(&mut users, &user)?;
            user
        };
        txn.commit()?;
        Ok(user)
    }
}

/// Inserts a new enabled user with its email index entry (and admin index entry), refusing a
/// taken email.
/// What an admin would want to know changed between two versions of a user (not notes or
/// summary preferences).
fn administrative_changes(before: &User, after: &User) -> Vec<String> {
    let email = &after.email;
    let mut changes = Vec::new();
    match (before.disabled, after.disabled) {
        (false, true) => changes.push(format!("{email} disabled")),
        (true, false) => changes.push(format!("{email} enabled")),
        _ => {}
    }
    if before.access_level != after.access_level {
        changes.push(format!(
            "{email} changed from {} to {}",
            before.access_level, after.access_level
        ));
    }
    if before.totp_enabled() && !after.totp_enabled() {
        changes.push(format!("{email}: authenticator app (TOTP) removed"));
    }
    if before.webauthn_enabled() && !after.webauthn_enabled() {
        changes.push(format!("{email}: security keys removed"));
    }
    changes
}

pub(super) fn insert_new_user(txn: &WriteTransaction, new: NewUser) -> StoreResult<User> {
    let mut by_email = txn.open_table(USER_ID_BY_EMAIL)?;
    let key = new.email.key();
    if by_email.get(key.as_str())?.is_some() {
        return Err(StoreError::Refused(Refusal::UserExists(new.email)));
    }
    let id = next_id(txn, NEXT_USER_ID_KEY)?;
    let user = User {
        id,
        email: new.email,
        access_level: new.access_level,
        disabled: false,
        note: new.note,
        summary_email_enabled: true,
        two_factor_required: new.two_factor_required,
        password_hash: None,
        totp_secret: None,
        pending_totp_secret: None,
        totp_last_step: 0,
        recovery_code_hashes: Vec::new(),
        factor_failures: 0,
        factor_locked_until: 0,
        factor_lockouts: 0,
        factor_lockouts_since: 0,
        webauthn_credentials: Vec::new(),
        session_generation: 0,
        created: now_unix(),
    };
    by_email.insert(key.as_str(), id)?;
    write_user(&mut txn.open_table(USERS)?, &user)?;
    record_change(
        txn,
        format!("{} added as {}", user.email, user.access_level),
    )?;
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
    decode(bytes.value())
}

pub(super) fn write_user(users: &mut Table<u64, &'static [u8]>, user: &User) -> StoreResult<()> {
    users.insert(user.id, encode(user)?.as_slice())?;
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
