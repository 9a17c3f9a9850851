//! Failures of browser requests, answered as pages (or a redirect to the login page).

use actix_web::http::StatusCode;
use actix_web::http::header::{LOCATION, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::domain::Refusal;
use crate::service::ServiceError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Not signed in (or the session ended): go to the login page, then come back to `next`.
    #[error("login required")]
    LoginRequired { next: String },
    #[error("You are not allowed to see this page.")]
    Forbidden,
    #[error(
        "The form has expired or did not come from this console. Go back, reload the page and try again."
    )]
    CsrfRejected,
    #[error("This page does not exist.")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    /// The form's body did not arrive within the body timeouts.
    #[error("The form did not arrive in time. Try again.")]
    RequestTimeout,
    /// Password checks or scans are at their limit: nothing was done, try again in a moment.
    #[error("The server is busy. Try again in a moment.")]
    Busy { retry_after_secs: u64 },
    #[error("Something went wrong on our side. The cause has been logged.")]
    Internal,
}

impl WebError {
    /// Logs the cause and answers with a page that reveals nothing about it.
    pub fn internal(cause: impl std::fmt::Display) -> WebError {
        tracing::error!("internal error while rendering a page: {cause}");
        WebError::Internal
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: String,
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            WebError::Forbidden | WebError::CsrfRejected => StatusCode::FORBIDDEN,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            WebError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            WebError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let WebError::LoginRequired { next } = self {
            let location = format!("/login?next={}", encode_query_value(next));
            // Refused before any form body was read: actix then closes the connection, and a
            // client told nothing would reuse it for its next request and see it die.
            return HttpResponse::SeeOther()
                .insert_header((LOCATION, location))
                .force_close()
                .finish();
        }
        let status = self.status_code();
        let title = match self {
            WebError::Forbidden => "Not allowed",
            WebError::CsrfRejected => "Form expired",
            WebError::NotFound => "Not found",
            WebError::BadRequest(_) => "Bad request",
            WebError::Busy { .. } => "Busy",
            WebError::RequestTimeout => "Too slow",
            _ => "Error",
        };
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message: self.to_string(),
        };
        let mut response = HttpResponse::build(status);
        match self {
            WebError::Busy { retry_after_secs } => {
                response.insert_header((RETRY_AFTER, retry_after_secs.to_string()));
            }
            // The body was cut short: the connection can't carry another request.
            WebError::RequestTimeout => {
                response.force_close();
            }
            _ => {}
        }
        match page.render() {
            Ok(body) => response.content_type("text/html; charset=utf-8").body(body),
            Err(_) => response.body(self.to_string()),
        }
    }
}

/// The console's words for a refusal it shows on a page or in a flash.
pub fn refusal_message(refusal: &Refusal) -> String {
    match refusal {
        Refusal::NotAllowed => "You are not allowed to do this.".into(),
        Refusal::UserNotFound => "User does not exist.".into(),
        Refusal::FlockNotFound => "Flock does not exist.".into(),
        Refusal::ApiKeyNotFound => "API key does not exist.".into(),
        Refusal::SessionNotFound => "Session does not exist.".into(),
        Refusal::AuditEntryNotFound => "Audit trail entry does not exist.".into(),
        Refusal::UserExists(email) => format!("User ({email}) already exists."),
        Refusal::UserDisabled => "User is disabled.".into(),
        Refusal::LastEnabledAdmin => {
            "Cannot disable, remove or demote the last enabled admin.".into()
        }
        Refusal::DefaultFlock => "The default flock can't be deleted.".into(),
        Refusal::FlockNotEmpty => {
            "The flock still has members: remove them before deleting the flock.".into()
        }
        Refusal::TwoRolesInOneFlock(email) => {
            format!("User {email} cannot be both manager and watcher of one flock.")
        }
        Refusal::LinkInvalid => "The link is invalid, expired or already used.".into(),
        Refusal::NoOffboardingScheduled => "No offboarding is scheduled for this user.".into(),
        Refusal::TimeInThePast => {
            "That time is in the past: give a future time, or leave it empty.".into()
        }
        Refusal::ExpiryNeedsAdmin => "Only admin access can be granted until a time.".into(),
        Refusal::CredentialRegistered => "This authenticator's credential is registered already, to this account or another.".into(),
        Refusal::LastWayIn => "That is your last way to sign in: register another passkey first, or get a password through \"Forgot your password?\" on the login page.".into(),
        Refusal::InvitationNotFound => "Invitation does not exist.".into(),
        Refusal::WebhookNotFound => "Webhook does not exist.".into(),
        Refusal::EmailDomainNotAllowed(domain) => {
            format!("This invitation is for addresses at {domain}.")
        }
    }
}

impl From<Refusal> for WebError {
    fn from(refusal: Refusal) -> WebError {
        match refusal {
            Refusal::NotAllowed => WebError::Forbidden,
            Refusal::UserNotFound
            | Refusal::FlockNotFound
            | Refusal::ApiKeyNotFound
            | Refusal::SessionNotFound
            | Refusal::AuditEntryNotFound
            | Refusal::InvitationNotFound
            | Refusal::WebhookNotFound => WebError::NotFound,
            other => WebError::BadRequest(refusal_message(&other)),
        }
    }
}

impl From<StoreError> for WebError {
    fn from(error: StoreError) -> WebError {
        ServiceError::from(error).into()
    }
}

impl From<ServiceError> for WebError {
    fn from(error: ServiceError) -> WebError {
        match error {
            ServiceError::Refused(refusal) => refusal.into(),
            ServiceError::HashingBusy | ServiceError::ScansBusy => WebError::Busy {
                retry_after_secs: 1,
            },
            ServiceError::Stopping => WebError::Busy {
                retry_after_secs: 5,
            },
            other => WebError::internal(crate::error_chain::error_chain(&other)),
        }
    }
}

impl From<askama::Error> for WebError {
    fn from(error: askama::Error) -> WebError {
        WebError::internal(error)
    }
}

/// What a query value must escape: everything but RFC 3986's unreserved characters.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn encode_query_value(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, QUERY_VALUE).to_string()
}
