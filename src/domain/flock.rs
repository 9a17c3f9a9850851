use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// `flock:default` or `flock:` followed by 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FlockId(String);

impl FlockId {
    pub const DEFAULT: &'static str = "flock:default";
    pub const DEFAULT_NAME: &'static str = "Default Flock";

    pub fn parse(raw: &str) -> Result<FlockId, ParseError> {
        let raw = raw.trim();
        if raw == Self::DEFAULT {
            return Ok(FlockId(raw.to_string()));
        }
        match raw.strip_prefix("flock:") {
            Some(hex)
                if hex.len() == 32
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                Ok(FlockId(raw.to_string()))
            }
            _ => Err(ParseError::FlockId),
        }
    }

    pub fn default_flock() -> FlockId {
        FlockId(Self::DEFAULT.to_string())
    }

    /// A fresh id from 128 random bits.
    pub fn generate() -> FlockId {
        let bytes: [u8; 16] = rand::random();
        FlockId(format!("flock:{}", hex::encode(bytes)))
    }

    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FlockId {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        FlockId::parse(&value)
    }
}

impl From<FlockId> for String {
    fn from(id: FlockId) -> String {
        id.0
    }
}

/// A flock's display name: not blank, at most 100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlockName(String);

impl FlockName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<FlockName, ParseError> {
        // Control characters (newlines, tabs) would break one-line listings; they become spaces.
        let cleaned: String = raw
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let name = cleaned.trim();
        if name.is_empty() {
            Err(ParseError::FlockNameEmpty)
        } else if name.chars().count() > Self::MAX_CHARS {
            Err(ParseError::FlockNameTooLong)
        } else {
            Ok(FlockName(name.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The role a user holds in a flock. A user holds at most one role per flock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlockRole {
    Manager,
    Watcher,
}

impl FlockRole {
    pub fn parse(raw: &str) -> Result<FlockRole, ParseError> {
        match raw.trim() {
            "manager" => Ok(FlockRole::Manager),
            "watcher" => Ok(FlockRole::Watcher),
            _ => Err(ParseError::FlockRole),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FlockRole::Manager => "manager",
            FlockRole::Watcher => "watcher",
        }
    }

    pub fn to_byte(self) -> u8 {
        match self {
            FlockRole::Manager => 1,
            FlockRole::Watcher => 2,
        }
    }

    pub fn from_byte(byte: u8) -> Option<FlockRole> {
        match byte {
            1 => Some(FlockRole::Manager),
            2 => Some(FlockRole::Watcher),
            _ => None,
        }
    }
}

/// The seed's rendering of a list of flock ids, e.g. `[u'flock:default', u'flock:ab…']`.
pub fn python_repr_list(ids: &[FlockId]) -> String {
    let items: Vec<String> = ids.iter().map(|id| format!("u'{id}'")).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flock_ids() {
        assert!(FlockId::parse("flock:default").unwrap().is_default());
        assert!(FlockId::parse(&format!("flock:{}", "a1".repeat(16))).is_ok());
        for bad in [
            "default",
            "flock:",
            "flock:xyz",
            "flock:DEFAULT",
            &format!("flock:{}", "A".repeat(32)),
        ] {
            assert!(FlockId::parse(bad).is_err(), "{bad}");
        }
        assert!(FlockId::parse(FlockId::generate().as_str()).is_ok());
    }

    #[test]
    fn flock_names() {
        assert_eq!(FlockName::parse("  "), Err(ParseError::FlockNameEmpty));
        assert_eq!(
            FlockName::parse(&"é".repeat(100))
                .unwrap()
                .as_str()
                .chars()
                .count(),
            100
        );
        assert_eq!(
            FlockName::parse(&"x".repeat(101)),
            Err(ParseError::FlockNameTooLong)
        );
    }

    #[test]
    fn repr_list_matches_seed() {
        let ids = [
            FlockId::default_flock(),
            FlockId::parse(&format!("flock:{}", "0".repeat(32))).unwrap(),
        ];
        assert_eq!(
            python_repr_list(&ids),
            format!("[u'flock:default', u'flock:{}']", "0".repeat(32))
        );
    }
}
