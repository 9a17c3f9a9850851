//! The access review: what a careful admin checks every week, read in one pass. Enabled users without
//! a second factor (while it isn't enforced for everyone), dormant accounts, admins made in the
//! past 30 days, grants ending within 14 days, API keys never or long unused, accounts locked in
//! the past week, and failed logins per day over two weeks. The console's page puts each row's
//! action beside it (`web::review`); `GET access/review` answers the same sections as JSON; the
//! weekly admin summary counts them and links to the page. `service::review` checks who asks.

use std::collections::BTreeMap;

use crate::domain::AccessLevel;
use crate::store::audit::{AuditFilter, AuditFrom};
use crate::store::{ApiKeyRecord, Grant, Store, StoreResult, UserDetails};

const DAY: u64 = 24 * 3600;
/// Admins made within this many days are listed.
pub const NEW_ADMIN_DAYS: u64 = 30;
/// Grants ending within this many days are listed.
pub const EXPIRING_WITHIN_DAYS: u64 = 14;
/// Keys unused for this many days (or never used and older) are listed.
pub const STALE_KEY_DAYS: u64 = 90;
/// Rows a section shows at most; `total` says how many there are.
pub const MAX_ROWS: usize = 500;
/// Audit entries of one kind read at most for a section (a storm of failed logins is counted up
/// to this, and said to be more).
const MAX_AUDIT_ENTRIES: usize = 100_000;

/// Rows of one section, and how many there are in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Section<T> {
    pub rows: Vec<T>,
    pub total: usize,
}

impl<T> Default for Section<T> {
    fn default() -> Self {
        Section {
            rows: Vec::new(),
            total: 0,
        }
    }
}

impl<T> Section<T> {
    fn push(&mut self, row: T) {
        self.total += 1;
        if self.rows.len() < MAX_ROWS {
            self.rows.push(row);
        }
    }
}

/// A user as a review row names them.
#[derive(Debug, Clone, PartialEq)]
pub struct UserLine {
    pub id: u64,
    pub email: String,
    pub access_level: AccessLevel,
    pub disabled: bool,
    pub last_login: Option<u64>,
    pub created: u64,
}

