//! Group commit: one thread takes every change waiting for it and applies them all inside one
//! redb write transaction, commits it once (durably: one flush), and only then answers each
//! change. "Acknowledged means durable" holds: nobody hears of a change before the commit that
//! carries it, and a failed commit fails every change of its batch.
//!
//! Each change stays atomic and independent. A change commits into the shared transaction only
//! when its own store calls committed; one that was refused or failed after it began writing
//! (its `WriteTxn` dropped or aborted), that panicked, or that read the database while the batch
//! held changes the read can't see (reads outside the shared transaction see the last commit)
//! makes the batch redo itself: the shared transaction is dropped and every change of the batch
//! runs again, each in its own transaction committed without a flush, rolled back alone when
//! refused, and one flush then makes them durable. Refusals are rare under load; the common
//! batch costs one commit.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use redb::Database;
use tokio::sync::mpsc;

use super::memory::InMemory;
use super::sealing::Sealer;
use super::search::Touch;
use super::{Store, StoreError};

/// How many changes one commit carries at most; more wait for the next.
const MAX_BATCH: usize = 512;
/// Changes that may wait for the writer before senders wait to send.
const QUEUE: usize = 4096;

/// A change the writer applies: possibly twice, when its batch has to be redone change by change.
pub(super) trait Change: Send {
    /// Runs the change's store work, keeping its outcome (the last run's, after a redo).
    fn apply(&mut self, store: &Store);
    /// Answers the sender with the kept outcome, given whether the batch became durable.
    fn answer(self: Box<Self>, durable: Result<(), Arc<StoreError>>);
    /// The writer's last change: once its batch is committed the writer ends.
    fn stops_the_writer(&self) -> bool {
        false
    }
}

/// Ends the writer after the changes queued before it (`Store::close`).
pub(super) struct Stop(pub(super) tokio::sync::oneshot::Sender<()>);

impl Change for Stop {
    fn apply(&mut self, _store: &Store) {}

    fn answer(self: Box<Self>, _durable: Result<(), Arc<StoreError>>) {
        let _ = self.0.send(());
    }

    fn stops_the_writer(&self) -> bool {
        true
    }
}

pub(super) type Job = Box<dyn Change>;

/// How write transactions begun on the writer thread commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not applying a batch: each transaction commits durably on its own.
    Direct,
    /// Every change of the batch writes into one shared transaction (`SHARED`).
    Shared,
    /// Redoing a batch: each change in its own transaction without a flush; a flush follows.
    OneByOne,
}

/// What the changes committed into the shared transaction did to what is kept in memory; applied
/// when the shared transaction commits.
#[derive(Default)]
pub(super) struct Effects {
    pub(super) touched: Vec<Touch>,
    pub(super) api_keys: bool,
    pub(super) settings: bool,
    pub(super) users: bool,
    pub(super) roles: bool,
}

thread_local! {
    static MODE: Cell<Mode> = const { Cell::new(Mode::Direct) };
    /// The batch's transaction, while no change has it open (`WriteTxn` takes it and gives it
    /// back at commit).
    static SHARED: RefCell<Option<redb::WriteTransaction>> = const { RefCell::new(None) };
    /// Whether a change committed into the shared transaction (else there is nothing to commit).
    static PENDING: Cell<bool> = const { Cell::new(false) };
    /// The shared transaction can't be committed as it is: the batch must be redone.
    static REDO: Cell<bool> = const { Cell::new(false) };
    static EFFECTS: RefCell<Effects> = RefCell::new(Effects::default());
    /// One by one: whether any change opened a write transaction (else nothing to flush).
    static WROTE: Cell<bool> = const { Cell::new(false) };
}

/// How a write transaction begun now should behave.
// Built once per transaction and moved straight into a `WriteTxn`: boxing the transaction would
// cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Begin {
    /// Commit durably on its own.
    Durable,
    /// Commit without a flush: the batch's flush follows.
    Unflushed,
    /// Write into the batch's shared transaction.
    Shared(redb::WriteTransaction),
    /// The change already has the shared transaction open: a second one would wait for it
    /// forever.
    Nested,
}

/// Called by `Store::begin_write`.
pub(super) fn begin() -> Begin {
    match MODE.get() {
        Mode::Direct => Begin::Durable,
        Mode::OneByOne => {
            WROTE.set(true);
            Begin::Unflushed
        }
        Mode::Shared => match SHARED.take() {
            Some(txn) => Begin::Shared(txn),
            None => Begin::Nested,
        },
    }
}

