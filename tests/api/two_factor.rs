//! Second factors over HTTP: TOTP enrollment and login with codes computed here, replay and skew,
//! throttling, recovery codes, enforcement through the gate, and admin resets.

use std::time::{SystemTime, UNIX_EPOCH};

use totp_rs::{Builder, Secret};

use crate::console::{Console, PASSWORD, Page};
use crate::helpers::*;

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

pub fn code_at(secret: &str, time: u64) -> String {
    Builder::new()
        .with_secret(Secret::try_from_base32(secret).expect("base32 secret"))
        .build()
        .expect("totp")
        .generate(time)
        .to_string()
}

fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let from = body.find(start).expect("start marker") + start.len();
    let to = body[from..].find(end).expect("end marker") + from;
    &body[from..to]
}

fn recovery_codes_of(page: &Page) -> Vec<String> {
    let list = between(&page.body, "id=\"recovery-codes\">", "</ul>");
    list.split("<li>")
        .skip(1)
        .map(|item| item.split("</li>").next().unwrap_or("").trim().to_string())
        .collect()
}

/// Enrolls TOTP for the console's user at `time`; returns the secret and the recovery codes.
pub async fn enroll(console: &Console, time: u64) -> (String, Vec<String>) {
    let page = console.get("/account/two-factor").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["cache-control"], "no-store");
    page.assert_contains("<svg");
    let secret = between(&page.body, "id=\"totp-secret\">", "</code>").to_string();
    let page = console
        .post(
            "/account/two-factor/totp",
            &[("code", &code_at(&secret, time))],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let codes = recovery_codes_of(&page);
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

async fn login_to_factor_step(app: &TestApp, email: &str) -> Console {
    let console = Console::new(app);
    console
        .login(email, PASSWORD)
        .await
        .redirects_to("/login/two-factor");
    console.get("/login/two-factor").await;
    console
}

#[tokio::test]
async fn totp_enrollment_needs_a_valid_code_and_then_login_asks_for_one() {
    let app = spawn_app().await;
    let console = app.console_as("ann@x.io", "user").await;
    let page = console.get("/account/two-factor").await;
    let secret = between(&page.body, "id=\"totp-secret\">", "</code>").to_string();
    let wrong = if code_at(&secret, now()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let refused = console
        .post("/account/two-factor/totp", &[("code", wrong)])
        .await;
    assert_eq!(refused.status, 400);
    refused.assert_contains("does not match");
    let user = app
        .get("user/get", &[("email", "ann@x.io")])
        .await
        .ok()
        .clone();
    assert_eq!(user["user"]["totp_enabled"], false);

    let t = now();
    let (secret, _) = enroll(&console, t).await;
    let user = app
        .get("user/get", &[("email", "ann@x.io")])
        .await
        .ok()
        .clone();
    assert_eq!(user["user"]["totp_enabled"], true);
    assert!(
        !user.to_string().contains(&secret),
        "secret leaked through the API"
    );

    console.post("/logout", &[]).await;
    let half = login_to_factor_step(&app, "ann@x.io").await;
    // Nothing but the factor step is reachable half-logged-in.
    for path in ["/account", "/flocks", "/users", "/no-such-page"] {
        half.get(path).await.redirects_to("/login/two-factor");
    }
    // The API takes API keys, never a session: the half-logged-in cookie gets nothing there.
    let api = half.get("/api/v1/ping").await;
    assert_eq!(api.status, 401, "{}", api.body);
    // The code used for enrollment was step `t`: refused again (replay).
    let replay = half
        .post("/login/two-factor", &[("code", &code_at(&secret, t))])
        .await;
    assert_eq!(replay.status, 401);
    // One step ahead is within the skew and unused: accepted.
    half.post("/login/two-factor", &[("code", &code_at(&secret, t + 30))])
        .await
        .redirects_to("/");
    assert_eq!(half.get("/account").await.status, 200);

    // The same step, and an earlier one, are refused at the next login.
    let again = login_to_factor_step(&app, "ann@x.io").await;
    for time in [t + 30, t] {
        let page = again
            .post("/login/two-factor", &[("code", &code_at(&secret, time))])
            .await;
        assert_eq!(page.status, 401);
        page.assert_contains("already used");
    }
}

#[tokio::test]
async fn recovery_codes_work_once_instead_of_a_code() {
    let app = spawn_app().await;
    let console = app.console_as("ann@x.io", "user").await;
    let (_, codes) = enroll(&console, now()).await;
    let first = login_to_factor_step(&app, "ann@x.io").await;
    first
        .post(
            "/login/two-factor",
            &[("recovery_code", &codes[0].to_uppercase())],
        )
        .await
        .redirects_to("/");
    let second = login_to_factor_step(&app, "ann@x.io").await;
    let page = second
        .post("/login/two-factor", &[("recovery_code", &codes[0])])
        .await;
    assert_eq!(page.status, 401);
    second
        .post("/login/two-factor", &[("recovery_code", &codes[1])])
        .await
        .redirects_to("/");
    // New codes replace the old ones.
    second.get("/account/two-factor").await;
    let page = second.post("/account/two-factor/recovery-codes", &[]).await;
    let fresh = recovery_codes_of(&page);
    assert_eq!(fresh.len(), 10);
    let third = login_to_factor_step(&app, "ann@x.io").await;
    assert_eq!(
        third
            .post("/login/two-factor", &[("recovery_code", &codes[2])])
            .await
            .status,
        401
    );
    third
        .post("/login/two-factor", &[("recovery_code", &fresh[0])])
        .await
        .redirects_to("/");
}

#[tokio::test]
async fn wrong_codes_lock_the_factor_step_even_for_the_right_code() {
    let app = spawn_app().await;
    let console = app.console_as("ann@x.io", "user").await;
    let t = now();
    let (secret, _) = enroll(&console, t).await;
    let half = login_to_factor_step(&app, "ann@x.io").await;
    let good = code_at(&secret, t + 30);
    let bad = if good == "123456" { "654321" } else { "123456" };
    for _ in 0..5 {
        let page = half.post("/login/two-factor", &[("code", bad)]).await;
        assert_eq!(page.status, 401);
    }
    let page = half.post("/login/two-factor", &[("code", &good)]).await;
    assert_eq!(page.status, 429);
    page.assert_contains("Try again in");
}

#[tokio::test]
async fn global_enforcement_confines_a_user_without_factor_to_enrollment() {
    let app = spawn_app().await;
    app.user_with_password("ann@x.io", "admin").await;
    let before = Console::new(&app);
    before.login("ann@x.io", PASSWORD).await.redirects_to("/");
    app.post("settings/usermanagement/globally_enforce_2fa/enable", &[])
        .await
        .ok();
    // A session from before the switch carries on.
    assert_eq!(before.get("/users").await.status, 200);

    let console = Console::new(&app);
    console
        .login("ann@x.io", PASSWORD)
        .await
        .redirects_to("/account/two-factor");
    for path in ["/users", "/account", "/settings", "/flocks/flock:default"] {
        console.get(path).await.redirects_to("/account/two-factor");
    }
    let page = console.get("/account/two-factor").await;
    page.assert_contains("requires a second factor");
    enroll(&console, now()).await;
    assert_eq!(console.get("/users").await.status, 200);
}

#[tokio::test]
async fn a_user_created_with_totp_enabled_must_enroll_at_first_login() {
    let app = spawn_app().await;
    let params = [
        ("email", "bob@x.io"),
        ("access_level", "user"),
        ("totp_enabled", "true"),
        ("send_welcome_mail", "false"),
    ];
    app.post("user/add", &params).await.ok();
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || {
        let email = roost::domain::Email::parse("bob@x.io").unwrap();
        let id = store.user_by_email(&email).unwrap().user.id;
        let hash = roost::auth::passwords::hash_password(PASSWORD).unwrap();
        store
            .change_password(&Actor::named("test"), id, hash, None)
            .unwrap();
    })
    .await
    .unwrap();
    let console = Console::new(&app);
    console
        .login("bob@x.io", PASSWORD)
        .await
        .redirects_to("/account/two-factor");
    console
        .get("/account")
        .await
        .redirects_to("/account/two-factor");
}

#[tokio::test]
async fn admin_reset_removes_totp_and_ends_the_session_then_password_alone_works() {
    let app = spawn_app().await;
    let console = app.console_as("ann@x.io", "user").await;
    enroll(&console, now()).await;
    assert_eq!(console.get("/account").await.status, 200);
    app.post("user/2fa/disable", &[("email", "ann@x.io")])
        .await
        .ok();
    console.get("/account").await.redirects_to("/login");
    let user = app
        .get("user/get", &[("email", "ann@x.io")])
        .await
        .ok()
        .clone();
    assert_eq!(user["user"]["totp_enabled"], false);
    Console::new(&app)
        .login("ann@x.io", PASSWORD)
        .await
        .redirects_to("/");
    // With enforcement on, the next login is sent to enrollment again.
    app.post("settings/usermanagement/globally_enforce_2fa/enable", &[])
        .await
        .ok();
    Console::new(&app)
        .login("ann@x.io", PASSWORD)
        .await
        .redirects_to("/account/two-factor");
}

#[tokio::test]
async fn a_reset_link_proves_the_password_only_and_the_factor_is_still_asked() {
    let app = spawn_app().await;
    let console = app.console_as("ann@x.io", "user").await;
    enroll(&console, now()).await;
    app.post("user/password/reset", &[("email", "ann@x.io")])
        .await
        .ok();
    app.wait_for_mail_queue().await;
    let mail = std::fs::read_dir(app.data_dir.join("outbox"))
        .expect("outbox")
        .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).expect("mail"))
        .find(|mail| mail.contains("/reset/"))
        .expect("reset mail");
    let unfolded = mail.replace("=\r\n", "").replace("=\n", "");
    let start = unfolded.find("/reset/").expect("link");
    let path: String = unfolded[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let browser = Console::new(&app);
    browser.get(&path).await;
    let fields = [
        ("password", "another long password"),
        ("confirm", "another long password"),
    ];
    browser
        .post(&path, &fields)
        .await
        .redirects_to("/login/two-factor");
    browser
        .get("/account")
        .await
        .redirects_to("/login/two-factor");
}

