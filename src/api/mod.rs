//! `/api/v1`: the JSON API of API.md. Handlers parse parameters into domain types, check the
//! caller, call the store on the blocking pool, and answer JSON.

mod api_keys;
mod audit;
pub mod caller;
pub mod error;
mod flocks;
mod invitations;
mod mail;
pub mod openapi;
pub mod params;
mod review;
mod sessions;
mod settings;
mod users;
pub mod views;

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, Resource, web};
use serde_json::{Value, json};

use error::ApiError;

/// Every endpoint, once: `routes` registers each with its handler, and `described` hands the
/// same list (path, method, summary, parameters, who may call it) to the OpenAPI document
/// (`openapi`), so a route can't be served without being described.
macro_rules! api_endpoints {
    ($( $method:ident $path:literal => $handler:path, $who:ident, $summary:literal, [$( ($name:literal, $required:literal, $about:literal) ),* $(,)?] ; )*) => {
        pub fn routes(cfg: &mut web::ServiceConfig) {
            cfg.service(
                web::scope("/api/v1")
                    $( .service(endpoint($path, Method::$method, $handler)) )*
                    .default_service(web::to(unknown_endpoint)),
            );
        }

        /// What `routes` serves, as `openapi` describes it.
        pub fn described() -> Vec<openapi::Described> {
            vec![ $( openapi::Described {
                method: Method::$method,
                path: $path,
                who: openapi::Who::$who,
                summary: $summary,
                params: vec![ $( openapi::Param { name: $name, required: $required, about: $about } ),* ],
            } ),* ]
        }
    };
}