/// A change committed its part of the shared transaction.
pub(super) fn give_back_committed(txn: redb::WriteTransaction, effects: Effects) {
    SHARED.set(Some(txn));
    PENDING.set(true);
    EFFECTS.with_borrow_mut(|batch| {
        batch.touched.extend(effects.touched);
        batch.api_keys |= effects.api_keys;
        batch.settings |= effects.settings;
        batch.users |= effects.users;
        batch.roles |= effects.roles;
    });
}

/// A change let go of the shared transaction without committing: what it wrote can't be taken
/// out again, so the batch is redone one by one.
pub(super) fn give_back_uncommitted(txn: redb::WriteTransaction) {
    SHARED.set(Some(txn));
    REDO.set(true);
}

/// Called before the store reads outside a write transaction: on the writer thread, with changes
/// waiting in the shared transaction, the read wouldn't see them, so the batch is redone one by
/// one (where every read sees every change before it).
pub(super) fn reading() {
    if MODE.get() == Mode::Shared && PENDING.get() {
        REDO.set(true);
    }
}

/// How many batches carried how many changes, since the store was opened.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub batches: AtomicU64,
    pub changes: AtomicU64,
    /// Batches that had to be redone one change at a time.
    pub redone: AtomicU64,
    /// Cleared when the writer thread ends (its store is gone, or it died).
    pub running: std::sync::atomic::AtomicBool,
}

/// Clears `running` however the writer's loop ends.
struct Running<'a>(&'a WriterStats);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

/// The way to the writer thread, shared by every handle of one store.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    pub(super) stats: Arc<WriterStats>,
}

impl Writer {
    /// Starts the writer thread of a store. The thread holds only weak handles: when the last
    /// `Store` goes, the queue closes and the thread ends, releasing the file.
    pub(super) fn start(
        db: &Arc<Database>,
        sealer: &Arc<Sealer>,
        memory: &Arc<InMemory>,
    ) -> std::io::Result<Arc<Writer>> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let stats = Arc::new(WriterStats::default());
        stats.running.store(true, Ordering::Release);
        let writer = Arc::new(Writer {
            jobs,
            stats: Arc::clone(&stats),
        });
        let handles = (
            Arc::downgrade(db),
            Arc::downgrade(sealer),
            Arc::downgrade(&writer),
            Arc::downgrade(memory),
        );
        std::thread::Builder::new()
            .name("roost-writer".into())
            .spawn(move || run(queue, handles, &stats))?;
        Ok(writer)
    }

    /// Changes waiting for the writer.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }

    /// Queues a change, waiting (asynchronously) while the queue is full.
    pub(super) async fn submit(&self, job: Job) -> Result<(), StoreError> {
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::WriterClosed)
    }
}

type Handles = (Weak<Database>, Weak<Sealer>, Weak<Writer>, Weak<InMemory>);

fn run(mut queue: mpsc::Receiver<Job>, handles: Handles, stats: &WriterStats) {
    let _running = Running(stats);
    let mut stopping = false;
    while !stopping && let Some(first) = queue.blocking_recv() {
        stopping = first.stops_the_writer();
        let mut batch = vec![first];
        while !stopping && batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => {
                    stopping = job.stops_the_writer();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let (Some(db), Some(sealer), Some(writer), Some(memory)) = (
            handles.0.upgrade(),
            handles.1.upgrade(),
            handles.2.upgrade(),
            handles.3.upgrade(),
        ) else {
            // The store is gone: the changes are dropped unanswered, and their senders hear
            // that the writer closed.
            return;
        };
        let store = Store {
            db,
            sealer,
            writer,
            memory,
        };
        let count = batch.len() as u64;
        let durable = match apply_shared(&store, &mut batch) {
            Some(committed) => committed,
            None => {
                stats.redone.fetch_add(1, Ordering::Relaxed);
                apply_one_by_one(&store, &mut batch)
            }
        };
        if let Err(error) = &durable {
            tracing::error!(
                "committing a batch of {count} changes failed: {}",
                crate::error_chain::error_chain(error.as_ref())
            );
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.changes.fetch_add(count, Ordering::Relaxed);
        if stopping {
            // Before anyone hears back: once `close` returns, writes are refused and readiness
            // says the writer stopped.
            queue.close();
            stats.running.store(false, Ordering::Release);
        }
        // Let go of the store before anyone hears back: whoever drops the last handle after
        // their answer finds the file closed.
        drop(store);
        for job in batch {
            job.answer(durable.clone());
        }
    }
}

/// Applies the batch in one shared transaction and commits it: `None` when it must be redone one
/// by one instead (nothing of it was committed then).
fn apply_shared(store: &Store, batch: &mut [Job]) -> Option<Result<(), Arc<StoreError>>> {
    // Cannot begin: one by one, each change hears why.
    let txn = store.db.begin_write().ok()?;
    SHARED.set(Some(txn));
    PENDING.set(false);
    REDO.set(false);
    EFFECTS.take();
    MODE.set(Mode::Shared);
    for job in batch.iter_mut() {
        let applied =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.apply(store))).is_ok();
        if !applied {
            REDO.set(true);
        }
        if REDO.get() {
            break;
        }
    }
    MODE.set(Mode::Direct);
    let txn = SHARED.take();
    let effects = EFFECTS.take();
    if REDO.get() {
        // Dropping the transaction rolls back everything the batch wrote.
        return None;
    }
    let txn = txn?;
    if !PENDING.get() {
        return Some(txn.abort().map_err(|error| Arc::new(error.into())));
    }
    Some(store.commit_with_effects(txn, effects).map_err(Arc::new))
}

