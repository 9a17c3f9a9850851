//! Reads that grow with the data, one record at a time from one read transaction: a consistent
//! view that holds at most one record in memory, whatever the size of the result. Callers hand
//! each record on (a streamed answer, a page) instead of collecting them.

use std::ops::Bound;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata};

use super::audit::{AuditEntry, is_change};
use super::mail_queue::QueuedMail;
use super::records::decode;
use super::search::user_matches;
use super::tables::{AUDIT, MAIL_QUEUE, ROLES_BY_FLOCK, ROLES_BY_USER, USER_ID_BY_EMAIL, USERS};
use super::users::{details_of, read_user, roles_of};
use super::{Store, StoreError, StoreResult, UserDetails};
use crate::domain::{Email, FlockId, FlockRole, Refusal};

/// Flocks with more members than this are listed by walking the email index (bounded memory,
/// time proportional to all users); smaller ones are sorted in memory.
const SORT_IN_MEMORY_UP_TO: u64 = 10_000;

pub struct Snapshot {
    txn: ReadTransaction,
    store: Store,
}

impl Store {
    pub fn snapshot(&self) -> StoreResult<Snapshot> {
        Ok(Snapshot {
            txn: self.begin_read()?,
            store: self.clone(),
        })
    }
}

/// Where a list in email order starts: after `cursor` (a lowercase email from a previous page).
fn after(cursor: Option<&str>) -> (Bound<&str>, Bound<&str>) {
    match cursor {
        Some(cursor) => (Bound::Excluded(cursor), Bound::Unbounded),
        None => (Bound::Unbounded, Bound::Unbounded),
    }
}

