use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// An email address, trimmed, at most 254 characters. Two addresses are the same account when their
/// lowercase forms match; the address keeps the spelling it was first given for display.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Email, ParseError> {
        let email = raw.trim();
        if email.is_empty() || email.len() > Self::MAX_LEN {
            return Err(ParseError::Email);
        }
        let (local, domain) = email.rsplit_once('@').ok_or(ParseError::Email)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let domain_ok = domain.len() <= 253
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if local_ok && domain_ok {
            Ok(Email(email.to_string()))
        } else {
            Err(ParseError::Email)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form under which the address is unique.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::parse(&value)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> String {
        email.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_trims() {
        assert_eq!(
            Email::parse(" Ann@Example.org ").unwrap().as_str(),
            "Ann@Example.org"
        );
        assert_eq!(
            Email::parse("Ann@Example.org").unwrap().key(),
            "ann@example.org"
        );
        assert!(Email::parse("a+tag@sub.example.co").is_ok());
        assert!(Email::parse("root@localhost").is_ok());
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            " ",
            "plain",
            "@x.io",
            "a@",
            "a@@x.io",
            "a b@x.io",
            "a@x..io",
            "a@-x.io",
            ".a@x.io",
            "a..b@x.io",
            "a@x_y.io",
            "a\n@x.io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = format!("{}@{}.io", "a".repeat(64), "b".repeat(200));
        assert!(Email::parse(&long).is_err());
    }
}
