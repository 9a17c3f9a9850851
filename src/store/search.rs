//! What `users/filter` searches, kept in memory: each user's email key and note, lowercased, in
//! one buffer. A filter searches it in one pass instead of decoding every user record, sorts the
//! candidates by email, and reads from the database only the users it may answer with.
//!
//! The projection follows the database, not the other way round: every write of a user record
//! notes what it wrote (`written`, `removed`), and the transaction's commit (`WriteTxn::commit`) applies
//! those notes while holding the projection's lock across the redb commit, so commits apply in
//! the order they committed, before the change is answered. A panic while applying marks the
//! projection stale, and the next search rebuilds it from the database.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{RwLock, RwLockWriteGuard};

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

impl Touch {
    pub(super) fn id(&self) -> u64 {
        match self {
            Touch::Written { id, .. } | Touch::Removed(id) => *id,
        }
    }
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

/// Ends a record's email key in `Projection::text`; no UTF-8 string holds this byte, so no
/// needle matches across it.
const KEY_END: u8 = 0xFF;
/// Ends a record's note likewise.
const RECORD_END: u8 = 0xFE;

/// Where one user's text lies in `Projection::text`.
#[derive(Debug, Clone, Copy)]
struct Record {
    id: u64,
    start: usize,
    key_end: usize,
    end: usize,
}

/// Every user's email key and kept note, one after the other in one buffer (`key 0xFF note
/// 0xFE`), so a search is one `memmem` pass over contiguous memory rather than a walk through
/// a map of boxed strings. A changed user's record is appended anew and the old one left dead;
/// when the dead half the buffer, it is written afresh.
#[derive(Debug, Default)]
struct Projection {
    /// Not built yet, or a change could not be applied: rebuilt before the next search.
    stale: bool,
    text: Vec<u8>,
    /// In the order they were appended (so by `start`), dead ones included.
    records: Vec<Record>,
    /// The live record of each user.
    live: HashMap<u64, usize>,
    /// Users whose note is too long to keep: candidates of every search.
    long_notes: HashSet<u64>,
    dead_bytes: usize,
}

/// Below this the buffer is never rewritten: dead records cost too little to bother.
const COMPACT_FROM_BYTES: usize = 1 << 20;

impl Projection {
    fn remove(&mut self, id: u64) {
        self.long_notes.remove(&id);
        if let Some(index) = self.live.remove(&id) {
            let record = self.records[index];
            self.dead_bytes += record.end - record.start;
        }
    }

    fn insert(&mut self, id: u64, key: &str, note: &NoteText) {
        self.remove(id);
        let start = self.text.len();
        self.text.extend_from_slice(key.as_bytes());
        let key_end = self.text.len();
        self.text.push(KEY_END);
        if let NoteText::Lowercase(note) = note {
            self.text.extend_from_slice(note.as_bytes());
        }
        self.text.push(RECORD_END);
        self.live.insert(id, self.records.len());
        if matches!(note, NoteText::Long) {
            self.long_notes.insert(id);
        }
        self.records.push(Record {
            id,
            start,
            key_end,
            end: self.text.len(),
        });
    }

    fn apply(&mut self, touch: Touch) {
        match touch {
            Touch::Written { id, key, note } => self.insert(id, &key, &note),
            Touch::Removed(id) => self.remove(id),
        }
        if self.text.len() >= COMPACT_FROM_BYTES && self.dead_bytes * 2 > self.text.len() {
            self.compact();
        }
    }

    /// Writes the live records into a fresh buffer.
    fn compact(&mut self) {
        let mut fresh = Projection {
            stale: self.stale,
            text: Vec::with_capacity(self.text.len() - self.dead_bytes),
            long_notes: std::mem::take(&mut self.long_notes),
            ..Projection::default()
        };
        let mut live: Vec<usize> = self.live.values().copied().collect();
        live.sort_unstable();
        for index in live {
            let record = self.records[index];
            fresh.live.insert(record.id, fresh.records.len());
            let start = fresh.text.len();
            fresh
                .text
                .extend_from_slice(&self.text[record.start..record.end]);
            fresh.records.push(Record {
                start,
                key_end: start + (record.key_end - record.start),
                end: fresh.text.len(),
                ..record
            });
        }
        *self = fresh;
    }

