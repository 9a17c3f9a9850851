//! How repeated lockouts grow (the rule Kanidm's softlock follows): the first lock lasts a base
//! time, each further one within a day of the first twice the one before, up to a cap. Guessing
//! a password or a TOTP code over days then stops being a matter of patience.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escalation {
    pub base_secs: u64,
    pub max_secs: u64,
    /// How long after the first lock of a series a new lock still continues it.
    pub memory_secs: u64,
}

impl Escalation {
    /// Login and factor-step locks: a minute, doubling up to four hours, a series lasts a day.
    pub const ACCOUNT: Escalation = Escalation {
        base_secs: 60,
        max_secs: 4 * 3600,
        memory_secs: 24 * 3600,
    };

    /// How long the `lockouts`-th lock of a series lasts (the first is 1).
    pub fn lock_secs(&self, lockouts: u32) -> u64 {
        let doublings = lockouts.saturating_sub(1).min(32);
        self.base_secs
            .saturating_mul(1u64 << doublings)
            .min(self.max_secs)
    }

    /// The lock that follows `previous` (if any) when one engages at `now`.
    pub fn next_lock(&self, previous: Option<Lock>, now: u64) -> Lock {
        let (lockouts, since) = match previous {
            Some(lock) if now.saturating_sub(lock.since) < self.memory_secs => {
                (lock.lockouts.saturating_add(1), lock.since)
            }
            _ => (1, now),
        };
        Lock {
            until: now.saturating_add(self.lock_secs(lockouts)),
            lockouts,
            since,
        }
    }
}

/// Refused until `until`; `lockouts` locks since `since` decide how long the next one lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub until: u64,
    pub lockouts: u32,
    pub since: u64,
}

impl Lock {
    pub fn is_active(&self, now: u64) -> bool {
        self.until > now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_double_within_the_memory_and_start_over_after() {
        let rule = Escalation::ACCOUNT;
        let lengths: Vec<u64> = (1..=10).map(|n| rule.lock_secs(n)).collect();
        assert_eq!(
            lengths,
            [60, 120, 240, 480, 960, 1920, 3840, 7680, 14400, 14400]
        );
        assert_eq!(rule.lock_secs(u32::MAX), 14400);
        let first = rule.next_lock(None, 1000);
        assert_eq!(
            first,
            Lock {
                until: 1060,
                lockouts: 1,
                since: 1000
            }
        );
        let second = rule.next_lock(Some(first), 2000);
        assert_eq!(
            second,
            Lock {
                until: 2120,
                lockouts: 2,
                since: 1000
            }
        );
        let fresh = rule.next_lock(Some(second), 1000 + 24 * 3600);
        assert_eq!(fresh.lockouts, 1);
        assert!(fresh.is_active(1000 + 24 * 3600));
        assert!(!fresh.is_active(fresh.until));
    }
}
