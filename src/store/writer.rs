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
        for reply in replies {
            reply(flushed.clone());
        }
    }
}
