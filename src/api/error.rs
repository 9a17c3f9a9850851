use actix_web::http::StatusCode;
use actix_web::http::header::RETRY_AFTER;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::domain::Refusal;
use crate::service::ServiceError;
use crate::store::StoreError;

/// An API failure: the status and one sentence for the caller. Internal causes are logged, never
/// sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds to wait before trying again, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 503 with `Retry-After: 1`: nothing was done, try again in a moment.
    pub fn busy(message: impl Into<String>) -> ApiError {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn key_not_allowed() -> ApiError {
        ApiError::forbidden("This API key is not allowed to call this endpoint.")
    }

    /// Logs the cause and answers with a message that reveals nothing about it.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!("internal error while handling an API call: {cause}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error. The cause has been logged.",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((RETRY_AFTER, seconds.to_string()));
        }
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The body was cut short: the connection can't carry another request.
            response.force_close();
        }
        response.json(json!({"result": "error", "message": self.message}))
    }
}

/// The API's words for each refusal (the canary console's where it has them).
impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        let (status, message) = match &refusal {
            Refusal::NotAllowed => return ApiError::key_not_allowed(),
            Refusal::UserNotFound => (StatusCode::NOT_FOUND, "User does not exist.".into()),
            Refusal::FlockNotFound => (StatusCode::NOT_FOUND, "Flock does not exist.".into()),
            Refusal::ApiKeyNotFound => (StatusCode::NOT_FOUND, "API key does not exist.".into()),
            Refusal::SessionNotFound => (StatusCode::NOT_FOUND, "Session does not exist.".into()),
            Refusal::AuditEntryNotFound => (
                StatusCode::NOT_FOUND,
                "Audit trail entry does not exist.".into(),
            ),
            Refusal::UserExists(email) => (
                StatusCode::CONFLICT,
                format!("User ({email}) already exists."),
            ),
            Refusal::UserDisabled => (StatusCode::CONFLICT, "User is disabled.".into()),
            Refusal::LastEnabledAdmin => (
                StatusCode::CONFLICT,
                "Cannot disable, remove or demote the last enabled admin.".into(),
            ),
            Refusal::DefaultFlock => (StatusCode::CONFLICT, "Cannot delete default flock".into()),
            Refusal::FlockNotEmpty => (
                StatusCode::CONFLICT,
                "Cannot delete a non-empty flock".into(),
            ),
            Refusal::TwoRolesInOneFlock(email) => (
                StatusCode::BAD_REQUEST,
                format!("User {email} cannot be both manager and watcher of one flock."),
            ),
            Refusal::LinkInvalid => (
                StatusCode::BAD_REQUEST,
                "The link is invalid, expired or already used.".into(),
            ),
            Refusal::NoOffboardingScheduled => (
                StatusCode::NOT_FOUND,
                "No offboarding is scheduled for this user.".into(),
            ),
            Refusal::TimeInThePast => (
                StatusCode::BAD_REQUEST,
                "The time is in the past: give a future time, or leave it out.".into(),
            ),
            Refusal::WebhookNotFound => (StatusCode::NOT_FOUND, "Webhook does not exist.".into()),
            Refusal::InvitationNotFound => {
                (StatusCode::NOT_FOUND, "Invitation does not exist.".into())
            }
            Refusal::EmailDomainNotAllowed(domain) => (
                StatusCode::BAD_REQUEST,
                format!("This invitation is for addresses at {domain}."),
            ),
            Refusal::CredentialRegistered => (
                StatusCode::CONFLICT,
                "The credential is registered already.".into(),
            ),
            Refusal::LastWayIn => (
                StatusCode::CONFLICT,
                "It is the user's last way to sign in.".into(),
            ),
            Refusal::ExpiryNeedsAdmin => (
                StatusCode::BAD_REQUEST,
                "Parameter 'expires_at' only applies to access_level 'admin'.".into(),
            ),
        };
        ApiError::new(status, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        ServiceError::from(error).into()
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        match error {
            ServiceError::Refused(refusal) => refusal.into(),
            ServiceError::HashingBusy => {
                ApiError::busy("The server is busy checking passwords. Try again in a moment.")
            }
            ServiceError::ScansBusy => {
                ApiError::busy("Too many lists are being read right now. Try again in a moment.")
            }
            ServiceError::Stopping => ApiError {
                retry_after: Some(5),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The console is stopping and takes no changes. Nothing was changed; try again once it is back.",
                )
            },
            other => ApiError::internal(crate::error_chain::error_chain(&other)),
        }
    }
}
