//! Failure throttling per key (a client address, an account).
//!
//! An attempt reserves its slot *before* the work it guards (a password check) in one atomic
//! step, so N parallel guesses run at most `limit` checks whatever N is: a reservation counts
//! like a failure until it is settled, `succeeded` gives it back (and, for accounts, forgets the
//! earlier failures) and `failed` keeps it. A throttle with an `Escalation` locks the key once
//! `limit` failures are reached, and each further lock within a day lasts twice as long, up to a
//! cap; those locks are what the caller persists, so a restart doesn't lift them.
//!
//! Time is passed in (unix seconds), so the rules are tested without sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

pub use crate::domain::{Escalation, Lock};

/// Why an attempt may not run, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after_secs: u64,
}

#[derive(Debug, Default)]
struct Entry {
    window_start: u64,
    failures: u32,
    /// Reserved and not yet settled.
    in_flight: u32,
    lock: Option<Lock>,
}

impl Entry {
    fn starting(now: u64) -> Entry {
        Entry {
            window_start: now,
            ..Entry::default()
        }
    }
}

pub struct Throttle<K> {
    limit: u32,
    window_secs: u64,
    escalation: Option<Escalation>,
    entries: Mutex<HashMap<K, Entry>>,
}

/// Beyond this many tracked keys, entries with nothing to remember are swept on the next
/// reservation; beyond `FORGET_HISTORY_ABOVE`, lock histories of expired locks go too.
const SWEEP_ABOVE: usize = 10_000;
const FORGET_HISTORY_ABOVE: usize = 100_000;

