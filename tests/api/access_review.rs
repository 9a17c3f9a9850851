//! The access review: its sections from a seeded console (`GET access/review` and the page), each
//! inline action, who may see it, and the weekly summary's counts with the link.

use std::time::Duration;

use roost::auth::login_throttle::PER_ACCOUNT;
use roost::clock::Clock;
use roost::store::audit::Actor;
use serde_json::Value;

use crate::console::{Console, PASSWORD};
use crate::helpers::*;
use crate::two_factor::now;

const DAY: u64 = 24 * 3600;

async fn app_at(clock: &Clock, dormant_after: Option<u64>) -> TestApp {
    spawn_app_in(tempfile::tempdir().unwrap(), {
        let clock = clock.clone();
        move |config| {
            config.clock = clock;
            if let Some(days) = dormant_after {
                config.dormant_after_days = days;
            }
        }
    })
    .await
}

fn emails(section: &Value) -> Vec<String> {
    section["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["email"].as_str().unwrap().to_string())
        .collect()
}

async fn review(app: &TestApp) -> Value {
    app.get("access/review", &[]).await.ok()["review"].clone()
}

/// Wrong passwords until the account locks.
async fn lock_out(app: &TestApp, email: &str) {
    let console = Console::new(app);
    console.get("/login").await;
    for n in 0..PER_ACCOUNT + 1 {
        console
            .post(
                "/login",
                &[("email", email), ("password", &format!("wrong {n}"))],
            )
            .await;
    }
}

#[tokio::test]
async fn the_review_lists_each_section_from_a_seeded_console() {
    let start = now();
    let clock = Clock::manual(start);
    let app = app_at(&clock, None).await;
    let boss = app.console_as("boss@x.io", "admin").await;
    app.add_user("nofactor@x.io", "user").await;
    app.add_user("gone@x.io", "user").await;
    app.post("user/disable", &[("email", "gone@x.io")])
        .await
        .ok();
    app.add_user("temp@x.io", "admin").await;
    app.post(
        "user/edit/access_level",
        &[
            ("email", "temp@x.io"),
            ("access_level", "admin"),
            ("expires_at", &roost::timestamps::rfc3339(start + 5 * DAY)),
        ],
    )
    .await
    .ok();
    let ops = app.create_flock("Ops").await;
    app.post(
        "user/flock/assign",
        &[
            ("email", "nofactor@x.io"),
            ("flock_id_list", &ops),
            ("flock_access_level", "watcher"),
            ("expires_at", &roost::timestamps::rfc3339(start + 20 * DAY)),
        ],
    )
    .await
    .ok();
    app.add_user("promoted@x.io", "user").await;
    app.post(
        "user/edit/access_level",
        &[("email", "promoted@x.io"), ("access_level", "admin")],
    )
    .await
    .ok();
    app.user_with_password("locked@x.io", "user").await;
    lock_out(&app, "locked@x.io").await;

    let now_review = review(&app).await;
    assert_eq!(now_review["two_factor_enforced"], false);
    let without = emails(&now_review["without_second_factor"]);
    for email in ["boss@x.io", "nofactor@x.io", "temp@x.io", "locked@x.io"] {
        assert!(without.contains(&email.to_string()), "{email}: {without:?}");
    }
    assert!(
        !without.contains(&"gone@x.io".to_string()),
        "disabled users aren't listed"
    );
    assert_eq!(
        now_review["dormant"]["total"], 0,
        "{}",
        now_review["dormant"]
    );
    let new_admins: Vec<&str> = now_review["new_admins"]["admins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["email"].as_str().unwrap())
        .collect();
    for email in ["boss@x.io", "temp@x.io", "promoted@x.io"] {
        assert!(new_admins.contains(&email), "{email}: {new_admins:?}");
    }
    assert!(
        now_review["new_admins"]["admins"][0]["by"]
            .as_str()
            .unwrap()
            .starts_with("API key tests")
    );
    let expiring = &now_review["expiring_soon"];
    assert_eq!(expiring["total"], 1, "{expiring}");
    assert_eq!(expiring["grants"][0]["user"]["email"], "temp@x.io");
    assert_eq!(expiring["grants"][0]["grant"], "admin");
    assert_eq!(now_review["stale_api_keys"]["total"], 0);
    let locks = &now_review["locked_recently"];
    assert_eq!(locks["total"], 1, "{locks}");
    assert_eq!(locks["locks"][0]["email"], "locked@x.io");
    assert_eq!(locks["locks"][0]["step"], "password");
    assert_eq!(locks["locks"][0]["locked_now"], true);
    let failed = &now_review["failed_logins"];
    assert_eq!(failed["days"].as_array().unwrap().len(), 14);
    assert!(
        failed["past_week"].as_u64().unwrap() >= u64::from(PER_ACCOUNT),
        "{failed}"
    );
    assert_eq!(failed["week_before"], 0);
    assert_eq!(
        failed["days"][13]["day"],
        roost::timestamps::date(start),
        "the last day is today"
    );

    // 91 days on: the accounts nobody logged into are dormant, and every key is stale.
    clock.set(start + 91 * DAY);
    let later = review(&app).await;
    let dormant = emails(&later["dormant"]);
    for email in ["nofactor@x.io", "temp@x.io", "boss@x.io"] {
        assert!(dormant.contains(&email.to_string()), "{email}: {dormant:?}");
    }
    assert!(!dormant.contains(&"gone@x.io".to_string()));
    assert!(later["stale_api_keys"]["total"].as_u64().unwrap() >= 1);
    assert_eq!(later["new_admins"]["total"], 0, "30 days are over");
    // The page shows the same, to an admin.
    let page = boss.get("/review").await;
    assert_eq!(page.status, 200);
    page.assert_contains("No login for 90 days (");
    page.assert_contains("nofactor@x.io");
    drop(app);

    // With --dormant-after 200, the same accounts aren't dormant yet.
    let clock = Clock::manual(start);
    let app = app_at(&clock, Some(200)).await;
    app.add_user("nofactor@x.io", "user").await;
    clock.set(start + 91 * DAY);
    let review = review(&app).await;
    assert_eq!(review["dormant_after_days"], 200);
    assert_eq!(review["dormant"]["total"], 0);
}

#[tokio::test]
async fn each_inline_action_acts_and_is_audited() {
    let start = now();
    let clock = Clock::manual(start);
    let app = app_at(&clock, None).await;
    let boss = app.console_as("boss@x.io", "admin").await;
    app.add_user("nofactor@x.io", "user").await;
    app.add_user("idle@x.io", "user").await;
    app.add_user("temp@x.io", "admin").await;
    let ends = start + 2 * DAY;
    app.post(
        "user/edit/access_level",
        &[
            ("email", "temp@x.io"),
            ("access_level", "admin"),
            ("expires_at", &roost::timestamps::rfc3339(ends)),
        ],
    )
    .await
    .ok();
    app.user_with_password("locked@x.io", "user").await;
    lock_out(&app, "locked@x.io").await;
    let key = app.add_key("read-only").await;
    let key_id = key["key_id"].as_str().unwrap().to_string();
    let key_secret = key["auth_token"].as_str().unwrap().to_string();
    let id_of = |user: Value| user["id"].as_u64().unwrap();
    let nofactor = id_of(app.user("nofactor@x.io").await);
    let idle = id_of(app.user("idle@x.io").await);
    let temp = id_of(app.user("temp@x.io").await);
    let locked = id_of(app.user("locked@x.io").await);

    boss.get("/review").await;
    // Without the page's CSRF token, nothing.
    let forged = boss
        .post_raw(&format!("/review/users/{nofactor}/require-2fa"), &[])
        .await;
    assert!(forged.status >= 400);
    assert_eq!(
        app.user("nofactor@x.io").await["two_factor_required"],
        false
    );

    boss.post(&format!("/review/users/{nofactor}/require-2fa"), &[])
        .await
        .redirects_to("/review");
    assert_eq!(app.user("nofactor@x.io").await["two_factor_required"], true);
    boss.post(&format!("/review/users/{idle}/disable"), &[])
        .await
        .redirects_to("/review");
    assert_eq!(app.user("idle@x.io").await["disabled"], true);
    boss.post(&format!("/review/users/{locked}/unlock"), &[])
        .await
        .redirects_to("/review");
    let fresh = Console::new(&app);
    fresh.login("locked@x.io", PASSWORD).await.redirects_to("/");
    boss.post("/review/keys/revoke", &[("key_id", &key_id)])
        .await
        .redirects_to("/review");
    assert_eq!(app.get_as(&key_secret, "ping", &[]).await.status, 401);
    boss.post(
        "/review/grants/extend",
        &[
            ("user_id", &temp.to_string()),
            ("flock_id", ""),
            ("grant", "admin"),
            ("until", "2099-06-30T12:00"),
        ],
    )
    .await
    .redirects_to("/review");
    assert_eq!(
        app.user("temp@x.io").await["expiring_access"][0]["expires_at"],
        "2099-06-30T12:00:00Z"
    );
    let page = boss.get("/review").await;
    page.assert_contains("Extended for temp@x.io until 2099-06-30 12:00 UTC.");
    // Each on the trail, by the admin who clicked.
    let trail = app.get("audit_trail/fetch", &[]).await;
    let text = trail.text;
    for action in [
        "user_edit",
        "user_disable",
        "user_unlock",
        "api_key_remove",
        "user_edit_access_level",
    ] {
        assert!(text.contains(action), "{action}");
    }
    assert!(text.contains("boss@x.io"));
    // Past its old end nothing happens: it was extended.
    clock.set(ends + 1);
    assert!(app.scheduler.run_due().await.unwrap().expired.is_empty());
}

#[tokio::test]
async fn only_admins_see_the_review() {
    let app = spawn_app().await;
    app.add_user("ann@x.io", "user").await;
    let reader = app.new_key("read-only").await;
    let analyst = app.new_key("analyst").await;
    let flock = app.create_flock("Ops").await;
    let flock_key = app.new_flock_key(&flock, "admin").await;
    for key in [&reader, &analyst, &flock_key] {
        let status = app.get_as(key, "access/review", &[]).await.status;
        assert!(status == 401 || status == 403, "{status}");
    }
    let no_key = send(app.client.get(api_url(&app.address, "access/review"))).await;
    assert_eq!(no_key.status, 401);
    let user = app.console_as("user@x.io", "user").await;
    let page = user.get("/review").await;
    assert!(page.status == 403 || page.status == 303, "{}", page.status);
    let action = user.post("/review/keys/revoke", &[("key_id", "x")]).await;
    assert!(
        action.status == 403 || action.status == 303,
        "{}",
        action.status
    );
}

#[tokio::test]
async fn the_weekly_admin_summary_counts_the_review_and_links_to_it() {
    let app = spawn_app().await;
    app.user_with_password("boss@x.io", "admin").await;
    app.add_user("nofactor@x.io", "user").await;
    assert!(app.mail_sender.stop(Duration::from_secs(5)).await);
    app.summaries.queue_now(Actor::cli(), now()).await.unwrap();
    let mail = app
        .store
        .mail_queue()
        .unwrap()
        .into_iter()
        .find(|mail| mail.to.as_str() == "boss@x.io")
        .expect("the admin's summary");
    let text = &mail.content.text;
    assert!(
        text.contains(&format!("Access review ({}/review)", app.console_url)),
        "{text}"
    );
    assert!(
        text.contains("admins made in the past 30 days: 1"),
        "{text}"
    );
    assert!(text.contains("no login for 90 days: 0"), "{text}");
    let html = mail.content.html.unwrap();
    assert!(
        html.contains("/review\">Open the access review</a>"),
        "{html}"
    );
}
