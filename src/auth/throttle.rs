//! Failure throttling: after `limit` failures within `window`, a key (a client address, an
//! account) is refused until the window ends. Kept in memory: a restart forgets it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Throttle<K> {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<K, FailureWindow>>,
}

struct FailureWindow {
    started: Instant,
    count: u32,
}

/// Beyond this many tracked addresses, expired windows are swept on the next failure.
const SWEEP_ABOVE: usize = 10_000;

impl<K: Hash + Eq> Throttle<K> {
    pub fn new(limit: u32, window: Duration) -> Throttle<K> {
        Throttle {
            limit,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until `key` may try again, if it is over the limit.
    pub fn retry_after(&self, key: &K) -> Option<u64> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let window = failures.get(key)?;
        let elapsed = window.started.elapsed();
        (window.count >= self.limit && elapsed < self.window)
            .then(|| (self.window - elapsed).as_secs().max(1))
    }

    pub fn record_failure(&self, key: K) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > SWEEP_ABOVE {
            failures.retain(|_, w| w.started.elapsed() < self.window);
        }
        let window = failures.entry(key).or_insert(FailureWindow {
            started: Instant::now(),
            count: 0,
        });
        if window.started.elapsed() >= self.window {
            *window = FailureWindow {
                started: Instant::now(),
                count: 0,
            };
        }
        window.count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn blocks_after_limit_until_window_ends() {
        let throttle = Throttle::new(3, Duration::from_millis(200));
        let client: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..3 {
            assert_eq!(throttle.retry_after(&client), None);
            throttle.record_failure(client);
        }
        assert!(throttle.retry_after(&client).is_some());
        assert_eq!(throttle.retry_after(&other), None);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(throttle.retry_after(&client), None);
    }
}