api_endpoints! {
    GET "/openapi.json" => openapi::document, Anyone, "This API's OpenAPI 3.1 description (no key needed).", [];
    GET "/ping" => settings::ping, AnyKey, "Checks the key: answers success for any valid key.", [];
    GET "/settings" => settings::get, AnyKey, "The console's settings: 2FA enforcement, passwordless sign-in and API access.", [];
    POST "/settings/usermanagement/globally_enforce_2fa/enable" => settings::enforce_2fa_enable, Admin, "Enforces two-factor authentication for everyone.", [];
    POST "/settings/usermanagement/globally_enforce_2fa/disable" => settings::enforce_2fa_disable, Admin, "Stops enforcing two-factor authentication for everyone.", [];
    POST "/settings/usermanagement/passwordless_sign_in/enable" => settings::passwordless_enable, Admin, "Lets a passkey alone sign its owner in.", [];
    POST "/settings/usermanagement/passwordless_sign_in/disable" => settings::passwordless_disable, Admin, "Forbids signing in with a passkey alone (passkeys then serve as a second factor).", [];
    POST "/settings/api/disable" => settings::api_disable, Admin, "Turns API access off (only the console turns it on again).", [];
    GET "/mail/queue" => mail::queue, AdminRead, "The outgoing mail queue, without contents.", [];
    GET "/access/review" => review::get, AdminRead, "The access review's sections.", [];
    POST "/invite/create" => invitations::create, Admin, "Creates an invitation link (shown once).", [
        ("access_level", false, "`user` (default) or `admin`."),
        ("manager_flocks", false, "Comma-separated flock ids the invitee manages."),
        ("watcher_flocks", false, "Comma-separated flock ids the invitee watches."),
        ("max_uses", false, "Accounts the link may make, 1-1000 (default 1)."),
        ("expires_at", false, "RFC 3339; default 7 days, at most 90."),
        ("email_domain", false, "Only addresses at this domain."),
    ];
    GET "/invites/list" => invitations::list, AdminRead, "Every invitation with its uses, never its link.", [];
    POST "/invite/revoke" => invitations::revoke, Admin, "Revokes an invitation.", [("id", true, "The invitation's id.")];
    GET "/audit_trail/fetch" => audit::fetch, AnyKey, "A page of the audit trail, newest first.", [
        ("action_filter", false, "Only entries of this action type."),
        ("limit", false, "Entries per page."),
        ("cursor", false, "The cursor of the previous page."),
        ("tz", false, "The IANA time zone the times are written in."),
    ];
    POST "/audit_trail/purge" => audit::purge, Admin, "Deletes the entries up to an id.", [("id", true, "The newest entry to delete.")];
    GET "/audit_trail/download/json" => audit::download_json, AnyKey, "The whole trail as a zipped JSON file.", [];
    POST "/user/add" => users::add, Admin, "Adds a user.", [
        ("email", true, "The new user's email."),
        ("access_level", true, "`admin` or `user`."),
        ("note", false, "A note admins see."),
        ("totp_enabled", false, "Boolean: demand a second factor at their first login."),
        ("send_welcome_mail", false, "Boolean (default true): mail a link to choose a password."),
        ("expires_at", false, "RFC 3339, with `access_level=admin`: admin access ends then."),
    ];
    GET "/user/get" => users::get, AnyKey, "One user with their flock roles.", [("email", true, "The user's email.")];
    GET "/user/auth" => users::auth, AnyKey, "Whether a user exists and may log in.", [("email", true, "The user's email.")];
    GET "/users/list" => users::list, AnyKey, "Users in email order, a page at a time.", [
        ("limit", false, "Users per page (at most 1000)."),
        ("cursor", false, "The `next_cursor` of the previous page."),
    ];
    GET "/users/filter" => users::filter, AnyKey, "Users whose email or note contains a text.", [
        ("filter_str", true, "The text, any case."),
        ("limit", false, "Users per page (at most 1000)."),
        ("cursor", false, "The `next_cursor` of the previous page."),
    ];
    POST "/user/edit" => users::edit, Admin, "Edits a user's note.", [("email", true, "The user's email."), ("note", false, "The new note.")];
    POST "/user/edit/access_level" => users::edit_access_level, Admin, "Sets a user's access level.", [
        ("email", true, "The user's email."),
        ("access_level", true, "`admin` or `user`."),
        ("expires_at", false, "RFC 3339, with `admin`: admin access ends then."),
    ];
    POST "/user/disable" => users::disable, Admin, "Disables a user (their sessions end).", [("email", true, "The user's email.")];
    POST "/user/enable" => users::enable, Admin, "Enables a user.", [("email", true, "The user's email.")];
    POST "/user/remove" => users::remove, Admin, "Removes a user.", [("email", true, "The user's email.")];
    POST "/user/offboard" => users::offboard, Admin, "Offboards a user now or at a time.", [
        ("email", true, "The user's email."),
        ("at", false, "RFC 3339: schedule it for then."),
        ("revoke_api_keys", false, "Boolean (default true): revoke the keys they created, or only list them."),
    ];
    POST "/user/offboard/cancel" => users::offboard_cancel, Admin, "Cancels a scheduled offboarding.", [("email", true, "The user's email.")];
    POST "/user/note/add" => users::note_add, Admin, "Sets a user's note.", [("email", true, "The user's email."), ("note", true, "The note (at most 10,000 characters).")];
    DELETE "/user/note/delete" => users::note_delete, Admin, "Removes a user's note.", [("email", true, "The user's email.")];
    POST "/user/2fa/disable" => users::totp_disable, Admin, "Removes a user's authenticator app (TOTP).", [("email", true, "The user's email.")];
    POST "/user/webauthn/disable" => users::webauthn_disable, Admin, "Removes a user's security keys.", [("email", true, "The user's email.")];
    POST "/user/summary_email/enable" => users::summary_email_enable, Admin, "Turns a user's weekly summary on.", [("email", true, "The user's email.")];
    POST "/user/summary_email/disable" => users::summary_email_disable, Admin, "Turns a user's weekly summary off.", [("email", true, "The user's email.")];
    GET "/user/sessions" => sessions::list, AdminRead, "A user's console sessions.", [("email", true, "The user's email.")];
    POST "/user/sessions/revoke" => sessions::revoke, Admin, "Ends a user's console sessions (one, or all).", [("email", true, "The user's email."), ("session_id", false, "Only this session.")];
    POST "/user/password/reset" => users::password_reset, Admin, "Mails a user a link to choose a new password.", [("email", true, "The user's email.")];
    POST "/user/flock/assign" => flocks::user_assign, Admin, "Gives a user a role in flocks.", [
        ("email", true, "The user's email."),
        ("flock_id_list", true, "Comma-separated flock ids."),
        ("flock_access_level", true, "`manager` or `watcher`."),
        ("expires_at", false, "RFC 3339: the roles end then."),
    ];
    POST "/user/flock/unassign" => flocks::user_unassign, Admin, "Takes a user's role away in flocks.", [
        ("email", true, "The user's email."),
        ("flock_id_list", true, "Comma-separated flock ids."),
        ("flock_access_level", true, "`manager` or `watcher`."),
    ];
    GET "/flocks/list" => flocks::list, AnyKey, "Every flock the key may see.", [];
    POST "/flock/create" => flocks::create, Admin, "Creates a flock.", [
        ("name", true, "The flock's name."),
        ("managers", false, "Comma-separated emails."),
        ("watchers", false, "Comma-separated emails."),
    ];
    POST "/flock/rename" => flocks::rename, Admin, "Renames a flock.", [("flock_id", true, "The flock's id."), ("name", true, "The new name.")];
    POST "/flock/delete" => flocks::delete, Admin, "Deletes an empty flock.", [("flock_id", true, "The flock's id.")];
    GET "/flock/users" => flocks::users, AnyKey, "A flock's managers and watchers.", [("flock_id", true, "The flock's id.")];
    POST "/users/flock/assign/managers" => flocks::assign_managers, Admin, "Makes a list exactly a flock's managers.", [("flock_id", true, "The flock's id."), ("emails", true, "Comma-separated emails.")];
    POST "/users/flock/assign/watchers" => flocks::assign_watchers, Admin, "Makes a list exactly a flock's watchers.", [("flock_id", true, "The flock's id."), ("emails", true, "Comma-separated emails.")];
    POST "/auth_token/add" => api_keys::add, Admin, "Creates a global API key (its secret shown once).", [
        ("auth_token_type", true, "`admin`, `analyst` or `read-only`."),
        ("note", true, "What the key is for."),
    ];
    GET "/auth_token/list" => api_keys::list, AnyKey, "Global API keys, without secrets.", [];
    DELETE "/auth_token/remove" => api_keys::remove, Admin, "Revokes a global API key.", [("key_id", true, "The key's id.")];
    POST "/flock/auth_token/add" => api_keys::flock_add, Admin, "Creates a key bound to one flock.", [
        ("flock_id", true, "The flock's id."),
        ("auth_token_type", true, "`admin` or `read-only`."),
        ("note", true, "What the key is for."),
    ];
    GET "/flock/auth_token/list" => api_keys::flock_list, AnyKey, "A flock's keys, without secrets.", [("flock_id", true, "The flock's id.")];
    POST "/flock/auth_token/remove" => api_keys::flock_remove, Admin, "Revokes a flock's key.", [("flock_id", true, "The flock's id."), ("key_id", true, "The key's id.")];
}

