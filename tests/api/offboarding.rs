//! Offboarding: `user/offboard` now and scheduled, `user/offboard/cancel`, the scheduler run by a
//! test's clock (and at start, after downtime), and the console's confirmation page. Each test
//! checks what the leaver can still do afterwards (nothing), the audit entries, and the receipt.

use std::time::Duration;

use roost::auth::api_keys::issue_global_key;
use roost::clock::Clock;
use roost::domain::{ApiKeyType, Email};
use roost::store::UserRef;
use roost::store::audit::{AuditEntry, AuditFilter, AuditFrom};

use crate::console::{Console, PASSWORD};
use crate::helpers::*;
use crate::two_factor::now;

const LEAVER: &str = "leaver@x.io";
const BOSS: &str = "boss@x.io";

/// Every audit entry about `email`, oldest first.
fn entries_about(app: &TestApp, email: &str) -> Vec<AuditEntry> {
    let filter = AuditFilter {
        target: Some(email.to_string()),
        ..AuditFilter::default()
    };
    let mut entries = app
        .store
        .audit_page(&filter, AuditFrom::Newest, 1000)
        .unwrap()
        .entries;
    entries.reverse();
    entries
}

fn actions(entries: &[AuditEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.action_type.as_str()).collect()
}

fn rfc3339(unix: u64) -> String {
    roost::timestamps::rfc3339(unix)
}

/// A leaver (admin, signed in, manager of one flock and watcher of another, with an API key they
/// created and a reset link mailed but not yet delivered) and another admin to get the receipt.
struct Leaver {
    console: Console,
    key: String,
    reset_link: String,
    ops: String,
    night: String,
}

async fn leaver(app: &TestApp) -> Leaver {
    app.user_with_password(BOSS, "admin").await;
    let console = app.console_as(LEAVER, "admin").await;
    let ops = app.create_flock("Ops").await;
    let night = app.create_flock("Night shift").await;
    app.assign(LEAVER, &ops, "manager").await;
    app.assign(LEAVER, &night, "watcher").await;
    let key = issue_global_key(&app.store, ApiKeyType::Admin, "leaver's script", LEAVER)
        .expect("key of the leaver");
    assert_eq!(app.get_as(&key, "ping", &[]).await.status, 200);
    // The reset mail stays queued: the sender is stopped.
    assert!(app.mail_sender.stop(Duration::from_secs(5)).await);
    app.post("user/password/reset", &[("email", LEAVER)])
        .await
        .ok();
    let queued = app.store.mail_queue().unwrap();
    let mail = queued
        .iter()
        .find(|mail| mail.to.as_str() == LEAVER)
        .expect("the reset mail is queued");
    let reset_link = mail
        .content
        .text
        .split_whitespace()
        .find(|word| word.starts_with("http"))
        .expect("a link in the mail")
        .to_string();
    Leaver {
        console,
        key,
        reset_link,
        ops,
        night,
    }
}

/// Nothing of the leaver can act: their browser session, their key, their reset link, and a
/// password login.
async fn nothing_of_the_leaver_acts(app: &TestApp, leaver: &Leaver) {
    leaver.console.get("/users").await.redirects_to("/login");
    assert_eq!(app.get_as(&leaver.key, "ping", &[]).await.status, 401);
    let path = leaver
        .reset_link
        .strip_prefix(&app.console_url)
        .expect("a link to this console");
    let page = Console::new(app).get(path).await;
    assert_eq!(page.status, 410);
    page.assert_contains("Link not valid");
    let fresh = Console::new(app);
    let login = fresh.login(LEAVER, PASSWORD).await;
    assert_ne!(login.status, 303, "a disabled account logged in");
}

