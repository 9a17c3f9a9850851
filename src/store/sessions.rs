//! Console sessions and login locks.
//!
//! A session is a record keyed by the SHA-256 of its random id (the id itself lives only in the
//! browser's encrypted cookie), indexed by user so that every event that must end a user's
//! sessions (disable, remove, demote, password change, factor reset) deletes them in its own
//! transaction. `last_seen` is rewritten coarsely and without fsync: losing the newest
//! `last_seen` in a crash costs nothing, a durable write per page view would.

use super::WriteTxn;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::audit::{Actor, AuditLine, record};
use super::records::{decode, encode};
use super::tables::{LOGIN_LOCKS, SESSIONS, SESSIONS_BY_USER, USERS};
use super::users::{UserRef, read_user, resolve};
use super::{Store, StoreError, StoreResult, User, UserDetails};
use crate::domain::{Email, Lock, Refusal};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user_id: u64,
    pub created: u64,
    pub last_seen: u64,
    /// The client address at login, as the throttles saw it.
    pub ip: Option<String>,
    /// The browser's User-Agent at login, cut and cleaned of control characters.
    pub user_agent: String,
}

/// A stored session with the hash it is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub hash: String,
    pub record: SessionRecord,
}

impl StoredSession {
    /// The name a session goes by in lists and in `user/sessions/revoke`: the start of its hash,
    /// which says nothing about the id in the cookie.
    pub fn public_id(&self) -> &str {
        public_id(&self.hash)
    }
}

/// Length of a session's public id (64 bits of its hash).
pub const PUBLIC_ID_CHARS: usize = 16;

pub fn public_id(hash: &str) -> &str {
    hash.get(..PUBLIC_ID_CHARS).unwrap_or(hash)
}

