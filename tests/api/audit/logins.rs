//! Sign-ins of every outcome are on the trail, as the person who tried (the address they typed),
//! from their address and browser: a login, a wrong password, an unknown address, a disabled
//! account, the lock after repeated failures, the factor step's wrong codes and its lock, a
//! logout, a forgotten password, and the one-time links.

use std::time::Duration;

use roost::auth::links::NewLink;
use roost::store::TokenPurpose;
use roost::store::audit::AuditEntry;
use serde_json::{Value, json};

use super::USER;
use super::{
    Expected, assert_nothing_after, assert_one, browser_headers, entries_after, newest_id,
};
use crate::console::{Console, PASSWORD};
use crate::helpers::*;
use crate::two_factor::{code_at, enroll, now};

const WRONG_PASSWORD: &str = "not the password at all";

/// A browser with the tests' headers that has fetched the login page.
async fn browser(app: &TestApp) -> Console {
    let browser = Console::with_headers(app, browser_headers());
    browser.get("/login").await;
    browser
}

async fn log_in(browser: &Console, email: &str, password: &str) -> u16 {
    let fields = [("email", email), ("password", password)];
    browser.post("/login", &fields).await.status
}

fn failed_login(address: &str) -> String {
    format!("Failed login for ({address}): wrong email or password")
}