    fn key(&self, record: &Record) -> &[u8] {
        &self.text[record.start..record.key_end]
    }

    /// The record holding byte `at` of the buffer, and whether it is its user's live one.
    fn record_at(&self, at: usize) -> Option<(&Record, bool)> {
        let index = self
            .records
            .partition_point(|record| record.start <= at)
            .checked_sub(1)?;
        let record = &self.records[index];
        Some((record, self.live.get(&record.id) == Some(&index)))
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
        // A shared lock for the search; the exclusive one only to build a missing projection.
        let projection = loop {
            let ready = match self.projection.read() {
                Ok(projection) if !projection.stale => Some(projection),
                // Stale, or poisoned by a panic mid-change: released here, rebuilt by `warm`.
                _ => None,
            };
            match ready {
                Some(projection) => break projection,
                None => self.warm(db)?,
            }
        };
        let finder = memchr::memmem::Finder::new(needle.as_bytes());
        let mut found: Vec<&Record> = Vec::new();
        let mut from = 0;
        while let Some(at) = finder.find(&projection.text[from..]).map(|at| from + at) {
            let Some((record, live)) = projection.record_at(at) else {
                break;
            };
            if live {
                found.push(record);
            }
            // One match a record is enough: go on after it.
            from = record.end;
        }
        if !projection.long_notes.is_empty() {
            let matched: HashSet<u64> = found.iter().map(|record| record.id).collect();
            for id in &projection.long_notes {
                if !matched.contains(id)
                    && let Some(&index) = projection.live.get(id)
                {
                    found.push(&projection.records[index]);
                }
            }
        }
        let after = |record: &&Record| {
            cursor.is_none_or(|cursor| projection.key(record) > cursor.as_bytes())
        };
        let mut found: Vec<&Record> = found.into_iter().filter(after).collect();
        found.sort_unstable_by(|a, b| projection.key(a).cmp(projection.key(b)));
        Ok(found.iter().map(|record| record.id).collect())
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
            &user.email.key(),
            &NoteText::of(user.note.as_deref()),
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

    /// Changed users leave dead records; past half the buffer, it is written afresh, and
    /// searches answer the same before and after.
    #[test]
    fn the_buffer_is_compacted_and_searches_stay_right() {
        let search = super::UserSearch::new();
        let ids = |needle: &str, projection: &super::Projection| -> Vec<u64> {
            let finder = memchr::memmem::Finder::new(needle.as_bytes());
            let mut found = Vec::new();
            let mut from = 0;
            while let Some(at) = finder.find(&projection.text[from..]).map(|at| from + at) {
                let (record, live) = projection.record_at(at).unwrap();
                if live {
                    found.push(record.id);
                }
                from = record.end;
            }
            found.sort_unstable();
            found
        };
        let mut projection = search.write();
        projection.stale = false;
        let note = |n: u64| super::NoteText::Lowercase(format!("note number {n:08}").into());
        for id in 0..30_000u64 {
            let key = format!("user-{id:08}@example.org");
            projection.apply(super::Touch::Written {
                id,
                key: key.into(),
                note: note(id),
            });
        }
        let full = projection.text.len();
        assert!(full > super::COMPACT_FROM_BYTES);
        assert_eq!(ids("number 00000042", &projection), [42]);
        // Rewrite every user: half the buffer goes dead, then it is compacted.
        for id in 0..30_000u64 {
            let key = format!("user-{id:08}@example.org");
            let changed = super::NoteText::Lowercase(format!("changed {id:08}").into());
            projection.apply(super::Touch::Written {
                id,
                key: key.into(),
                note: changed,
            });
        }
        assert!(
            projection.text.len() < full * 3 / 2,
            "{} of {full}",
            projection.text.len()
        );
        assert!(projection.dead_bytes * 2 <= projection.text.len());
        assert!(ids("number 00000042", &projection).is_empty());
        assert_eq!(ids("changed 00000042", &projection), [42]);
        assert_eq!(ids("user-00000042@", &projection), [42]);
        projection.apply(super::Touch::Removed(42));
        assert!(ids("user-00000042@", &projection).is_empty());
        assert_eq!(projection.live.len(), 29_999);
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
