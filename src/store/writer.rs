//! Group commit: one thread applies every change waiting for it, each in its own write
//! transaction committed without a disk flush, then makes the whole batch durable with one
//! flushed commit, and only then answers each change. A change stays atomic and independent (a
//! refused one rolls back alone; the others in its batch go on), and "acknowledged means
//! durable" holds: nobody hears of a change before the flush that carries it. A failed flush
//! fails every change of its batch.
//!
//! Changes a batch made are visible to readers as soon as they are applied, a flush (about a
//! millisecond) before they are acknowledged.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use redb::Database;
use tokio::sync::mpsc;

use super::memory::InMemory;
use super::sealing::Sealer;
use super::{Store, StoreError};

/// How many changes one flush carries at most; more wait for the next.
const MAX_BATCH: usize = 512;
/// Changes that may wait for the writer before senders wait to send.
const QUEUE: usize = 4096;

/// What a change hands back once it ran: called with the outcome of its batch's flush.
pub(super) type Reply = Box<dyn FnOnce(Result<(), Arc<StoreError>>) + Send>;
/// A change: runs on the writer thread and returns how to answer.
pub(super) type Job = Box<dyn FnOnce(&Store) -> Reply + Send>;

thread_local! {
    /// Set on the writer thread while it applies a batch: write transactions then commit
    /// without a flush (`Store::begin_write`), and the batch's flush makes them durable.
    static IN_BATCH: Cell<bool> = const { Cell::new(false) };
    /// Whether any change of the batch opened a write transaction (else nothing to flush).
    static WROTE: Cell<bool> = const { Cell::new(false) };
}

/// Whether the caller is a change applied by the writer (so its commit needs no flush).
pub(super) fn in_batch() -> bool {
    IN_BATCH.get()
}

pub(super) fn note_write() {
    WROTE.set(true);
}

/// How many flushes carried how many changes, since the store was opened.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub batches: AtomicU64,
    pub changes: AtomicU64,
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
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
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
        IN_BATCH.set(true);
        WROTE.set(false);
        let replies: Vec<Reply> = batch
            .into_iter()
            .filter_map(|job| {
                // A change that panics is rolled back (its transaction is dropped) and its
                // sender hears the writer lost it; the others go on.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&store))).ok()
            })
            .collect();
        IN_BATCH.set(false);
        let flushed = if WROTE.get() {
            store.flush().map_err(Arc::new)
        } else {
            Ok(())
        };
        if let Err(error) = &flushed {
            tracing::error!(
                "flushing a batch of {count} changes failed: {}",
                crate::error_chain::error_chain(error.as_ref())
            );
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.changes.fetch_add(count, Ordering::Relaxed);
        // Let go of the store before anyone hears back: whoever drops the last handle after
        // their answer finds the file closed.
        drop(store);
        for reply in replies {
            reply(flushed.clone());
        }
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
        work: impl FnOnce(&Store) -> Result<(), StoreError> + Send + 'static,
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
        let (started, has_started) = tokio::sync::oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let first = submit(&store, move |_| {
            let _ = started.send(());
            let _ = released.recv();
            Ok(())
        });
        has_started.await.unwrap();

        let mut changes = Vec::new();
        for n in 0..10 {
            // Accepted: notes on existing users, and new users.
            changes.push((
                "accepted",
                submit(&store, move |store| {
                    let who = UserRef::Email(Email::parse("a@x.io").unwrap());
                    store.set_note(&Actor::system(), &who, Some(format!("note {n}")))?;
                    store.add_user(&Actor::system(), new_user(&format!("new{n}@x.io")), None)?;
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
        while store.writer.waiting() < changes.len() {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        first.await.unwrap().unwrap();

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
        // before went straight to the database, not through the writer).
        assert_eq!(store.writer_stats(), (2, 32));
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
}
