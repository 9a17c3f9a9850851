use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

const DISABLED: &str = "API access is disabled";

async fn settings(app: &TestApp) -> serde_json::Value {
    app.get("settings", &[]).await.ok().clone()
}

#[tokio::test]
async fn settings_start_with_api_enabled_and_2fa_not_enforced() {
    let app = spawn_app().await;
    assert_eq!(
        settings(&app).await,
        json!({"result": "success", "settings": {"globally_enforce_2fa": false, "api_enabled": true, "passwordless_sign_in": true}})
    );
}

#[tokio::test]
async fn globally_enforce_2fa_enable_and_disable_are_reflected_in_settings() {
    let app = spawn_app().await;
    let path = "settings/usermanagement/globally_enforce_2fa";
    app.post(&format!("{path}/enable"), &[]).await.ok_bare();
    assert_eq!(
        settings(&app).await["settings"]["globally_enforce_2fa"],
        true
    );
    // Enabling twice is harmless.
    app.post(&format!("{path}/enable"), &[]).await.ok_bare();
    app.post(&format!("{path}/disable"), &[]).await.ok_bare();
    assert_eq!(
        settings(&app).await["settings"]["globally_enforce_2fa"],
        false
    );
}

#[tokio::test]
async fn ping_answers_success() {
    let app = spawn_app().await;
    app.get("ping", &[]).await.ok_bare();
}

#[tokio::test]
async fn settings_api_disable_blocks_every_call() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    app.post("settings/api/disable", &[]).await.ok_bare();

    app.get("ping", &[]).await.err(403, DISABLED);
    app.get("settings", &[]).await.err(403, DISABLED);
    app.get("user/get", &[("email", "a@x.io")])
        .await
        .err(403, DISABLED);
    let params = [("email", "b@x.io"), ("access_level", "user")];
    app.post("user/add", &params).await.err(403, DISABLED);
    app.post("settings/api/disable", &[])
        .await
        .err(403, DISABLED);
    // Before authentication: no token, or a wrong one, gets the same answer.
    let resp = app.call(Method::GET, "ping", Auth::None, &[]).await;
    resp.err(403, DISABLED);
    let resp = app
        .call(Method::GET, "ping", Auth::Param("wrong"), &[])
        .await;
    resp.err(403, DISABLED);
    let resp = app
        .call(Method::GET, "ping", Auth::Header("wrong"), &[])
        .await;
    resp.err(403, DISABLED);
    app.wait_for_mail_queue().await;
    assert_eq!(
        read_outbox(&app.outbox_dir()).len(),
        0,
        "b@x.io got no mail"
    );
}
