//! The weekly summary: who gets it, what it says, that a week is queued once (across runs and
//! processes), and that it goes out through the mail queue as a multipart message.

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

use crate::console::Console;
use crate::helpers::*;

/// A Monday at noon, far enough ahead that no run has claimed its week.
const FUTURE_MONDAY: u64 = 1_795_996_800 + 52 * 7 * 24 * 3600 + 12 * 3600;
const DAY: u64 = 24 * 3600;

/// One delivered message from the outbox, its transfer encoding undone.
struct Mail {
    raw: String,
}

impl Mail {
    fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}: ");
        self.raw
            .lines()
            .take_while(|line| !line.is_empty())
            .find(|line| line.starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_string())
    }

    fn to(&self) -> String {
        self.header("To").expect("a To header")
    }

    /// The message with quoted-printable soft breaks and escapes decoded (both parts).
    fn decoded(&self) -> String {
        decode_quoted_printable(&self.raw)
    }

    /// The decoded text/plain part.
    fn text(&self) -> String {
        self.part("text/plain")
    }

    /// The decoded text/html part.
    fn html(&self) -> String {
        self.part("text/html")
    }

    fn part(&self, content_type: &str) -> String {
        let decoded = self.decoded();
        let start = decoded
            .find(&format!("Content-Type: {content_type}"))
            .unwrap_or_else(|| panic!("no {content_type} part in {decoded}"));
        let body = &decoded[start..];
        let body = &body[body.find("\r\n\r\n").map_or(0, |i| i + 4)..];
        body[..body.find("\r\n--").unwrap_or(body.len())].replace("\r\n", "\n")
    }
}

