//! Every endpoint of the contract with valid parameters against a small fixture, for the
//! table-driven tests (auth, missing parameters, unknown ids).

use crate::helpers::TestApp;
use reqwest::Method;

/// Existing rows the table's parameters point at.
pub struct Fixture {
    pub flock: String,
    pub key_id: String,
    pub flock_key_id: String,
}

pub const USER: &str = "u@x.io";
pub const ADMIN_USER: &str = "boss@x.io";

/// A user `u@x.io`, an admin user, an empty flock, a read-only global key and a flock key.
pub async fn fixture(app: &TestApp) -> Fixture {
    app.add_user(USER, "user").await;
    app.add_user(ADMIN_USER, "admin").await;
    let flock = app.create_flock("Fixture flock").await;
    let key = app.add_key("read-only").await;
    let flock_key = app.add_flock_key(&flock, "admin").await;
    Fixture {
        flock,
        key_id: key["key_id"].as_str().expect("key_id").to_string(),
        flock_key_id: flock_key["key_id"].as_str().expect("key_id").to_string(),
    }
}

pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub params: Vec<(&'static str, String)>,
    pub required: &'static [&'static str],
    /// A GET that only global admin keys may call.
    pub admin_only: bool,
}

impl Endpoint {
    pub fn params(&self) -> Vec<(&str, &str)> {
        self.params.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    /// The parameters with `name` left out.
    pub fn params_without(&self, name: &str) -> Vec<(&str, &str)> {
        let mut params = self.params();
        params.retain(|(k, _)| *k != name);
        params
    }

    /// The parameters with `name` set to `value`.
    pub fn params_with<'a>(&'a self, name: &str, value: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut params = self.params();
        for param in &mut params {
            if param.0 == name {
                param.1 = value;
            }
        }
        params
    }

    pub fn has(&self, name: &str) -> bool {
        self.params.iter().any(|(k, _)| *k == name)
    }

    /// A read any global key may make.
    pub fn is_read(&self) -> bool {
        self.method == Method::GET && !self.admin_only
    }
}

