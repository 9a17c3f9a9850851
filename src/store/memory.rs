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
    /// Users with their roles, as `user/get` and each console page read them. Dropped whole by
    /// any commit that writes the users, their email index or their roles.
    pub user_details: Cached<DetailsKey, Arc<UserDetails>>,
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
            user_details: Cached::new(MAX_CACHED_USERS),
            last_backup: std::sync::Mutex::new(None),
        }
    }
}

/// More keys than this in the cache and it starts over (a console has a handful).
const MAX_CACHED_KEYS: usize = 10_000;
/// Users kept at most (a few MiB); a full cache starts over.
const MAX_CACHED_USERS: usize = 4_096;

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
}
