//! Parsed domain types and the pure rules that govern them.
//!
//! Every type here is built with a `parse` that returns `Result`, so an invalid value cannot exist
//! past the HTTP or CLI edge.

mod access;
mod email;
mod flock;
mod lockout;
mod note;
mod password;
mod refusal;
pub mod rules;
mod secret;

pub use access::{AccessLevel, ApiKeyType, FlockKeyType};
pub use email::Email;
pub use flock::{FlockId, FlockName, FlockRole, python_repr_list};
pub use lockout::{Escalation, Lock};
pub use note::Note;
pub use password::NewPassword;
pub use refusal::Refusal;
pub use secret::Secret;

/// Why a raw value could not become a domain value. The edge turns this into a message that names
/// the parameter it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("is not a valid email address")]
    Email,
    #[error("must be 'admin' or 'user'")]
    AccessLevel,
    #[error("must be 'manager' or 'watcher'")]
    FlockRole,
    #[error("is not a valid flock id")]
    FlockId,
    #[error("must be one of 'admin', 'analyst', 'read-only'")]
    ApiKeyType,
    #[error("must be one of 'admin', 'read-only'")]
    FlockKeyType,
    #[error("Flock name cannot be empty.")]
    FlockNameEmpty,
    #[error("Flock name longer than maximum (100 characters).")]
    FlockNameTooLong,
    #[error("Note longer than maximum ({} characters).", Note::MAX_CHARS)]
    NoteTooLong,
    #[error("must be an RFC 3339 time with its offset, e.g. 2027-01-31T17:00:00Z")]
    Time,
}
