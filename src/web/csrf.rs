//! CSRF protection: a per-session random token in every form, checked before any handler sees
//! the form. The only way for a handler to read a form body is `CsrfForm`, so none can forget.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::error::WebError;
use crate::auth::{constant_time_eq, random_hex};

const CSRF_KEY: &str = "csrf";
pub const CSRF_FIELD: &str = "csrf_token";
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The session's CSRF token, created on first use.
pub fn token(session: &Session) -> String {
    if let Ok(Some(token)) = session.get::<String>(CSRF_KEY) {
        return token;
    }
    let token = random_hex(32);
    if let Err(error) = session.insert(CSRF_KEY, &token) {
        tracing::warn!("could not store a CSRF token: {error}");
    }
    token
}

/// Replaces the token (at login, so a token seen before login is worthless after).
pub fn rotate(session: &Session) -> Result<(), WebError> {
    session
        .insert(CSRF_KEY, random_hex(32))
        .map_err(WebError::internal)
}

/// Header carrying the token on the JSON requests of the WebAuthn script.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// Checks the token sent in `CSRF_HEADER` (script requests have no form to carry it).
pub fn verify_header(req: &HttpRequest) -> Result<(), WebError> {
    let session = req.get_session();
    let sent = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok());
    let expected = session.get::<String>(CSRF_KEY).ok().flatten();
    match (sent, expected) {
        (Some(sent), Some(expected)) if constant_time_eq(sent, &expected) => Ok(()),
        _ => Err(WebError::CsrfRejected),
    }
}

/// A urlencoded form whose `csrf_token` matched the session's.
pub struct CsrfForm<T>(pub T);

/// A form with nothing but its CSRF token: a button that asks for one action.
#[derive(serde::Deserialize)]
pub struct EmptyForm {}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<CsrfForm<T>, WebError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = req.get_session();
        let mut payload = payload.take();
        Box::pin(async move {
            let mut body = Vec::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|error| {
                    if crate::request_limits::is_body_timeout(&error) {
                        WebError::RequestTimeout
                    } else {
                        WebError::BadRequest("The form could not be read.".into())
                    }
                })?;
                if body.len() + chunk.len() > MAX_FORM_BYTES {
                    return Err(WebError::BadRequest("The form is too large.".into()));
                }
                body.extend_from_slice(&chunk);
            }
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
                .map_err(|_| WebError::BadRequest("The form could not be read.".into()))?;
            let sent = pairs
                .iter()
                .find(|(name, _)| name == CSRF_FIELD)
                .map(|(_, value)| value.as_str());
            let expected = session.get::<String>(CSRF_KEY).ok().flatten();
            match (sent, expected) {
                (Some(sent), Some(expected)) if constant_time_eq(sent, &expected) => {}
                _ => return Err(WebError::CsrfRejected),
            }
            let form = serde_urlencoded::from_bytes::<T>(&body).map_err(|_| {
                WebError::BadRequest("The form is missing a field or has a malformed one.".into())
            })?;
            Ok(CsrfForm(form))
        })
    }
}
