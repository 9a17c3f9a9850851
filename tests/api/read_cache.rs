//! API keys and settings are read from memory on every call; the commit that changes them drops
//! those copies before the change is answered. Each test warms the copy first, then checks that
//! the very next request (and every request sent after the change was answered, while others
//! keep hammering) sees the change.

use std::sync::Arc;
use std::time::Instant;

use crate::helpers::*;

/// Calls `ping` with `token` from `clients` tasks until `stop`, recording when each call was
/// sent and the status it got.
fn hammer(
    app: &TestApp,
    token: &str,
    clients: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<(Instant, u16)>>> {
    (0..clients)
        .map(|_| {
            let url = app.url("ping");
            let token = token.to_string();
            let stop = stop.clone();
            let client = client();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let sent = Instant::now();
                    let response = client
                        .get(&url)
                        .header("X-Canary-Auth-Token", &token)
                        .send()
                        .await
                        .expect("ping");
                    seen.push((sent, response.status().as_u16()));
                }
                seen
            })
        })
        .collect()
}

/// Every call sent after `answered` was refused (a status of `refused`); every call before it
/// was answered 200 or refused.
async fn check_cut(
    tasks: Vec<tokio::task::JoinHandle<Vec<(Instant, u16)>>>,
    answered: Instant,
    refused: &[u16],
) {
    let (mut before, mut after) = (0, 0);
    for task in tasks {
        for (sent, status) in task.await.expect("task") {
            if sent > answered {
                assert!(
                    refused.contains(&status),
                    "a call sent after the change got {status}"
                );
                after += 1;
            } else {
                assert!(status == 200 || refused.contains(&status), "{status}");
                before += 1;
            }
        }
    }
    assert!(before > 0 && after > 0, "before {before}, after {after}");
}

/// `refused`: the statuses a refused call may get (a wrong key, repeated, is throttled: 429).
async fn revoked_while_in_use(
    revoke: impl AsyncFnOnce(&TestApp, &str, &str) -> Instant,
    refused: &[u16],
) {
    let app = spawn_app().await;
    let key = app.add_key("admin").await;
    let token = token_of(&key);
    let key_id = key["key_id"].as_str().expect("key_id").to_string();
    app.get_as(&token, "ping", &[]).await.ok();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks = hammer(&app, &token, 16, stop.clone());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let answered = revoke(&app, &token, &key_id).await;
    let next = app.get_as(&token, "ping", &[]).await;
    assert!(refused.contains(&next.status), "{}", next.status);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    check_cut(tasks, answered, refused).await;
}

#[tokio::test]
async fn a_removed_key_is_refused_by_the_next_call_under_load() {
    revoked_while_in_use(
        async |app, _, key_id| {
            app.delete("auth_token/remove", &[("key_id", key_id)])
                .await
                .ok();
            Instant::now()
        },
        &[401, 429],
    )
    .await;
}

#[tokio::test]
async fn a_removed_flock_key_is_refused_by_the_next_call() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    let key = app.add_flock_key(&flock, "read-only").await;
    let token = token_of(&key);
    let key_id = key["key_id"].as_str().expect("key_id");
    let members = [("flock_id", flock.as_str())];
    app.get_as(&token, "flock/users", &members).await.ok();
    app.post("flock/auth_token/remove", &[("key_id", key_id)])
        .await
        .ok();
    app.get_as(&token, "flock/users", &members)
        .await
        .err(401, "Invalid auth_token");
}

#[tokio::test]
async fn a_deleted_flocks_keys_are_refused_by_the_next_call() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    let token = app.new_flock_key(&flock, "admin").await;
    let members = [("flock_id", flock.as_str())];
    app.get_as(&token, "flock/users", &members).await.ok();
    app.post("flock/delete", &members).await.ok();
    app.get_as(&token, "ping", &[])
        .await
        .err(401, "Invalid auth_token");
}

#[tokio::test]
async fn a_disabled_api_is_closed_to_the_next_call_under_load() {
    revoked_while_in_use(
        async |app, _, _| {
            app.post("settings/api/disable", &[]).await.ok_bare();
            Instant::now()
        },
        &[403],
    )
    .await;
}

/// `user/get` answers from memory; each kind of change shows in the next answer.
#[tokio::test]
async fn user_get_shows_each_change_in_the_next_answer() {
    let app = spawn_app().await;
    app.add_user("gus@x.io", "user").await;
    let email = [("email", "gus@x.io")];
    let get = async || app.get("user/get", &email).await.ok()["user"].clone();
    assert_eq!(get().await["disabled"], false);
    assert_eq!(get().await["disabled"], false);

    app.post("user/disable", &email).await.ok();
    assert_eq!(get().await["disabled"], true);
    app.post("user/enable", &email).await.ok();
    assert_eq!(get().await["disabled"], false);
    let level = [("email", "gus@x.io"), ("access_level", "admin")];
    app.post("user/edit/access_level", &level).await.ok();
    assert_eq!(get().await["access_level"], "admin");
    app.post("user/note/add", &[("email", "gus@x.io"), ("note", "hi")])
        .await
        .ok();
    assert_eq!(get().await["note"], "hi");
    let flock = app.create_flock("Ops").await;
    app.assign("gus@x.io", &flock, "watcher").await;
    assert_eq!(get().await["watched_flocks"], serde_json::json!([flock]));
    let id = get().await["id"].clone();
    // Refused (the only enabled admin): the answer stays as it was.
    app.post("user/remove", &email).await.err_status(409);
    assert_eq!(get().await["access_level"], "admin");
    app.add_user("root@x.io", "admin").await;
    app.post("user/remove", &email).await.ok();
    app.get("user/get", &email)
        .await
        .err(404, "User does not exist.");
    app.add_user("gus@x.io", "user").await;
    let again = get().await;
    assert_ne!(again["id"], id);
    assert_eq!(again["note"], serde_json::Value::Null);
    assert_eq!(again["watched_flocks"], serde_json::json!([]));
}
