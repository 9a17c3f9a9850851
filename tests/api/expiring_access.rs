//! Access that expires: admin access and flock roles granted until a time (`expires_at` on
//! `user/add`, `user/edit/access_level`, `user/flock/assign`), the reminder three days before
//! (once), the revert at the end (sessions ended, audited), never for the last enabled admin
//! (kept, admins told, retried daily), after a restart too. Time is the test's clock.

use std::time::Duration;

use roost::clock::Clock;
use roost::store::audit::{AuditEntry, AuditFilter, AuditFrom};

use crate::console::Console;
use crate::helpers::*;
use crate::two_factor::now;

const DAY: u64 = 24 * 3600;

/// An endpoint, its parameters, and the message it must answer with.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
const TEMP: &str = "temp@x.io";
const BOSS: &str = "boss@x.io";

fn rfc3339(unix: u64) -> String {
    roost::timestamps::rfc3339(unix)
}

async fn app_at(start: u64) -> (TestApp, Clock) {
    let clock = Clock::manual(start);
    let app = spawn_app_at(&clock).await;
    // Queued mail stays where the test can read it.
    assert!(app.mail_sender.stop(Duration::from_secs(5)).await);
    (app, clock)
}

fn entries(app: &TestApp, action: &str) -> Vec<AuditEntry> {
    let filter = AuditFilter {
        action: Some(action.to_string()),
        ..AuditFilter::default()
    };
    app.store
        .audit_page(&filter, AuditFrom::Newest, 1000)
        .unwrap()
        .entries
}

fn mails_to(app: &TestApp, to: &str, subject_part: &str) -> usize {
    app.store
        .mail_queue()
        .unwrap()
        .iter()
        .filter(|mail| mail.to.as_str() == to && mail.content.subject.contains(subject_part))
        .count()
}

#[tokio::test]
async fn admin_access_until_a_time_is_reminded_once_then_taken_back() {
    let start = now();
    let (app, clock) = app_at(start).await;
    app.user_with_password(BOSS, "admin").await;
    let ends = start + 10 * DAY;
    app.post(
        "user/add",
        &[
            ("email", TEMP),
            ("access_level", "admin"),
            ("send_welcome_mail", "false"),
            ("expires_at", &rfc3339(ends)),
        ],
    )
    .await
    .ok();
    let temp = app.user(TEMP).await;
    assert_eq!(temp["access_level"], "admin");
    assert_eq!(temp["expiring_access"][0]["grant"], "admin");
    assert_eq!(temp["expiring_access"][0]["expires_at"], rfc3339(ends));
    assert!(
        temp["expiring_access"][0]["granted_by"]
            .as_str()
            .unwrap()
            .starts_with("API key tests")
    );
    // Users without an end show none (existing clients see what they saw).
    assert!(app.user(BOSS).await.get("expiring_access").is_none());

    // A browser session of the temporary admin, on an admin page.
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || {
        let id = store
            .user_by_email(&roost::domain::Email::parse(TEMP).unwrap())
            .unwrap()
            .user
            .id;
        let hash = roost::auth::passwords::hash_password(crate::console::PASSWORD).unwrap();
        store
            .change_password(&roost::store::audit::Actor::named("test"), id, hash, None)
            .unwrap();
    })
    .await
    .unwrap();
    let browser = Console::new(&app);
    browser
        .login(TEMP, crate::console::PASSWORD)
        .await
        .redirects_to("/");
    assert_eq!(browser.get("/users").await.status, 200);

    // Nothing before the reminder's day; the reminder once.
    let run = app.scheduler.run_due().await.unwrap();
    assert!(run.reminded.is_empty() && run.expired.is_empty());
    clock.set(ends - 3 * DAY + 1);
    let run = app.scheduler.run_due().await.unwrap();
    assert_eq!(run.reminded.len(), 1);
    assert_eq!(mails_to(&app, TEMP, "ends at"), 1);
    assert_eq!(mails_to(&app, BOSS, "ends at"), 1);
    clock.advance(DAY);
    let run = app.scheduler.run_due().await.unwrap();
    assert!(run.reminded.is_empty(), "reminded twice");
    assert_eq!(mails_to(&app, TEMP, "ends at"), 1);
    assert_eq!(entries(&app, "access_expire_remind").len(), 1);
    assert_eq!(app.user(TEMP).await["access_level"], "admin");

    // At its end: a user again, their session over, on the trail.
    clock.set(ends);
    let run = app.scheduler.run_due().await.unwrap();
    assert_eq!(run.expired.len(), 1);
    let temp = app.user(TEMP).await;
    assert_eq!(temp["access_level"], "user");
    assert!(temp.get("expiring_access").is_none(), "{temp}");
    browser.get("/users").await.redirects_to("/login");
    let expired = entries(&app, "access_expire");
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].target.as_deref(), Some(TEMP));
    assert_eq!(expired[0].actor, "system");
    // And nothing more to do.
    clock.advance(30 * DAY);
    let run = app.scheduler.run_due().await.unwrap();
    assert!(run.expired.is_empty() && run.reminded.is_empty());
}

