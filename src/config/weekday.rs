//! Weekdays as the weekly summary's option names them: 0 = Monday … 6 = Sunday.

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// 0 = Monday … 6 = Sunday.
pub fn parse_weekday(raw: &str) -> Option<u64> {
    let raw = raw.trim().to_ascii_lowercase();
    WEEKDAYS
        .iter()
        .position(|day| *day == raw || (raw.len() >= 3 && day.starts_with(&raw)))
        .map(|i| i as u64)
}

/// The weekday's name, capitalised: 0 is "Monday".
pub fn weekday_name(weekday: u64) -> String {
    let name = usize::try_from(weekday)
        .ok()
        .and_then(|day| WEEKDAYS.get(day))
        .copied()
        .unwrap_or("monday");
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_by_name_or_prefix() {
        assert_eq!(parse_weekday("Mon"), Some(0));
        assert_eq!(parse_weekday("sunday"), Some(6));
        assert_eq!(parse_weekday("funday"), None);
        assert_eq!(weekday_name(0), "Monday");
        assert_eq!(weekday_name(6), "Sunday");
    }
}
