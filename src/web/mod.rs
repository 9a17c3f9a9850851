//! The browser console: server-rendered pages over the same store and domain code as the API.
//! Handlers take a `SignedIn` (or render the login page), read forms only through `CsrfForm`,
//! check permission at the top, call the store, and end every action with a redirect and a flash.

mod account;
mod api_docs;
pub mod assets;
mod audit;
pub mod csrf;
pub mod error;
mod flocks;
mod forms;
pub mod gate;
mod invitations;
mod keys;
mod login;
pub mod next;
pub mod page;
mod review;
mod security_keys;
pub mod session;
mod sessions;
mod settings;
mod two_factor;
mod users;
mod webhooks;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::middleware::DefaultHeaders;
use actix_web::web;

pub const SESSION_COOKIE: &str = "roost_session";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(login::home))
        .route("/login", web::get().to(login::login_form))
        .route("/login", web::post().to(login::login_submit))
        .route("/logout", web::post().to(login::logout))
        .route("/forgot-password", web::get().to(login::forgot_form))
        .route("/forgot-password", web::post().to(login::forgot_submit))
        .route("/static/{name}", web::get().to(assets::serve))
        .route(
            "/{purpose:setup|welcome|reset}/{secret}",
            web::get().to(login::link_form),
        )
        .route(
            "/{purpose:setup|welcome|reset}/{secret}",
            web::post().to(login::link_submit),
        )
        .configure(two_factor::routes)
        .configure(security_keys::routes)
        .configure(account::routes)
        .configure(sessions::routes)
        .configure(users::routes)
        .configure(flocks::routes)
        .configure(keys::routes)
        .configure(settings::routes)
        .configure(review::routes)
        .configure(invitations::routes)
        .configure(api_docs::routes)
        .configure(webhooks::routes)
        .configure(audit::routes);
}

/// Any path no route claims: a page, not an empty 404.
pub async fn not_found() -> Result<actix_web::HttpResponse, error::WebError> {
    Err(error::WebError::NotFound)
}

/// Encrypted, signed session cookie: HttpOnly, SameSite=Lax, Secure behind https, ending with
/// the browser session (the idle and absolute limits are enforced server-side in `session`).
pub fn session_middleware(key: Key, secure: bool) -> SessionMiddleware<CookieSessionStore> {
    SessionMiddleware::builder(CookieSessionStore::default(), key)
        .cookie_name(SESSION_COOKIE.to_string())
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_secure(secure)
        .cookie_content_security(CookieContentSecurity::Private)
        .session_lifecycle(BrowserSession::default())
        .build()
}

/// Headers on every response: no inline script, no framing, no referrer (links carry one-time
/// secrets), no content sniffing, and no caching (pages and API answers carry people's data; a
/// shared browser's cache must not keep them). Static assets set their own `Cache-Control`,
/// which this doesn't replace.
pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Cache-Control", "no-store"));
    if https {
        // Served over HTTPS (its own TLS, or a proxy's for an https base URL): browsers keep to
        // HTTPS for a year. No includeSubDomains: the console can't speak for sibling hosts.
        headers.add(("Strict-Transport-Security", "max-age=31536000"))
    } else {
        headers
    }
}

/// Paths whose last segment is a one-time secret, so logs show the route and not the secret.
pub fn redact_path(path: &str) -> String {
    for prefix in ["/setup/", "/welcome/", "/reset/", "/invite/"] {
        if path.starts_with(prefix) {
            return format!("{prefix}[redacted]");
        }
    }
    path.to_string()
}

#[cfg(test)]
mod redaction_tests {
    use super::redact_path;

    #[test]
    fn every_one_time_secret_path_is_redacted_and_others_are_kept() {
        for (path, logged) in [
            ("/setup/abc", "/setup/[redacted]"),
            ("/welcome/abc", "/welcome/[redacted]"),
            ("/reset/abc", "/reset/[redacted]"),
            ("/invite/abc", "/invite/[redacted]"),
            ("/invitations", "/invitations"),
            ("/users/7", "/users/7"),
        ] {
            assert_eq!(redact_path(path), logged);
        }
    }
}