#[tokio::test]
async fn a_flock_role_until_a_time_can_be_extended_made_permanent_or_ends() {
    let start = now();
    let (app, clock) = app_at(start).await;
    app.add_user(TEMP, "user").await;
    let ops = app.create_flock("Ops").await;
    let assign = |until: Option<String>| {
        let app = &app;
        let ops = ops.clone();
        async move {
            let mut params = vec![
                ("email", TEMP.to_string()),
                ("flock_id_list", ops),
                ("flock_access_level", "manager".to_string()),
            ];
            if let Some(until) = until {
                params.push(("expires_at", until));
            }
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post("user/flock/assign", &params).await
        }
    };
    assign(Some(rfc3339(start + DAY))).await.ok();
    let shown = app.user(TEMP).await["expiring_access"].clone();
    assert_eq!(shown[0]["grant"], "manager");
    assert_eq!(shown[0]["flock_id"], ops);
    // Extended: the later end replaces the earlier.
    assign(Some(rfc3339(start + 5 * DAY))).await.ok();
    let shown = app.user(TEMP).await["expiring_access"].clone();
    assert_eq!(shown.as_array().unwrap().len(), 1);
    assert_eq!(shown[0]["expires_at"], rfc3339(start + 5 * DAY));
    clock.set(start + DAY + 1);
    assert!(app.scheduler.run_due().await.unwrap().expired.is_empty());
    assert_eq!(app.flock_users(&ops).await.0, vec![TEMP.to_string()]);

    // Made permanent by assigning without an end, then given one again, which ends.
    assign(None).await.ok();
    assert!(app.user(TEMP).await.get("expiring_access").is_none());
    clock.set(start + 6 * DAY);
    assert!(app.scheduler.run_due().await.unwrap().expired.is_empty());
    assign(Some(rfc3339(start + 7 * DAY))).await.ok();
    clock.set(start + 7 * DAY);
    let run = app.scheduler.run_due().await.unwrap();
    assert_eq!(run.expired.len(), 1);
    assert_eq!(app.flock_users(&ops).await, (vec![], vec![]));
    let expired = entries(&app, "access_expire");
    assert_eq!(expired[0].flock_id.as_deref(), Some(ops.as_str()));

    // A role with an end taken away by hand leaves nothing to end.
    assign(Some(rfc3339(start + 9 * DAY))).await.ok();
    app.post(
        "user/flock/unassign",
        &[
            ("email", TEMP),
            ("flock_id_list", &ops),
            ("flock_access_level", "manager"),
        ],
    )
    .await
    .ok();
    assert!(app.user(TEMP).await.get("expiring_access").is_none());
    clock.set(start + 10 * DAY);
    assert!(app.scheduler.run_due().await.unwrap().expired.is_empty());
    assert_eq!(entries(&app, "access_expire").len(), 1);
}

