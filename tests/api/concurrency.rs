//! Rules that must hold when two calls race: each change is checked and written in one
//! transaction, so no interleaving can break them.

use crate::helpers::*;

#[tokio::test]
async fn concurrent_disables_never_leave_no_enabled_admin() {
    let app = spawn_app().await;
    app.add_user("admin0@x.io", "admin").await;
    let mut survivor = "admin0@x.io".to_string();
    for round in 1..=10 {
        let newcomer = format!("admin{round}@x.io");
        app.add_user(&newcomer, "admin").await;
        let first = [("email", survivor.as_str())];
        let second = [("email", newcomer.as_str())];
        let (a, b) = tokio::join!(
            app.post("user/disable", &first),
            app.post("user/disable", &second),
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "round {round}: {a:?} {b:?}");
        if a.status == 200 {
            survivor = newcomer;
        }
        assert_eq!(
            app.user(&survivor).await["disabled"],
            false,
            "round {round}"
        );
    }
}

#[tokio::test]
async fn concurrent_user_add_of_the_same_email_creates_one_user() {
    let app = spawn_app().await;
    for round in 0..10 {
        let email = format!("dup{round}@x.io");
        let params = [
            ("email", email.as_str()),
            ("access_level", "user"),
            ("send_welcome_mail", "false"),
        ];
        let (a, b) = tokio::join!(app.post("user/add", &params), app.post("user/add", &params));
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "round {round}: {a:?} {b:?}");
    }
    let resp = app.get("users/list", &[]).await;
    assert_eq!(resp.ok()["users"].as_array().map(Vec::len), Some(10));
}

#[tokio::test]
async fn concurrent_assign_and_flock_delete_stay_consistent() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    for round in 0..10 {
        let flock = app.create_flock(&format!("Round {round}")).await;
        let assign = [
            ("email", "a@x.io"),
            ("flock_id_list", flock.as_str()),
            ("flock_access_level", "watcher"),
        ];
        let delete = [("flock_id", flock.as_str())];
        let (assigned, deleted) = tokio::join!(
            app.post("user/flock/assign", &assign),
            app.post("flock/delete", &delete),
        );
        let outcome = (assigned.status, deleted.status);
        assert!(
            outcome == (200, 409) || outcome == (404, 200),
            "round {round}: {assigned:?} {deleted:?}"
        );
        let watched = strings(&app.user("a@x.io").await["watched_flocks"]);
        let flocks = app.get("flocks/list", &[]).await.ok()["flocks"].clone();
        assert_eq!(
            watched.contains(&flock),
            flocks.get(&flock).is_some(),
            "round {round}: membership and flock agree"
        );
    }
}
