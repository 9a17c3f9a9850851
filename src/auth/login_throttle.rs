//! The limits on guessing passwords, in one place: the login form, the current-password check of
//! "change password", and the forgot-password form (which has limits of its own, so that nobody
//! can lock someone out of logging in by asking for reset mails in their name).

use std::net::IpAddr;

use super::throttle::{Refused, Throttle};
use crate::domain::{Escalation, Lock};

/// Password checks per client address per minute (wrong ones, and ones still running).
pub const PER_CLIENT: u32 = 20;
pub const CLIENT_WINDOW_SECS: u64 = 60;
/// Wrong passwords per account within an hour before the account locks (`Escalation::ACCOUNT`).
pub const PER_ACCOUNT: u32 = 5;
pub const ACCOUNT_WINDOW_SECS: u64 = 3600;
/// Forgot-password requests per account and per client address within 15 minutes.
pub const FORGOT_PER_ACCOUNT: u32 = 3;
pub const FORGOT_PER_CLIENT: u32 = 10;
pub const FORGOT_WINDOW_SECS: u64 = 15 * 60;
/// Passkey sign-ins started per client address per minute: each keeps a ceremony in memory for
/// five minutes, and the ceremonies kept are bounded, so one address must not fill them (and
/// push out the ceremonies of people signing in).
pub const PASSKEY_STARTS_PER_CLIENT: u32 = 30;
pub const PASSKEY_STARTS_WINDOW_SECS: u64 = 60;

pub struct LoginThrottles {
    by_client: Throttle<IpAddr>,
    by_account: Throttle<String>,
    forgot_by_client: Throttle<IpAddr>,
    forgot_by_account: Throttle<String>,
    passkey_starts_by_client: Throttle<IpAddr>,
}

impl Default for LoginThrottles {
    fn default() -> Self {
        LoginThrottles {
            by_client: Throttle::new(PER_CLIENT, CLIENT_WINDOW_SECS),
            by_account: Throttle::escalating(PER_ACCOUNT, ACCOUNT_WINDOW_SECS, Escalation::ACCOUNT),
            forgot_by_client: Throttle::new(FORGOT_PER_CLIENT, FORGOT_WINDOW_SECS),
            forgot_by_account: Throttle::new(FORGOT_PER_ACCOUNT, FORGOT_WINDOW_SECS),
            passkey_starts_by_client: Throttle::new(
                PASSKEY_STARTS_PER_CLIENT,
                PASSKEY_STARTS_WINDOW_SECS,
            ),
        }
    }
}

/// A sign-in check that may run: its slots (client, and for a password the account) are reserved
/// until it is settled. Dropped unsettled (the request went away mid-check), it gives them back:
/// nobody saw its answer.
pub struct SignInAttempt<'a> {
    throttles: &'a LoginThrottles,
    client: Option<IpAddr>,
    /// None for a passkey: see `begin_passkey`.
    account: Option<String>,
    settled: bool,
}

impl LoginThrottles {
    /// Reserves a password check for `account` (a lowercase email) from `client`, or says how
    /// long to wait.
    pub fn begin(
        &self,
        client: Option<IpAddr>,
        account: &str,
        now: u64,
    ) -> Result<SignInAttempt<'_>, Refused> {
        if let Some(ip) = client {
            self.by_client.reserve(&ip, now)?;
        }
        let account = account.to_string();
        if let Err(refused) = self.by_account.reserve(&account, now) {
            if let Some(ip) = client {
                self.by_client.cancelled(&ip);
            }
            return Err(refused);
        }
        Ok(SignInAttempt {
            throttles: self,
            client,
            account: Some(account),
            settled: false,
        })
    }

    /// Reserves a passkey sign-in from `client`, within the same per-address limit as passwords.
    /// No account is charged: a passkey's signature can't be guessed, so an account limit would
    /// protect nothing and would let anyone lock its owner out by sending forged answers in their
    /// name (the user handle a passkey answer names is not a secret).
    pub fn begin_passkey(
        &self,
        client: Option<IpAddr>,
        now: u64,
    ) -> Result<SignInAttempt<'_>, Refused> {
        if let Some(ip) = client {
            self.by_client.reserve(&ip, now)?;
        }
        Ok(SignInAttempt {
            throttles: self,
            client,
            account: None,
            settled: false,
        })
    }

    /// Whether a forgot-password request for `account` from `client` may send mail. Every
    /// request counts, whatever the answer.
    pub fn allow_forgot_password(&self, client: Option<IpAddr>, account: &str, now: u64) -> bool {
        let by_client = client.is_none_or(|ip| {
            let allowed = self.forgot_by_client.reserve(&ip, now).is_ok();
            self.forgot_by_client.failed(&ip, now);
            allowed
        });
        let account = account.to_string();
        let by_account = self.forgot_by_account.reserve(&account, now).is_ok();
        self.forgot_by_account.failed(&account, now);
        by_client && by_account
    }

    /// Whether `client` may start another passkey sign-in now; every start counts.
    pub fn allow_passkey_start(&self, client: Option<IpAddr>, now: u64) -> Result<(), Refused> {
        let Some(ip) = client else {
            return Ok(());
        };
        self.passkey_starts_by_client.reserve(&ip, now)?;
        self.passkey_starts_by_client.failed(&ip, now);
        Ok(())
    }

    /// The account's login lock, if one is in force.
    pub fn lock_of(&self, account: &str, now: u64) -> Option<Lock> {
        self.by_account.lock_of(&account.to_string(), now)
    }

    /// Restores a login lock kept across a restart.
    pub fn restore_lock(&self, account: String, lock: Lock) {
        self.by_account.restore_lock(account, lock);
    }

    /// Lifts the account's lock and forgets its failures (an admin unlocked it).
    pub fn unlock(&self, account: &str) {
        self.by_account.unlock(&account.to_string());
    }
}