/// The email index, the users and their roles.
type UserTables = (
    ReadOnlyTable<&'static str, u64>,
    ReadOnlyTable<u64, &'static [u8]>,
    ReadOnlyTable<(u64, &'static str), u8>,
);

impl Snapshot {
    fn user_tables(&self) -> StoreResult<UserTables> {
        Ok((
            self.txn.open_table(USER_ID_BY_EMAIL)?,
            self.txn.open_table(USERS)?,
            self.txn.open_table(ROLES_BY_USER)?,
        ))
    }

    /// Hands on every user with their roles, in id order: one pass over the users and one over
    /// the roles (both ordered by user id), the cheapest read of everyone (the access review).
    pub fn visit_all_users<E: From<StoreError>>(
        &self,
        mut visit: impl FnMut(UserDetails) -> Result<(), E>,
    ) -> Result<(), E> {
        let (_, users, roles) = self.user_tables()?;
        let mut roles = roles.iter().map_err(StoreError::from)?.peekable();
        for entry in users.iter().map_err(StoreError::from)? {
            let (id, bytes) = entry.map_err(StoreError::from)?;
            let id = id.value();
            let user = super::disk::decode_user(bytes.value())?;
            let mut managed_flocks = Vec::new();
            let mut watched_flocks = Vec::new();
            while let Some(Ok((key, _))) = roles.peek() {
                let holder = key.value().0;
                if holder > id {
                    break;
                }
                let Some(Ok((key, role))) = roles.next() else {
                    break;
                };
                if holder < id {
                    // A role of a user with no record: nothing to hand on.
                    continue;
                }
                let flock = FlockId::parse(key.value().1).map_err(|_| {
                    StoreError::Corrupt(format!("bad flock id in roles of user {id}"))
                })?;
                match FlockRole::from_byte(role.value()) {
                    Some(FlockRole::Manager) => managed_flocks.push(flock),
                    Some(FlockRole::Watcher) => watched_flocks.push(flock),
                    None => {
                        return Err(StoreError::Corrupt(format!("bad role of user {id}")).into());
                    }
                }
            }
            if let Some(Err(_)) = roles.peek()
                && let Some(Err(error)) = roles.next()
            {
                return Err(StoreError::from(error).into());
            }
            visit(UserDetails {
                user,
                managed_flocks,
                watched_flocks,
            })?;
        }
        Ok(())
    }

    /// The cursor of the page after the one of `limit` users after `cursor`, if more follow.
    /// Walks the email index only.
    pub fn next_user_cursor(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Option<String>> {
        let by_email = self.txn.open_table(USER_ID_BY_EMAIL)?;
        let mut keys = by_email.range::<&str>(after(cursor))?;
        let mut last = None;
        for _ in 0..limit {
            match keys.next() {
                Some(entry) => last = Some(entry?.0.value().to_string()),
                None => return Ok(None),
            }
        }
        Ok(keys.next().is_some().then_some(last).flatten())
    }

    /// Hands on each user after `cursor` in email order, at most `limit` of them.
    pub fn visit_users<E: From<StoreError>>(
        &self,
        cursor: Option<&str>,
        limit: Option<usize>,
        mut visit: impl FnMut(UserDetails) -> Result<(), E>,
    ) -> Result<(), E> {
        let (by_email, users, roles) = self.user_tables()?;
        let range = by_email
            .range::<&str>(after(cursor))
            .map_err(StoreError::from)?;
        for entry in range.take(limit.unwrap_or(usize::MAX)) {
            let (_, id) = entry.map_err(StoreError::from)?;
            visit(details_of(&users, &roles, id.value())?)?;
        }
        Ok(())
    }

    /// Hands on each user whose email or note contains `needle` (any case) after `cursor`, in
    /// email order, at most `limit`; returns the cursor of the next page when more match. The
    /// in-memory projection (`search`) names the candidates; each is checked against its record
    /// in this snapshot, which has the last word.
    pub fn visit_matching_users<E: From<StoreError>>(
        &self,
        needle: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
        mut visit: impl FnMut(UserDetails) -> Result<(), E>,
    ) -> Result<Option<String>, E> {
        let needle = needle.to_lowercase();
        let candidates = self
            .store
            .memory
            .search
            .candidates(&self.store.db, &needle, cursor)?;
        let users = self.txn.open_table(USERS).map_err(StoreError::from)?;
        let roles = self
            .txn
            .open_table(ROLES_BY_USER)
            .map_err(StoreError::from)?;
        let limit = limit.unwrap_or(usize::MAX);
        let mut handed = 0;
        let mut last_key: Option<String> = None;
        for id in candidates {
            let user = match read_user(&users, id) {
                Ok(user) => user,
                // Removed since the projection named it.
                Err(StoreError::Refused(Refusal::UserNotFound)) => continue,
                Err(error) => return Err(error.into()),
            };
            if !user_matches(&user, &needle) {
                continue;
            }
            if handed == limit {
                return Ok(last_key);
            }
            let (managed_flocks, watched_flocks) = roles_of(&roles, user.id)?;
            last_key = Some(user.email.key());
            visit(UserDetails {
                user,
                managed_flocks,
                watched_flocks,
            })?;
            handed += 1;
        }
        Ok(None)
    }

    /// The ids of at most `limit` users matching `needle` after `cursor`, and the cursor of the
    /// next page: a first pass for answers that must name the next page before listing.
    pub fn matching_user_ids(
        &self,
        needle: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<u64>, Option<String>)> {
        let mut ids = Vec::new();
        let next = self.visit_matching_users(needle, cursor, Some(limit), |details| {
            ids.push(details.user.id);
            Ok::<(), StoreError>(())
        })?;
        Ok((ids, next))
    }

    /// Hands on the users with these ids, in the order given (gone ones are skipped).
    pub fn visit_users_by_id<E: From<StoreError>>(
        &self,
        ids: &[u64],
        mut visit: impl FnMut(UserDetails) -> Result<(), E>,
    ) -> Result<(), E> {
        let users = self.txn.open_table(USERS).map_err(StoreError::from)?;
        let roles = self
            .txn
            .open_table(ROLES_BY_USER)
            .map_err(StoreError::from)?;
        for id in ids {
            match details_of(&users, &roles, *id) {
                Ok(found) => visit(found)?,
                Err(StoreError::Refused(Refusal::UserNotFound)) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    pub fn flock_exists(&self, flock: &FlockId) -> StoreResult<bool> {
        let flocks = self.txn.open_table(super::tables::FLOCKS)?;
        Ok(flocks.get(flock.as_str())?.is_some())
    }

    /// Hands on the emails of the flock's members holding `role`, in email order. A flock of up
    /// to `SORT_IN_MEMORY_UP_TO` members is sorted in memory; a bigger one is listed by walking
    /// the email index, so memory stays bounded however big it is.
    pub fn visit_flock_members<E: From<StoreError>>(
        &self,
        flock: &FlockId,
        role: FlockRole,
        limit: Option<usize>,
        mut visit: impl FnMut(u64, &Email) -> Result<(), E>,
    ) -> Result<(), E> {
        let limit = limit.unwrap_or(usize::MAX);
        let by_flock = self
            .txn
            .open_table(ROLES_BY_FLOCK)
            .map_err(StoreError::from)?;
        let users = self.txn.open_table(USERS).map_err(StoreError::from)?;
        let range = (flock.as_str(), 0)..=(flock.as_str(), u64::MAX);
        let members = by_flock
            .range(range.clone())
            .map_err(StoreError::from)?
            .count() as u64;
        let role_byte = role.to_byte();
        if members <= SORT_IN_MEMORY_UP_TO {
            let mut members = Vec::new();
            for entry in by_flock.range(range).map_err(StoreError::from)? {
                let (key, held) = entry.map_err(StoreError::from)?;
                if held.value() == role_byte {
                    let id = key.value().1;
                    members.push((read_user(&users, id)?.email, id));
                }
            }
            members.sort_by_key(|(email, _)| email.key());
            for (email, id) in members.iter().take(limit) {
                visit(*id, email)?;
            }
            return Ok(());
        }
        let mut handed = 0;
        let by_email = self
            .txn
            .open_table(USER_ID_BY_EMAIL)
            .map_err(StoreError::from)?;
        for entry in by_email.iter().map_err(StoreError::from)? {
            let (_, id) = entry.map_err(StoreError::from)?;
            let held = by_flock
                .get((flock.as_str(), id.value()))
                .map_err(StoreError::from)?;
            if held.is_some_and(|held| held.value() == role_byte) {
                if handed == limit {
                    break;
                }
                visit(id.value(), &read_user(&users, id.value())?.email)?;
                handed += 1;
            }
        }
        Ok(())
    }

    /// How many managers and watchers the flock has (its role index only, no user read).
    pub fn flock_member_counts(&self, flock: &FlockId) -> StoreResult<(usize, usize)> {
        let by_flock = self.txn.open_table(ROLES_BY_FLOCK)?;
        let (mut managers, mut watchers) = (0, 0);
        for entry in by_flock.range((flock.as_str(), 0)..=(flock.as_str(), u64::MAX))? {
            match FlockRole::from_byte(entry?.1.value()) {
                Some(FlockRole::Manager) => managers += 1,
                Some(FlockRole::Watcher) => watchers += 1,
                None => return Err(StoreError::Corrupt(format!("bad role in flock {flock}"))),
            }
        }
        Ok((managers, watchers))
    }

    /// A page of a search for `needle` (email or note, any case): at most `page_size` matches
    /// after `cursor`, the cursor of the next page, and how many users match in all. One pass;
    /// only the page is kept.
    pub fn search_users(
        &self,
        needle: &str,
        cursor: Option<&str>,
        page_size: usize,
    ) -> StoreResult<(Vec<UserDetails>, Option<String>, u64)> {
        let mut page = Vec::new();
        let mut next = None;
        let mut total = 0u64;
        self.visit_matching_users(needle, None, None, |details| {
            total += 1;
            let key = details.user.email.key();
            let after_cursor = cursor.is_none_or(|cursor| key.as_str() > cursor);
            if after_cursor {
                if page.len() < page_size {
                    page.push(details);
                } else if next.is_none() {
                    next = page.last().map(|last: &UserDetails| last.user.email.key());
                }
            }
            Ok::<(), StoreError>(())
        })?;
        Ok((page, next, total))
    }

    /// The newest changes made at or after `since` (at most `limit`, newest first; sign-in
    /// events left out) and how many there are in all.
    pub fn newest_changes(
        &self,
        since: u64,
        limit: usize,
    ) -> StoreResult<(Vec<AuditEntry>, usize)> {
        let table = self.txn.open_table(AUDIT)?;
        let mut newest = Vec::new();
        let mut total = 0;
        // Ids grow with time: walk back from the newest and stop at the first older entry.
        for entry in table.iter()?.rev() {
            let (id, bytes) = entry?;
            let entry = AuditEntry {
                id: id.value(),
                ..decode(bytes.value())?
            };
            if entry.at < since {
                break;
            }
            if !is_change(&entry.action_type) {
                continue;
            }
            total += 1;
            if newest.len() < limit {
                newest.push(entry);
            }
        }
        Ok((newest, total))
    }

    /// Hands on each queued mail, oldest first, at most `limit`.
    pub fn visit_mail_queue<E: From<StoreError>>(
        &self,
        limit: Option<usize>,
        mut visit: impl FnMut(QueuedMail) -> Result<(), E>,
    ) -> Result<(), E> {
        let table = self.txn.open_table(MAIL_QUEUE).map_err(StoreError::from)?;
        for entry in table
            .iter()
            .map_err(StoreError::from)?
            .take(limit.unwrap_or(usize::MAX))
        {
            let (id, bytes) = entry.map_err(StoreError::from)?;
            let mut mail: QueuedMail = decode(bytes.value())?;
            mail.id = id.value();
            visit(mail)?;
        }
        Ok(())
    }

    pub fn mail_queue_len(&self) -> StoreResult<u64> {
        Ok(self.txn.open_table(MAIL_QUEUE)?.len()?)
    }
}

#[cfg(test)]
mod visit_all_tests {
    use super::super::NewUser;
    use super::super::audit::Actor;
    use super::*;
    use crate::domain::{AccessLevel, FlockName};

    /// The id-order pass hands on the same users with the same roles as the email-order one.
    #[test]
    fn every_user_with_their_roles_in_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let actor = Actor::system();
        let mut emails = Vec::new();
        for n in 0..20 {
            let email = Email::parse(&format!("user{:02}@x.io", 19 - n)).unwrap();
            let new = NewUser {
                email: email.clone(),
                access_level: AccessLevel::User,
                note: None,
                two_factor_required: false,
            };
            store.add_user(&actor, new, None).unwrap();
            emails.push(email);
        }
        let ops = store
            .create_flock(
                &actor,
                FlockName::parse("Ops").unwrap(),
                &emails[3..5],
                &emails[7..9],
            )
            .unwrap();
        let night = store
            .create_flock(
                &actor,
                FlockName::parse("Night").unwrap(),
                &emails[4..6],
                &[],
            )
            .unwrap();
        assert_ne!(ops.id, night.id);
        let snapshot = store.snapshot().unwrap();
        let mut by_email = Vec::new();
        snapshot
            .visit_users::<StoreError>(None, None, |details| {
                by_email.push(details);
                Ok(())
            })
            .unwrap();
        let mut by_id = Vec::new();
        snapshot
            .visit_all_users::<StoreError>(|details| {
                by_id.push(details);
                Ok(())
            })
            .unwrap();
        by_email.sort_by_key(|details| details.user.id);
        assert_eq!(by_id.len(), 20);
        for (one, other) in by_id.iter().zip(&by_email) {
            let sorted = |flocks: &[FlockId]| {
                let mut flocks = flocks.to_vec();
                flocks.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                flocks
            };
            assert_eq!(one.user, other.user);
            assert_eq!(sorted(&one.managed_flocks), sorted(&other.managed_flocks));
            assert_eq!(sorted(&one.watched_flocks), sorted(&other.watched_flocks));
        }
        assert!(by_id.iter().any(|d| d.managed_flocks.len() == 2));
    }
}
