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
