//! The scheduler's index (`USER_SCHEDULE_DUE`: one entry per user at `User::next_due`) and the
//! grant ends kept on the user, as every change of a user's schedules writes them; what the
//! scheduler then does is `schedule` (grants) and `offboarding`.

use redb::ReadableTable;

use super::tables::USER_SCHEDULE_DUE;
use super::{EXPIRY_REMINDER_SECS, ExpiringGrant, Grant, StoreResult, User, WriteTxn};

/// Puts user `user`'s entry in the index at its next due time (or takes it out): after any
/// change of their schedules, inside the caller's transaction.
pub(super) fn index_schedule(txn: &WriteTxn<'_>, user: &User) -> StoreResult<()> {
    unindex(txn, user.id)?;
    if let Some(due) = user.next_due() {
        txn.open_table(USER_SCHEDULE_DUE)?
            .insert((due, user.id), ())?;
    }
    Ok(())
}

/// Takes user `id` out of the index (removed, or nothing scheduled).
pub(super) fn unindex(txn: &WriteTxn<'_>, id: u64) -> StoreResult<()> {
    let mut due = txn.open_table(USER_SCHEDULE_DUE)?;
    let mut keys = Vec::new();
    for entry in due.iter()? {
        let (key, _) = entry?;
        if key.value().1 == id {
            keys.push(key.value());
        }
    }
    for key in keys {
        due.remove(key)?;
    }
    Ok(())
}

/// Sets `grant` to end at `until` (replacing what the user had for the same right), or with
/// `None` makes it permanent. A grant that ends within the reminder's notice gets no reminder.
pub(super) fn set_grant_expiry(
    user: &mut User,
    grant: Grant,
    until: Option<u64>,
    granted_by: &str,
    now: u64,
) {
    user.expiring
        .retain(|held| !same_right(&held.grant, &grant));
    if let Some(expires_at) = until {
        user.expiring.push(ExpiringGrant {
            grant,
            expires_at,
            granted_by: granted_by.to_string(),
            reminded: expires_at.saturating_sub(now) <= EXPIRY_REMINDER_SECS,
            retry_at: None,
        });
    }
}

/// The same right: admin access, or a role in the same flock (one role per flock).
fn same_right(one: &Grant, other: &Grant) -> bool {
    match (one, other) {
        (Grant::Admin, Grant::Admin) => true,
        (Grant::Role { flock: a, .. }, Grant::Role { flock: b, .. }) => a == b,
        _ => false,
    }
}
