//! Unix seconds as text: every format Roost writes a time in.
//!
//! | function         | reads                          | where                                      |
//! |------------------|--------------------------------|--------------------------------------------|
//! | `console_second` | `2026-12-01 16:30:12 UTC`      | console pages, login lock messages          |
//! | `console_minute` | `2026-12-01 16:30 UTC`         | key lists, change lists, summary mails      |
//! | `date`           | `2026-12-01`                   | the last summary week on the Settings page  |
//! | `rfc3339`        | `2026-12-01T16:30:12Z`         | API answers, the outgoing mail card         |
//! | `canary`         | `2026-12-01 22:00:12 UTC+0530` | the audit trail API, in the zone it asks    |
//!
//! and one the other way, `utc_day_start`, for the audit page's date filters.
//!
//! The dates end with the year 9999 (jiff's last timestamp is 9999-12-30 22:00 UTC); a later time
//! is written as its number of seconds instead of failing.

use jiff::Timestamp;
pub use jiff::tz::TimeZone;

/// To the second, in UTC.
pub fn console_second(unix: u64) -> String {
    utc(unix, "%Y-%m-%d %H:%M:%S UTC")
}

/// To the minute, in UTC: what lists show where the second says nothing (`last_used` of a key is
/// only recorded per minute).
pub fn console_minute(unix: u64) -> String {
    utc(unix, "%Y-%m-%d %H:%M UTC")
}

/// The day, in UTC.
pub fn date(unix: u64) -> String {
    utc(unix, "%Y-%m-%d")
}

/// RFC 3339 in UTC, to the second.
pub fn rfc3339(unix: u64) -> String {
    utc(unix, "%Y-%m-%dT%H:%M:%SZ")
}

/// As the canary console's audit API writes times: in `zone`, with its offset.
pub fn canary(unix: u64, zone: &TimeZone) -> String {
    match timestamp(unix) {
        Some(time) => time
            .to_zoned_datetime(zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S UTC%z")
            .to_string(),
        None => unix.to_string(),
    }
}

/// The unix seconds at which the day `YYYY-MM-DD` begins in UTC (for date filters), or `None`
/// if `raw` is no such date.
pub fn utc_day_start(raw: &str) -> Option<u64> {
    let date: jiff::civil::Date = raw.trim().parse().ok()?;
    let start = date.to_zoned_datetime(TimeZone::UTC).ok()?.timestamp();
    u64::try_from(start.as_second()).ok()
}

/// The unix seconds of an RFC 3339 time with its offset (`2027-01-31T17:00:00Z`,
/// `2027-01-31T18:00:00+01:00`), or `None`; times before 1970 are none either.
pub fn parse_rfc3339(raw: &str) -> Option<u64> {
    let time: Timestamp = raw.trim().parse().ok()?;
    u64::try_from(time.as_second()).ok()
}

/// The unix seconds of a console form's `datetime-local` value (`2027-01-31T17:00`), read as UTC.
pub fn parse_utc_minute(raw: &str) -> Option<u64> {
    let time: jiff::civil::DateTime = raw.trim().parse().ok()?;
    let start = TimeZone::UTC
        .to_ambiguous_zoned_datetime(time)
        .compatible()
        .ok()?
        .timestamp();
    u64::try_from(start.as_second()).ok()
}

/// The IANA time zone `name` (`Europe/Berlin`), or `None` if there is no such zone.
pub fn time_zone(name: &str) -> Option<TimeZone> {
    TimeZone::get(name).ok()
}

fn utc(unix: u64, format: &str) -> String {
    match timestamp(unix) {
        Some(time) => time.strftime(format).to_string(),
        None => unix.to_string(),
    }
}

fn timestamp(unix: u64) -> Option<Timestamp> {
    let seconds = i64::try_from(unix).ok()?;
    Timestamp::from_second(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-01 16:30:12 UTC.
    const AT: u64 = 1_796_142_612;
    /// 9999-12-30 22:00:00 UTC, jiff's last timestamp to the second.
    const LAST: u64 = 253_402_207_200;

    #[test]
    fn console_times_in_utc() {
        assert_eq!(console_second(AT), "2026-12-01 16:30:12 UTC");
        assert_eq!(console_second(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(console_minute(AT), "2026-12-01 16:30 UTC");
        assert_eq!(console_minute(AT + 47), "2026-12-01 16:30 UTC");
        assert_eq!(console_minute(5), "1970-01-01 00:00 UTC");
        assert_eq!(date(AT), "2026-12-01");
        assert_eq!(date(0), "1970-01-01");
    }

    #[test]
    fn rfc3339_in_utc_to_the_second() {
        assert_eq!(rfc3339(AT), "2026-12-01T16:30:12Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_000_000_000), "2001-09-09T01:46:40Z");
    }

    #[test]
    fn canary_times_in_the_asked_zone() {
        let utc = TimeZone::UTC;
        assert_eq!(canary(1_587_124_690, &utc), "2020-04-17 11:58:10 UTC+0000");
        let kolkata = time_zone("Asia/Kolkata").unwrap();
        assert_eq!(
            canary(1_587_124_690, &kolkata),
            "2020-04-17 17:28:10 UTC+0530"
        );
        let new_york = time_zone("America/New_York").unwrap();
        assert_eq!(
            canary(1_587_124_690, &new_york),
            "2020-04-17 07:58:10 UTC-0400"
        );
        assert!(time_zone("Mars/Olympus").is_none());
    }

    #[test]
    fn times_past_the_year_9999_are_written_as_seconds() {
        assert_eq!(rfc3339(LAST), "9999-12-30T22:00:00Z");
        assert_eq!(console_second(LAST + 1), "253402207201");
        assert_eq!(console_minute(u64::MAX), u64::MAX.to_string());
        assert_eq!(date(LAST + 1), "253402207201");
        assert_eq!(canary(u64::MAX, &TimeZone::UTC), u64::MAX.to_string());
    }
}
