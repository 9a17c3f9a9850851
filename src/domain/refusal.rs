//! Why an action was refused by a rule, not by a failure: the same refusal whichever door the
//! action came through (API, console, CLI). Each edge chooses its own words for it
//! (`api::error`, `web::error`); `Display` here is for logs.

use super::Email;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The principal may not do this.
    #[error("not allowed")]
    NotAllowed,
    #[error("no such user")]
    UserNotFound,
    #[error("no such flock")]
    FlockNotFound,
    #[error("no such API key")]
    ApiKeyNotFound,
    #[error("no such session")]
    SessionNotFound,
    #[error("no such audit entry")]
    AuditEntryNotFound,
    #[error("user {0} exists already")]
    UserExists(Email),
    #[error("the user is disabled")]
    UserDisabled,
    /// Disabling, removing or demoting them would leave no enabled admin.
    #[error("the last enabled admin")]
    LastEnabledAdmin,
    #[error("the default flock can't be deleted")]
    DefaultFlock,
    #[error("the flock has members")]
    FlockNotEmpty,
    #[error("{0} can't hold both roles in one flock")]
    TwoRolesInOneFlock(Email),
    /// A one-time link that is unknown, used, expired or of another kind.
    #[error("the link is invalid, expired or used")]
    LinkInvalid,
    /// Cancelling an offboarding that isn't scheduled.
    #[error("no offboarding is scheduled for the user")]
    NoOffboardingScheduled,
    /// A time to act at that has passed (a typo'd year must not act at once).
    #[error("the time is in the past")]
    TimeInThePast,
    /// An end time for an access level other than admin (users are users until changed).
    #[error("only admin access can be granted until a time")]
    ExpiryNeedsAdmin,
    #[error("no such invitation")]
    InvitationNotFound,
    #[error("no such webhook")]
    WebhookNotFound,
    /// A WebAuthn credential id registered already (to this account or another): one id names one
    /// credential of one account.
    #[error("the credential is registered already")]
    CredentialRegistered,
    /// Removing the user's password or their last passkey would leave them no way to sign in.
    #[error("it is the user's last way to sign in")]
    LastWayIn,
    /// An invitation for addresses of one domain, used with another.
    #[error("the invitation is for addresses at {0}")]
    EmailDomainNotAllowed(String),
}