/// Applies each change of the batch in its own transaction, committed without a flush (a refused
/// change rolls back alone), then makes them all durable with one flush.
fn apply_one_by_one(store: &Store, batch: &mut [Job]) -> Result<(), Arc<StoreError>> {
    MODE.set(Mode::OneByOne);
    WROTE.set(false);
    for job in batch.iter_mut() {
        // A change that panics is rolled back (its transaction is dropped) and its sender hears
        // the writer lost it; the others go on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.apply(store)));
    }
    MODE.set(Mode::Direct);
    if WROTE.get() {
        store.flush().map_err(Arc::new)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::audit::Actor;
    use super::super::{NewUser, StoreError, UserRef};
    use super::*;
    use crate::domain::{AccessLevel, Email, Refusal};

    fn new_user(email: &str) -> NewUser {
        NewUser {
            email: Email::parse(email).unwrap(),
            access_level: AccessLevel::User,
            note: None,
            two_factor_required: false,
        }
    }

    /// Submits `work` to the writer from a task of its own.
    fn submit(
        store: &Store,
        work: impl FnMut(&Store) -> Result<(), StoreError> + Send + 'static,
    ) -> tokio::task::JoinHandle<Result<(), StoreError>> {
        let store = store.clone();
        tokio::spawn(async move { store.write_async(work).await })
    }

    /// One batch mixing accepted changes, changes a rule refuses and one that panics: each
    /// accepted change is applied, each refused one leaves no trace, and one flush carries them.
    #[tokio::test]
    async fn a_batch_keeps_each_change_independent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for email in ["a@x.io", "b@x.io"] {
            store
                .add_user(&Actor::system(), new_user(email), None)
                .unwrap();
        }
        let audit_before = store.audit_len().unwrap();

        // Hold the writer on a first change until the others are all waiting behind it.
        let mut changes = Vec::new();
        hold_writer_until(&store, 31, || {
            for n in 0..10 {
                // Accepted: notes on existing users, and new users.
                changes.push((
                    "accepted",
                    submit(&store, move |store| {
                        let who = UserRef::Email(Email::parse("a@x.io").unwrap());
                        store.set_note(&Actor::system(), &who, Some(format!("note {n}")))?;
                        store.add_user(
                            &Actor::system(),
                            new_user(&format!("new{n}@x.io")),
                            None,
                        )?;
                        Ok(())
                    }),
                ));
                // Refused: a taken email, an unknown user.
                changes.push((
                    "taken",
                    submit(&store, move |store| {
                        let mut taken = new_user("B@x.io");
                        taken.note = Some(format!("intruder {n}"));
                        store.add_user(&Actor::system(), taken, None).map(|_| ())
                    }),
                ));
                changes.push((
                    "unknown",
                    submit(&store, |store| {
                        let who = UserRef::Email(Email::parse("nobody@x.io").unwrap());
                        store
                            .set_note(&Actor::system(), &who, Some("x".into()))
                            .map(|_| ())
                    }),
                ));
            }
            changes.push(("panics", submit(&store, |_| panic!("a change that fails"))));
        })
        .await;

        for (kind, change) in changes {
            let outcome = change.await.unwrap();
            match kind {
                "accepted" => outcome.unwrap(),
                "taken" => assert!(matches!(
                    outcome,
                    Err(StoreError::Refused(Refusal::UserExists(_)))
                )),
                "unknown" => assert!(matches!(
                    outcome,
                    Err(StoreError::Refused(Refusal::UserNotFound))
                )),
                _ => assert!(outcome.is_err(), "{kind}"),
            }
        }
        // The first change's batch, then one for all 31 waiting behind it (the users added
        // before went straight to the database, not through the writer), which the refusals
        // made redo itself one change at a time.
        assert_eq!(store.writer_counts(), (2, 32, 1));
        assert_eq!(store.user_count().unwrap(), 12);
        let b = store
            .user_details(&UserRef::Email(Email::parse("b@x.io").unwrap()))
            .unwrap();
        assert_eq!(b.user.note, None);
        // Ten notes and ten additions on the trail; nothing of the refused ones.
        assert_eq!(store.audit_len().unwrap() - audit_before, 20);
        drop(store);
        // And all of it was flushed: the file reopens with it.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.user_count().unwrap(), 12);
    }

    /// Holds the writer on a change until `count` more wait behind it, then lets it go.
    async fn hold_writer_until(store: &Store, count: usize, changes: impl FnOnce()) {
        let (started, has_started) = tokio::sync::oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let mut started = Some(started);
        let first = submit(store, move |_| {
            if let Some(started) = started.take() {
                let _ = started.send(());
            }
            let _ = released.recv();
            Ok(())
        });
        has_started.await.unwrap();
        changes();
        while store.writer.waiting() < count {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
    }

    /// A batch of accepted changes is one shared transaction: one commit, nothing redone, and
    /// every change durable.
    #[tokio::test]
    async fn accepted_changes_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut added = Vec::new();
        hold_writer_until(&store, 40, || {
            for n in 0..40 {
                added.push(submit(&store, move |store| {
                    store.add_user(&Actor::system(), new_user(&format!("u{n}@x.io")), None)?;
                    let who = UserRef::Email(Email::parse(&format!("u{n}@x.io")).unwrap());
                    store.set_note(&Actor::system(), &who, Some(format!("note {n}")))?;
                    Ok(())
                }));
            }
        })
        .await;
        for change in added {
            change.await.unwrap().unwrap();
        }
        assert_eq!(store.writer_counts(), (2, 41, 0));
        // Readers see the batch's changes once it committed: the user copies were dropped.
        let who = UserRef::Email(Email::parse("u39@x.io").unwrap());
        assert_eq!(
            store.user_details(&who).unwrap().user.note.as_deref(),
            Some("note 39")
        );
        assert_eq!(store.audit_len().unwrap(), 80);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.user_count().unwrap(), 40);
        assert_eq!(
            store.user_details(&who).unwrap().user.note.as_deref(),
            Some("note 39")
        );
    }

    /// A change that reads (outside its transaction) what an earlier change of its batch wrote
    /// sees it: the read makes the batch redo itself one change at a time.
    #[tokio::test]
    async fn a_read_sees_the_changes_before_it_in_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .add_user(&Actor::system(), new_user("a@x.io"), None)
            .unwrap();
        let who = UserRef::Email(Email::parse("a@x.io").unwrap());
        // Read once, so the second read would come from memory.
        store.user_details(&who).unwrap();
        let (mut writes, mut read) = (None, None);
        hold_writer_until(&store, 2, || {
            let note_of = who.clone();
            writes = Some(submit(&store, move |store| {
                store.set_note(&Actor::system(), &note_of, Some("first".into()))?;
                Ok(())
            }));
            let read_of = who.clone();
            let (seen, saw) = std::sync::mpsc::channel();
            read = Some((
                submit(&store, move |store| {
                    let _ = seen.send(store.user_details(&read_of)?.user.note.clone());
                    Ok(())
                }),
                saw,
            ));
        })
        .await;
        writes.unwrap().await.unwrap().unwrap();
        let (read, saw) = read.unwrap();
        read.await.unwrap().unwrap();
        // The last run of the reading change (the redo) saw the note.
        assert_eq!(saw.try_iter().last().flatten().as_deref(), Some("first"));
        assert_eq!(store.writer_counts().2, 1);
    }
}