#[tokio::test]
async fn offboarding_now_takes_everything_away_in_one_step_and_sends_a_receipt() {
    let app = spawn_app().await;
    let leaver = leaver(&app).await;

    let answer = app.post("user/offboard", &[("email", LEAVER)]).await;
    let body = answer.ok();
    assert_eq!(
        body["msg"],
        format!("User ({LEAVER}) successfully offboarded.")
    );
    let report = &body["offboarding"];
    assert_eq!(report["disabled"], true);
    assert_eq!(report["was_enabled"], true);
    assert_eq!(report["sessions_ended"], 1);
    assert_eq!(report["managed_flocks_removed"][0]["flock_id"], leaver.ops);
    assert_eq!(report["managed_flocks_removed"][0]["name"], "Ops");
    assert_eq!(
        report["watched_flocks_removed"][0]["flock_id"],
        leaver.night
    );
    assert_eq!(report["links_voided"], 1);
    assert_eq!(report["mails_dropped"], 1);
    assert_eq!(report["api_keys"][0]["note"], "leaver's script");
    assert_eq!(report["api_keys_revoked"], true);
    assert_eq!(report["receipt_sent_to"], serde_json::json!([BOSS]));

    let user = app.user(LEAVER).await;
    assert_eq!(user["disabled"], true);
    assert_eq!(user["managed_flocks"], serde_json::json!([]));
    assert_eq!(user["watched_flocks"], serde_json::json!([]));
    assert!(user.get("offboarding").is_none(), "{user}");
    assert!(
        user["last_login"].is_string(),
        "the leaver logged in: {user}"
    );
    assert_eq!(app.flock_users(&leaver.ops).await, (vec![], vec![]));
    nothing_of_the_leaver_acts(&app, &leaver).await;

    // Each step on the trail, by the key that asked.
    let entries = entries_about(&app, LEAVER);
    let steps: Vec<&AuditEntry> = entries
        .iter()
        .skip_while(|e| e.action_type != "user_disable")
        // The leaver's own tries afterwards.
        .filter(|e| !e.action_type.starts_with("user_login"))
        .collect();
    let names: Vec<&str> = steps.iter().map(|e| e.action_type.as_str()).collect();
    assert_eq!(
        names,
        [
            "user_disable",
            "session_revoke",
            "flock_unassign",
            "api_key_remove",
            "user_offboard"
        ],
        "{entries:#?}"
    );
    assert!(
        steps.iter().all(|e| e.actor.starts_with("API key tests")),
        "{steps:#?}"
    );
    let summary = steps.last().unwrap();
    assert_eq!(summary.details["links_voided"], 1);
    assert_eq!(summary.details["mails_dropped"], 1);

    // The receipt waits in the queue for the other admin, listing each step; the reset mail is
    // gone.
    let queue = app.store.mail_queue().unwrap();
    assert!(
        queue.iter().all(|mail| mail.to.as_str() != LEAVER),
        "{queue:?}"
    );
    let receipt = queue
        .iter()
        .find(|mail| mail.to.as_str() == BOSS)
        .expect("a receipt for the other admin");
    assert_eq!(
        receipt.content.subject,
        format!("Roost: {LEAVER} was offboarded")
    );
    for line in [
        "Account: disabled",
        "Sessions ended: 1",
        "Manager role removed in: Ops",
        "Watcher role removed in: Night shift",
        "Unused set-password and reset links voided: 1",
        "Queued mail to them dropped: 1",
        "API keys they created, revoked: leaver's script",
    ] {
        assert!(
            receipt.content.text.contains(line),
            "{line}: {}",
            receipt.content.text
        );
    }
    let html = receipt.content.html.as_deref().unwrap();
    assert!(
        html.contains("leaver&#39;s script") || html.contains("leaver&#x27;s script"),
        "{html}"
    );
}

