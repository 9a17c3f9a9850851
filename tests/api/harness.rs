//! The "nothing changed" assertions are only as good as `snapshot()`: it must see every kind
//! of change the API can make.

use crate::helpers::*;

#[tokio::test]
async fn snapshot_sees_every_kind_of_change() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let flock = app.create_flock("Ops").await;
    let mut last = app.snapshot().await;
    let changes: [(&str, Vec<(&str, &str)>); 9] = [
        ("user/note/add", vec![("email", "a@x.io"), ("note", "n")]),
        ("user/summary_email/disable", vec![("email", "a@x.io")]),
        (
            "user/edit/access_level",
            vec![("email", "a@x.io"), ("access_level", "admin")],
        ),
        (
            "user/flock/assign",
            vec![
                ("email", "a@x.io"),
                ("flock_id_list", &flock),
                ("flock_access_level", "watcher"),
            ],
        ),
        (
            "flock/rename",
            vec![("flock_id", &flock), ("name", "Operations")],
        ),
        (
            "auth_token/add",
            vec![("auth_token_type", "read-only"), ("note", "k")],
        ),
        (
            "flock/auth_token/add",
            vec![("flock_id", &flock), ("note", "k")],
        ),
        (
            "settings/usermanagement/globally_enforce_2fa/enable",
            vec![],
        ),
        ("user/password/reset", vec![("email", "a@x.io")]),
    ];
    for (path, params) in &changes {
        app.post(path, params).await.ok();
        let now = app.snapshot().await;
        assert_ne!(last, now, "snapshot missed {path}");
        last = now;
    }
}