fn ep(
    method: Method,
    path: &'static str,
    params: &[(&'static str, &str)],
    required: &'static [&'static str],
) -> Endpoint {
    Endpoint {
        method,
        path,
        params: params.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        required,
        admin_only: false,
    }
}

/// An endpoint for global admin keys only, whatever its method.
fn admin_ep(
    method: Method,
    path: &'static str,
    params: &[(&'static str, &str)],
    required: &'static [&'static str],
) -> Endpoint {
    Endpoint {
        admin_only: true,
        ..ep(method, path, params, required)
    }
}

pub fn endpoints(fx: &Fixture) -> Vec<Endpoint> {
    use Method as M;
    let f = fx.flock.as_str();
    let email: &'static [&'static str] = &["email"];
    let membership = [
        ("email", USER),
        ("flock_id_list", f),
        ("flock_access_level", "watcher"),
    ];
    let membership_required: &'static [&'static str] =
        &["email", "flock_id_list", "flock_access_level"];
    vec![
        ep(M::GET, "ping", &[], &[]),
        ep(M::GET, "user/get", &[("email", USER)], email),
        ep(M::GET, "user/auth", &[("email", USER)], email),
        ep(M::GET, "users/list", &[], &[]),
        ep(
            M::GET,
            "users/filter",
            &[("filter_str", "x")],
            &["filter_str"],
        ),
        ep(M::GET, "flocks/list", &[], &[]),
        ep(M::GET, "flock/users", &[("flock_id", f)], &["flock_id"]),
        ep(M::GET, "auth_token/list", &[], &[]),
        ep(
            M::GET,
            "flock/auth_token/list",
            &[("flock_id", f)],
            &["flock_id"],
        ),
        ep(M::GET, "settings", &[], &[]),
        ep(
            M::POST,
            "settings/usermanagement/globally_enforce_2fa/enable",
            &[],
            &[],
        ),
        ep(
            M::POST,
            "settings/usermanagement/globally_enforce_2fa/disable",
            &[],
            &[],
        ),
        ep(
            M::POST,
            "settings/usermanagement/passwordless_sign_in/disable",
            &[],
            &[],
        ),
        ep(
            M::POST,
            "settings/usermanagement/passwordless_sign_in/enable",
            &[],
            &[],
        ),
        ep(
            M::POST,
            "user/add",
            &[
                ("email", "new@x.io"),
                ("access_level", "user"),
                ("send_welcome_mail", "false"),
            ],
            &["email", "access_level"],
        ),
        ep(
            M::POST,
            "user/note/add",
            &[("email", USER), ("note", "n")],
            &["email", "note"],
        ),
        ep(
            M::POST,
            "user/flock/assign",
            &membership,
            membership_required,
        ),
        ep(
            M::POST,
            "user/flock/unassign",
            &membership,
            membership_required,
        ),
        ep(M::POST, "user/disable", &[("email", USER)], email),
        ep(M::POST, "user/enable", &[("email", USER)], email),
        ep(M::POST, "user/2fa/disable", &[("email", USER)], email),
        ep(M::POST, "user/webauthn/disable", &[("email", USER)], email),
        ep(
            M::POST,
            "user/summary_email/disable",
            &[("email", USER)],
            email,
        ),
        ep(
            M::POST,
            "user/summary_email/enable",
            &[("email", USER)],
            email,
        ),
        ep(
            M::POST,
            "user/edit",
            &[("email", USER), ("note", "e")],
            email,
        ),
        ep(
            M::POST,
            "user/edit/access_level",
            &[("email", USER), ("access_level", "admin")],
            &["email", "access_level"],
        ),
        ep(M::POST, "user/remove", &[("email", USER)], email),
        ep(M::POST, "user/offboard", &[("email", USER)], email),
        ep(M::DELETE, "user/note/delete", &[("email", USER)], email),
        ep(M::POST, "user/password/reset", &[("email", USER)], email),
        admin_ep(M::GET, "user/sessions", &[("email", USER)], email),
        admin_ep(M::POST, "user/sessions/revoke", &[("email", USER)], email),
        admin_ep(M::GET, "mail/queue", &[], &[]),
        admin_ep(M::GET, "access/review", &[], &[]),
        admin_ep(M::GET, "invites/list", &[], &[]),
        ep(M::POST, "invite/create", &[("max_uses", "1")], &[]),
        ep(M::POST, "flock/create", &[("name", "Another")], &["name"]),
        ep(
            M::POST,
            "flock/rename",
            &[("flock_id", f), ("name", "Renamed")],
            &["flock_id", "name"],
        ),
        ep(M::POST, "flock/delete", &[("flock_id", f)], &["flock_id"]),
        ep(
            M::POST,
            "users/flock/assign/managers",
            &[("flock_id", f), ("emails", USER)],
            &["flock_id", "emails"],
        ),
        ep(
            M::POST,
            "users/flock/assign/watchers",
            &[("flock_id", f), ("emails", USER)],
            &["flock_id", "emails"],
        ),
        ep(
            M::POST,
            "auth_token/add",
            &[("auth_token_type", "read-only"), ("note", "k")],
            &["auth_token_type", "note"],
        ),
        ep(
            M::DELETE,
            "auth_token/remove",
            &[("key_id", &fx.key_id)],
            &["key_id"],
        ),
        ep(
            M::POST,
            "flock/auth_token/add",
            &[("flock_id", f), ("note", "k")],
            &["flock_id", "note"],
        ),
        ep(
            M::POST,
            "flock/auth_token/remove",
            &[("key_id", &fx.flock_key_id)],
            &["key_id"],
        ),
        ep(M::POST, "settings/api/disable", &[], &[]),
    ]
}