#[tokio::test]
async fn a_login_is_recorded_as_the_user_from_their_address_and_browser() {
    let app = spawn_app().await;
    app.user_with_password(USER, "user").await;
    let browser = browser(&app).await;
    let before = newest_id(&app);
    assert_eq!(log_in(&browser, USER, PASSWORD).await, 303);
    let entries = entries_after(&app, before);
    assert_one(&entries, &Expected::new("user_login", USER).target(USER));
    assert_eq!(entries[0].message, format!("User ({USER}) logged in"));
    let sessions = app.get("user/sessions", &[("email", USER)]).await;
    let session = sessions.ok()["sessions"][0]["id"].clone();
    assert_eq!(
        entries[0].details,
        json!({ "method": "password", "session": session })
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_address_are_recorded_alike() {
    let app = spawn_app().await;
    app.user_with_password(USER, "user").await;
    let browser = browser(&app).await;

    let before = newest_id(&app);
    assert_eq!(log_in(&browser, USER, WRONG_PASSWORD).await, 401);
    let wrong = entries_after(&app, before);
    assert_one(
        &wrong,
        &Expected::new("user_login_failed", USER).target(USER),
    );

    let before = newest_id(&app);
    assert_eq!(log_in(&browser, "nobody@x.io", PASSWORD).await, 401);
    let unknown = entries_after(&app, before);
    let nobody = Expected::new("user_login_failed", "nobody@x.io").target("nobody@x.io");
    assert_one(&unknown, &nobody);

    // Nothing but the typed address tells them apart: not whether an account has it.
    assert_eq!(wrong[0].message, failed_login(USER));
    assert_eq!(unknown[0].message, failed_login("nobody@x.io"));
    assert_eq!(wrong[0].details, Value::Null);
    assert_eq!(unknown[0].details, Value::Null);
}

#[tokio::test]
async fn a_login_with_something_that_is_no_address_is_recorded_as_anonymous_with_what_was_typed() {
    let app = spawn_app().await;
    let browser = browser(&app).await;
    let before = newest_id(&app);
    assert_eq!(log_in(&browser, "ann at x dot io", PASSWORD).await, 401);
    let entries = entries_after(&app, before);
    let expected = Expected::new("user_login_failed", "anonymous").target("ann at x dot io");
    assert_one(&entries, &expected);

    // What was typed is kept without control characters and cut at the longest address.
    let typed = format!("{}\u{7}\u{1b}{}", "a".repeat(200), "b".repeat(200));
    let kept = format!("{}{}", "a".repeat(200), "b".repeat(54));
    let before = newest_id(&app);
    assert_eq!(log_in(&browser, &typed, PASSWORD).await, 401);
    let entries = entries_after(&app, before);
    assert_one(
        &entries,
        &Expected::new("user_login_failed", "anonymous").target(&kept),
    );
    assert_eq!(entries[0].message, failed_login(&kept));
}

#[tokio::test]
async fn failures_for_an_unknown_address_lock_nothing_on_the_trail() {
    let app = spawn_app().await;
    let browser = browser(&app).await;
    let before = newest_id(&app);
    for _ in 0..5 {
        assert_eq!(log_in(&browser, "nobody@x.io", PASSWORD).await, 401);
    }
    let entries = entries_after(&app, before);
    assert_eq!(super::actions(&entries), ["user_login_failed"; 5]);
    // The sixth is refused before any check: nothing to record.
    let before = newest_id(&app);
    assert_eq!(log_in(&browser, "nobody@x.io", PASSWORD).await, 429);
    assert_nothing_after(&app, before);
}

#[tokio::test]
async fn a_disabled_account_login_is_recorded_as_refused() {
    let app = spawn_app().await;
    app.user_with_password(USER, "user").await;
    app.post("user/disable", &[("email", USER)]).await.ok();
    let browser = browser(&app).await;
    let before = newest_id(&app);
    assert_eq!(log_in(&browser, USER, PASSWORD).await, 403);
    let entries = entries_after(&app, before);
    assert_one(
        &entries,
        &Expected::new("user_login_disabled", USER).target(USER),
    );
    assert_eq!(
        entries[0].message,
        format!("Login of disabled user ({USER}) refused")
    );
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_account_once_on_the_trail() {
    let app = spawn_app().await;
    app.user_with_password(USER, "user").await;
    let browser = browser(&app).await;
    let before = newest_id(&app);
    for _ in 0..5 {
        assert_eq!(log_in(&browser, USER, WRONG_PASSWORD).await, 401);
    }
    let entries = entries_after(&app, before);
    assert_eq!(
        super::actions(&entries),
        [
            "user_login_failed",
            "user_login_failed",
            "user_login_failed",
            "user_login_failed",
            "user_login_failed",
            "user_login_locked",
        ]
    );
    let failed = Expected::new("user_login_failed", USER).target(USER);
    for entry in &entries[..5] {
        assert_eq!(failed.mismatch(entry), None);
    }
    let locked = &entries[5];
    assert_eq!(
        Expected::new("user_login_locked", USER)
            .target(USER)
            .mismatch(locked),
        None
    );
    assert_eq!(
        locked.message,
        format!("User ({USER}) locked out after repeated wrong passwords")
    );
    assert_eq!(locked.details["lockouts_in_series"], 1);
    let until = locked.details["locked_until"]
        .as_u64()
        .expect("locked_until");
    assert!(until > locked.at, "{locked:?}");
    // While locked, even the right password is refused before any check, and nothing is added.
    let before = newest_id(&app);
    assert_eq!(log_in(&browser, USER, PASSWORD).await, 429);
    assert_nothing_after(&app, before);
}

/// USER with an authenticator app; returns its secret.
async fn user_with_totp(app: &TestApp) -> String {
    let console = app.console_as(USER, "user").await;
    let (secret, _) = enroll(&console, now()).await;
    console.post("/logout", &[]).await;
    secret
}

/// A six-digit code that the secret doesn't produce around now.
fn wrong_code(secret: &str) -> &'static str {
    let t = now();
    let near: Vec<String> = [t - 60, t - 30, t, t + 30, t + 60]
        .iter()
        .map(|&time| code_at(secret, time))
        .collect();
    ["000000", "111111", "222222"]
        .into_iter()
        .find(|code| !near.iter().any(|n| n == code))
        .expect("a wrong code")
}

async fn at_factor_step(app: &TestApp) -> Console {
    let browser = browser(app).await;
    let before = newest_id(app);
    let fields = [("email", USER), ("password", PASSWORD)];
    browser
        .post("/login", &fields)
        .await
        .redirects_to("/login/two-factor");
    // The password alone signs nobody in: nothing to record yet.
    assert_nothing_after(app, before);
    browser.get("/login/two-factor").await;
    browser
}

fn factor_failed(entry: &AuditEntry) -> Option<String> {
    Expected::new("user_login_factor_failed", USER)
        .target(USER)
        .mismatch(entry)
}

#[tokio::test]
async fn wrong_codes_at_the_factor_step_are_recorded_until_the_step_locks() {
    let app = spawn_app().await;
    let secret = user_with_totp(&app).await;
    let browser = at_factor_step(&app).await;
    let wrong = wrong_code(&secret);
    for failures in 1..=4u64 {
        let before = newest_id(&app);
        let page = browser.post("/login/two-factor", &[("code", wrong)]).await;
        assert_eq!(page.status, 401);
        let entries = entries_after(&app, before);
        assert_eq!(super::actions(&entries), ["user_login_factor_failed"]);
        assert_eq!(factor_failed(&entries[0]), None);
        assert_eq!(entries[0].details, json!({ "failures": failures }));
        assert_eq!(
            entries[0].message,
            format!("Wrong second factor for user ({USER})")
        );
    }
    // The fifth locks the step: still one entry, saying until when.
    let before = newest_id(&app);
    let page = browser
        .post("/login/two-factor", &[("recovery_code", "no-such-code")])
        .await;
    assert_eq!(page.status, 401);
    let entries = entries_after(&app, before);
    assert_eq!(super::actions(&entries), ["user_login_factor_failed"]);
    assert_eq!(factor_failed(&entries[0]), None);
    let until = entries[0].details["locked_until"].as_u64().expect("until");
    assert_eq!(
        entries[0].details,
        json!({ "failures": 5, "locked_until": until, "lockouts_in_series": 1 })
    );
    // Locked: even the right code is refused, and the refusal is recorded.
    let before = newest_id(&app);
    let right = code_at(&secret, now() + 30);
    let page = browser.post("/login/two-factor", &[("code", &right)]).await;
    assert_eq!(page.status, 429);
    let entries = entries_after(&app, before);
    assert_one(
        &entries,
        &Expected::new("user_login_factor_locked", USER).target(USER),
    );
    assert_eq!(entries[0].details, json!({ "locked_until": until }));
}

#[tokio::test]
async fn a_login_with_a_second_factor_is_recorded_with_how_it_was_proven() {
    let app = spawn_app().await;
    let secret = user_with_totp(&app).await;
    let browser = at_factor_step(&app).await;
    let before = newest_id(&app);
    browser
        .post(
            "/login/two-factor",
            &[("code", &code_at(&secret, now() + 30))],
        )
        .await
        .redirects_to("/");
    let entries = entries_after(&app, before);
    assert_one(&entries, &Expected::new("user_login", USER).target(USER));
    assert_eq!(
        entries[0].details["method"],
        "password and authenticator app"
    );
}

#[tokio::test]
async fn logout_is_recorded_as_the_user_ending_their_session() {
    let app = spawn_app().await;
    app.user_with_password(USER, "user").await;
    let browser = browser(&app).await;
    assert_eq!(log_in(&browser, USER, PASSWORD).await, 303);
    let sessions = app.get("user/sessions", &[("email", USER)]).await;
    let session = sessions.ok()["sessions"][0]["id"].clone();
    browser.get("/account").await;
    let before = newest_id(&app);
    browser.post("/logout", &[]).await.redirects_to("/login");
    let entries = entries_after(&app, before);
    assert_one(&entries, &Expected::new("user_logout", USER).target(USER));
    assert_eq!(entries[0].message, format!("User ({USER}) logged out"));
    assert_eq!(entries[0].details, json!({ "session": session }));
    // Logging out again, with no session left, records nothing.
    browser.get("/login").await;
    let before = newest_id(&app);
    browser.post("/logout", &[]).await.redirects_to("/login");
    assert_nothing_after(&app, before);
}

#[tokio::test]
async fn a_forgotten_password_request_is_recorded_only_for_an_existing_account() {
    let app = spawn_app().await;
    app.user_with_password(USER, "user").await;
    let browser = Console::with_headers(&app, browser_headers());
    browser.get("/forgot-password").await;
    let before = newest_id(&app);
    for email in ["nobody@x.io", USER] {
        let page = browser.post("/forgot-password", &[("email", email)]).await;
        assert_eq!(page.status, 200);
    }
    // The request is handled in the background: wait for it, at most 10 s.
    let mut entries = Vec::new();
    for _ in 0..100 {
        entries = entries_after(&app, before);
        if !entries.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_one(
        &entries,
        &Expected::new("user_password_reset_request", USER).target(USER),
    );
    // The unknown address (asked first) left nothing: no entry names it.
    app.wait_for_mail_queue().await;
    assert_eq!(entries_after(&app, before).len(), 1);
}

/// The path of the first link to `/welcome/…` or `/reset/…` in the outbox.
async fn link_in_outbox(app: &TestApp, kind: &str) -> String {
    let mails = app.outbox().await;
    let unfolded = mails.join("\n").replace("=\r\n", "").replace("=\n", "");
    let start = unfolded.find(kind).expect("a link in the outbox");
    unfolded[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
        .collect()
}

#[tokio::test]
async fn a_welcome_link_records_the_password_set_and_the_login_as_its_user() {
    let app = spawn_app().await;
    let params = [("email", USER), ("access_level", "user")];
    app.post("user/add", &params).await.ok();
    let path = link_in_outbox(&app, "/welcome/").await;
    let browser = Console::with_headers(&app, browser_headers());
    browser.get(&path).await.assert_contains(USER);
    let before = newest_id(&app);
    let fields = [("password", PASSWORD), ("confirm", PASSWORD)];
    browser.post(&path, &fields).await.redirects_to("/");
    let entries = entries_after(&app, before);
    assert_eq!(
        super::actions(&entries),
        ["user_password_set", "user_login"]
    );
    let set = Expected::new("user_password_set", USER).target(USER);
    assert_eq!(set.mismatch(&entries[0]), None);
    assert_eq!(
        entries[0].message,
        format!("User ({USER}) set a password with a welcome link")
    );
    let login = Expected::new("user_login", USER).target(USER);
    assert_eq!(login.mismatch(&entries[1]), None);
}

#[tokio::test]
async fn the_setup_link_records_the_first_admin_as_the_address_typed() {
    let app = spawn_app().await;
    let link = NewLink::new(TokenPurpose::Setup, None);
    link.store(&app.store, &Actor::named("test"))
        .expect("store setup link");
    let path = link
        .url(&app.address)
        .trim_start_matches(&app.address)
        .to_string();
    let browser = Console::with_headers(&app, browser_headers());
    browser.get(&path).await;
    let before = newest_id(&app);
    let fields = [
        ("email", USER),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    browser.post(&path, &fields).await.redirects_to("/");
    let entries = entries_after(&app, before);
    assert_eq!(super::actions(&entries), ["user_add", "user_login"]);
    let added = Expected::new("user_add", USER).target(USER);
    assert_eq!(added.mismatch(&entries[0]), None);
    assert_eq!(
        entries[0].details,
        json!({ "access_level": "admin", "setup": true })
    );
    assert_eq!(
        Expected::new("user_login", USER)
            .target(USER)
            .mismatch(&entries[1]),
        None
    );
}

#[tokio::test]
async fn an_untrusted_forwarded_for_header_is_not_believed() {
    let app = spawn_app().await;
    app.user_with_password(USER, "user").await;
    let browser = browser(&app).await;
    let before = newest_id(&app);
    let fields = [("email", USER), ("password", WRONG_PASSWORD)];
    let page = browser
        .post_forwarded_for("/login", &fields, "203.0.113.7")
        .await;
    assert_eq!(page.status, 401);
    let entries = entries_after(&app, before);
    assert_one(
        &entries,
        &Expected::new("user_login_failed", USER).target(USER),
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_recorded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_in(dir, |config| {
        config.trusted_proxies =
            roost::config::TrustedProxies::parse("127.0.0.1").expect("proxies");
    })
    .await;
    app.user_with_password(USER, "user").await;
    let browser = browser(&app).await;
    let before = newest_id(&app);
    let fields = [("email", USER), ("password", PASSWORD)];
    browser
        .post_forwarded_for("/login", &fields, "203.0.113.7")
        .await
        .redirects_to("/");
    let entries = entries_after(&app, before);
    assert_eq!(super::actions(&entries), ["user_login"]);
    assert_eq!(entries[0].ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(entries[0].user_agent.as_deref(), Some(super::AGENT));
}