impl SignInAttempt<'_> {
    /// The password (or passkey) was right: the client's slot is given back and the account's failures
    /// forgotten.
    pub fn succeeded(mut self) {
        self.settled = true;
        if let Some(ip) = self.client {
            self.throttles.by_client.succeeded(&ip, false);
        }
        if let Some(account) = &self.account {
            self.throttles.by_account.succeeded(account, true);
        }
    }

    /// The password (or passkey) was wrong: the slots stay counted. Returns the account lock this failure
    /// engaged, for the caller to keep.
    pub fn failed(mut self, now: u64) -> Option<Lock> {
        self.settled = true;
        if let Some(ip) = self.client {
            self.throttles.by_client.failed(&ip, now);
        }
        let account = self.account.as_ref()?;
        self.throttles.by_account.failed(account, now)
    }

    /// No check ran (the hashing queue was full): both slots are given back.
    pub fn cancelled(mut self) {
        self.settled = true;
        self.give_back();
    }

    fn give_back(&self) {
        if let Some(ip) = self.client {
            self.throttles.by_client.cancelled(&ip);
        }
        if let Some(account) = &self.account {
            self.throttles.by_account.cancelled(account);
        }
    }
}

impl Drop for SignInAttempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_account_gives_the_client_slot_back() {
        let throttles = LoginThrottles::default();
        let client: Option<IpAddr> = Some([10, 0, 0, 1].into());
        let held: Vec<_> = (0..PER_ACCOUNT)
            .map(|_| throttles.begin(client, "ann@x.io", 100).unwrap())
            .collect();
        for _ in 0..50 {
            assert!(throttles.begin(client, "ann@x.io", 100).is_err());
        }
        drop(held);
        // The client was never charged for the refused ones: 20 other accounts still go.
        for n in 0..PER_CLIENT {
            let attempt = throttles.begin(client, &format!("u{n}@x.io"), 100).unwrap();
            attempt.failed(100);
        }
        assert!(throttles.begin(client, "ann@x.io", 100).is_err());
    }

    #[test]
    fn five_wrong_passwords_lock_the_account_and_the_right_one_is_refused_then() {
        let throttles = LoginThrottles::default();
        for n in 0..PER_ACCOUNT {
            let lock = throttles.begin(None, "bob@x.io", 100).unwrap().failed(100);
            assert_eq!(lock.is_some(), n + 1 == PER_ACCOUNT);
        }
        let refused = throttles.begin(None, "bob@x.io", 130).err().unwrap();
        assert_eq!(refused.retry_after_secs, 30);
        assert!(throttles.lock_of("bob@x.io", 130).is_some());
        throttles.unlock("bob@x.io");
        throttles.begin(None, "bob@x.io", 130).unwrap().succeeded();
    }

    #[test]
    fn forgot_password_has_its_own_limits_and_never_locks_login() {
        let throttles = LoginThrottles::default();
        let client: Option<IpAddr> = Some([10, 0, 0, 2].into());
        let allowed = (0..10)
            .filter(|_| throttles.allow_forgot_password(client, "cy@x.io", 100))
            .count();
        assert_eq!(allowed, FORGOT_PER_ACCOUNT as usize);
        throttles.begin(client, "cy@x.io", 100).unwrap().succeeded();
        // Ten requests from one address for ten accounts: the client limit ends it.
        let allowed = (0..20)
            .filter(|n| throttles.allow_forgot_password(client, &format!("{n}@y.io"), 100))
            .count();
        assert_eq!(
            allowed, 0,
            "the ten of the first loop already used the client's limit"
        );
    }

    #[test]
    fn failed_passkeys_count_against_the_address_and_never_lock_an_account() {
        let throttles = LoginThrottles::default();
        let client: Option<IpAddr> = Some([10, 0, 0, 3].into());
        for _ in 0..PER_CLIENT {
            assert_eq!(
                throttles.begin_passkey(client, 100).unwrap().failed(100),
                None
            );
        }
        assert!(throttles.begin_passkey(client, 100).is_err());
        assert!(
            throttles.begin(client, "dee@x.io", 100).is_err(),
            "one limit per address"
        );
        assert!(throttles.lock_of("dee@x.io", 100).is_none());
        // Another address is not held back, and the account's password still goes.
        let other: Option<IpAddr> = Some([10, 0, 0, 4].into());
        throttles.begin(other, "dee@x.io", 100).unwrap().succeeded();
        // A right passkey gives its slot back.
        for _ in 0..PER_CLIENT * 2 {
            throttles.begin_passkey(other, 100).unwrap().succeeded();
        }
    }

    #[test]
    fn passkey_starts_are_limited_per_address() {
        let throttles = LoginThrottles::default();
        let client: Option<IpAddr> = Some([10, 0, 0, 5].into());
        for _ in 0..PASSKEY_STARTS_PER_CLIENT {
            throttles.allow_passkey_start(client, 100).unwrap();
        }
        let refused = throttles.allow_passkey_start(client, 100).unwrap_err();
        assert_eq!(refused.retry_after_secs, PASSKEY_STARTS_WINDOW_SECS);
        // Another address, and the sign-in checks themselves, are not held back.
        throttles
            .allow_passkey_start(Some([10, 0, 0, 6].into()), 100)
            .unwrap();
        throttles.begin_passkey(client, 100).unwrap().succeeded();
        throttles
            .allow_passkey_start(client, 100 + PASSKEY_STARTS_WINDOW_SECS)
            .unwrap();
    }
}
