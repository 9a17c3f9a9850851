//! The time the console's schedules run by: the system clock, or a clock a test sets, so that
//! scheduled offboardings (and what else waits for a time) are tested without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Unix seconds now: the system's, or a set time that moves only when told.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicU64>>);

impl Clock {
    /// The system clock (what `roost serve` runs by).
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock standing at `unix` until `set` or `advance` moves it; its clones move with it.
    pub fn manual(unix: u64) -> Clock {
        Clock(Some(Arc::new(AtomicU64::new(unix))))
    }

    pub fn now(&self) -> u64 {
        match &self.0 {
            Some(set) => set.load(Ordering::Acquire),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_secs()),
        }
    }

    /// Moves a manual clock to `unix`; the system clock can't be moved (does nothing).
    pub fn set(&self, unix: u64) {
        if let Some(set) = &self.0 {
            set.store(unix, Ordering::Release);
        }
    }

    /// Moves a manual clock on by `secs`.
    pub fn advance(&self, secs: u64) {
        if let Some(set) = &self.0 {
            set.fetch_add(secs, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_with_it() {
        let clock = Clock::manual(1_000);
        let clone = clock.clone();
        clock.advance(60);
        assert_eq!(clone.now(), 1_060);
        clone.set(5);
        assert_eq!(clock.now(), 5);
        let system = Clock::system();
        system.set(5);
        assert!(system.now() > 1_700_000_000);
    }
}
