use super::ParseError;

/// Free text an admin keeps about a user. Stored as given; length is bounded so a single note
/// can't bloat every listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note(String);

impl Note {
    pub const MAX_CHARS: usize = 10_000;

    pub fn parse(raw: &str) -> Result<Note, ParseError> {
        if raw.chars().count() > Self::MAX_CHARS {
            Err(ParseError::NoteTooLong)
        } else {
            Ok(Note(raw.to_string()))
        }
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
