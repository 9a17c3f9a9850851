//! What every page shows around its content: navigation, the CSRF token for its forms, and the
//! one-shot message (flash) left by the previous action.

use actix_session::Session;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, LOCATION};
use askama::Template;
use serde::{Deserialize, Serialize};

use super::csrf;
use super::error::WebError;
use super::session::SignedIn;
use crate::domain::AccessLevel;

const FLASH_KEY: &str = "flash";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    /// `success` or `error`: the CSS class and the ARIA role follow it.
    pub kind: String,
    pub text: String,
}

pub fn flash_success(session: &Session, text: impl Into<String>) {
    set_flash(session, "success", text.into());
}

pub fn flash_error(session: &Session, text: impl Into<String>) {
    set_flash(session, "error", text.into());
}

/// Back to `to` with an action's outcome as a flash: `done`'s message, or the words of a refusal
/// the person can act on there (`shown`); any other error is an error page.
pub fn back_with_outcome<T>(
    session: &Session,
    to: &str,
    outcome: crate::service::ServiceResult<T>,
    shown: impl Fn(&crate::domain::Refusal) -> bool,
    done: impl FnOnce(T) -> String,
) -> PageResult {
    match outcome {
        Ok(value) => flash_success(session, done(value)),
        Err(crate::service::ServiceError::Refused(refusal)) if shown(&refusal) => {
            flash_error(session, super::error::refusal_message(&refusal));
        }
        Err(error) => return Err(error.into()),
    }
    Ok(see_other(to))
}

fn set_flash(session: &Session, kind: &str, text: String) {
    let flash = Flash {
        kind: kind.to_string(),
        text,
    };
    if let Err(error) = session.insert(FLASH_KEY, flash) {
        tracing::warn!("could not store a flash message: {error}");
    }
}

fn take_flash(session: &Session) -> Option<Flash> {
    session.remove_as::<Flash>(FLASH_KEY).and_then(Result::ok)
}

/// The signed-in person, as the navigation shows them.
pub struct Nav {
    pub email: String,
    pub is_admin: bool,
}

pub struct PageContext {
    pub title: String,
    pub nav: Option<Nav>,
    pub csrf: String,
    pub flash: Option<Flash>,
}

impl PageContext {
    pub fn signed_in(signed_in: &SignedIn, title: impl Into<String>) -> PageContext {
        PageContext {
            title: title.into(),
            nav: Some(Nav {
                email: signed_in.user.email.to_string(),
                is_admin: signed_in.user.access_level == AccessLevel::Admin,
            }),
            csrf: csrf::token(&signed_in.session),
            flash: take_flash(&signed_in.session),
        }
    }

    pub fn anonymous(session: &Session, title: impl Into<String>) -> PageContext {
        PageContext {
            title: title.into(),
            nav: None,
            csrf: csrf::token(session),
            flash: take_flash(session),
        }
    }
}

/// Renders a page with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

pub fn ok(page: &impl Template) -> Result<HttpResponse, WebError> {
    render(StatusCode::OK, page)
}

/// 303 to `location`: every form post ends with one, so a reload doesn't repeat the action. A
/// location that can't be a header value (it never should: `next` is cleaned) goes to `/`
/// rather than failing the response.
pub fn see_other(location: &str) -> HttpResponse {
    let value = HeaderValue::from_str(location).unwrap_or_else(|_| {
        tracing::warn!("refused a redirect location that is not a valid header value");
        HeaderValue::from_static("/")
    });
    HttpResponse::SeeOther()
        .insert_header((LOCATION, value))
        .finish()
}

pub type PageResult = Result<HttpResponse, WebError>;