#[tokio::test]
async fn the_last_enabled_admin_keeps_expiring_access_and_it_is_retried_daily() {
    let start = now();
    let (app, clock) = app_at(start).await;
    app.add_user(TEMP, "admin").await;
    let ends = start + 3600;
    app.post(
        "user/edit/access_level",
        &[
            ("email", TEMP),
            ("access_level", "admin"),
            ("expires_at", &rfc3339(ends)),
        ],
    )
    .await
    .ok();
    clock.set(ends);
    let run = app.scheduler.run_due().await.unwrap();
    assert_eq!(run.deferred.len(), 1);
    assert!(run.expired.is_empty());
    assert_eq!(app.user(TEMP).await["access_level"], "admin");
    assert_eq!(entries(&app, "access_expire_defer").len(), 1);
    assert_eq!(mails_to(&app, TEMP, "kept past its end"), 1);
    // Not tried again within the day.
    clock.advance(3600);
    assert!(app.scheduler.run_due().await.unwrap().deferred.is_empty());
    clock.set(ends + DAY);
    assert_eq!(app.scheduler.run_due().await.unwrap().deferred.len(), 1);
    // Another admin: the next try takes it back.
    app.add_user(BOSS, "admin").await;
    clock.set(ends + 2 * DAY);
    let run = app.scheduler.run_due().await.unwrap();
    assert_eq!(run.expired.len(), 1);
    assert_eq!(app.user(TEMP).await["access_level"], "user");
}

