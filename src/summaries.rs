//! The weekly summary mail: once a week (on a configurable weekday, Monday by default), every
//! enabled user who opted in gets a summary of the console within their scope — admins the whole
//! console and its changes of the past week, others their flocks.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::{AccessLevel, FlockId};
use crate::mail::{Mailer, OutgoingMail};
use crate::store::{Flock, Store, StoreError, UserDetails, now_unix};

const DAY_SECS: u64 = 24 * 3600;
const WEEK_SECS: u64 = 7 * DAY_SECS;
/// How often the scheduler looks whether a summary is due.
pub const CHECK_EVERY: Duration = Duration::from_secs(15 * 60);

/// 0 = Monday … 6 = Sunday.
pub fn parse_weekday(raw: &str) -> Option<u64> {
    let days = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let raw = raw.trim().to_ascii_lowercase();
    days.iter()
        .position(|day| *day == raw || (raw.len() >= 3 && day.starts_with(&raw)))
        .map(|i| i as u64)
}

/// Monday-based week number since the epoch (1970-01-01 was a Thursday) and the weekday.
fn week_and_weekday(unix: u64) -> (u64, u64) {
    let days = unix / DAY_SECS;
    ((days + 3) / 7, (days + 3) % 7)
}

/// Sends this week's summaries if `now` is on or after the configured weekday and no run has sent
/// this week yet. Returns how many were sent (0 when not due).
pub async fn send_if_due(
    store: &Store,
    mailer: &Mailer,
    weekday: u64,
    now: u64,
) -> Result<usize, StoreError> {
    let (week, today) = week_and_weekday(now);
    if today < weekday {
        return Ok(0);
    }
    send_for_week(store, mailer, week, now, false).await
}

/// Sends the summaries now, whatever the weekday and even if this week's went out already (an
/// admin asked), and records the week so the scheduler doesn't send it again.
pub async fn send_now(store: &Store, mailer: &Mailer, now: u64) -> Result<usize, StoreError> {
    send_for_week(store, mailer, week_and_weekday(now).0, now, true).await
}

async fn send_for_week(
    store: &Store,
    mailer: &Mailer,
    week: u64,
    now: u64,
    force: bool,
) -> Result<usize, StoreError> {
    let (claimed, users, flocks) = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let claimed = store.claim_summary_week(week, force)?;
            let users = if claimed {
                store.list_users(None, None)?.users
            } else {
                Vec::new()
            };
            let flocks = if claimed {
                store.list_flocks()?
            } else {
                Vec::new()
            };
            Ok((claimed, users, flocks))
        })
        .await
        .map_err(|error| StoreError::Corrupt(format!("summary task failed: {error}")))??
    };
    if !claimed {
        return Ok(0);
    }
    let mut sent = 0;
    for recipient in users
        .iter()
        .filter(|d| !d.user.disabled && d.user.summary_email_enabled)
    {
        let text = if recipient.user.access_level == AccessLevel::Admin {
            admin_summary(&users, &flocks, now)
        } else {
            member_summary(recipient, &users, &flocks)
        };
        let mail = OutgoingMail {
            kind: "weekly summary",
            subject: "Your weekly Roost summary".to_string(),
            text,
        };
        mailer.send_or_log(&recipient.user.email, mail).await;
        sent += 1;
    }
    log::info!("weekly summary of week {week} sent to {sent} users");
    Ok(sent)
}

fn flock_name<'a>(flocks: &'a [Flock], id: &FlockId) -> &'a str {
    flocks
        .iter()
        .find(|f| &f.id == id)
        .map_or("(removed flock)", |f| f.name.as_str())
}

fn admin_summary(users: &[UserDetails], flocks: &[Flock], now: u64) -> String {
    let since = now.saturating_sub(WEEK_SECS);
    let disabled = users.iter().filter(|d| d.user.disabled).count();
    let admins = users
        .iter()
        .filter(|d| d.user.access_level == AccessLevel::Admin)
        .count();
    let with_factor = users.iter().filter(|d| d.user.has_second_factor()).count();
    let new_users: Vec<&str> = users
        .iter()
        .filter(|d| d.user.created >= since)
        .map(|d| d.user.email.as_str())
        .collect();
    let new_flocks: Vec<&str> = flocks
        .iter()
        .filter(|f| f.created >= since)
        .map(|f| f.name.as_str())
        .collect();
    let mut text = format!(
        "Hello,\n\nthis is the weekly summary of your Roost console.\n\nUsers: {} ({} admins, {} disabled, {} with a second factor)\nFlocks: {}\n",
        users.len(),
        admins,
        disabled,
        with_factor,
        flocks.len()
    );
    text.push_str(&format!(
        "\nAdded in the past week: {} users",
        new_users.len()
    ));
    for email in &new_users {
        text.push_str(&format!("\n  - {email}"));
    }
    text.push_str(&format!(
        "\nFlocks created in the past week: {}",
        new_flocks.len()
    ));
    for name in &new_flocks {
        text.push_str(&format!("\n  - {name}"));
    }
    text.push_str("\n\nYou get this mail because weekly summaries are on for your account; turn them off on your account page.\n");
    text
}

fn member_summary(recipient: &UserDetails, users: &[UserDetails], flocks: &[Flock]) -> String {
    let mut members: BTreeMap<&FlockId, (usize, usize)> = BTreeMap::new();
    for details in users {
        for id in &details.managed_flocks {
            members.entry(id).or_default().0 += 1;
        }
        for id in &details.watched_flocks {
            members.entry(id).or_default().1 += 1;
        }
    }
    let mut text = "Hello,\n\nthis is your weekly Roost summary.\n\n".to_string();
    let roles = recipient
        .managed_flocks
        .iter()
        .map(|id| (id, "manager"))
        .chain(recipient.watched_flocks.iter().map(|id| (id, "watcher")));
    let mut any = false;
    for (id, role) in roles {
        any = true;
        let (managers, watchers) = members.get(id).copied().unwrap_or_default();
        text.push_str(&format!(
            "- {} (you are {role}): {managers} managers, {watchers} watchers\n",
            flock_name(flocks, id)
        ));
    }
    if !any {
        text.push_str("You are not in any flock.\n");
    }
    text.push_str("\nYou get this mail because weekly summaries are on for your account; turn them off on your account page.\n");
    text
}

/// Checks every `CHECK_EVERY`, the first time a minute after start (not racing start-up),
/// whether the week's summaries are due.
pub fn spawn_scheduler(store: Store, mailer: Mailer, weekday: u64) {
    tokio::spawn(async move {
        let first = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut ticks = tokio::time::interval_at(first, CHECK_EVERY);
        loop {
            ticks.tick().await;
            if let Err(error) = send_if_due(&store, &mailer, weekday, now_unix()).await {
                log::error!("weekly summary run failed: {error}");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday() {
        // 2026-11-30 is a Monday, 2026-11-29 a Sunday.
        let monday = 1_795_996_800;
        let (week, day) = week_and_weekday(monday);
        assert_eq!(day, 0);
        assert_eq!(week_and_weekday(monday - DAY_SECS), (week - 1, 6));
        assert_eq!(parse_weekday("Mon"), Some(0));
        assert_eq!(parse_weekday("sunday"), Some(6));
        assert_eq!(parse_weekday("funday"), None);
    }
}