impl Store {
    /// Stores a new session of an enabled user and records the login (`how`: "password",
    /// "authenticator app", …) in the same transaction.
    pub fn create_session(
        &self,
        actor: &Actor,
        hash: &str,
        session: &SessionRecord,
        how: &str,
    ) -> StoreResult<()> {
        let txn = self.begin_write()?;
        {
            let mut users = txn.open_table(USERS)?;
            let mut user = read_user(&users, session.user_id)?;
            if user.disabled {
                return Err(StoreError::Refused(Refusal::UserDisabled));
            }
            // What the access review's dormant accounts are found by.
            user.last_login = Some(session.created);
            super::users::write_user(&mut users, &user)?;
            drop(users);
            txn.open_table(SESSIONS)?
                .insert(hash, encode(session)?.as_slice())?;
            txn.open_table(SESSIONS_BY_USER)?
                .insert((session.user_id, hash), ())?;
            record(
                &txn,
                actor,
                AuditLine::new("user_login", format!("User ({}) logged in", user.email))
                    .target(&user.email)
                    .details(serde_json::json!({
                        "method": how,
                        "session": public_id(hash),
                    })),
            )?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The session stored under `hash` and its user with their roles, read together; `None`
    /// once it has ended.
    pub fn session_with_user(
        &self,
        hash: &str,
    ) -> StoreResult<Option<(SessionRecord, UserDetails)>> {
        let txn = self.begin_read()?;
        let Some(bytes) = txn.open_table(SESSIONS)?.get(hash)? else {
            return Ok(None);
        };
        let record: SessionRecord = decode(bytes.value())?;
        let users = txn.open_table(USERS)?;
        let roles = txn.open_table(super::tables::ROLES_BY_USER)?;
        match super::users::details_of(&users, &roles, record.user_id) {
            Ok(details) => Ok(Some((record, details))),
            Err(StoreError::Refused(Refusal::UserNotFound)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Records that the session was used at `now`. Not fsynced (see the module note).
    pub fn touch_session(&self, hash: &str, now: u64) -> StoreResult<()> {
        let mut txn = self.begin_write()?;
        txn.without_flush()?;
        {
            let mut sessions = txn.open_table(SESSIONS)?;
            let record: Option<SessionRecord> = sessions
                .get(hash)?
                .map(|bytes| decode(bytes.value()))
                .transpose()?;
            let Some(mut record) = record else {
                return Ok(()); // ended meanwhile
            };
            record.last_seen = record.last_seen.max(now);
            sessions.insert(hash, encode(&record)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Ends one session (logout); false if it had already ended.
    pub fn end_session(&self, actor: &Actor, hash: &str) -> StoreResult<bool> {
        let txn = self.begin_write()?;
        let ended = {
            let mut sessions = txn.open_table(SESSIONS)?;
            let removed: Option<SessionRecord> = sessions
                .remove(hash)?
                .map(|bytes| decode(bytes.value()))
                .transpose()?;
            match removed {
                Some(session) => {
                    txn.open_table(SESSIONS_BY_USER)?
                        .remove((session.user_id, hash))?;
                    let email = read_user(&txn.open_table(USERS)?, session.user_id)
                        .map(|user| user.email.to_string())
                        .unwrap_or_default();
                    record(
                        &txn,
                        actor,
                        AuditLine::new("user_logout", format!("User ({email}) logged out"))
                            .target(&email)
                            .details(serde_json::json!({ "session": public_id(hash) })),
                    )?;
                    true
                }
                None => false,
            }
        };
        txn.commit()?;
        Ok(ended)
    }

    /// Deletes the session stored under `hash` without a record on the trail: it ended by time
    /// (idle, lifetime) or with its account, not by anyone's action.
    pub fn end_sessions_by_hash(&self, hash: &str) -> StoreResult<()> {
        let txn = self.begin_write()?;
        {
            let mut sessions = txn.open_table(SESSIONS)?;
            let removed: Option<SessionRecord> = sessions
                .remove(hash)?
                .map(|bytes| decode(bytes.value()))
                .transpose()?;
            if let Some(session) = removed {
                txn.open_table(SESSIONS_BY_USER)?
                    .remove((session.user_id, hash))?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The user's sessions, most recently used first.
    pub fn sessions_of(&self, user_id: u64) -> StoreResult<Vec<StoredSession>> {
        let txn = self.begin_read()?;
        let by_user = txn.open_table(SESSIONS_BY_USER)?;
        let sessions = txn.open_table(SESSIONS)?;
        let mut found = Vec::new();
        for entry in by_user.range((user_id, "")..(user_id.saturating_add(1), ""))? {
            let (key, _) = entry?;
            let hash = key.value().1.to_string();
            if let Some(bytes) = sessions.get(hash.as_str())? {
                found.push(StoredSession {
                    record: decode(bytes.value())?,
                    hash,
                });
            }
        }
        found.sort_by_key(|s| std::cmp::Reverse(s.record.last_seen));
        Ok(found)
    }

    /// Ends the user's sessions whose public id is `public_id` (or all when `None`), except the
    /// one stored under `keep`. Returns how many ended; a `public_id` the user doesn't have is
    /// refused.
    pub fn end_sessions_of(
        &self,
        actor: &Actor,
        user: &UserRef,
        public_id: Option<&str>,
        keep: Option<&str>,
    ) -> StoreResult<usize> {
        let txn = self.begin_write()?;
        let ended = {
            let user_id = resolve(&txn, user)?;
            let user = read_user(&txn.open_table(USERS)?, user_id)?;
            let ended = end_sessions_in(&txn, user_id, public_id, keep)?;
            if public_id.is_some() && ended == 0 {
                return Err(Refusal::SessionNotFound.into());
            }
            let which = match (public_id, keep.is_some()) {
                (Some(id), _) => format!("session {id}"),
                (None, true) => "other sessions".to_string(),
                (None, false) => "sessions".to_string(),
            };
            record(
                &txn,
                actor,
                AuditLine::new(
                    "session_revoke",
                    format!("{which} of user ({}) ended: {ended}", user.email),
                )
                .target(&user.email)
                .details(serde_json::json!({
                    "session": public_id,
                    "kept_current": keep.is_some(),
                    "ended": ended,
                })),
            )?;
            ended
        };
        txn.commit()?;
        Ok(ended)
    }

    /// Deletes sessions unused for `idle_secs` or older than `lifetime_secs`; returns how many.
    pub fn sweep_sessions(
        &self,
        now: u64,
        idle_secs: u64,
        lifetime_secs: u64,
    ) -> StoreResult<usize> {
        let txn = self.begin_write()?;
        let swept = {
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut dead = Vec::new();
            for entry in sessions.iter()? {
                let (hash, bytes) = entry?;
                // An unreadable record can't be checked, so it can't be used either: it goes.
                let (expired, user_id) = match decode::<SessionRecord>(bytes.value()) {
                    Ok(record) => (
                        now.saturating_sub(record.last_seen) > idle_secs
                            || now.saturating_sub(record.created) > lifetime_secs,
                        Some(record.user_id),
                    ),
                    Err(_) => (true, None),
                };
                if expired {
                    dead.push((hash.value().to_string(), user_id));
                }
            }
            let mut by_user = txn.open_table(SESSIONS_BY_USER)?;
            for (hash, user_id) in &dead {
                sessions.remove(hash.as_str())?;
                if let Some(user_id) = user_id {
                    by_user.remove((*user_id, hash.as_str()))?;
                }
            }
            dead.len()
        };
        txn.commit()?;
        Ok(swept)
    }

    /// How many sessions are stored (live or not yet swept).
    pub fn session_count(&self) -> StoreResult<u64> {
        use redb::ReadableTableMetadata;
        let txn = self.begin_read()?;
        Ok(txn.open_table(SESSIONS)?.len()?)
    }

    /// Keeps the login lock of the account with `email`, so a restart doesn't lift it. Only
    /// accounts that exist are kept (unknown addresses have nothing to protect).
    pub fn set_login_lock(&self, actor: &Actor, email: &Email, lock: Lock) -> StoreResult<()> {
        let txn = self.begin_write()?;
        {
            let key = email.key();
            let exists = txn
                .open_table(super::tables::USER_ID_BY_EMAIL)?
                .get(key.as_str())?
                .is_some();
            if exists {
                txn.open_table(LOGIN_LOCKS)?
                    .insert(key.as_str(), encode(&lock)?.as_slice())?;
                record(
                    &txn,
                    actor,
                    AuditLine::new(
                        "user_login_locked",
                        format!("User ({email}) locked out after repeated wrong passwords"),
                    )
                    .target(email)
                    .details(serde_json::json!({
                        "locked_until": lock.until,
                        "lockouts_in_series": lock.lockouts,
                    })),
                )?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The kept login lock of `email`'s account, if one is in force or remembered.
    pub fn login_lock(&self, email: &Email) -> StoreResult<Option<Lock>> {
        let txn = self.begin_read()?;
        let table = txn.open_table(LOGIN_LOCKS)?;
        let key = email.key();
        table
            .get(key.as_str())?
            .map(|bytes| decode(bytes.value()))
            .transpose()
    }

    /// Every kept login lock (lowercase email, lock), for the throttle at start.
    pub fn login_locks(&self) -> StoreResult<Vec<(String, Lock)>> {
        let txn = self.begin_read()?;
        let table = txn.open_table(LOGIN_LOCKS)?;
        let mut locks = Vec::new();
        for entry in table.iter()? {
            let (key, bytes) = entry?;
            locks.push((key.value().to_string(), decode(bytes.value())?));
        }
        Ok(locks)
    }

    /// Lifts the account's login lock and its second-factor lock, forgetting both series.
    pub fn unlock_account(&self, actor: &Actor, user: &UserRef) -> StoreResult<User> {
        let txn = self.begin_write()?;
        let user = {
            let user_id = resolve(&txn, user)?;
            let mut users = txn.open_table(USERS)?;
            let mut user = read_user(&users, user_id)?;
            user.factor_failures = 0;
            user.factor_locked_until = 0;
            user.factor_lockouts = 0;
            user.factor_lockouts_since = 0;
            super::users::write_user(&mut users, &user)?;
            txn.open_table(LOGIN_LOCKS)?
                .remove(user.email.key().as_str())?;
            record(
                &txn,
                actor,
                AuditLine::new("user_unlock", format!("User ({}) unlocked", user.email))
                    .target(&user.email),
            )?;
            user
        };
        txn.commit()?;
        Ok(user)
    }
}

/// Ends the user's sessions (those with `public_id`, or all) except `keep`, inside the caller's
/// transaction.
pub(super) fn end_sessions_in(
    txn: &WriteTxn<'_>,
    user_id: u64,
    public_id: Option<&str>,
    keep: Option<&str>,
) -> StoreResult<usize> {
    let mut by_user = txn.open_table(SESSIONS_BY_USER)?;
    let mut sessions = txn.open_table(SESSIONS)?;
    let mut hashes = Vec::new();
    for entry in by_user.range((user_id, "")..(user_id.saturating_add(1), ""))? {
        let (key, _) = entry?;
        let hash = key.value().1;
        let wanted = public_id.is_none_or(|id| self::public_id(hash) == id);
        if wanted && Some(hash) != keep {
            hashes.push(hash.to_string());
        }
    }
    for hash in &hashes {
        by_user.remove((user_id, hash.as_str()))?;
        sessions.remove(hash.as_str())?;
    }
    Ok(hashes.len())
}

/// Forgets a removed account's kept login lock, inside the caller's transaction.
pub(super) fn forget_login_lock(txn: &WriteTxn<'_>, email: &Email) -> StoreResult<()> {
    txn.open_table(LOGIN_LOCKS)?.remove(email.key().as_str())?;
    Ok(())
}