impl UserLine {
    fn of(details: &UserDetails) -> UserLine {
        let user = &details.user;
        UserLine {
            id: user.id,
            email: user.email.to_string(),
            access_level: user.access_level,
            disabled: user.disabled,
            last_login: user.last_login,
            created: user.created,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAdmin {
    pub user: UserLine,
    pub email: String,
    pub at: u64,
    pub by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExpiringSoon {
    pub user: UserLine,
    pub grant: Grant,
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StaleKey {
    pub key: ApiKeyRecord,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Locked {
    pub email: String,
    pub user_id: Option<u64>,
    pub at: u64,
    /// "password" or "second factor".
    pub step: &'static str,
    /// Still locked now.
    pub locked_now: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FailedLogins {
    /// The UTC days, oldest first: the week before, then the past week (7 each).
    pub days: Vec<(String, u64)>,
    pub past_week: u64,
    pub week_before: u64,
    /// More failures than the review reads: the counts are at least these.
    pub capped: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessReview {
    pub generated_at: u64,
    pub dormant_after_days: u64,
    pub two_factor_enforced: bool,
    pub without_second_factor: Section<UserLine>,
    pub dormant: Section<UserLine>,
    pub new_admins: Section<NewAdmin>,
    pub expiring_soon: Section<ExpiringSoon>,
    pub stale_api_keys: Section<StaleKey>,
    pub locked_recently: Section<Locked>,
    pub failed_logins: FailedLogins,
}

/// The review of `store` at `now`.
pub fn build(store: &Store, now: u64, dormant_after_days: u64) -> StoreResult<AccessReview> {
    let settings = store.settings()?;
    let mut review = AccessReview {
        generated_at: now,
        dormant_after_days,
        two_factor_enforced: settings.globally_enforce_2fa,
        without_second_factor: Section::default(),
        dormant: Section::default(),
        new_admins: Section::default(),
        expiring_soon: Section::default(),
        stale_api_keys: Section::default(),
        locked_recently: Section::default(),
        failed_logins: FailedLogins {
            days: Vec::new(),
            past_week: 0,
            week_before: 0,
            capped: false,
        },
    };
    let dormant_since = now.saturating_sub(dormant_after_days.saturating_mul(DAY));
    // Locks engaged in the past week: their entries first, so the pass over the users keeps
    // only the accounts they name.
    let week_ago = now.saturating_sub(7 * DAY);
    let mut lock_entries = Vec::new();
    for (action, step) in [
        ("user_login_locked", "password"),
        ("user_login_factor_locked", "second factor"),
    ] {
        for entry in audit_since(store, action, week_ago)?.0 {
            if let Some(email) = entry.target {
                let key = crate::domain::Email::parse(&email)
                    .map(|e| e.key())
                    .unwrap_or_default();
                lock_entries.push((email, key, entry.at, step));
            }
        }
    }
    // Email key -> (id, second-factor lock end) of the accounts the locks name, once found.
    let mut locked_accounts: BTreeMap<String, Option<(u64, u64)>> = lock_entries
        .iter()
        .map(|(_, key, _, _)| (key.clone(), None))
        .collect();
    let mut expiring = Vec::new();
    let mut new_admins = Vec::new();
    let new_admins_since = now.saturating_sub(NEW_ADMIN_DAYS * DAY);
    let snapshot = store.snapshot()?;
    snapshot.visit_all_users::<crate::store::StoreError>(|details| {
        let user = &details.user;
        let line = UserLine::of(&details);
        if !user.disabled {
            if !settings.globally_enforce_2fa && !user.has_second_factor() {
                review.without_second_factor.push(line.clone());
            }
            if user.last_login.unwrap_or(user.created) < dormant_since {
                review.dormant.push(line.clone());
            }
        }
        for grant in &user.expiring {
            let held = crate::store::holds_grant(
                user,
                &details.managed_flocks,
                &details.watched_flocks,
                &grant.grant,
            );
            if held && grant.expires_at <= now + EXPIRING_WITHIN_DAYS * DAY {
                expiring.push(ExpiringSoon {
                    user: line.clone(),
                    grant: grant.grant.clone(),
                    expires_at: grant.expires_at,
                });
            }
        }
        // Admins made in the past 30 days (added as admin, or raised to it) and still admins.
        if let Some(made) = &user.made_admin
            && user.access_level == AccessLevel::Admin
            && made.at >= new_admins_since
        {
            new_admins.push(NewAdmin {
                user: line.clone(),
                email: user.email.to_string(),
                at: made.at,
                by: made.by.clone(),
            });
        }
        if let Some(account) = locked_accounts.get_mut(&user.email.key()) {
            *account = Some((user.id, user.factor_locked_until));
        }
        Ok(())
    })?;
    expiring.sort_by_key(|row| row.expires_at);
    for row in expiring {
        review.expiring_soon.push(row);
    }
    new_admins.sort_by_key(|row| std::cmp::Reverse(row.at));
    for row in new_admins {
        review.new_admins.push(row);
    }

    // Keys never used (and older than the window) or unused for the window.
    let stale_before = now.saturating_sub(STALE_KEY_DAYS * DAY);
    let mut keys = store.global_api_keys()?;
    for flock in store.list_flocks()? {
        keys.extend(store.flock_api_keys(&flock.id)?);
    }
    keys.sort_by_key(|key| key.last_used.unwrap_or(key.created));
    for key in keys {
        if key.last_used.unwrap_or(key.created) < stale_before {
            review.stale_api_keys.push(StaleKey { key });
        }
    }

    let locks_now: BTreeMap<String, crate::domain::Lock> =
        store.login_locks()?.into_iter().collect();
    let mut locked = Vec::new();
    for (email, key, at, step) in lock_entries {
        let account = locked_accounts.get(&key).copied().flatten();
        let locked_now = match step {
            "password" => locks_now.get(&key).is_some_and(|lock| lock.is_active(now)),
            _ => account.is_some_and(|(_, factor_locked_until)| factor_locked_until > now),
        };
        locked.push(Locked {
            user_id: account.map(|(id, _)| id),
            email,
            at,
            step,
            locked_now,
        });
    }
    locked.sort_by_key(|row| std::cmp::Reverse(row.at));
    for row in locked {
        review.locked_recently.push(row);
    }

    // Failed logins per UTC day, the past week against the week before.
    let today = now - now % DAY;
    let first_day = today.saturating_sub(13 * DAY);
    let mut per_day: BTreeMap<u64, u64> = (0..14).map(|n| (first_day + n * DAY, 0)).collect();
    let mut capped = false;
    for action in ["user_login_failed", "user_login_factor_failed"] {
        let (entries, more) = audit_since(store, action, first_day)?;
        capped |= more;
        for entry in entries {
            let day = entry.at - entry.at % DAY;
            if let Some(count) = per_day.get_mut(&day) {
                *count += 1;
            }
        }
    }
    let split = today.saturating_sub(6 * DAY);
    let failed = &mut review.failed_logins;
    for (day, count) in per_day {
        if day >= split {
            failed.past_week += count;
        } else {
            failed.week_before += count;
        }
        failed.days.push((crate::timestamps::date(day), count));
    }
    failed.capped = capped;
    Ok(review)
}

/// Entries of `action` since `since`, newest first, and whether more were left unread. Read
/// through the trail's index by action, a page at a time until one is older than `since`: a
/// filter on the time too would read every entry of the trail.
fn audit_since(
    store: &Store,
    action: &str,
    since: u64,
) -> StoreResult<(Vec<crate::store::audit::AuditEntry>, bool)> {
    const PAGE: usize = 1000;
    let filter = AuditFilter {
        action: Some(action.to_string()),
        ..AuditFilter::default()
    };
    let mut entries = Vec::new();
    let mut from = AuditFrom::Newest;
    loop {
        let page = store.audit_page(&filter, from, PAGE)?;
        let last_id = page.entries.last().map(|entry| entry.id);
        for entry in page.entries {
            if entry.at < since {
                return Ok((entries, false));
            }
            if entries.len() == MAX_AUDIT_ENTRIES {
                return Ok((entries, true));
            }
            entries.push(entry);
        }
        match last_id {
            Some(id) if page.has_older => from = AuditFrom::OlderThan(id),
            _ => return Ok((entries, false)),
        }
    }
}