#[tokio::test]
async fn keys_can_be_listed_instead_of_revoked() {
    let app = spawn_app().await;
    app.user_with_password(BOSS, "admin").await;
    app.user_with_password(LEAVER, "admin").await;
    let key = issue_global_key(&app.store, ApiKeyType::Admin, "nightly", "Leaver@X.io").unwrap();
    let answer = app
        .post(
            "user/offboard",
            &[("email", LEAVER), ("revoke_api_keys", "false")],
        )
        .await;
    let report = &answer.ok()["offboarding"];
    assert_eq!(report["api_keys_revoked"], false);
    assert_eq!(report["api_keys"][0]["note"], "nightly");
    assert_eq!(
        app.get_as(&key, "ping", &[]).await.status,
        200,
        "kept as asked"
    );
    assert!(!actions(&entries_about(&app, LEAVER)).contains(&"api_key_remove"));
}

#[tokio::test]
async fn bad_input_and_unauthorised_callers_change_nothing() {
    let app = spawn_app().await;
    app.add_user(LEAVER, "user").await;
    let flock = app.create_flock("Ops").await;
    let untouched = app.snapshot().await;
    for (params, status, message) in [
        (vec![], 400, "Missing required parameter 'email'."),
        (vec![("email", "not-an-email")], 400, ""),
        (vec![("email", "nobody@x.io")], 404, "User does not exist."),
        (
            vec![("email", LEAVER), ("at", "tomorrow")],
            400,
            "Parameter 'at' must be an RFC 3339 time with its offset, e.g. 2027-01-31T17:00:00Z.",
        ),
        (
            vec![("email", LEAVER), ("at", "2001-01-01T00:00:00Z")],
            400,
            "The time is in the past: give a future time, or leave it out.",
        ),
        (
            vec![("email", LEAVER), ("revoke_api_keys", "maybe")],
            400,
            "Parameter 'revoke_api_keys' must be a boolean (true/false, 1/0, yes/no, on/off).",
        ),
        (
            vec![("email", LEAVER), ("at", "2099-01-01T00:00:00Z\u{0}")],
            400,
            "",
        ),
    ] {
        let answer = app.post("user/offboard", &params).await;
        if message.is_empty() {
            answer.err_status(status);
        } else {
            answer.err(status, message);
        }
    }
    app.post("user/offboard/cancel", &[("email", LEAVER)])
        .await
        .err(404, "No offboarding is scheduled for this user.");
    app.post("user/offboard/cancel", &[("email", "nobody@x.io")])
        .await
        .err(404, "User does not exist.");
    assert_eq!(app.snapshot().await, untouched);
    // Keys that may not administer, and no key.
    let reader = app.new_key("read-only").await;
    let analyst = app.new_key("analyst").await;
    let flock_admin = app.new_flock_key(&flock, "admin").await;
    let before = app.snapshot().await;
    for key in [&reader, &analyst, &flock_admin] {
        for path in ["user/offboard", "user/offboard/cancel"] {
            let status = app.post_as(key, path, &[("email", LEAVER)]).await.status;
            assert!(status == 401 || status == 403, "{path}: {status}");
        }
    }
    for path in ["user/offboard", "user/offboard/cancel"] {
        let request = app
            .client
            .post(api_url(&app.address, path))
            .form(&[("email", LEAVER)]);
        assert_eq!(send(request).await.status, 401, "{path}");
    }
    assert_eq!(app.snapshot().await, before);
    assert!(
        !actions(&entries_about(&app, LEAVER))
            .iter()
            .any(|action| action.starts_with("user_offboard"))
    );
}

