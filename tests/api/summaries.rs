//! The weekly summary: who gets it, what it says, and that a week is sent once.

use roost::mail::Mailer;
use roost::summaries::{send_if_due, send_now};

use crate::helpers::*;

fn summary_mails(app: &TestApp) -> Vec<String> {
    std::fs::read_dir(app.data_dir.join("outbox"))
        .map(|entries| {
            entries
                .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
                .filter(|mail| mail.contains("Subject: Your weekly Roost summary"))
                .collect()
        })
        .unwrap_or_default()
}

fn recipients(mails: &[String]) -> Vec<String> {
    let mut to: Vec<String> = mails
        .iter()
        .filter_map(|mail| {
            mail.lines()
                .find(|line| line.starts_with("To: "))
                .map(|line| line.trim_start_matches("To: ").trim().to_string())
        })
        .collect();
    to.sort();
    to
}

async fn add(app: &TestApp, email: &str, level: &str) {
    let params = [
        ("email", email),
        ("access_level", level),
        ("send_welcome_mail", "false"),
    ];
    app.post("user/add", &params).await.ok();
}

/// A Monday at noon, far enough ahead that no run has claimed its week.
const FUTURE_MONDAY: u64 = 1_795_996_800 + 52 * 7 * 24 * 3600 + 12 * 3600;

#[tokio::test]
async fn summaries_go_once_a_week_to_enabled_users_who_opted_in() {
    let app = spawn_app().await;
    add(&app, "admin@x.io", "admin").await;
    add(&app, "member@x.io", "user").await;
    add(&app, "optout@x.io", "user").await;
    add(&app, "gone@x.io", "user").await;
    app.post("user/summary_email/disable", &[("email", "optout@x.io")])
        .await
        .ok();
    app.post("user/disable", &[("email", "gone@x.io")])
        .await
        .ok();
    let flock = app.create_flock("Night shift").await;
    app.assign("member@x.io", &flock, "watcher").await;

    let mailer = Mailer::new(None, "Roost <roost@localhost>", &app.data_dir).expect("mailer");
    // With Wednesday as the day: not due on Monday, due on Wednesday, once.
    let wednesday = FUTURE_MONDAY + 2 * 24 * 3600;
    assert_eq!(
        send_if_due(&app.store, &mailer, 2, FUTURE_MONDAY)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        send_if_due(&app.store, &mailer, 2, wednesday)
            .await
            .unwrap(),
        2
    );
    // A second run in the same week (a restart, the next check) sends nothing.
    assert_eq!(
        send_if_due(&app.store, &mailer, 2, wednesday + 24 * 3600)
            .await
            .unwrap(),
        0
    );
    let mails = summary_mails(&app);
    assert_eq!(recipients(&mails), ["admin@x.io", "member@x.io"]);
    let admin_mail = mails.iter().find(|m| m.contains("To: admin@x.io")).unwrap();
    assert!(admin_mail.contains("Users: 4"), "{admin_mail}");
    let member_mail = mails
        .iter()
        .find(|m| m.contains("To: member@x.io"))
        .unwrap();
    assert!(
        member_mail.contains("Night shift (you are watcher)"),
        "{member_mail}"
    );
    assert!(
        !member_mail.contains("admin@x.io"),
        "members see only their flocks"
    );

    // The next week is due again.
    let next_wednesday = wednesday + 7 * 24 * 3600;
    assert_eq!(
        send_if_due(&app.store, &mailer, 2, next_wednesday)
            .await
            .unwrap(),
        2
    );
    // By hand, it goes out whatever the day.
    assert_eq!(
        send_now(&app.store, &mailer, next_wednesday).await.unwrap(),
        2
    );
}

#[test]
fn cli_send_summaries_now_mails_the_opted_in_users() {
    let dir = tempfile::tempdir().expect("temp dir");
    let roost = env!("CARGO_BIN_EXE_roost");
    let data = dir.path().to_str().expect("path");
    let run = |args: &[&str]| {
        std::process::Command::new(roost)
            .args(args)
            .args(["--data-dir", data])
            .env_remove("ROOST_SMTP_URL")
            .output()
            .expect("run roost")
    };
    assert!(
        run(&["admin", "create", "--email", "root@x.io"])
            .status
            .success()
    );
    let out = run(&["mail", "send-summaries", "--now"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1 weekly summary mails sent"
    );
    let bad = run(&["mail", "send-summaries", "--summary-day", "funday"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--summary-day"));
}
