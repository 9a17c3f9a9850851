//! `/api/v1`: the JSON API of API.md. Handlers parse parameters into domain types, check the
//! caller, call the store on the blocking pool, and answer JSON.

mod api_keys;
mod audit;
pub mod caller;
pub mod error;
mod flocks;
mod invitations;
mod mail;
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

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .service(endpoint("/ping", Method::GET, settings::ping))
            .service(endpoint("/settings", Method::GET, settings::get))
            .service(endpoint(
                "/settings/usermanagement/globally_enforce_2fa/enable",
                Method::POST,
                settings::enforce_2fa_enable,
            ))
            .service(endpoint(
                "/settings/usermanagement/globally_enforce_2fa/disable",
                Method::POST,
                settings::enforce_2fa_disable,
            ))
            .service(endpoint(
                "/settings/api/disable",
                Method::POST,
                settings::api_disable,
            ))
            .service(endpoint("/mail/queue", Method::GET, mail::queue))
            .service(endpoint("/access/review", Method::GET, review::get))
            .service(endpoint(
                "/invite/create",
                Method::POST,
                invitations::create,
            ))
            .service(endpoint("/invites/list", Method::GET, invitations::list))
            .service(endpoint(
                "/invite/revoke",
                Method::POST,
                invitations::revoke,
            ))
            .service(endpoint("/audit_trail/fetch", Method::GET, audit::fetch))
            .service(endpoint("/audit_trail/purge", Method::POST, audit::purge))
            .service(endpoint(
                "/audit_trail/download/json",
                Method::GET,
                audit::download_json,
            ))
            .service(endpoint("/user/add", Method::POST, users::add))
            .service(endpoint("/user/get", Method::GET, users::get))
            .service(endpoint("/user/auth", Method::GET, users::auth))
            .service(endpoint("/users/list", Method::GET, users::list))
            .service(endpoint("/users/filter", Method::GET, users::filter))
            .service(endpoint("/user/edit", Method::POST, users::edit))
            .service(endpoint(
                "/user/edit/access_level",
                Method::POST,
                users::edit_access_level,
            ))
            .service(endpoint("/user/disable", Method::POST, users::disable))
            .service(endpoint("/user/enable", Method::POST, users::enable))
            .service(endpoint("/user/remove", Method::POST, users::remove))
            .service(endpoint("/user/offboard", Method::POST, users::offboard))
            .service(endpoint(
                "/user/offboard/cancel",
                Method::POST,
                users::offboard_cancel,
            ))
            .service(endpoint("/user/note/add", Method::POST, users::note_add))
            .service(endpoint(
                "/user/note/delete",
                Method::DELETE,
                users::note_delete,
            ))
            .service(endpoint(
                "/user/2fa/disable",
                Method::POST,
                users::totp_disable,
            ))
            .service(endpoint(
                "/user/webauthn/disable",
                Method::POST,
                users::webauthn_disable,
            ))
            .service(endpoint(
                "/user/summary_email/enable",
                Method::POST,
                users::summary_email_enable,
            ))
            .service(endpoint(
                "/user/summary_email/disable",
                Method::POST,
                users::summary_email_disable,
            ))
            .service(endpoint("/user/sessions", Method::GET, sessions::list))
            .service(endpoint(
                "/user/sessions/revoke",
                Method::POST,
                sessions::revoke,
            ))
            .service(endpoint(
                "/user/password/reset",
                Method::POST,
                users::password_reset,
            ))
            .service(endpoint(
                "/user/flock/assign",
                Method::POST,
                flocks::user_assign,
            ))
            .service(endpoint(
                "/user/flock/unassign",
                Method::POST,
                flocks::user_unassign,
            ))
            .service(endpoint("/flocks/list", Method::GET, flocks::list))
            .service(endpoint("/flock/create", Method::POST, flocks::create))
            .service(endpoint("/flock/rename", Method::POST, flocks::rename))
            .service(endpoint("/flock/delete", Method::POST, flocks::delete))
            .service(endpoint("/flock/users", Method::GET, flocks::users))
            .service(endpoint(
                "/users/flock/assign/managers",
                Method::POST,
                flocks::assign_managers,
            ))
            .service(endpoint(
                "/users/flock/assign/watchers",
                Method::POST,
                flocks::assign_watchers,
            ))
            .service(endpoint("/auth_token/add", Method::POST, api_keys::add))
            .service(endpoint("/auth_token/list", Method::GET, api_keys::list))
            .service(endpoint(
                "/auth_token/remove",
                Method::DELETE,
                api_keys::remove,
            ))
            .service(endpoint(
                "/flock/auth_token/add",
                Method::POST,
                api_keys::flock_add,
            ))
            .service(endpoint(
                "/flock/auth_token/list",
                Method::GET,
                api_keys::flock_list,
            ))
            .service(endpoint(
                "/flock/auth_token/remove",
                Method::POST,
                api_keys::flock_remove,
            ))
            .default_service(web::to(unknown_endpoint)),
    );
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