#[tokio::test]
async fn an_end_that_passed_while_the_server_was_down_is_carried_out_at_start() {
    let start = now();
    let (app, _clock) = app_at(start).await;
    app.add_user(BOSS, "admin").await;
    app.add_user(TEMP, "user").await;
    let ops = app.create_flock("Ops").await;
    app.post(
        "user/flock/assign",
        &[
            ("email", TEMP),
            ("flock_id_list", &ops),
            ("flock_access_level", "watcher"),
            ("expires_at", &rfc3339(start + 3600)),
        ],
    )
    .await
    .ok();
    // As a kill now leaves the directory, started again two hours later.
    let later = tempfile::tempdir().unwrap();
    for file in ["roost.redb", "secrets.key", "session.key"] {
        std::fs::copy(app.data_dir.join(file), later.path().join(file)).unwrap();
    }
    drop(app);
    let app = spawn_app_in(later, |config| config.clock = Clock::manual(start + 7200)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.flock_users(&ops).await.1.contains(&TEMP.to_string()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the role outlived the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(entries(&app, "access_expire").len(), 1);
}

#[tokio::test]
async fn bad_ends_are_refused_and_change_nothing() {
    let start = now();
    let (app, _clock) = app_at(start).await;
    app.add_user(TEMP, "user").await;
    let ops = app.create_flock("Ops").await;
    let before = app.snapshot().await;
    let future = rfc3339(start + DAY);
    let past = rfc3339(start - 1);
    let cases: Vec<Case> = vec![
        (
            "user/edit/access_level",
            vec![
                ("email", TEMP),
                ("access_level", "user"),
                ("expires_at", &future),
            ],
            "Parameter 'expires_at' only applies to access_level 'admin'.",
        ),
        (
            "user/edit/access_level",
            vec![
                ("email", TEMP),
                ("access_level", "admin"),
                ("expires_at", &past),
            ],
            "The time is in the past: give a future time, or leave it out.",
        ),
        (
            "user/edit/access_level",
            vec![
                ("email", TEMP),
                ("access_level", "admin"),
                ("expires_at", "next week"),
            ],
            "Parameter 'expires_at' must be an RFC 3339 time with its offset, e.g. 2027-01-31T17:00:00Z.",
        ),
        (
            "user/add",
            vec![
                ("email", "new@x.io"),
                ("access_level", "user"),
                ("expires_at", &future),
            ],
            "Parameter 'expires_at' only applies to access_level 'admin'.",
        ),
        (
            "user/add",
            vec![
                ("email", "new@x.io"),
                ("access_level", "admin"),
                ("expires_at", &past),
            ],
            "The time is in the past: give a future time, or leave it out.",
        ),
        (
            "user/flock/assign",
            vec![
                ("email", TEMP),
                ("flock_id_list", &ops),
                ("flock_access_level", "watcher"),
                ("expires_at", &past),
            ],
            "The time is in the past: give a future time, or leave it out.",
        ),
        (
            "user/flock/assign",
            vec![
                ("email", TEMP),
                ("flock_id_list", &ops),
                ("flock_access_level", "watcher"),
                ("expires_at", "2027-13-45T00:00:00Z"),
            ],
            "Parameter 'expires_at' must be an RFC 3339 time with its offset, e.g. 2027-01-31T17:00:00Z.",
        ),
    ];
    for (path, params, message) in cases {
        app.post(path, &params).await.err(400, message);
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn the_console_grants_until_a_time_and_extends() {
    let app = spawn_app().await;
    let admin = app.console_as(BOSS, "admin").await;
    app.add_user(TEMP, "user").await;
    let id = app.user(TEMP).await["id"].as_u64().unwrap();
    let ops = app.create_flock("Ops").await;
    admin.get(&format!("/users/{id}")).await;
    admin
        .post(
            &format!("/users/{id}/access-level"),
            &[("access_level", "admin"), ("until", "2099-01-31T17:00")],
        )
        .await
        .redirects_to(&format!("/users/{id}"));
    let page = admin.get(&format!("/users/{id}")).await;
    page.assert_contains("Access level of temp@x.io set to admin until 2099-01-31 17:00 UTC.");
    page.assert_contains("until 2099-01-31 17:00 UTC");
    admin
        .post(
            &format!("/users/{id}/flocks/assign"),
            &[
                ("flock_id", &ops),
                ("role", "manager"),
                ("until", "2099-02-01T08:30"),
            ],
        )
        .await
        .redirects_to(&format!("/users/{id}"));
    let page = admin.get(&format!("/users/{id}")).await;
    page.assert_contains("until 2099-02-01 08:30 UTC");
    page.assert_contains("Extend");
    // Extend the role.
    admin
        .post(
            &format!("/users/{id}/flocks/assign"),
            &[
                ("flock_id", &ops),
                ("role", "manager"),
                ("until", "2099-03-01T08:30"),
            ],
        )
        .await
        .redirects_to(&format!("/users/{id}"));
    let grants = app.user(TEMP).await["expiring_access"].clone();
    let role = grants
        .as_array()
        .unwrap()
        .iter()
        .find(|grant| grant["grant"] == "manager")
        .unwrap();
    assert_eq!(role["expires_at"], "2099-03-01T08:30:00Z");
    // Not a time: refused with a flash, nothing changed.
    let before = app.user(TEMP).await;
    admin
        .post(
            &format!("/users/{id}/access-level"),
            &[("access_level", "admin"), ("until", "someday")],
        )
        .await
        .redirects_to(&format!("/users/{id}"));
    admin
        .get(&format!("/users/{id}"))
        .await
        .assert_contains("Until: choose a date and time");
    assert_eq!(app.user(TEMP).await, before);
}

#[tokio::test]
async fn the_new_user_form_grants_admin_until_a_time_and_refuses_it_for_a_user() {
    let app = spawn_app().await;
    let admin = app.console_as(BOSS, "admin").await;
    admin.get("/users/new").await;
    let refused = admin
        .post(
            "/users/new",
            &[
                ("email", TEMP),
                ("access_level", "user"),
                ("until", "2099-01-31T17:00"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
    refused.assert_contains("Admin until: Only admin access can be granted until a time.");
    assert_eq!(app.get("user/get", &[("email", TEMP)]).await.status, 404);
    admin
        .post(
            "/users/new",
            &[
                ("email", TEMP),
                ("access_level", "admin"),
                ("until", "2099-01-31T17:00"),
            ],
        )
        .await;
    let user = app.user(TEMP).await;
    assert_eq!(
        user["expiring_access"][0]["expires_at"],
        "2099-01-31T17:00:00Z"
    );
}
