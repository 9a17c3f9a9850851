//! What `users/filter` searches, kept in memory: each user's email key and note, lowercased, in
//! email order. A filter walks this compact projection instead of decoding every user record,
//! and reads from the database only the users it may answer with.
//!
//! The projection follows the database, not the other way round: every write of a user record
//! notes what it wrote (`touched`), and the transaction's commit (`WriteTxn::commit`) applies
//! those notes while holding the projection's lock across the redb commit, so commits apply in
//! the order they committed, before the change is answered. A panic while applying marks the
//! projection stale, and the next search rebuilds it from the database.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{PoisonError, RwLock, RwLockWriteGuard};

use redb::{Database, ReadableDatabase, ReadableTable};

use super::disk::decode_user;
use super::tables::USERS;
use super::{StoreResult, User};

/// Notes up to this many bytes (lowercased) are kept whole; a longer note is only marked, and a
/// search that might match it reads the record. It bounds the projection at about
/// (email + this) bytes a user, however long notes grow (up to 10,000 characters).
const NOTE_KEPT_BYTES: usize = 256;

/// What a write transaction did to one user's searchable text.
#[derive(Debug)]
pub(super) enum Touch {
    Written {
        id: u64,
        key: Box<str>,
        note: NoteText,
    },
    Removed(u64),
}

thread_local! {
    /// What the open write transaction on this thread did to users, in order.
    static TOUCHED: RefCell<Vec<Touch>> = const { RefCell::new(Vec::new()) };
}

/// Notes that the write transaction open on this thread wrote `user`.
pub(super) fn written(user: &User) {
    let touch = Touch::Written {
        id: user.id,
        key: user.email.key().into_boxed_str(),
        note: NoteText::of(user.note.as_deref()),
    };
    TOUCHED.with_borrow_mut(|touched| touched.push(touch));
}

/// Notes that the write transaction open on this thread removed user `id`.
pub(super) fn removed(id: u64) {
    TOUCHED.with_borrow_mut(|touched| touched.push(Touch::Removed(id)));
}

/// What was noted since the last call, forgetting it (a new transaction starts clean).
pub(super) fn take_touched() -> Vec<Touch> {
    TOUCHED.with_borrow_mut(std::mem::take)
}

#[derive(Debug)]
pub(super) enum NoteText {
    None,
    Lowercase(Box<str>),
    /// Longer than `NOTE_KEPT_BYTES`: the record decides.
    Long,
}

impl NoteText {
    fn of(note: Option<&str>) -> NoteText {
        match note {
            None => NoteText::None,
            Some(note) => {
                let lower = note.to_lowercase();
                if lower.len() <= NOTE_KEPT_BYTES {
                    NoteText::Lowercase(lower.into_boxed_str())
                } else {
                    NoteText::Long
                }
            }
        }
    }
}

#[derive(Debug)]
struct Entry {
    id: u64,
    note: NoteText,
}

#[derive(Debug, Default)]
struct Projection {
    /// Not built yet, or a refresh failed: rebuilt before the next search.
    stale: bool,
    by_key: BTreeMap<Box<str>, Entry>,
    key_by_id: HashMap<u64, Box<str>>,
}

impl Projection {
    fn remove(&mut self, id: u64) {
        if let Some(key) = self.key_by_id.remove(&id) {
            self.by_key.remove(&key);
        }
    }

    fn insert(&mut self, id: u64, key: Box<str>, note: NoteText) {
        self.remove(id);
        self.key_by_id.insert(id, key.clone());
        self.by_key.insert(key, Entry { id, note });
    }

    fn apply(&mut self, touch: Touch) {
        match touch {
            Touch::Written { id, key, note } => self.insert(id, key, note),
            Touch::Removed(id) => self.remove(id),
        }
    }
}

#[derive(Debug)]
pub(super) struct UserSearch {
    projection: RwLock<Projection>,
}

