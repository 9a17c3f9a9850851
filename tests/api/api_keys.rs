use crate::helpers::*;
use serde_json::Value;

const UNKNOWN_KEY_ID: &str = "00000000deadbeef";
const KEY_DOES_NOT_EXIST: &str = "API key does not exist.";

/// `roost_<16 hex key id>_<64 hex secret>` (README, "JSON API").
#[track_caller]
fn assert_token_format(token: &str) {
    let hex = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    };
    let rest = token.strip_prefix("roost_").expect("roost_ prefix");
    let (id, secret) = rest.split_once('_').expect("_ after the key id");
    assert!(id.len() == 16 && hex(id), "{token}");
    assert!(secret.len() == 64 && hex(secret), "{token}");
}

fn keys_of(list: &Value, field: &str) -> Vec<Value> {
    list[field].as_array().expect("key list").clone()
}

// ---- global keys ----

#[tokio::test]
async fn auth_token_add_returns_the_secret_once() {
    let app = spawn_app().await;
    let params = [("auth_token_type", "analyst"), ("note", "grafana")];
    let resp = app.post("auth_token/add", &params).await;
    let key = resp.ok()["global_api_key"].clone();
    for field in [
        "auth_token",
        "auth_token_type",
        "created",
        "created_by",
        "key_id",
        "note",
    ] {
        assert!(key.get(field).is_some(), "{field} in {key}");
    }
    assert_eq!(key["auth_token_type"], "analyst");
    assert_eq!(key["note"], "grafana");
    let token = token_of(&key);
    assert_token_format(&token);

    let list = app.get("auth_token/list", &[]).await;
    let keys = keys_of(list.ok(), "global_api_keys");
    let listed = keys
        .iter()
        .find(|k| k["key_id"] == key["key_id"])
        .expect("new key is listed");
    assert!(
        listed.get("auth_token").is_none(),
        "no secret in list: {listed}"
    );
    assert!(listed.get("last_used").is_some(), "{listed}");
    assert_eq!(listed["note"], "grafana");
    assert_eq!(listed["auth_token_type"], "analyst");
    assert!(
        !list.text.contains(&token[token.len() - 64..]),
        "secret leaked"
    );
    app.get_as(&token, "ping", &[]).await.ok_bare();
}

#[tokio::test]
async fn auth_token_add_accepts_every_type_and_the_key_works() {
    let app = spawn_app().await;
    for key_type in ["admin", "analyst", "read-only"] {
        let key = app.add_key(key_type).await;
        assert_eq!(key["auth_token_type"], key_type);
        app.get_as(&token_of(&key), "users/list", &[]).await.ok();
    }
    let admin = app.new_key("admin").await;
    app.post_as(&admin, "flock/create", &[("name", "By new key")])
        .await
        .ok();
}

#[tokio::test]
async fn auth_token_add_rejects_unknown_type() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    for key_type in ["superadmin", "readonly", "Admin"] {
        let params = [("auth_token_type", key_type), ("note", "x")];
        let resp = app.post("auth_token/add", &params).await;
        resp.err(
            400,
            "Parameter 'auth_token_type' must be one of 'admin', 'analyst', 'read-only'.",
        );
    }
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn auth_token_remove_revokes_the_key() {
    let app = spawn_app().await;
    let key = app.add_key("admin").await;
    let token = token_of(&key);
    app.get_as(&token, "ping", &[]).await.ok();
    let key_id = key["key_id"].as_str().expect("key_id");
    app.delete("auth_token/remove", &[("key_id", key_id)])
        .await
        .ok();
    let resp = app.get_as(&token, "ping", &[]).await;
    resp.err(401, "Invalid auth_token");
    let list = app.get("auth_token/list", &[]).await;
    let keys = keys_of(list.ok(), "global_api_keys");
    assert!(keys.iter().all(|k| k["key_id"] != key_id), "{keys:?}");
}

#[tokio::test]
async fn auth_token_remove_rejects_unknown_key() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let resp = app
        .delete("auth_token/remove", &[("key_id", UNKNOWN_KEY_ID)])
        .await;
    resp.err(404, KEY_DOES_NOT_EXIST);
    let resp = app.delete("auth_token/remove", &[]).await;
    resp.err(400, &missing("key_id"));
    assert_eq!(before, app.snapshot().await);
}

// ---- flock keys ----

#[tokio::test]
async fn flock_auth_token_add_defaults_to_admin_and_is_listed_without_secret() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    let params = [("flock_id", flock.as_str()), ("note", "ops bot")];
    let resp = app.post("flock/auth_token/add", &params).await;
    let key = resp.ok()["flock_api_key"].clone();
    for field in [
        "auth_token",
        "auth_token_type",
        "flock_id",
        "key_id",
        "note",
        "created",
    ] {
        assert!(key.get(field).is_some(), "{field} in {key}");
    }
    assert_eq!(key["auth_token_type"], "admin");
    assert_eq!(key["flock_id"], flock.as_str());
    assert_eq!(key["note"], "ops bot");
    let token = token_of(&key);
    assert_token_format(&token);

    let list = app
        .get("flock/auth_token/list", &[("flock_id", &flock)])
        .await;
    let keys = keys_of(list.ok(), "flock_api_keys");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0]["key_id"], key["key_id"]);
    assert!(keys[0].get("auth_token").is_none(), "{keys:?}");
    assert!(
        !list.text.contains(&token[token.len() - 64..]),
        "secret leaked"
    );
    app.get_as(&token, "flock/users", &[("flock_id", &flock)])
        .await
        .ok();
}

#[tokio::test]
async fn flock_auth_token_add_rejects_analyst_type() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    let before = app.snapshot().await;
    let params = [
        ("flock_id", flock.as_str()),
        ("note", "x"),
        ("auth_token_type", "analyst"),
    ];
    let resp = app.post("flock/auth_token/add", &params).await;
    resp.err(
        400,
        "Parameter 'auth_token_type' must be one of 'admin', 'read-only'.",
    );
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn flock_auth_token_add_rejects_unknown_flock() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let params = [("flock_id", UNKNOWN_FLOCK), ("note", "x")];
    let resp = app.post("flock/auth_token/add", &params).await;
    resp.err(404, FLOCK_DOES_NOT_EXIST);
    let params = [("flock_id", "flock:xyz"), ("note", "x")];
    let resp = app.post("flock/auth_token/add", &params).await;
    resp.err(400, &bad_flock_id("flock_id"));
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn flock_auth_token_remove_revokes_the_key() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    let key = app.add_flock_key(&flock, "read-only").await;
    let token = token_of(&key);
    let key_id = key["key_id"].as_str().expect("key_id");
    app.post("flock/auth_token/remove", &[("key_id", key_id)])
        .await
        .ok();
    let resp = app
        .get_as(&token, "flock/users", &[("flock_id", &flock)])
        .await;
    resp.err(401, "Invalid auth_token");
    let list = app
        .get("flock/auth_token/list", &[("flock_id", &flock)])
        .await;
    assert_eq!(keys_of(list.ok(), "flock_api_keys"), Vec::<Value>::new());
}

#[tokio::test]
async fn flock_auth_token_remove_rejects_unknown_key() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let resp = app
        .post("flock/auth_token/remove", &[("key_id", UNKNOWN_KEY_ID)])
        .await;
    resp.err(404, KEY_DOES_NOT_EXIST);
    assert_eq!(before, app.snapshot().await);
}
