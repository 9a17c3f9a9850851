//! The one place that decides whether a half-logged-in session may reach a route. It wraps every
//! route a session reaches (pages, forms, static files, unknown paths), so no handler can be
//! reached with a second factor still owed, whatever extractors it uses. The API and the health
//! checks are outside it: they never load a session (the API takes API keys only).

use actix_session::SessionExt;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::LOCATION;
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};

use super::session;

pub const FACTOR_STEP_PATH: &str = "/login/two-factor";
pub const ENROLLMENT_PATH: &str = "/account/two-factor";

/// Where a session that owes a second factor must go, if anywhere.
fn owed_destination(req: &ServiceRequest) -> Option<&'static str> {
    let session = req.get_session();
    if session::is_pending(&session) {
        Some(FACTOR_STEP_PATH)
    } else if session::must_enroll(&session) {
        Some(ENROLLMENT_PATH)
    } else {
        None
    }
}

fn allowed_while_owing(path: &str, destination: &str) -> bool {
    path == destination
        || path
            .strip_prefix(destination)
            .is_some_and(|rest| rest.starts_with('/'))
        || path == "/logout"
        || path == "/login"
        || path.starts_with("/static/")
}

pub async fn second_factor_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if let Some(destination) = owed_destination(&req)
        && !allowed_while_owing(req.path(), destination)
    {
        let response = HttpResponse::SeeOther()
            .insert_header((LOCATION, destination))
            .force_close()
            .finish();
        return Ok(req.into_response(response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_destination_and_logout_are_reachable() {
        assert!(allowed_while_owing("/login/two-factor", FACTOR_STEP_PATH));
        assert!(allowed_while_owing(
            "/account/two-factor/totp",
            ENROLLMENT_PATH
        ));
        assert!(allowed_while_owing("/logout", ENROLLMENT_PATH));
        assert!(allowed_while_owing("/static/roost.css", ENROLLMENT_PATH));
        assert!(!allowed_while_owing("/account", ENROLLMENT_PATH));
        assert!(!allowed_while_owing(
            "/account/two-factorx",
            ENROLLMENT_PATH
        ));
        assert!(!allowed_while_owing("/users", FACTOR_STEP_PATH));
        assert!(!allowed_while_owing("/api/v1/ping", FACTOR_STEP_PATH));
    }
}
