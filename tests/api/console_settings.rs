//! The console's admin-only pages for the whole console: settings (two-factor enforcement, API
//! access) and global API keys.

use serde_json::json;

use crate::console::Console;
use crate::console_flocks::{key_id_on, secret_on};
use crate::helpers::*;

const ADMIN: &str = "root@x.io";
const USER: &str = "uma@x.io";

async fn settings(app: &TestApp) -> serde_json::Value {
    app.get("settings", &[]).await.ok()["settings"].clone()
}

// ---- settings ----

#[tokio::test]
async fn enforce_2fa_toggle_shows_the_state_and_changes_the_setting() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    let page = admin.get("/settings").await;
    assert_eq!(page.status, 200);
    page.assert_contains("<strong id=\"enforce-2fa-state\">off</strong>");
    page.assert_contains("id=\"enforce-2fa-toggle\"");

    admin
        .post("/settings/enforce-2fa", &[("enabled", "on")])
        .await
        .redirects_to("/settings");
    let page = admin.get("/settings").await;
    page.assert_contains("Two-factor authentication is now enforced for everyone.");
    page.assert_contains("<strong id=\"enforce-2fa-state\">on</strong>");
    assert_eq!(
        settings(&app).await,
        json!({"globally_enforce_2fa": true, "api_enabled": true, "passwordless_sign_in": true})
    );

    admin
        .post("/settings/enforce-2fa", &[("enabled", "off")])
        .await
        .redirects_to("/settings");
    let page = admin.get("/settings").await;
    page.assert_contains("no longer enforced");
    page.assert_contains("<strong id=\"enforce-2fa-state\">off</strong>");
    assert_eq!(settings(&app).await["globally_enforce_2fa"], false);
}

#[tokio::test]
async fn api_access_turned_off_from_the_page_refuses_the_api() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    admin.get("/settings").await;
    admin
        .post("/settings/api", &[("enabled", "off")])
        .await
        .redirects_to("/settings");
    let page = admin.get("/settings").await;
    page.assert_contains("API access is off");
    page.assert_contains("<strong id=\"api-access-state\">off</strong>");
    app.get("ping", &[])
        .await
        .err(403, "API access is disabled");
}

#[tokio::test]
async fn api_disabled_through_the_api_is_enabled_again_from_the_page() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    app.post("settings/api/disable", &[]).await.ok_bare();
    app.get("settings", &[])
        .await
        .err(403, "API access is disabled");
    let page = admin.get("/settings").await;
    page.assert_contains("<strong id=\"api-access-state\">off</strong>");
    page.assert_contains("id=\"api-access-toggle\"");
    admin
        .post("/settings/api", &[("enabled", "on")])
        .await
        .redirects_to("/settings");
    let page = admin.get("/settings").await;
    page.assert_contains("API access is on: API keys work again.");
    page.assert_contains("<strong id=\"api-access-state\">on</strong>");
    assert_eq!(
        settings(&app).await,
        json!({"globally_enforce_2fa": false, "api_enabled": true, "passwordless_sign_in": true})
    );
}

