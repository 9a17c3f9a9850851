//! What the store keeps in memory beside the database so that the hot reads (every API call
//! looks up its key and the settings; `users/filter` searches every user) cost no database
//! read. The database stays the truth: each commit that writes what a copy holds brings that copy
//! up to date before the change is answered (`WriteTxn::commit`), so a revoked key or a changed
//! setting is seen by the very next request.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, PoisonError, RwLock};

use super::search::UserSearch;
use super::{ApiKeyRecord, Settings, UserDetails, UserRef};

/// Copies kept in memory, one per store (shared by its clones and its writer).
#[derive(Debug)]
pub(super) struct InMemory {
    pub search: UserSearch,
    /// API keys that authenticated a call, by key id. Unknown ids are not kept: a caller
    /// guessing keys can't grow it.
    pub api_keys: Cached<String, ApiKeyRecord>,
    pub settings: Cached<(), Settings>,
    /// Users with their roles, as `user/get`, sessions and each console page read them.
    pub user_details: UserCopies,
    /// How the last backup of this process ended (metrics report it).
    pub last_backup: std::sync::Mutex<Option<LastBackup>>,
}

/// How a user was asked for: by id, or by email (its lowercase key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum DetailsKey {
    Id(u64),
    Email(String),
}

impl From<&UserRef> for DetailsKey {
    fn from(user: &UserRef) -> DetailsKey {
        match user {
            UserRef::Id(id) => DetailsKey::Id(*id),
            UserRef::Email(email) => DetailsKey::Email(email.key()),
        }
    }
}

/// When the last backup this process took ended, and whether it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastBackup {
    pub at: u64,
    pub succeeded: bool,
}

impl InMemory {
    pub fn new() -> InMemory {
        InMemory {
            search: UserSearch::new(),
            api_keys: Cached::new(MAX_CACHED_KEYS),
            settings: Cached::new(1),
            user_details: UserCopies::new(MAX_CACHED_USERS),
            last_backup: std::sync::Mutex::new(None),
        }
    }
}

/// More keys than this in the cache and it starts over (a console has a handful).
const MAX_CACHED_KEYS: usize = 10_000;
/// Users kept at most; above it, users not kept are read from the database when asked for.
/// Measured: a console of 100,000 users is 160 MiB resident once warm (52 MiB empty), its redb
/// page cache and search projection included.
const MAX_CACHED_USERS: usize = 131_072;

/// Records read from the database, dropped whole by `invalidate` when a commit writes their
/// table.
///
/// A read that missed the cache takes the generation before it reads the database and keeps
/// what it read only if no invalidation came in between: otherwise a read that began before a
/// commit could put back the value that commit replaced.
#[derive(Debug)]
pub(super) struct Cached<K, V> {
    inner: RwLock<Generation<K, V>>,
    capacity: usize,
}

#[derive(Debug)]
struct Generation<K, V> {
    number: u64,
    entries: HashMap<K, V>,
}

impl<K: Eq + Hash, V: Clone> Cached<K, V> {
    fn new(capacity: usize) -> Cached<K, V> {
        Cached {
            inner: RwLock::new(Generation {
                number: 0,
                entries: HashMap::new(),
            }),
            capacity,
        }
    }

    /// The cached value, and otherwise the generation to hand to `keep` with what is read.
    pub fn get<Q>(&self, key: &Q) -> Result<V, u64>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner.entries.get(key).cloned().ok_or(inner.number)
    }

    /// Keeps a value read from the database, unless a commit invalidated the cache since
    /// `generation` was taken.
    pub fn keep(&self, generation: u64, key: K, value: V) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.number != generation {
            return;
        }
        if inner.entries.len() >= self.capacity {
            inner.entries.clear();
        }
        inner.entries.insert(key, value);
    }

    /// Forgets every value: a commit wrote their table.
    pub fn invalidate(&self) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.number += 1;
        inner.entries.clear();
    }
}

/// Copies of users with their roles, by id and by email, each kept in step with the commits that
/// write it: a commit drops the copies of the users it wrote (`forget`), or all of them when it
/// wrote roles (`forget_all`), before its change is answered.
///
/// Like `Cached`, a read that missed takes the generation first and keeps what it read only if
/// no commit dropped copies in between.
#[derive(Debug)]
pub(super) struct UserCopies {
    inner: RwLock<Copies>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Copies {
    generation: u64,
    by_id: HashMap<u64, Arc<UserDetails>>,
    /// Email key → id, for every user in `by_id` and only those.
    id_by_email: HashMap<String, u64>,
}

impl UserCopies {
    fn new(capacity: usize) -> UserCopies {
        UserCopies {
            inner: RwLock::new(Copies::default()),
            capacity,
        }
    }

