//! A background loop that can be asked to stop between two pieces of work (the mail and webhook
//! senders): graceful shutdown waits for it, readiness asks whether it still runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// The handle of a running loop: whether it still runs, and how to stop it.
#[derive(Clone)]
pub struct Worker {
    running: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
    stop: Arc<Notify>,
    finished: Arc<Notify>,
}

impl Default for Worker {
    fn default() -> Self {
        Worker {
            running: Arc::new(AtomicBool::new(true)),
            stopping: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(Notify::new()),
            finished: Arc::new(Notify::new()),
        }
    }
}

impl Worker {
    /// Whether the loop is alive (it ends when stopped, or if it panicked).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Whether a stop was asked for: the loop checks it between two pieces of work.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// The flag `is_stopping` reads, for work that checks it between its pieces.
    pub fn stopping_flag(&self) -> &AtomicBool {
        &self.stopping
    }

    /// Resolves when a stop is asked for (for the loop's wait between rounds).
    pub async fn stop_requested(&self) {
        self.stop.notified().await;
    }

    /// Asks the loop to stop once the work under way (if any) is done, and waits at most
    /// `within` for it. Work cut short stays queued and is done after the next start.
    pub async fn stop(&self, within: Duration) -> bool {
        self.stopping.store(true, Ordering::Release);
        self.stop.notify_one();
        let finished = self.finished.notified();
        if !self.is_running() {
            return true;
        }
        tokio::time::timeout(within, finished).await.is_ok() || !self.is_running()
    }

    /// Held by the loop for as long as it runs: dropped (however the loop ends, a panic too), it
    /// clears `running` and wakes whoever waits for the end.
    pub fn running(&self) -> Running {
        Running {
            running: Arc::clone(&self.running),
            finished: Arc::clone(&self.finished),
        }
    }
}

pub struct Running {
    running: Arc<AtomicBool>,
    finished: Arc<Notify>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Release);
        self.finished.notify_waiters();
    }
}
