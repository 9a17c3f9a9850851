//! How option values are read: each parser turns the text of a flag or `ROOST_*` variable into
//! the type the configuration holds, so a value Roost would refuse never gets past the command
//! line. A refusal is an `OptionError`, worded by Roost rather than by clap.

use std::error::Error;
use std::time::Duration;

use clap::Args;

use super::proxies::TrustedProxies;
use super::weekday::parse_weekday;

/// A value Roost refuses for an option, in the words the operator sees after `error: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OptionError(pub String);

impl OptionError {
    /// The refusal behind a command line error, when one of these parsers made it (clap's own
    /// errors — an unknown flag, a missing value, a malformed number — have none).
    pub fn behind<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a OptionError> {
        error.source()?.downcast_ref::<OptionError>()
    }
}

/// What the closures below are to clap: a parser it can clone into every command it builds.
pub trait OptionParser<T>:
    Fn(&str) -> Result<T, OptionError> + Clone + Send + Sync + 'static
{
}
impl<T, F: Fn(&str) -> Result<T, OptionError> + Clone + Send + Sync + 'static> OptionParser<T>
    for F
{
}

/// A duration in humantime's notation (`90s`, `30m`, `12h`), at least a second, in whole
/// seconds.
pub fn seconds(option: &'static str) -> impl OptionParser<u64> {
    move |raw| {
        let seconds = humantime::parse_duration(raw.trim())
            .map(|duration| duration.as_secs())
            .map_err(|error| {
                OptionError(format!("{option}: '{raw}' is not a duration ({error})"))
            })?;
        if seconds == 0 {
            return Err(OptionError(format!(
                "{option} must be at least 1s, not '{raw}'"
            )));
        }
        Ok(seconds)
    }
}

/// `seconds`, as a `Duration`.
pub fn duration(option: &'static str) -> impl OptionParser<Duration> {
    let seconds = seconds(option);
    move |raw| seconds(raw).map(Duration::from_secs)
}

/// A count that must not be 0. A value that is no number at all is left to clap's own message,
/// as for every other number.
pub fn at_least_one(
    option: &'static str,
) -> impl Fn(&str) -> Result<usize, Box<dyn Error + Send + Sync>> + Clone + Send + Sync + 'static {
    move |raw| match raw.parse::<usize>()? {
        0 => Err(OptionError(format!("{option} must be at least 1")).into()),
        count => Ok(count),
    }
}

/// A secret a client presents (a bearer token): long enough not to be guessed, printable, no
/// spaces (it travels in a header).
pub fn bearer_token(option: &'static str) -> impl OptionParser<String> {
    move |raw| {
        if raw.len() < 24 || raw.len() > 512 {
            return Err(OptionError(format!(
                "{option} must be 24 to 512 characters long (e.g. `openssl rand -hex 32`)"
            )));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(OptionError(format!(
                "{option} may only hold printable ASCII without spaces"
            )));
        }
        Ok(raw.to_string())
    }
}

/// `parse_weekday` for `option`.
pub fn weekday(option: &'static str) -> impl OptionParser<u64> {
    move |raw| {
        parse_weekday(raw).ok_or_else(|| {
            OptionError(format!(
                "{option} must be a weekday (monday … sunday), not '{raw}'"
            ))
        })
    }
}

/// `TrustedProxies::parse` for `option`.
pub fn trusted_proxies(option: &'static str) -> impl OptionParser<TrustedProxies> {
    move |raw| TrustedProxies::parse(raw).map_err(|error| OptionError(format!("{option}: {error}")))
}

/// `T` as it is with no flag and no `ROOST_*` variable set: its options' defaults.
pub fn defaults<T: Args>() -> T {
    let command =
        T::augment_args(clap::Command::new("roost")).mut_args(|arg| arg.env(None::<&'static str>));
    command
        .try_get_matches_from(["roost"])
        .and_then(|matches| T::from_arg_matches(&matches))
        .unwrap_or_else(|error| panic!("the options' own defaults are refused: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_whole_seconds_and_at_least_one() {
        let idle = seconds("--session-idle");
        assert_eq!(idle("30m"), Ok(1800));
        assert_eq!(idle(" 2h "), Ok(7200));
        assert_eq!(
            idle("0s"),
            Err(OptionError(
                "--session-idle must be at least 1s, not '0s'".into()
            ))
        );
        let error = idle("soon").expect_err("not a duration");
        assert!(
            error
                .0
                .starts_with("--session-idle: 'soon' is not a duration ("),
            "{error}"
        );
        assert_eq!(duration("--keep-alive")("15s"), Ok(Duration::from_secs(15)));
    }

    #[test]
    fn counts_refuse_zero_in_roost_words_and_leave_garbage_to_clap() {
        let workers = at_least_one("--hash-workers");
        assert_eq!(workers("3").ok(), Some(3));
        let zero = workers("0").expect_err("zero");
        assert_eq!(
            zero.downcast_ref::<OptionError>(),
            Some(&OptionError("--hash-workers must be at least 1".into()))
        );
        let garbage = workers("abc").expect_err("garbage");
        assert!(garbage.downcast_ref::<OptionError>().is_none());
    }

    #[test]
    fn weekdays_are_refused_in_roost_words() {
        assert_eq!(weekday("--summary-day")("Tue"), Ok(1));
        assert_eq!(
            weekday("--summary-day")("funday"),
            Err(OptionError(
                "--summary-day must be a weekday (monday … sunday), not 'funday'".into()
            ))
        );
    }
}