#[tokio::test]
async fn settings_toggles_accept_only_on_or_off() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    admin.get("/settings").await;
    let before = app.snapshot().await;
    for path in ["/settings/enforce-2fa", "/settings/api"] {
        for value in ["yes", "", "ON"] {
            let page = admin.post(path, &[("enabled", value)]).await;
            assert_eq!(page.status, 400, "{path} {value:?}");
        }
        assert_eq!(
            admin.post(path, &[]).await.status,
            400,
            "{path} without a field"
        );
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn settings_are_for_admins_only() {
    let app = spawn_app().await;
    let user = app.console_as(USER, "user").await;
    let before = app.snapshot().await;
    let page = user.get("/settings").await;
    assert_eq!(page.status, 403);
    page.assert_contains("Not allowed");
    for path in ["/settings/enforce-2fa", "/settings/api"] {
        let value = if path.ends_with("api") { "off" } else { "on" };
        assert_eq!(user.post(path, &[("enabled", value)]).await.status, 403);
    }
    let anonymous = Console::new(&app);
    anonymous.get("/settings").await.redirects_to("/login");
    anonymous
        .post("/settings/api", &[("enabled", "off")])
        .await
        .redirects_to("/login");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn settings_forms_without_a_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    admin.get("/settings").await;
    let before = app.snapshot().await;
    for (path, value) in [("/settings/enforce-2fa", "on"), ("/settings/api", "off")] {
        for fields in [
            vec![("enabled", value)],
            vec![("csrf_token", "0000"), ("enabled", value)],
        ] {
            let page = admin.post_raw(path, &fields).await;
            assert_eq!(page.status, 403, "{path}");
            page.assert_contains("Form expired");
        }
    }
    assert_eq!(app.snapshot().await, before);
}

// ---- global API keys ----

#[tokio::test]
async fn admin_creates_a_global_key_whose_secret_is_shown_once_and_works() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    let page = admin.get("/api-keys").await;
    assert_eq!(page.status, 200);
    page.assert_contains("id=\"create-key-form\"");
    let fields = [("auth_token_type", "read-only"), ("note", "grafana")];
    let page = admin.post("/api-keys", &fields).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["cache-control"], "no-store");
    page.assert_contains("Copy the key now: it won't be shown again.");
    let secret = secret_on(&page);
    let key_id = key_id_on(&page);
    assert!(secret.starts_with(&format!("roost_{key_id}_")), "{secret}");

    app.get_as(&secret, "users/list", &[]).await.ok();
    app.post_as(&secret, "flock/create", &[("name", "nope")])
        .await
        .err(403, KEY_NOT_ALLOWED);

    let keys = app.get("auth_token/list", &[]).await.ok()["global_api_keys"].clone();
    let key = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == key_id.as_str())
        .expect("listed")
        .clone();
    assert_eq!(key["auth_token_type"], "read-only");
    assert_eq!(key["note"], "grafana");
    assert_eq!(key["created_by"], ADMIN);
    assert!(key["last_used"].is_string(), "the key was used: {key}");

    let list = admin.get("/api-keys").await;
    list.assert_contains(&key_id);
    list.assert_contains("grafana");
    list.assert_contains(ADMIN);
    assert!(
        !list.body.contains(&secret[secret.len() - 64..]),
        "secret shown again"
    );
}

#[tokio::test]
async fn key_form_errors_keep_the_typed_values_and_create_nothing() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    admin.get("/api-keys").await;
    let before = app.snapshot().await;
    let fields = [("auth_token_type", "superuser"), ("note", "typed note")];
    let page = admin.post("/api-keys", &fields).await;
    assert_eq!(page.status, 400);
    page.assert_contains("Type: choose admin, analyst or read-only.");
    page.assert_contains("value=\"typed note\"");
    let long = "x".repeat(10_001);
    let fields = [("auth_token_type", "analyst"), ("note", long.as_str())];
    let page = admin.post("/api-keys", &fields).await;
    assert_eq!(page.status, 400);
    page.assert_contains("Note: Note longer than maximum (10000 characters).");
    page.assert_contains("<option value=\"analyst\" selected>");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn admin_revokes_a_global_key_and_it_stops_working() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    let key = app.add_key("admin").await;
    let key_id = key["key_id"].as_str().unwrap().to_string();
    let token = token_of(&key);
    let page = admin.get("/api-keys").await;
    page.assert_contains(&format!("id=\"revoke-{key_id}\""));
    admin
        .post(&format!("/api-keys/{key_id}/revoke"), &[])
        .await
        .redirects_to("/api-keys");
    let page = admin.get("/api-keys").await;
    page.assert_contains(&format!("API key {key_id} revoked."));
    assert!(!page.body.contains(&format!("id=\"key-{key_id}\"")));
    app.get_as(&token, "ping", &[])
        .await
        .err(401, "Invalid auth_token");

    admin
        .post(&format!("/api-keys/{key_id}/revoke"), &[])
        .await
        .redirects_to("/api-keys");
    admin
        .get("/api-keys")
        .await
        .assert_contains(&format!("API key {key_id} does not exist"));
}

