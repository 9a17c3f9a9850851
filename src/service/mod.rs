//! Every action of the console, whichever door it comes through (API, console, CLI, the
//! scheduler): one function each, taking the acting `Principal` and parsed domain input. It
//! checks the permission (`Principal::require`, the one table), makes the change through the
//! store in one transaction that also writes its audit entry, and returns a typed result. The
//! handlers in `api` and `web` parse, call one of these, and render.

pub mod account;
pub mod api_keys;
pub mod audit;
pub mod flocks;
pub mod invitations;
pub mod offboarding;
pub mod principal;
pub mod review;
pub mod scheduler;
pub mod sessions;
pub mod settings;
pub mod sign_in;
pub mod users;
pub mod webhooks;

pub use principal::{Origin, Permission, Principal, Who};

use crate::auth::passwords::HashError;
use crate::domain::Refusal;
use crate::store::StoreError;

/// Why an action didn't happen: a rule refused it (the edge chooses the words), or something
/// failed (logged with its cause, answered generically).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    #[error("the store failed")]
    Store(#[source] StoreError),
    /// The console is stopping: the store takes no more changes; nothing was changed.
    #[error("the console is stopping")]
    Stopping,
    /// Every password hashing worker is busy and the queue is full: try again in a moment.
    #[error("password hashing is busy")]
    HashingBusy,
    /// As many scans as allowed are running (`--max-concurrent-scans`): try again in a moment.
    #[error("too many scans are running")]
    ScansBusy,
    #[error("password hashing failed")]
    Hashing(#[source] HashError),
    #[error("the weekly summary failed")]
    Summary(#[source] crate::summaries::SummaryError),
}

/// Renders a message; a template that can't render is logged and the message skipped, since mail
/// never fails the action that caused it.
pub(crate) fn render_or_log(
    what: &str,
    rendered: Result<crate::store::MailContent, crate::mail::MailError>,
) -> Option<crate::store::MailContent> {
    rendered
        .map_err(|error| tracing::error!("cannot render the {what} mail: {error}"))
        .ok()
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> ServiceError {
        match error {
            StoreError::Refused(refusal) => ServiceError::Refused(refusal),
            StoreError::WriterClosed => ServiceError::Stopping,
            other => ServiceError::Store(other),
        }
    }
}

impl From<HashError> for ServiceError {
    fn from(error: HashError) -> ServiceError {
        match error {
            HashError::Busy => ServiceError::HashingBusy,
            other => ServiceError::Hashing(other),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