#[tokio::test]
async fn the_last_enabled_admin_is_refused_now_later_and_at_the_time() {
    let start = now();
    let clock = Clock::manual(start);
    let app = spawn_app_at(&clock).await;
    app.add_user(BOSS, "admin").await;
    let last = "Cannot disable, remove or demote the last enabled admin.";
    app.post("user/offboard", &[("email", BOSS)])
        .await
        .err(409, last);
    let later = rfc3339(start + 3600);
    app.post("user/offboard", &[("email", BOSS), ("at", &later)])
        .await
        .err(409, last);

    // Scheduled while another admin was enabled; that admin is disabled before the time.
    app.add_user("second@x.io", "admin").await;
    app.post("user/offboard", &[("email", BOSS), ("at", &later)])
        .await
        .ok();
    app.post("user/disable", &[("email", "second@x.io")])
        .await
        .ok();
    clock.advance(3601);
    let run = app.scheduler.run_due().await.unwrap();
    assert!(run.offboarded.is_empty());
    assert_eq!(run.refused.len(), 1);
    let boss = app.user(BOSS).await;
    assert_eq!(boss["disabled"], false, "the last admin keeps the console");
    assert!(
        boss.get("offboarding").is_none(),
        "the schedule is dropped: {boss}"
    );
    let entries = entries_about(&app, BOSS);
    let refused = entries.last().unwrap();
    assert_eq!(refused.action_type, "user_offboard_cancel");
    assert!(refused.message.contains("refused"), "{refused:?}");
    // Not tried again.
    clock.advance(3600);
    let again = app.scheduler.run_due().await.unwrap();
    assert!(again.refused.is_empty() && again.offboarded.is_empty());
}

#[tokio::test]
async fn a_scheduled_offboarding_runs_at_its_time_and_one_cancelled_never_does() {
    let start = now();
    let clock = Clock::manual(start);
    let app = spawn_app_at(&clock).await;
    let leaver = leaver(&app).await;
    let at = start + 3600;

    // Scheduled, then cancelled: nothing happens at its time.
    let answer = app
        .post("user/offboard", &[("email", LEAVER), ("at", &rfc3339(at))])
        .await;
    let body = answer.ok();
    assert_eq!(
        body["msg"],
        format!(
            "Offboarding of user ({LEAVER}) scheduled for {}.",
            rfc3339(at)
        )
    );
    let shown = app.user(LEAVER).await["offboarding"].clone();
    assert_eq!(shown["at"], rfc3339(at));
    assert_eq!(shown["revoke_api_keys"], true);
    assert!(
        shown["scheduled_by"]
            .as_str()
            .unwrap()
            .starts_with("API key tests")
    );
    app.post("user/offboard/cancel", &[("email", LEAVER)])
        .await
        .ok();
    assert!(app.user(LEAVER).await.get("offboarding").is_none());
    clock.set(at + 1);
    let run = app.scheduler.run_due().await.unwrap();
    assert!(run.offboarded.is_empty());
    assert_eq!(app.user(LEAVER).await["disabled"], false);

    // Scheduled again (an earlier schedule is replaced), not yet due, then due.
    let first = at + 7200;
    let second = at + 3600;
    app.post(
        "user/offboard",
        &[("email", LEAVER), ("at", &rfc3339(first))],
    )
    .await
    .ok();
    let replaced = app
        .post(
            "user/offboard",
            &[("email", LEAVER), ("at", &rfc3339(second))],
        )
        .await;
    assert_eq!(replaced.ok()["replaced"]["at"], rfc3339(first));
    clock.set(second - 1);
    assert!(app.scheduler.run_due().await.unwrap().offboarded.is_empty());
    assert_eq!(app.user(LEAVER).await["disabled"], false);
    clock.set(second);
    let run = app.scheduler.run_due().await.unwrap();
    assert_eq!(run.offboarded.len(), 1);
    assert_eq!(run.offboarded[0].sessions_ended, 1);
    assert!(app.user(LEAVER).await["disabled"].as_bool().unwrap());
    nothing_of_the_leaver_acts(&app, &leaver).await;
    // Once only: the index no longer names the user.
    clock.set(first + 1);
    assert!(app.scheduler.run_due().await.unwrap().offboarded.is_empty());

    // Carried out in the name of the key that scheduled it.
    let entries = entries_about(&app, LEAVER);
    let names = actions(&entries);
    for action in [
        "user_offboard_schedule",
        "user_offboard_cancel",
        "user_offboard",
    ] {
        assert!(names.contains(&action), "{action}: {names:?}");
    }
    let done = entries
        .iter()
        .rev()
        .find(|e| e.action_type == "user_offboard")
        .unwrap();
    assert!(
        done.actor
            .starts_with("system (offboarding scheduled by API key tests"),
        "{done:?}"
    );
    let receipt = app
        .store
        .mail_queue()
        .unwrap()
        .into_iter()
        .find(|mail| mail.to.as_str() == BOSS)
        .expect("a receipt");
    assert!(
        receipt
            .content
            .text
            .contains("was offboarded as API key tests"),
        "{}",
        receipt.content.text
    );
}

