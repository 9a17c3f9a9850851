//! `/healthz` and `/readyz`: for a container runtime or a load balancer, no key, no data.

use serde_json::json;

use crate::helpers::*;

async fn probe(app: &TestApp, path: &str) -> (u16, serde_json::Value) {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .expect("probe");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn healthz_and_readyz_answer_without_a_key_and_tell_nothing_else() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "admin").await;
    assert_eq!(
        probe(&app, "/healthz").await,
        (200, json!({"status": "ok"}))
    );
    assert_eq!(
        probe(&app, "/readyz").await,
        (200, json!({"status": "ready"}))
    );
}

#[tokio::test]
async fn readyz_is_503_with_the_reason_once_the_mail_sender_stopped() {
    let app = spawn_app().await;
    assert_eq!(probe(&app, "/readyz").await.0, 200);
    assert!(
        app.mail_sender
            .stop(std::time::Duration::from_secs(5))
            .await
    );
    assert_eq!(
        probe(&app, "/readyz").await,
        (
            503,
            json!({"status": "unavailable", "reason": "the mail sender has stopped"})
        )
    );
    // The process still serves.
    assert_eq!(probe(&app, "/healthz").await.0, 200);
}

#[tokio::test]
async fn readyz_is_503_with_the_reason_once_the_webhook_sender_stopped() {
    let app = spawn_app().await;
    assert_eq!(probe(&app, "/readyz").await.0, 200);
    assert!(
        app.webhook_sender
            .stop(std::time::Duration::from_secs(5))
            .await
    );
    assert_eq!(
        probe(&app, "/readyz").await,
        (
            503,
            json!({"status": "unavailable", "reason": "the webhook sender has stopped"})
        )
    );
    assert_eq!(probe(&app, "/healthz").await.0, 200);
}

#[tokio::test]
async fn readyz_is_503_once_the_store_takes_no_more_changes_and_writes_say_so() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    app.store.close().await;
    assert_eq!(
        probe(&app, "/readyz").await,
        (
            503,
            json!({"status": "unavailable", "reason": "the store's writer has stopped"})
        )
    );
    // A change is refused as "stopping", never a 500, and nothing is half done.
    // (Sent by hand: the helpers take any 5xx for a bug.)
    let refused = app
        .client
        .post(format!("{}/api/v1/user/add", app.address))
        .header("X-Canary-Auth-Token", &app.admin_token)
        .form(&[("email", "b@x.io"), ("access_level", "user")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "result": "error",
            "message": "The console is stopping and takes no changes. Nothing was changed; try again once it is back."
        })
    );
    // Reads still answer.
    app.user("a@x.io").await;
    assert!(app.get("user/get", &[("email", "b@x.io")]).await.status == 404);
    assert_eq!(probe(&app, "/healthz").await.0, 200);
}
