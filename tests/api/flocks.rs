use crate::helpers::*;
use serde_json::json;

const EMPTY_NAME: &str = "Flock name cannot be empty.";
const LONG_NAME: &str = "Flock name longer than maximum (100 characters).";

async fn flocks(app: &TestApp, params: &[(&str, &str)]) -> serde_json::Value {
    app.get("flocks/list", params).await.ok()["flocks"].clone()
}

async fn set_managers(app: &TestApp, flock: &str, emails: &str) {
    let params = [("flock_id", flock), ("emails", emails)];
    app.post("users/flock/assign/managers", &params).await.ok();
}

// ---- flocks/list, flock/create ----

#[tokio::test]
async fn flocks_list_always_has_default_flock() {
    let app = spawn_app().await;
    let resp = app.get("flocks/list", &[]).await;
    assert_eq!(
        resp.ok(),
        &json!({"result": "success", "flocks": {"flock:default": "Default Flock"}})
    );
}

#[tokio::test]
async fn flock_create_returns_new_flock_id() {
    let app = spawn_app().await;
    let resp = app.post("flock/create", &[("name", "Ops")]).await;
    let flock = resp.ok()["flock_id"]
        .as_str()
        .expect("flock_id")
        .to_string();
    let hex = flock.strip_prefix("flock:").expect("flock: prefix");
    assert_eq!(hex.len(), 32, "{flock}");
    assert!(
        hex.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{flock}"
    );
    assert_eq!(
        flocks(&app, &[]).await,
        json!({"flock:default": "Default Flock", flock.as_str(): "Ops"})
    );
    assert_eq!(app.flock_users(&flock).await, (vec![], vec![]));
    let other = app.create_flock("Ops").await;
    assert_ne!(flock, other, "each flock gets its own id");
}

#[tokio::test]
async fn flock_create_assigns_managers_and_watchers() {
    let app = spawn_app().await;
    for email in ["m1@x.io", "m2@x.io", "w@x.io"] {
        app.add_user(email, "user").await;
    }
    let params = [
        ("name", "Ops"),
        ("managers", "m1@x.io,m2@x.io"),
        ("watchers", "w@x.io"),
    ];
    let resp = app.post("flock/create", &params).await;
    let flock = resp.ok()["flock_id"]
        .as_str()
        .expect("flock_id")
        .to_string();
    let (managers, watchers) = app.flock_users(&flock).await;
    assert_eq!(managers, ["m1@x.io", "m2@x.io"]);
    assert_eq!(watchers, ["w@x.io"]);
    assert_eq!(app.user("m1@x.io").await["managed_flocks"], json!([flock]));
    assert_eq!(app.user("w@x.io").await["watched_flocks"], json!([flock]));
}

#[tokio::test]
async fn flock_create_rejects_unknown_manager() {
    let app = spawn_app().await;
    app.add_user("m@x.io", "user").await;
    let before = app.snapshot().await;
    let params = [("name", "Ops"), ("managers", "m@x.io,nobody@x.io")];
    let resp = app.post("flock/create", &params).await;
    resp.err(404, USER_DOES_NOT_EXIST);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn flock_create_rejects_malformed_watcher_email() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let params = [("name", "Ops"), ("watchers", "not-an-email")];
    let resp = app.post("flock/create", &params).await;
    resp.err(400, &bad_email_in_list("watchers", "not-an-email"));
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn flock_create_rejects_empty_name() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    app.post("flock/create", &[("name", "")])
        .await
        .err(400, EMPTY_NAME);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn flock_create_rejects_missing_name() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    app.post("flock/create", &[])
        .await
        .err(400, &missing("name"));
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn flock_create_rejects_name_over_100_characters() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let name = "n".repeat(101);
    app.post("flock/create", &[("name", &name)])
        .await
        .err(400, LONG_NAME);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn flock_create_accepts_100_multibyte_characters() {
    let app = spawn_app().await;
    let name = "ü".repeat(100);
    let flock = app.create_flock(&name).await;
    assert_eq!(flocks(&app, &[]).await[&flock], name);
}

#[tokio::test]
async fn flocks_list_with_email_shows_the_flocks_that_user_can_view() {
    let app = spawn_app().await;
    let ops = app.create_flock("Ops").await;
    let dev = app.create_flock("Dev").await;
    app.create_flock("Hidden").await;
    app.add_user("a@x.io", "user").await;
    app.add_user("boss@x.io", "admin").await;
    app.assign("a@x.io", &ops, "watcher").await;
    app.assign("a@x.io", &dev, "manager").await;
    assert_eq!(
        flocks(&app, &[("email", "a@x.io")]).await,
        json!({ops.as_str(): "Ops", dev.as_str(): "Dev"})
    );
    assert_eq!(
        flocks(&app, &[("email", "boss@x.io")]).await,
        flocks(&app, &[]).await
    );
    let resp = app.get("flocks/list", &[("email", "nobody@x.io")]).await;
    resp.err(404, USER_DOES_NOT_EXIST);
}

// ---- flock/rename ----

#[tokio::test]
async fn flock_rename_renames() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    let params = [("flock_id", flock.as_str()), ("name", "Operations")];
    app.post("flock/rename", &params).await.ok();
    assert_eq!(flocks(&app, &[]).await[&flock], "Operations");
}