#[tokio::test]
async fn an_offboarding_due_while_the_server_was_down_runs_at_the_next_start() {
    let start = now();
    let clock = Clock::manual(start);
    let app = spawn_app_at(&clock).await;
    app.user_with_password(BOSS, "admin").await;
    app.add_user(LEAVER, "user").await;
    app.post(
        "user/offboard",
        &[("email", LEAVER), ("at", &rfc3339(start + 3600))],
    )
    .await
    .ok();
    // The data directory as a server killed now leaves it (the schedule's commit was durable
    // when it was answered)...
    let later = tempfile::tempdir().unwrap();
    for key in ["roost.redb", "secrets.key", "session.key"] {
        std::fs::copy(app.data_dir.join(key), later.path().join(key)).unwrap();
    }
    drop(app);
    // ... started again two hours later: the first run, at start, carries it out.
    let app = spawn_app_in(later, |config| config.clock = Clock::manual(start + 7200)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if app.user(LEAVER).await["disabled"] == true {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not offboarded after the start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let entries = entries_about(&app, LEAVER);
    assert_eq!(entries.last().unwrap().action_type, "user_offboard");
    assert!(app.user(LEAVER).await.get("offboarding").is_none());
}

#[tokio::test]
async fn an_admin_offboards_from_the_console_and_the_leavers_browser_is_logged_out() {
    let app = spawn_app().await;
    let admin = app.console_as(BOSS, "admin").await;
    let leaver_browser = app.console_as(LEAVER, "user").await;
    let id = app.user(LEAVER).await["id"].as_u64().unwrap();
    let flock = app.create_flock("Ops").await;
    app.assign(LEAVER, &flock, "watcher").await;

    let confirm = admin.get(&format!("/users/{id}/offboard")).await;
    assert_eq!(confirm.status, 200);
    confirm.assert_contains("1 open session ends");
    confirm.assert_contains("watcher of Ops");
    confirm.assert_contains("id=\"confirm-offboard\"");

    // Without the form's CSRF token nothing happens.
    let forged = admin
        .post_raw(
            &format!("/users/{id}/offboard"),
            &[("revoke_api_keys", "true")],
        )
        .await;
    assert!(forged.status >= 400, "{}", forged.status);
    assert_eq!(app.user(LEAVER).await["disabled"], false);

    // Scheduled from the form, shown on the user page, cancelled.
    let page = admin
        .post(
            &format!("/users/{id}/offboard"),
            &[("revoke_api_keys", "true"), ("at", "2099-01-31T17:00")],
        )
        .await;
    page.redirects_to(&format!("/users/{id}"));
    let shown = admin.get(&format!("/users/{id}")).await;
    shown.assert_contains("Offboarding scheduled for <strong>2099-01-31 17:00 UTC</strong>");
    assert_eq!(
        app.user(LEAVER).await["offboarding"]["at"],
        "2099-01-31T17:00:00Z"
    );
    admin
        .post(&format!("/users/{id}/offboard/cancel"), &[])
        .await
        .redirects_to(&format!("/users/{id}"));
    assert!(app.user(LEAVER).await.get("offboarding").is_none());
    // A time that isn't one is refused with a flash, nothing scheduled.
    admin
        .post(&format!("/users/{id}/offboard"), &[("at", "soon")])
        .await
        .redirects_to(&format!("/users/{id}"));
    assert!(app.user(LEAVER).await.get("offboarding").is_none());
    assert_eq!(app.user(LEAVER).await["disabled"], false);

    // Now.
    leaver_browser.get("/account").await;
    admin
        .post(
            &format!("/users/{id}/offboard"),
            &[("revoke_api_keys", "true")],
        )
        .await
        .redirects_to(&format!("/users/{id}"));
    let after = admin.get(&format!("/users/{id}")).await;
    after.assert_contains(&format!(
        "{LEAVER} offboarded: 1 sessions ended, 1 flock roles removed"
    ));
    assert_eq!(app.user(LEAVER).await["disabled"], true);
    // The leaver's next click.
    leaver_browser.get("/account").await.redirects_to("/login");
    let store = app.store.clone();
    let details = tokio::task::spawn_blocking(move || {
        store.user_details(&UserRef::Email(Email::parse(LEAVER).unwrap()))
    })
    .await
    .unwrap()
    .unwrap();
    assert!(details.user.disabled && details.watched_flocks.is_empty());
}

/// A hundred offboardings of one user at once: one carries it out, the others find nothing left
/// to take away: one set of audit entries, one receipt.
#[tokio::test]
async fn a_hundred_concurrent_offboardings_act_once() {
    let app = spawn_app().await;
    app.user_with_password(BOSS, "admin").await;
    let _browser = app.console_as(LEAVER, "user").await;
    assert!(app.mail_sender.stop(Duration::from_secs(5)).await);
    let calls = (0..100).map(|_| app.post("user/offboard", &[("email", LEAVER)]));
    let answers = futures_util::future::join_all(calls).await;
    let mut acted = 0;
    for answer in &answers {
        let body = answer.ok();
        if body["offboarding"]["changed"] == true {
            acted += 1;
            assert_eq!(body["offboarding"]["sessions_ended"], 1);
        } else {
            assert_eq!(
                body["msg"],
                format!("User ({LEAVER}) was offboarded already: nothing was left to take away.")
            );
        }
    }
    assert_eq!(acted, 1);
    let entries = entries_about(&app, LEAVER);
    let offboards = entries
        .iter()
        .filter(|e| e.action_type == "user_offboard")
        .count();
    assert_eq!(offboards, 1, "{entries:#?}");
    let receipts = app
        .store
        .mail_queue()
        .unwrap()
        .iter()
        .filter(|mail| mail.to.as_str() == BOSS)
        .count();
    assert_eq!(receipts, 1);
}

/// A link the user already used (kept until swept) is removed but not counted as voided: the
/// report's figure is of links that could still have been used.
#[tokio::test]
async fn a_used_welcome_link_is_not_counted_as_voided() {
    let app = spawn_app().await;
    app.add_user(BOSS, "admin").await;
    assert!(app.mail_sender.stop(Duration::from_secs(5)).await);
    app.post(
        "user/add",
        &[
            ("email", LEAVER),
            ("access_level", "user"),
            ("send_welcome_mail", "true"),
        ],
    )
    .await
    .ok();
    let mail = app.store.mail_queue().unwrap();
    let link = mail
        .iter()
        .find(|mail| mail.to.as_str() == LEAVER)
        .and_then(|mail| {
            mail.content
                .text
                .split_whitespace()
                .find(|word| word.starts_with("http"))
                .map(str::to_string)
        })
        .expect("the welcome link");
    let path = link.strip_prefix(&app.console_url).unwrap().to_string();
    let invitee = Console::new(&app);
    invitee.get(&path).await;
    invitee
        .post(&path, &[("password", PASSWORD), ("confirm", PASSWORD)])
        .await
        .redirects_to("/");
    let report = app.post("user/offboard", &[("email", LEAVER)]).await;
    let report = &report.ok()["offboarding"];
    assert_eq!(report["links_voided"], 0, "{report}");
    assert_eq!(report["sessions_ended"], 1);
    assert_eq!(Console::new(&app).get(&path).await.status, 410);
}
