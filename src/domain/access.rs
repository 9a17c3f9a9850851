use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// What a console user may do: everything (`Admin`) or their own account and flocks (`User`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLevel {
    Admin,
    User,
}

impl AccessLevel {
    pub fn parse(raw: &str) -> Result<AccessLevel, ParseError> {
        match raw.trim() {
            "admin" => Ok(AccessLevel::Admin),
            "user" => Ok(AccessLevel::User),
            _ => Err(ParseError::AccessLevel),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Admin => "admin",
            AccessLevel::User => "user",
        }
    }
}

impl fmt::Display for AccessLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of a global API key: `Admin` may call every endpoint, the others only read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiKeyType {
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "analyst")]
    Analyst,
    #[serde(rename = "read-only")]
    ReadOnly,
}

impl ApiKeyType {
    pub fn parse(raw: &str) -> Result<ApiKeyType, ParseError> {
        match raw.trim() {
            "admin" => Ok(ApiKeyType::Admin),
            "analyst" => Ok(ApiKeyType::Analyst),
            "read-only" => Ok(ApiKeyType::ReadOnly),
            _ => Err(ParseError::ApiKeyType),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyType::Admin => "admin",
            ApiKeyType::Analyst => "analyst",
            ApiKeyType::ReadOnly => "read-only",
        }
    }
}

/// The type of a key bound to one flock: `Admin` may change that flock's memberships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlockKeyType {
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "read-only")]
    ReadOnly,
}

impl FlockKeyType {
    pub fn parse(raw: &str) -> Result<FlockKeyType, ParseError> {
        match raw.trim() {
            "admin" => Ok(FlockKeyType::Admin),
            "read-only" => Ok(FlockKeyType::ReadOnly),
            _ => Err(ParseError::FlockKeyType),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FlockKeyType::Admin => "admin",
            FlockKeyType::ReadOnly => "read-only",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_documented_spellings() {
        assert_eq!(AccessLevel::parse("admin"), Ok(AccessLevel::Admin));
        assert!(AccessLevel::parse("Admin").is_err());
        assert!(AccessLevel::parse("root").is_err());
        assert_eq!(ApiKeyType::parse("read-only"), Ok(ApiKeyType::ReadOnly));
        assert!(ApiKeyType::parse("readonly").is_err());
        assert!(FlockKeyType::parse("analyst").is_err());
    }
}