#[tokio::test]
async fn flock_rename_rejects_bad_names() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    let before = app.snapshot().await;
    let long = "n".repeat(101);
    let cases = [("", EMPTY_NAME), (long.as_str(), LONG_NAME)];
    for (name, message) in cases {
        let params = [("flock_id", flock.as_str()), ("name", name)];
        app.post("flock/rename", &params).await.err(400, message);
    }
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn flock_rename_rejects_unknown_flock() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let params = [("flock_id", UNKNOWN_FLOCK), ("name", "X")];
    let resp = app.post("flock/rename", &params).await;
    resp.err(404, FLOCK_DOES_NOT_EXIST);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn flock_rename_rejects_malformed_flock_id() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    for id in [
        "flock:xyz",
        "default",
        "flock:",
        "0123456789abcdef0123456789abcdef",
    ] {
        let params = [("flock_id", id), ("name", "X")];
        let resp = app.post("flock/rename", &params).await;
        resp.err(400, &bad_flock_id("flock_id"));
    }
    assert_eq!(before, app.snapshot().await);
}

// ---- flock/delete ----

#[tokio::test]
async fn flock_delete_deletes_empty_flock() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    let resp = app.post("flock/delete", &[("flock_id", &flock)]).await;
    resp.ok();
    assert_eq!(
        flocks(&app, &[]).await,
        json!({"flock:default": "Default Flock"})
    );
    let resp = app.get("flock/users", &[("flock_id", &flock)]).await;
    resp.err(404, FLOCK_DOES_NOT_EXIST);
}

#[tokio::test]
async fn flock_delete_refuses_default_flock() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let resp = app
        .post("flock/delete", &[("flock_id", "flock:default")])
        .await;
    resp.err(409, "Cannot delete default flock");
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn flock_delete_refuses_non_empty_flock() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    app.add_user("a@x.io", "user").await;
    app.assign("a@x.io", &flock, "watcher").await;
    let before = app.snapshot().await;
    let resp = app.post("flock/delete", &[("flock_id", &flock)]).await;
    resp.err(409, "Cannot delete a non-empty flock");
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn flock_delete_rejects_unknown_flock() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let resp = app
        .post("flock/delete", &[("flock_id", UNKNOWN_FLOCK)])
        .await;
    resp.err(404, FLOCK_DOES_NOT_EXIST);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn flock_delete_removes_flock_api_keys() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    let token = app.new_flock_key(&flock, "admin").await;
    app.get_as(&token, "flock/users", &[("flock_id", &flock)])
        .await
        .ok();
    app.post("flock/delete", &[("flock_id", &flock)]).await.ok();
    let resp = app.get_as(&token, "flocks/list", &[]).await;
    resp.err(401, "Invalid auth_token");
}

// ---- flock/users, users/flock/assign/* ----

#[tokio::test]
async fn flock_users_rejects_unknown_and_malformed_flock() {
    let app = spawn_app().await;
    let resp = app.get("flock/users", &[("flock_id", UNKNOWN_FLOCK)]).await;
    resp.err(404, FLOCK_DOES_NOT_EXIST);
    let resp = app.get("flock/users", &[("flock_id", "flock:xyz")]).await;
    resp.err(400, &bad_flock_id("flock_id"));
    let resp = app.get("flock/users", &[]).await;
    resp.err(400, &missing("flock_id"));
}

#[tokio::test]
async fn users_flock_assign_managers_replaces_the_list() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    for email in ["a@x.io", "b@x.io", "c@x.io"] {
        app.add_user(email, "user").await;
    }
    set_managers(&app, &flock, "a@x.io,b@x.io").await;
    assert_eq!(app.flock_users(&flock).await.0, ["a@x.io", "b@x.io"]);
    set_managers(&app, &flock, "b@x.io,c@x.io").await;
    assert_eq!(
        app.flock_users(&flock).await,
        (sorted(&["b@x.io", "c@x.io"]), vec![])
    );
    assert_eq!(app.user("a@x.io").await["managed_flocks"], json!([]));
    assert_eq!(app.user("c@x.io").await["managed_flocks"], json!([flock]));
}

#[tokio::test]
async fn users_flock_assign_watchers_replaces_the_list_and_the_role() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    for email in ["a@x.io", "b@x.io", "c@x.io"] {
        app.add_user(email, "user").await;
    }
    app.assign("a@x.io", &flock, "watcher").await;
    app.assign("b@x.io", &flock, "manager").await;
    let params = [("flock_id", flock.as_str()), ("emails", "b@x.io,c@x.io")];
    app.post("users/flock/assign/watchers", &params).await.ok();
    let (managers, watchers) = app.flock_users(&flock).await;
    assert_eq!(watchers, ["b@x.io", "c@x.io"]);
    assert_eq!(managers, Vec::<String>::new(), "b is now only a watcher");
    let b = app.user("b@x.io").await;
    assert_eq!(b["managed_flocks"], json!([]));
    assert_eq!(b["watched_flocks"], json!([flock]));
}

#[tokio::test]
async fn users_flock_assign_managers_rejects_unknown_user() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    app.add_user("a@x.io", "user").await;
    app.assign("a@x.io", &flock, "watcher").await;
    let before = app.snapshot().await;
    let params = [
        ("flock_id", flock.as_str()),
        ("emails", "a@x.io,nobody@x.io"),
    ];
    let resp = app.post("users/flock/assign/managers", &params).await;
    resp.err(404, USER_DOES_NOT_EXIST);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn users_flock_assign_watchers_rejects_malformed_email() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    let before = app.snapshot().await;
    let params = [("flock_id", flock.as_str()), ("emails", "a@x.io;b@x.io")];
    let resp = app.post("users/flock/assign/watchers", &params).await;
    resp.err(400, &bad_email_in_list("emails", "a@x.io;b@x.io"));
    assert_eq!(before, app.snapshot().await);
}