impl UserSearch {
    /// An empty projection, built on first use (or by `warm`).
    pub(super) fn new() -> UserSearch {
        UserSearch {
            projection: RwLock::new(Projection {
                stale: true,
                ..Projection::default()
            }),
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, Projection> {
        // A panic while holding the lock can only have left a half-applied refresh: rebuild.
        self.projection.write().unwrap_or_else(|poisoned| {
            let mut projection = poisoned.into_inner();
            projection.stale = true;
            self.projection.clear_poison();
            projection
        })
    }

    /// Builds the projection now if it isn't (at start, so the first search doesn't wait).
    pub(super) fn warm(&self, db: &Database) -> StoreResult<()> {
        let mut projection = self.write();
        if projection.stale {
            rebuild(&mut projection, db)?;
        }
        Ok(())
    }

    /// Runs `commit` (the redb commit of a transaction that did `touched`) and, if it succeeds,
    /// applies `touched`, holding the lock throughout: two commits apply in the order they
    /// committed.
    pub(super) fn commit_and_apply<E>(
        &self,
        touched: Vec<Touch>,
        commit: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        let mut projection = self.write();
        commit()?;
        if !projection.stale {
            for touch in touched {
                projection.apply(touch);
            }
        }
        Ok(())
    }

    /// The ids of the users after `cursor` (a lowercase email), in email order, whose email or
    /// note may contain `needle` (lowercased by the caller): those whose email or kept note
    /// does, and those with a note too long to keep.
    pub(super) fn candidates(
        &self,
        db: &Database,
        needle: &str,
        cursor: Option<&str>,
    ) -> StoreResult<Vec<u64>> {
        self.warm(db)?;
        let projection = self
            .projection
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let lower = match cursor {
            Some(cursor) => Bound::Excluded(cursor),
            None => Bound::Unbounded,
        };
        // One searcher for the whole walk: `str::contains` would set one up per string.
        let finder = memchr::memmem::Finder::new(needle.as_bytes());
        let contains = |haystack: &str| finder.find(haystack.as_bytes()).is_some();
        let mut found = Vec::new();
        for (key, entry) in projection.by_key.range::<str, _>((lower, Bound::Unbounded)) {
            let candidate = contains(key)
                || match &entry.note {
                    NoteText::None => false,
                    NoteText::Lowercase(note) => contains(note),
                    NoteText::Long => true,
                };
            if candidate {
                found.push(entry.id);
            }
        }
        Ok(found)
    }
}

fn rebuild(projection: &mut Projection, db: &Database) -> StoreResult<()> {
    let txn = db.begin_read()?;
    let users = txn.open_table(USERS)?;
    let mut fresh = Projection::default();
    for entry in users.iter()? {
        let (_, bytes) = entry?;
        let user = decode_user(bytes.value())?;
        fresh.insert(
            user.id,
            user.email.key().into_boxed_str(),
            NoteText::of(user.note.as_deref()),
        );
    }
    *projection = fresh;
    Ok(())
}

/// Whether the user's email or note contains `needle` (lowercased), any case: what a search
/// decides by, applied to the record itself.
pub(super) fn user_matches(user: &User, needle: &str) -> bool {
    user.email.key().contains(needle)
        || user
            .note
            .as_deref()
            .is_some_and(|note| note.to_lowercase().contains(needle))
}

#[cfg(test)]
mod tests {
    use super::super::audit::Actor;
    use super::super::{NewUser, Store, UserRef};
    use crate::domain::{AccessLevel, Email};

    fn add(store: &Store, email: &str, note: Option<&str>) -> u64 {
        let new = NewUser {
            email: Email::parse(email).unwrap(),
            access_level: AccessLevel::User,
            note: note.map(str::to_string),
            two_factor_required: false,
        };
        store.add_user(&Actor::system(), new, None).unwrap().id
    }

    fn found(store: &Store, needle: &str) -> Vec<String> {
        let mut emails = Vec::new();
        store
            .snapshot()
            .unwrap()
            .visit_matching_users(needle, None, None, |details| {
                emails.push(details.user.email.to_string());
                Ok::<(), super::super::StoreError>(())
            })
            .unwrap();
        emails
    }

    #[test]
    fn follows_every_commit_and_is_rebuilt_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Built lazily by the first search, then kept in step.
        add(&store, "Zed@Example.org", Some("Night SHIFT"));
        assert_eq!(found(&store, "shift"), ["Zed@Example.org"]);
        let long = format!("{} Ärger at the end", "x".repeat(300));
        let amy = add(&store, "amy@example.org", Some(&long));
        assert_eq!(found(&store, "ärger"), ["amy@example.org"]);
        assert_eq!(
            found(&store, "EXAMPLE"),
            ["amy@example.org", "Zed@Example.org"]
        );

        let zed = UserRef::Email(Email::parse("zed@example.org").unwrap());
        store
            .set_note(&Actor::system(), &zed, Some("day".into()))
            .unwrap();
        assert!(found(&store, "shift").is_empty());
        assert_eq!(found(&store, "DAY"), ["Zed@Example.org"]);
        store
            .set_note(&Actor::system(), &UserRef::Id(amy), None)
            .unwrap();
        assert!(found(&store, "ärger").is_empty());
        store.remove_user(&Actor::system(), &zed).unwrap();
        assert!(found(&store, "day").is_empty());
        assert_eq!(found(&store, "example"), ["amy@example.org"]);

        // A refused change leaves the projection as it was.
        let taken = NewUser {
            email: Email::parse("AMY@example.org").unwrap(),
            access_level: AccessLevel::User,
            note: Some("intruder".into()),
            two_factor_required: false,
        };
        assert!(store.add_user(&Actor::system(), taken, None).is_err());
        assert!(found(&store, "intruder").is_empty());

        add(&store, "bob@example.org", Some("Kept"));
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(found(&store, "kept"), ["bob@example.org"]);
        assert_eq!(
            found(&store, "example"),
            ["amy@example.org", "bob@example.org"]
        );
    }
}
