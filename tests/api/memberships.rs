use crate::helpers::*;
use serde_json::json;

fn membership<'a>(email: &'a str, flocks: &'a str, role: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("email", email),
        ("flock_id_list", flocks),
        ("flock_access_level", role),
    ]
}

/// An app with user `a@x.io` and one flock besides the default one.
async fn app_with_user_and_flock() -> (TestApp, String) {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let flock = app.create_flock("Ops").await;
    (app, flock)
}

// ---- user/flock/assign ----

#[tokio::test]
async fn user_flock_assign_assigns_watcher_to_flocks_with_seed_message() {
    let (app, flock) = app_with_user_and_flock().await;
    let list = format!("flock:default,{flock}");
    let resp = app
        .post("user/flock/assign", &membership("a@x.io", &list, "watcher"))
        .await;
    resp.ok_msg(&format!(
        "User a@x.io successfully assigned to watcher flock(s) {}",
        py_list(&["flock:default", &flock])
    ));
    let user = app.user("a@x.io").await;
    assert_eq!(
        strings(&user["watched_flocks"]),
        sorted(&["flock:default", &flock])
    );
    assert_eq!(user["managed_flocks"], json!([]));
    assert_eq!(app.flock_users(&flock).await, (vec![], sorted(&["a@x.io"])));
    assert_eq!(app.flock_users("flock:default").await.1, ["a@x.io"]);
}

#[tokio::test]
async fn user_flock_assign_assigns_manager_and_keeps_the_given_order() {
    let (app, flock) = app_with_user_and_flock().await;
    let list = format!("{flock},flock:default");
    let resp = app
        .post("user/flock/assign", &membership("a@x.io", &list, "manager"))
        .await;
    resp.ok_msg(&format!(
        "User a@x.io successfully assigned to manager flock(s) {}",
        py_list(&[&flock, "flock:default"])
    ));
    let user = app.user("a@x.io").await;
    assert_eq!(
        strings(&user["managed_flocks"]),
        sorted(&["flock:default", &flock])
    );
    assert_eq!(app.flock_users(&flock).await, (sorted(&["a@x.io"]), vec![]));
}

#[tokio::test]
async fn user_flock_assign_collapses_duplicate_ids() {
    let (app, flock) = app_with_user_and_flock().await;
    let list = format!("{flock},flock:default,{flock}");
    let resp = app
        .post("user/flock/assign", &membership("a@x.io", &list, "watcher"))
        .await;
    resp.ok_msg(&format!(
        "User a@x.io successfully assigned to watcher flock(s) {}",
        py_list(&[&flock, "flock:default"])
    ));
    assert_eq!(app.flock_users(&flock).await.1, ["a@x.io"]);
}

#[tokio::test]
async fn user_flock_assign_watcher_replaces_manager_role() {
    let (app, flock) = app_with_user_and_flock().await;
    app.assign("a@x.io", &flock, "manager").await;
    app.assign("a@x.io", &flock, "watcher").await;
    let user = app.user("a@x.io").await;
    assert_eq!(user["managed_flocks"], json!([]));
    assert_eq!(user["watched_flocks"], json!([flock]));
    assert_eq!(app.flock_users(&flock).await, (vec![], sorted(&["a@x.io"])));
    // And back again.
    app.assign("a@x.io", &flock, "manager").await;
    assert_eq!(app.flock_users(&flock).await, (sorted(&["a@x.io"]), vec![]));
}