fn decode_quoted_printable(raw: &str) -> String {
    let unfolded = raw.replace("=\r\n", "");
    let bytes = unfolded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The summaries delivered so far, sorted by recipient (after the app's sender drained the queue).
async fn summary_mails(app: &TestApp) -> Vec<Mail> {
    let mut mails: Vec<Mail> = app
        .outbox()
        .await
        .into_iter()
        .map(|raw| Mail { raw })
        .filter(|mail| mail.header("Subject").as_deref() == Some("Your weekly Roost summary"))
        .collect();
    mails.sort_by_key(Mail::to);
    mails
}

async fn add(app: &TestApp, email: &str, level: &str) {
    let params = [
        ("email", email),
        ("access_level", level),
        ("send_welcome_mail", "false"),
    ];
    app.post("user/add", &params).await.ok();
}

async fn spawn_app_summarising_on(weekday: u64) -> TestApp {
    let dir = tempfile::tempdir().expect("temp data dir");
    spawn_app_in(dir, |config| config.summary_weekday = weekday).await
}

#[tokio::test]
async fn summaries_go_once_a_week_to_enabled_users_who_opted_in() {
    // Wednesday is the day.
    let app = spawn_app_summarising_on(2).await;
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

    let summaries = &app.summaries;
    let wednesday = FUTURE_MONDAY + 2 * DAY;
    // Not due on Monday, due on Wednesday, once.
    assert_eq!(summaries.queue_if_due(FUTURE_MONDAY).await.unwrap(), 0);
    assert_eq!(summaries.queue_if_due(wednesday).await.unwrap(), 2);
    // A second run in the same week (a restart, the next check) queues nothing.
    assert_eq!(summaries.queue_if_due(wednesday + DAY).await.unwrap(), 0);
    assert_eq!(
        summaries.queue_if_due(wednesday + 4 * DAY).await.unwrap(),
        0
    );

    let mails = summary_mails(&app).await;
    let to: Vec<String> = mails.iter().map(Mail::to).collect();
    assert_eq!(to, ["admin@x.io", "member@x.io"]);
    let admin = mails[0].text();
    assert!(admin.contains("Users: 4 (1 admin, 1 disabled)"), "{admin}");
    assert!(admin.contains("Flocks: 2"), "{admin}");
    let member = mails[1].text();
    assert!(
        member.contains("Night shift (you are watcher): 0 managers, 1 watcher"),
        "{member}"
    );
    assert!(
        !member.contains("admin@x.io"),
        "members see only their flocks"
    );

    // The next week is due again; by hand it goes out whatever the day, even twice.
    let next_wednesday = wednesday + 7 * DAY;
    assert_eq!(summaries.queue_if_due(next_wednesday).await.unwrap(), 2);
    assert_eq!(
        summaries
            .queue_now(Actor::named("test"), next_wednesday)
            .await
            .unwrap(),
        2
    );
    assert_eq!(summary_mails(&app).await.len(), 6);
    // A manual run on Monday counts for its week: the scheduler skips that week's Wednesday.
    let later_monday = FUTURE_MONDAY + 14 * DAY;
    assert_eq!(
        summaries
            .queue_now(Actor::named("test"), later_monday)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        summaries
            .queue_if_due(later_monday + 2 * DAY)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_summary_is_multipart_with_the_headers_a_mail_client_needs() {
    let app = spawn_app().await;
    add(&app, "admin@x.io", "admin").await;
    assert_eq!(
        app.summaries
            .queue_now(Actor::named("test"), now_unix())
            .await
            .unwrap(),
        1
    );
    let mails = summary_mails(&app).await;
    let mail = &mails[0];
    for header in [
        "Date",
        "Message-ID",
        "From",
        "To",
        "Subject",
        "MIME-Version",
    ] {
        assert!(mail.header(header).is_some(), "no {header}: {}", mail.raw);
    }
    assert!(
        mail.header("Content-Type")
            .is_some_and(|t| t.starts_with("multipart/alternative")),
        "{}",
        mail.raw
    );
    let text = mail.text();
    let html = mail.html();
    assert!(
        text.contains("Users: 1 (1 admin, 0 disabled), 1 new this week"),
        "{text}"
    );
    assert!(text.contains("  - admin@x.io"), "{text}");
    assert!(html.contains("<li>admin@x.io</li>"), "{html}");
    // The console's switches, and the week's changes, newest first (the test harness made a
    // key before the admin was added).
    assert!(
        text.contains("Two-factor authentication enforced for everyone: no"),
        "{text}"
    );
    assert!(text.contains("API access: on"), "{text}");
    let changes = text
        .split("Changes in the past week: 2\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no change list of 2: {text}"));
    let lines: Vec<&str> = changes.lines().take(2).collect();
    assert!(
        lines[0].contains(" UTC: User (admin@x.io) created as admin (by API key tests ("),
        "{text}"
    );
    assert!(
        lines[1].ends_with(" UTC: API key tests (admin, global) created (by cli)"),
        "{text}"
    );
    // Links lead to the console that sent it.
    assert!(
        text.contains(&format!("{}/account", app.console_url)),
        "{text}"
    );
    assert!(
        html.contains(&format!("href=\"{}/account\"", app.console_url)),
        "{html}"
    );
}

#[tokio::test]
async fn the_admin_summary_names_who_lacks_a_second_factor_and_stays_short() {
    let app = spawn_app().await;
    add(&app, "admin@x.io", "admin").await;
    for n in 0..25 {
        add(&app, &format!("user{n:02}@x.io"), "user").await;
    }
    app.create_flock("<b>Night</b> & day").await;
    app.summaries
        .queue_now(Actor::named("test"), now_unix())
        .await
        .unwrap();
    let mails = summary_mails(&app).await;
    let admin = mails
        .iter()
        .find(|mail| mail.to() == "admin@x.io")
        .expect("the admin's summary");
    let text = admin.text();
    assert!(
        text.contains("Users: 26 (1 admin, 0 disabled), 26 new this week"),
        "{text}"
    );
    // 28 changes (a key, 26 users, a flock): the newest twenty are listed, the rest counted.
    assert!(text.contains("Changes in the past week: 28"), "{text}");
    assert!(
        text.contains("User (user06@x.io) created as user"),
        "{text}"
    );
    assert!(!text.contains("User (user05@x.io) created"), "{text}");
    assert!(text.contains("… and 8 earlier"), "{text}");
    // Likewise the users without a second factor, by email.
    assert!(text.contains("  - user18@x.io\n  … and 6 more"), "{text}");
    assert!(
        text.contains("Enabled users without a second factor: 26"),
        "{text}"
    );
    assert!(
        text.contains("Second factor: 0 of 26 enabled users have one"),
        "{text}"
    );
    assert!(
        text.contains("UTC: Flock (<b>Night</b> & day) created"),
        "{text}"
    );
    // The HTML part escapes what users typed.
    let html = admin.html();
    assert!(!html.contains("<b>Night</b>"), "{html}");
    assert!(
        html.contains("Flock (&#60;b&#62;Night&#60;/b&#62; &#38; day) created"),
        "{html}"
    );
}

#[tokio::test]
async fn the_admin_summary_lists_every_kind_of_change_and_no_refused_one() {
    let app = spawn_app().await;
    add(&app, "boss@x.io", "admin").await;
    add(&app, "ann@x.io", "user").await;
    let flock = app.create_flock("Ops").await;
    app.assign("ann@x.io", &flock, "watcher").await;
    app.assign("ann@x.io", &flock, "manager").await;
    let unassign = [
        ("email", "ann@x.io"),
        ("flock_id_list", flock.as_str()),
        ("flock_access_level", "manager"),
    ];
    app.post("user/flock/unassign", &unassign).await.ok();
    app.post(
        "flock/rename",
        &[("flock_id", flock.as_str()), ("name", "Night shift")],
    )
    .await
    .ok_bare();
    let promote = [("email", "ann@x.io"), ("access_level", "admin")];
    app.post("user/edit/access_level", &promote).await.ok_bare();
    app.post("user/disable", &[("email", "ann@x.io")])
        .await
        .ok();
    app.post("user/enable", &[("email", "ann@x.io")]).await.ok();
    let key = app.add_key("read-only").await;
    let key_id = key["key_id"].as_str().expect("key id").to_string();
    app.delete("auth_token/remove", &[("key_id", key_id.as_str())])
        .await
        .ok_bare();
    app.post("settings/usermanagement/globally_enforce_2fa/enable", &[])
        .await
        .ok_bare();
    app.post("flock/delete", &[("flock_id", flock.as_str())])
        .await
        .ok_bare();
    app.post("user/remove", &[("email", "ann@x.io")]).await.ok();
    // Refused changes leave no trace: the last enabled admin can't be disabled.
    app.post("user/disable", &[("email", "boss@x.io")])
        .await
        .err_status(409);

    app.summaries
        .queue_now(Actor::named("test"), now_unix())
        .await
        .unwrap();
    let mails = summary_mails(&app).await;
    let text = mails[0].text();
    for change in [
        "User (boss@x.io) created as admin",
        "User (ann@x.io) created as user",
        "Flock (Ops) created",
        "User (ann@x.io) made watcher of flock (Ops)",
        "User (ann@x.io) changed from watcher to manager in flock (Ops)",
        "User (ann@x.io) no longer manager of flock (Ops)",
        "Flock (Ops) renamed to (Night shift)",
        "User (ann@x.io) access level changed from user to admin",
        "User (ann@x.io) disabled",
        "User (ann@x.io) enabled",
        "API key test key (read-only, global) created (by",
        "API key test key (read-only, global) revoked",
        "Two-factor authentication enforced for everyone",
        "Flock (Night shift) deleted",
        "User (ann@x.io) removed",
    ] {
        assert!(text.contains(&format!("UTC: {change}")), "{change}: {text}");
    }
    assert!(!text.contains("User (boss@x.io) disabled"), "{text}");
    // Each change names who made it.
    assert!(
        text.contains("UTC: User (ann@x.io) removed (by API key tests ("),
        "{text}"
    );
}

#[tokio::test]
async fn admins_send_the_summaries_from_the_settings_page() {
    let app = spawn_app().await;
    let admin = app.console_as("root@x.io", "admin").await;
    add(&app, "member@x.io", "user").await;
    let page = admin.get("/settings").await;
    page.assert_contains("<strong id=\"summary-weekday\">Monday</strong>");
    page.assert_contains("Not sent yet.");

    admin
        .post("/settings/summaries", &[])
        .await
        .redirects_to("/settings");
    let page = admin.get("/settings").await;
    page.assert_contains("Weekly summaries were queued for 2 users.");
    page.assert_contains("Last sent for the week of");
    let to: Vec<String> = summary_mails(&app).await.iter().map(Mail::to).collect();
    assert_eq!(to, ["member@x.io", "root@x.io"]);
    // Sending by hand counted as this week's: the scheduler has nothing left to do.
    assert_eq!(app.summaries.queue_if_due(now_unix()).await.unwrap(), 0);
}

#[tokio::test]
async fn only_admins_with_a_csrf_token_send_the_summaries() {
    let app = spawn_app().await;
    let admin = app.console_as("root@x.io", "admin").await;
    let user = app.console_as("uma@x.io", "user").await;
    admin.get("/settings").await;

    let forged = admin.post_raw("/settings/summaries", &[]).await;
    assert_eq!(forged.status, 403);
    forged.assert_contains("Form expired");
    user.get("/account").await;
    assert_eq!(user.post("/settings/summaries", &[]).await.status, 403);
    Console::new(&app)
        .post("/settings/summaries", &[])
        .await
        .redirects_to("/login");

    assert!(summary_mails(&app).await.is_empty());
    assert_eq!(app.store.last_summary_week().unwrap(), None);
}

fn roost(data: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_roost"))
        .args(args)
        .args(["--data-dir", data])
        .env_remove("ROOST_SMTP_URL")
        .env_remove("ROOST_SUMMARY_DAY")
        .output()
        .expect("run roost")
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn cli_send_summaries_queues_and_delivers_once_a_week_across_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("path");
    stdout(&roost(data, &["admin", "create", "--email", "root@x.io"]));
    let outbox = || {
        read_outbox(&dir.path().join("outbox"))
            .into_iter()
            .filter(|mail| mail.contains("Subject: Your weekly Roost summary"))
            .count()
    };

    // Monday is the default day, so any day of the week is on or after it: due.
    assert_eq!(
        stdout(&roost(data, &["mail", "send-summaries"])),
        "1 weekly summary mails queued; 1 delivered"
    );
    assert_eq!(outbox(), 1);
    // Another process in the same week finds the week recorded in the database.
    assert_eq!(
        stdout(&roost(data, &["mail", "send-summaries"])),
        "0 weekly summary mails queued; 0 delivered"
    );
    assert_eq!(
        stdout(&roost(data, &["mail", "send-summaries", "--now"])),
        "1 weekly summary mails queued; 1 delivered"
    );
    assert_eq!(outbox(), 2);

    let bad = roost(data, &["mail", "send-summaries", "--summary-day", "funday"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--summary-day"));
}