#[tokio::test]
async fn the_global_key_page_does_not_revoke_flock_keys() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    let flock_key = app.add_flock_key("flock:default", "read-only").await;
    let key_id = flock_key["key_id"].as_str().unwrap();
    admin.get("/api-keys").await;
    let before = app.snapshot().await;
    admin
        .post(&format!("/api-keys/{key_id}/revoke"), &[])
        .await
        .redirects_to("/api-keys");
    admin
        .get("/api-keys")
        .await
        .assert_contains("does not exist");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn api_key_pages_are_for_admins_only() {
    let app = spawn_app().await;
    let user = app.console_as(USER, "user").await;
    let key = app.add_key("read-only").await;
    let key_id = key["key_id"].as_str().unwrap();
    let before = app.snapshot().await;
    assert_eq!(user.get("/api-keys").await.status, 403);
    let fields = [("auth_token_type", "admin"), ("note", "mine")];
    assert_eq!(user.post("/api-keys", &fields).await.status, 403);
    let revoke = format!("/api-keys/{key_id}/revoke");
    assert_eq!(user.post(&revoke, &[]).await.status, 403);
    let anonymous = Console::new(&app);
    anonymous.get("/api-keys").await.redirects_to("/login");
    anonymous
        .post("/api-keys", &fields)
        .await
        .redirects_to("/login");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn key_forms_without_a_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    let key = app.add_key("read-only").await;
    let revoke = format!("/api-keys/{}/revoke", key["key_id"].as_str().unwrap());
    admin.get("/api-keys").await;
    let before = app.snapshot().await;
    let create = [("auth_token_type", "admin"), ("note", "forged")];
    for (path, fields) in [("/api-keys", &create[..]), (revoke.as_str(), &[][..])] {
        let page = admin.post_raw(path, fields).await;
        assert_eq!(page.status, 403, "{path}");
        page.assert_contains("Form expired");
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn the_settings_page_shows_the_past_weeks_changes_newest_first() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    app.add_user(USER, "user").await;
    app.post("user/disable", &[("email", USER)]).await.ok();
    admin.get("/settings").await;
    admin
        .post("/settings/enforce-2fa", &[("enabled", "on")])
        .await
        .redirects_to("/settings");
    let page = admin.get("/settings").await;
    page.assert_contains("id=\"recent-changes-table\"");
    let enforced = page
        .body
        .find("<td>Two-factor authentication enforced for everyone</td>")
        .expect("the settings change");
    let disabled = page
        .body
        .find(&format!("<td>User ({USER}) disabled</td>"))
        .expect("the disable");
    let added = page
        .body
        .find(&format!("<td>User ({USER}) created as user</td>"))
        .expect("the add");
    assert!(enforced < disabled && disabled < added, "newest first");
    // Each names its actor: the admin in the console, the API key the test harness made.
    page.assert_contains(&format!(
        "<td>Two-factor authentication enforced for everyone</td><td>{ADMIN}</td>"
    ));
    page.assert_contains(&format!(
        "<td>User ({USER}) disabled</td><td>API key tests ("
    ));
}

// ---- backup download ----

/// An admin downloads a backup from Settings: a sound backup file holding the console as it
/// was, on the audit trail; a user, a form without its CSRF token and a signed-out browser
/// get none.
#[tokio::test]
async fn an_admin_downloads_a_sound_backup_and_nobody_else_does() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    app.add_user("carol@x.io", "user").await;
    let page = admin.get("/settings").await;
    page.assert_contains("id=\"backup-download\"");
    let response = admin.post_response("/settings/backup", &[]).await;
    assert_eq!(response.status(), 200);
    let disposition = response
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"roost-") && disposition.ends_with(".bak\""),
        "{disposition}"
    );
    let bytes = response.bytes().await.expect("body");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("downloaded.bak");
    std::fs::write(&file, &bytes).unwrap();
    let header = roost::store::backup::unpack(&file, &dir.path().join("roost.redb"))
        .expect("a sound backup");
    assert!(header.records > 0);
    std::fs::copy(
        app.data_dir.join("secrets.key"),
        dir.path().join("secrets.key"),
    )
    .unwrap();
    let copy = roost::store::Store::open(dir.path()).expect("opens");
    let carol = roost::store::UserRef::Email(roost::domain::Email::parse("carol@x.io").unwrap());
    assert!(copy.user_details(&carol).is_ok());
    // Nothing left behind in the data directory.
    let leftovers: Vec<_> = std::fs::read_dir(&app.data_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name.starts_with(".download-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let trail = app
        .get("audit_trail/fetch", &[("action_filter", "backup_download")])
        .await;
    assert_eq!(trail.ok()["audit_trail"].as_array().map(Vec::len), Some(1));

    let user = app.console_as(USER, "user").await;
    assert_ne!(
        user.post_response("/settings/backup", &[]).await.status(),
        200
    );
    let no_csrf = admin.post_raw("/settings/backup", &[]).await;
    assert_ne!(no_csrf.status, 200);
    let signed_out = Console::new(&app);
    signed_out.get("/login").await;
    assert_ne!(
        signed_out
            .post_response("/settings/backup", &[])
            .await
            .status(),
        200
    );
    let trail = app
        .get("audit_trail/fetch", &[("action_filter", "backup_download")])
        .await;
    assert_eq!(trail.ok()["audit_trail"].as_array().map(Vec::len), Some(1));
}