#[tokio::test]
async fn user_flock_assign_is_all_or_nothing_with_an_unknown_flock() {
    let (app, flock) = app_with_user_and_flock().await;
    let before = app.snapshot().await;
    let list = format!("flock:default,{flock},{UNKNOWN_FLOCK}");
    let resp = app
        .post("user/flock/assign", &membership("a@x.io", &list, "watcher"))
        .await;
    resp.err(404, FLOCK_DOES_NOT_EXIST);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_flock_assign_rejects_malformed_flock_id() {
    let (app, flock) = app_with_user_and_flock().await;
    let before = app.snapshot().await;
    for bad in ["flock:xyz", "default", "flock:DEFAULT1"] {
        let list = format!("{flock},{bad}");
        let resp = app
            .post("user/flock/assign", &membership("a@x.io", &list, "watcher"))
            .await;
        resp.err(400, &bad_flock_id_in_list("flock_id_list", bad));
    }
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_flock_assign_rejects_unknown_flock_access_level() {
    let (app, flock) = app_with_user_and_flock().await;
    let before = app.snapshot().await;
    for role in ["owner", "Managers", "admin"] {
        let resp = app
            .post("user/flock/assign", &membership("a@x.io", &flock, role))
            .await;
        resp.err(400, BAD_FLOCK_ROLE);
    }
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_flock_assign_rejects_unknown_user() {
    let (app, flock) = app_with_user_and_flock().await;
    let before = app.snapshot().await;
    let resp = app
        .post(
            "user/flock/assign",
            &membership("nobody@x.io", &flock, "watcher"),
        )
        .await;
    resp.err(404, USER_DOES_NOT_EXIST);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_flock_assign_rejects_missing_params() {
    let (app, flock) = app_with_user_and_flock().await;
    let before = app.snapshot().await;
    let full = membership("a@x.io", &flock, "watcher");
    for (name, _) in full {
        let params: Vec<_> = full.iter().copied().filter(|(k, _)| *k != name).collect();
        let resp = app.post("user/flock/assign", &params).await;
        resp.err(400, &missing(name));
    }
    assert_eq!(before, app.snapshot().await);
}

// ---- user/flock/unassign ----

#[tokio::test]
async fn user_flock_unassign_removes_role_with_seed_message() {
    let (app, flock) = app_with_user_and_flock().await;
    let list = format!("flock:default,{flock}");
    app.assign("a@x.io", &list, "manager").await;
    let resp = app
        .post(
            "user/flock/unassign",
            &membership("a@x.io", &list, "manager"),
        )
        .await;
    resp.ok_msg(&format!(
        "User a@x.io successfully unassigned from manager flock(s) {}",
        py_list(&["flock:default", &flock])
    ));
    let user = app.user("a@x.io").await;
    assert_eq!(user["managed_flocks"], json!([]));
    assert_eq!(user["watched_flocks"], json!([]));
    assert_eq!(app.flock_users(&flock).await, (vec![], vec![]));
}

#[tokio::test]
async fn user_flock_unassign_leaves_the_other_role_alone() {
    let (app, flock) = app_with_user_and_flock().await;
    app.assign("a@x.io", &flock, "manager").await;
    let resp = app
        .post(
            "user/flock/unassign",
            &membership("a@x.io", &flock, "watcher"),
        )
        .await;
    resp.ok_msg(&format!(
        "User a@x.io successfully unassigned from watcher flock(s) {}",
        py_list(&[&flock])
    ));
    assert_eq!(app.user("a@x.io").await["managed_flocks"], json!([flock]));
}

#[tokio::test]
async fn user_flock_unassign_is_all_or_nothing_with_an_unknown_flock() {
    let (app, flock) = app_with_user_and_flock().await;
    app.assign("a@x.io", &format!("flock:default,{flock}"), "watcher")
        .await;
    let before = app.snapshot().await;
    let list = format!("{flock},{UNKNOWN_FLOCK}");
    let resp = app
        .post(
            "user/flock/unassign",
            &membership("a@x.io", &list, "watcher"),
        )
        .await;
    resp.err(404, FLOCK_DOES_NOT_EXIST);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_flock_unassign_rejects_bad_input() {
    let (app, flock) = app_with_user_and_flock().await;
    app.assign("a@x.io", &flock, "watcher").await;
    let before = app.snapshot().await;
    let resp = app
        .post(
            "user/flock/unassign",
            &membership("a@x.io", "default", "watcher"),
        )
        .await;
    resp.err(400, &bad_flock_id_in_list("flock_id_list", "default"));
    let resp = app
        .post(
            "user/flock/unassign",
            &membership("a@x.io", &flock, "viewer"),
        )
        .await;
    resp.err(400, BAD_FLOCK_ROLE);
    let resp = app
        .post(
            "user/flock/unassign",
            &membership("a.x.io", &flock, "watcher"),
        )
        .await;
    resp.err(400, &bad_email("email"));
    let resp = app
        .post(
            "user/flock/unassign",
            &membership("nobody@x.io", &flock, "watcher"),
        )
        .await;
    resp.err(404, USER_DOES_NOT_EXIST);
    assert_eq!(before, app.snapshot().await);
}