impl<K: Hash + Eq + Clone> Throttle<K> {
    /// At most `limit` failures (and attempts in flight) per `window_secs`.
    pub fn new(limit: u32, window_secs: u64) -> Throttle<K> {
        Throttle {
            limit,
            window_secs,
            escalation: None,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The same, and `limit` failures lock the key as `escalation` says.
    pub fn escalating(limit: u32, window_secs: u64, escalation: Escalation) -> Throttle<K> {
        Throttle {
            escalation: Some(escalation),
            ..Throttle::new(limit, window_secs)
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks and counts one attempt in one step: refused while locked or while the failures
    /// and attempts in flight reach the limit.
    pub fn reserve(&self, key: &K, now: u64) -> Result<(), Refused> {
        let mut entries = self.entries();
        if entries.len() > SWEEP_ABOVE && !entries.contains_key(key) {
            self.sweep(&mut entries, now);
        }
        let entry = entries
            .entry(key.clone())
            .or_insert_with(|| Entry::starting(now));
        if let Some(lock) = entry.lock.filter(|lock| lock.until > now) {
            return Err(Refused {
                retry_after_secs: lock.until - now,
            });
        }
        if now >= entry.window_start.saturating_add(self.window_secs) {
            entry.window_start = now;
            entry.failures = 0;
        }
        if entry.failures.saturating_add(entry.in_flight) >= self.limit {
            // Failures fill the window until it ends; attempts in flight settle within moments.
            let retry_after_secs = if entry.failures >= self.limit {
                let window_end = entry.window_start.saturating_add(self.window_secs);
                window_end.saturating_sub(now).max(1)
            } else {
                1
            };
            return Err(Refused { retry_after_secs });
        }
        entry.in_flight += 1;
        Ok(())
    }

    /// A reserved attempt succeeded: its slot is given back; with `forget_failures` the key's
    /// earlier failures are forgotten too (a correct password for an account).
    pub fn succeeded(&self, key: &K, forget_failures: bool) {
        let mut entries = self.entries();
        if let Some(entry) = entries.get_mut(key) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            if forget_failures {
                entry.failures = 0;
            }
        }
    }

    /// A reserved attempt did no work (the hashing queue was full): its slot is given back.
    pub fn cancelled(&self, key: &K) {
        self.succeeded(key, false);
    }

    /// A reserved attempt failed: it stays counted. Returns the lock that engaged, if this was
    /// the failure that reached the limit of an escalating throttle.
    pub fn failed(&self, key: &K, now: u64) -> Option<Lock> {
        let mut entries = self.entries();
        let entry = entries
            .entry(key.clone())
            .or_insert_with(|| Entry::starting(now));
        entry.in_flight = entry.in_flight.saturating_sub(1);
        if now >= entry.window_start.saturating_add(self.window_secs) {
            entry.window_start = now;
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        let escalation = self.escalation?;
        if entry.failures < self.limit {
            return None;
        }
        let lock = escalation.next_lock(entry.lock, now);
        entry.lock = Some(lock);
        entry.failures = 0;
        entry.window_start = lock.until;
        Some(lock)
    }

    /// Seconds until `key` may try again, if it may not now (for callers that count failures
    /// after the fact, where the check is cheap: bad API keys).
    pub fn retry_after(&self, key: &K, now: u64) -> Option<u64> {
        let entries = self.entries();
        let entry = entries.get(key)?;
        if let Some(lock) = entry.lock.filter(|lock| lock.until > now) {
            return Some(lock.until - now);
        }
        let window_end = entry.window_start.saturating_add(self.window_secs);
        (entry.failures >= self.limit && now < window_end).then(|| (window_end - now).max(1))
    }

    /// Counts a failure that wasn't reserved (see `retry_after`).
    pub fn record_failure(&self, key: &K, now: u64) -> Option<Lock> {
        {
            let mut entries = self.entries();
            if entries.len() > SWEEP_ABOVE && !entries.contains_key(key) {
                self.sweep(&mut entries, now);
            }
            entries
                .entry(key.clone())
                .or_insert_with(|| Entry::starting(now))
                .in_flight += 1;
        }
        self.failed(key, now)
    }

    /// The key's lock, if one is in force.
    pub fn lock_of(&self, key: &K, now: u64) -> Option<Lock> {
        self.entries()
            .get(key)
            .and_then(|entry| entry.lock)
            .filter(|lock| lock.until > now)
    }

    /// Restores a lock kept across a restart.
    pub fn restore_lock(&self, key: K, lock: Lock) {
        let mut entries = self.entries();
        let entry = entries.entry(key).or_default();
        entry.window_start = lock.until;
        entry.lock = Some(lock);
    }

    /// Lifts a key's lock and forgets its failures and lock history (an admin unlocked it).
    pub fn unlock(&self, key: &K) {
        let mut entries = self.entries();
        if let Some(entry) = entries.get_mut(key) {
            entry.failures = 0;
            entry.lock = None;
            if entry.in_flight == 0 {
                entries.remove(key);
            }
        }
    }

    fn sweep(&self, entries: &mut HashMap<K, Entry>, now: u64) {
        let window = self.window_secs;
        let memory = self.escalation.map_or(0, |e| e.memory_secs);
        entries.retain(|_, entry| {
            entry.in_flight > 0
                || now < entry.window_start.saturating_add(window)
                || entry
                    .lock
                    .is_some_and(|lock| now < lock.until || now < lock.since.saturating_add(memory))
        });
        if entries.len() > FORGET_HISTORY_ABOVE {
            entries.retain(|_, entry| {
                entry.in_flight > 0
                    || now < entry.window_start.saturating_add(window)
                    || entry.lock.is_some_and(|lock| now < lock.until)
            });
        }
    }

    /// Keys tracked now (for tests of the sweep).
    pub fn tracked(&self) -> usize {
        self.entries().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    const ESCALATION: Escalation = Escalation::ACCOUNT;

    #[test]
    fn parallel_reservations_never_exceed_the_limit() {
        let throttle = Throttle::new(5, 60);
        let client: IpAddr = [127, 0, 0, 1].into();
        let granted = (0..100)
            .filter(|_| throttle.reserve(&client, 1000).is_ok())
            .count();
        assert_eq!(granted, 5);
        // Settling them: three fail, two succeed and give their slots back.
        for _ in 0..3 {
            assert_eq!(throttle.failed(&client, 1001), None);
        }
        throttle.succeeded(&client, false);
        throttle.succeeded(&client, false);
        assert!(throttle.reserve(&client, 1002).is_ok());
        assert!(throttle.reserve(&client, 1002).is_ok());
        // Full with two in flight: they settle within moments.
        let refused = throttle.reserve(&client, 1002).unwrap_err();
        assert_eq!(refused.retry_after_secs, 1);
        // Full with failures: the window has to end.
        throttle.failed(&client, 1002);
        throttle.failed(&client, 1002);
        let refused = throttle.reserve(&client, 1002).unwrap_err();
        assert_eq!(refused.retry_after_secs, 58);
        // The window ends: failures are forgotten.
        for _ in 0..5 {
            assert!(throttle.reserve(&client, 1060).is_ok());
        }
        assert!(throttle.reserve(&client, 1060).is_err());
    }

    #[test]
    fn success_forgets_an_accounts_failures_and_cancel_refunds() {
        let throttle = Throttle::escalating(3, 60, ESCALATION);
        let account = "ann@example.org".to_string();
        for _ in 0..2 {
            throttle.reserve(&account, 10).unwrap();
            throttle.failed(&account, 10);
        }
        throttle.reserve(&account, 10).unwrap();
        throttle.succeeded(&account, true);
        for _ in 0..2 {
            throttle.reserve(&account, 11).unwrap();
            assert_eq!(throttle.failed(&account, 11), None);
        }
        throttle.reserve(&account, 11).unwrap();
        throttle.cancelled(&account);
        throttle.reserve(&account, 11).unwrap();
        assert!(throttle.failed(&account, 11).is_some());
    }

    #[test]
    fn locks_double_within_a_day_up_to_the_cap_and_reset_after() {
        let throttle = Throttle::escalating(5, 60, ESCALATION);
        let account = "bob@example.org".to_string();
        let mut now = 100_000;
        let mut lengths = Vec::new();
        for _ in 0..10 {
            let mut engaged = None;
            for _ in 0..5 {
                throttle.reserve(&account, now).unwrap();
                engaged = throttle.failed(&account, now);
            }
            let lock = engaged.expect("the fifth failure locks");
            lengths.push(lock.until - now);
            assert_eq!(
                throttle.reserve(&account, lock.until - 1),
                Err(Refused {
                    retry_after_secs: 1
                })
            );
            now = lock.until;
        }
        assert_eq!(
            lengths,
            [60, 120, 240, 480, 960, 1920, 3840, 7680, 14400, 14400]
        );
        // A day after the first lock of the series, it starts over.
        let first = throttle.lock_of(&account, now - 1).unwrap().since;
        now = first + 24 * 3600;
        for _ in 0..5 {
            throttle.reserve(&account, now).unwrap();
            if let Some(lock) = throttle.failed(&account, now) {
                assert_eq!(lock.until - now, 60);
                assert_eq!(lock.lockouts, 1);
            }
        }
    }

    #[test]
    fn a_restored_lock_holds_and_unlock_lifts_it() {
        let throttle: Throttle<String> = Throttle::escalating(5, 60, ESCALATION);
        let account = "cy@example.org".to_string();
        let lock = Lock {
            until: 500,
            lockouts: 3,
            since: 100,
        };
        throttle.restore_lock(account.clone(), lock);
        assert_eq!(
            throttle.reserve(&account, 400),
            Err(Refused {
                retry_after_secs: 100
            })
        );
        assert_eq!(throttle.lock_of(&account, 400), Some(lock));
        // The next lock continues the series.
        for _ in 0..4 {
            throttle.reserve(&account, 500).unwrap();
            throttle.failed(&account, 500);
        }
        throttle.reserve(&account, 500).unwrap();
        let next = throttle.failed(&account, 500).unwrap();
        assert_eq!((next.lockouts, next.until), (4, 500 + 480));
        throttle.unlock(&account);
        assert!(throttle.reserve(&account, 501).is_ok());
        assert_eq!(throttle.lock_of(&account, 501), None);
    }

    #[test]
    fn after_the_fact_counting_blocks_after_the_limit() {
        let throttle = Throttle::new(3, 60);
        let client: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..3 {
            assert_eq!(throttle.retry_after(&client, 10), None);
            throttle.record_failure(&client, 10);
        }
        assert_eq!(throttle.retry_after(&client, 10), Some(60));
        assert_eq!(throttle.retry_after(&other, 10), None);
        assert_eq!(throttle.retry_after(&client, 70), None);
    }

    #[test]
    fn idle_keys_are_swept() {
        let throttle = Throttle::new(3, 60);
        for n in 0..=SWEEP_ABOVE as u32 {
            throttle.record_failure(&n, 10);
        }
        assert_eq!(throttle.tracked(), SWEEP_ABOVE + 1);
        throttle.reserve(&u32::MAX, 100).unwrap();
        assert_eq!(throttle.tracked(), 1);
    }
}