#[tokio::test]
async fn webauthn_ceremonies_need_the_csrf_header_and_a_started_ceremony() {
    let app = spawn_app().await;
    let console = app.console_as("ann@x.io", "user").await;
    let page = console.get("/account/two-factor").await;
    page.assert_contains("id=\"webauthn-register\"");
    let csrf = console.csrf().expect("csrf");
    let start = "/account/two-factor/webauthn/register/start";
    let refused = console
        .post_json(start, None, &serde_json::json!({"name": "key"}))
        .await;
    assert_eq!(refused.status, 403);
    let started = console
        .post_json(start, Some(&csrf), &serde_json::json!({"name": "key"}))
        .await;
    assert_eq!(started.status, 200);
    let options: serde_json::Value = serde_json::from_str(&started.body).expect("json");
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    assert!(options["publicKey"]["challenge"].as_str().is_some());
    // A made-up answer is refused, and the ceremony is gone afterwards (single use).
    let forged = serde_json::json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": {"attestationObject": "AAAA", "clientDataJSON": "AAAA"},
        "extensions": {}
    });
    let finish = "/account/two-factor/webauthn/register/finish";
    let first = console.post_json(finish, Some(&csrf), &forged).await;
    assert_eq!(first.status, 400);
    let second = console.post_json(finish, Some(&csrf), &forged).await;
    assert_eq!(second.status, 400);
    second.assert_contains("expired");
    let user = app
        .get("user/get", &[("email", "ann@x.io")])
        .await
        .ok()
        .clone();
    assert_eq!(user["user"]["webauthn_enabled"], false);

    // The factor step's ceremony needs a password first.
    let anonymous = Console::new(&app);
    anonymous.get("/login").await;
    let token = anonymous.csrf().expect("csrf");
    let page = anonymous
        .post_json(
            "/login/two-factor/webauthn/start",
            Some(&token),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(page.status, 401);
}