/// One path answering one method; any other method gets a JSON 405.
fn endpoint<F, Args>(path: &str, method: Method, handler: F) -> Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::method(method).to(handler))
        .default_service(web::to(method_not_allowed))
}

async fn unknown_endpoint() -> ApiResult {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "Unknown API endpoint.",
    ))
}

async fn method_not_allowed() -> ApiResult {
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed.",
    ))
}

pub type ApiResult = Result<HttpResponse, ApiError>;

fn success() -> ApiResult {
    success_with(json!({}))
}

fn success_msg(message: String) -> ApiResult {
    success_with(json!({ "msg": message }))
}

/// `{"result":"success","<field>":<value>}`, keys in order as `success_with` gives them,
/// serialized straight from `value` (no `serde_json::Value` built on the way): for the hot
/// reads.
fn success_with_field(field: &'static str, value: &impl serde::Serialize) -> ApiResult {
    struct Body<'a, T> {
        field: &'static str,
        value: &'a T,
    }
    impl<T: serde::Serialize> serde::Serialize for Body<'_, T> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = serializer.serialize_map(Some(2))?;
            if self.field < "result" {
                map.serialize_entry(self.field, self.value)?;
                map.serialize_entry("result", "success")?;
            } else {
                map.serialize_entry("result", "success")?;
                map.serialize_entry(self.field, self.value)?;
            }
            map.end()
        }
    }
    Ok(HttpResponse::Ok().json(Body { field, value }))
}

/// `{"result": "success"}` merged with the fields of `body`.
fn success_with(mut body: Value) -> ApiResult {
    if let Value::Object(fields) = &mut body {
        fields.insert("result".into(), Value::from("success"));
    }
    Ok(HttpResponse::Ok().json(body))
}
