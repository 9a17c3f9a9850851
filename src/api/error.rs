use actix_web::http::StatusCode;
use actix_web::http::header::RETRY_AFTER;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::state::BlockingError;
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
        log::error!("internal error while handling an API call: {cause}");
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

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        let status = match &error {
            StoreError::UserNotFound | StoreError::FlockNotFound | StoreError::ApiKeyNotFound => {
                StatusCode::NOT_FOUND
            }
            StoreError::UserExists(_)
            | StoreError::UserDisabled
            | StoreError::LastEnabledAdmin
            | StoreError::DefaultFlock
            | StoreError::FlockNotEmpty => StatusCode::CONFLICT,
            StoreError::TwoRolesInOneFlock(_) | StoreError::TokenInvalid => StatusCode::BAD_REQUEST,
            StoreError::Locked { .. }
            | StoreError::NewerSchema { .. }
            | StoreError::Corrupt(_)
            | StoreError::Sealing(_)
            | StoreError::SecretsKey(_)
            | StoreError::WrongSecretsKey { .. }
            | StoreError::MigrationBackup { .. }
            | StoreError::TaskLost(_)
            | StoreError::Database(_)
            | StoreError::DataDir { .. } => return ApiError::internal(error),
        };
        ApiError::new(status, error.to_string())
    }
}

impl From<BlockingError> for ApiError {
    fn from(error: BlockingError) -> ApiError {
        match error {
            BlockingError::Store(error) => error.into(),
            BlockingError::Canceled => ApiError::internal(error),
        }
    }
}
