//! A value that must not leave the process by accident: its `Debug` says `[redacted]` and it has
//! no `Serialize`, so a `{:?}` in a log line or a type shown as JSON can't carry it. Code that
//! needs the value asks for it by name (`expose`), where a reader sees it.
//!
//! The store writes secrets to disk through its own record types (`store::disk`), which unwrap
//! them on the way out and wrap them again on the way in.

use std::fmt;

use subtle::ConstantTimeEq;

#[derive(Clone)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }

    pub fn into_exposed(self) -> T {
        self.0
    }
}

impl Secret<String> {
    /// Whether `candidate` is this value, compared in constant time: how long a wrong guess takes
    /// says nothing about how much of it was right.
    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Secret<T> {
        Secret(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

// Equal records (tests, the store's before/after comparison) need equal secrets; this is not the
// comparison for checking a guess, which is `matches`.
impl<T: PartialEq> PartialEq for Secret<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<T: Eq> Eq for Secret<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_nothing_of_the_value() {
        let secret = Secret::new("hunter2-hunter2".to_string());
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        assert_eq!(format!("{secret:#?}"), "[redacted]");
        assert_eq!(secret.expose(), "hunter2-hunter2");
    }

    #[test]
    fn matches_only_the_same_value() {
        let secret = Secret::new("abc123".to_string());
        assert!(secret.matches("abc123"));
        assert!(!secret.matches("abc124"));
        assert!(!secret.matches("abc12"));
        assert!(!secret.matches(""));
    }
}