    /// The copy of the user `key` names, and otherwise the generation to hand to `keep`.
    pub fn get(&self, key: &DetailsKey) -> Result<Arc<UserDetails>, u64> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let id = match key {
            DetailsKey::Id(id) => Some(*id),
            DetailsKey::Email(email) => inner.id_by_email.get(email).copied(),
        };
        id.and_then(|id| inner.by_id.get(&id))
            .map(Arc::clone)
            .ok_or(inner.generation)
    }

    /// The generation to hand to `keep` with users read from now on.
    pub fn generation(&self) -> u64 {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner.generation
    }

    /// Whether there is room for `additional` more users.
    pub fn has_room(&self, additional: usize) -> bool {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner.by_id.len() + additional <= self.capacity
    }

    /// Keeps users read from the database, unless a commit dropped copies since `generation` was
    /// taken. Past the capacity, the rest are not kept (those kept stay: a caller asking for
    /// many users can't empty the copies of the others).
    pub fn keep(&self, generation: u64, users: impl IntoIterator<Item = Arc<UserDetails>>) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.generation != generation {
            return;
        }
        for details in users {
            if inner.by_id.len() >= self.capacity {
                return;
            }
            let id = details.user.id;
            inner.id_by_email.insert(details.user.email.key(), id);
            if let Some(replaced) = inner.by_id.insert(id, details) {
                // Kept twice from the same generation: the same record, the same email.
                debug_assert_eq!(replaced.user.id, id);
            }
        }
    }

    /// Drops the copies of users `ids` (written or removed by a commit).
    pub fn forget(&self, ids: impl IntoIterator<Item = u64>) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.generation += 1;
        for id in ids {
            if let Some(details) = inner.by_id.remove(&id) {
                let email = details.user.email.key();
                if inner.id_by_email.get(&email) == Some(&id) {
                    inner.id_by_email.remove(&email);
                }
            }
        }
    }

    /// Drops every copy (a commit wrote roles, or wrote users without naming them).
    pub fn forget_all(&self) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.generation += 1;
        inner.by_id.clear();
        inner.id_by_email.clear();
    }

    pub fn len(&self) -> usize {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_overtaken_by_an_invalidation_is_not_kept() {
        let cache: Cached<&str, u32> = Cached::new(2);
        let generation = cache.get(&"a").unwrap_err();
        cache.invalidate();
        cache.keep(generation, "a", 1);
        let generation = cache.get(&"a").unwrap_err();
        cache.keep(generation, "a", 2);
        assert_eq!(cache.get(&"a"), Ok(2));
        cache.invalidate();
        assert!(cache.get(&"a").is_err());
        // Full: starts over rather than growing.
        let generation = cache.get(&"a").unwrap_err();
        for (key, value) in [("a", 1), ("b", 2), ("c", 3)] {
            cache.keep(generation, key, value);
        }
        assert_eq!(cache.get(&"c"), Ok(3));
        assert!(cache.get(&"a").is_err());
    }

    /// Full copies keep those they have; forgetting one user frees its email for another.
    #[test]
    fn user_copies_stay_within_their_capacity() {
        use crate::domain::{AccessLevel, Email};
        use crate::store::User;
        let copies = UserCopies::new(2);
        let details = |id: u64, email: &str| {
            let user = User {
                summary_email_enabled: false,
                ..User::new(id, Email::parse(email).unwrap(), AccessLevel::User, 0)
            };
            Arc::new(UserDetails {
                user,
                managed_flocks: Vec::new(),
                watched_flocks: Vec::new(),
            })
        };
        let generation = copies.generation();
        copies.keep(
            generation,
            [
                details(1, "a@x.io"),
                details(2, "b@x.io"),
                details(3, "c@x.io"),
            ],
        );
        assert_eq!(copies.len(), 2);
        assert!(copies.get(&DetailsKey::Id(3)).is_err());
        assert!(copies.get(&DetailsKey::Email("a@x.io".into())).is_ok());
        copies.forget([1]);
        assert!(copies.get(&DetailsKey::Email("a@x.io".into())).is_err());
        let generation = copies.generation();
        copies.keep(generation, [details(3, "a@x.io")]);
        let found = copies.get(&DetailsKey::Email("a@x.io".into())).unwrap();
        assert_eq!(found.user.id, 3);
        copies.forget_all();
        assert_eq!(copies.len(), 0);
    }
}
