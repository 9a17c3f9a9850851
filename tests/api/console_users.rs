//! The console's user pages: the list, adding a user, a user's page and each of its forms, and
//! who may reach them. Effects are checked through the JSON API, as a script would see them.

use roost::domain::{AccessLevel, Email};
use roost::store::NewUser;

use crate::console::{Console, Page};
use crate::helpers::*;

const ADMIN: &str = "ann@x.io";

/// The id the console uses in `/users/{id}`.
async fn id_of(app: &TestApp, email: &str) -> u64 {
    app.user(email).await["id"]
        .as_u64()
        .expect("user id is a number")
}

async fn user_path(app: &TestApp, email: &str) -> String {
    format!("/users/{}", id_of(app, email).await)
}

/// Posts a form from `page_path` (so the token is the page's own), expects a redirect to
/// `back_to`, and returns the page it leads to, flash included.
async fn submit(
    console: &Console,
    page_path: &str,
    action: &str,
    fields: &[(&str, &str)],
    back_to: &str,
) -> Page {
    assert_eq!(console.get(page_path).await.status, 200);
    let response = console.post(action, fields).await;
    response.redirects_to(back_to);
    let location = response.location.expect("location");
    let page = console.get(&location).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page
}

/// Adds users straight through the store: many, fast, without mail.
async fn add_users_in_store(app: &TestApp, emails: Vec<String>) {
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || {
        for email in emails {
            let new = NewUser {
                email: Email::parse(&email).expect("email"),
                access_level: AccessLevel::User,
                note: None,
                two_factor_required: false,
            };
            store
                .add_user(&Actor::named("test"), new, None)
                .expect("add user");
        }
    })
    .await
    .expect("blocking");
}

/// The `href` of the element with `id`, unescaped from HTML.
fn href_of(page: &Page, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let at = page.body.find(&marker)?;
    let tag_start = page.body[..at].rfind('<')?;
    let tag = &page.body[tag_start..];
    let start = tag.find("href=\"")? + "href=\"".len();
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].replace("&amp;", "&").replace("&#38;", "&"))
}

/// `text` as the templates write it into a page.
fn html(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// Whether the users table has a row for `email` (the navigation shows the admin's own email).
fn lists(page: &Page, email: &str) -> bool {
    page.body.contains(&format!(">{email}</a></td>"))
}

fn rows(page: &Page) -> usize {
    page.body.matches("<tr id=\"user-").count()
}

// ---- the list ----

#[tokio::test]
async fn users_list_shows_each_user_with_badges_flocks_and_note() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    let params = [
        ("email", "bob@x.io"),
        ("access_level", "user"),
        ("totp_enabled", "true"),
        ("note", "Night shift\nat the north gate"),
        ("send_welcome_mail", "false"),
    ];
    app.post("user/add", &params).await.ok();
    app.add_user("cy@x.io", "user").await;
    app.post("user/disable", &[("email", "cy@x.io")]).await.ok();
    let flock = app.create_flock("Ops").await;
    app.assign("bob@x.io", &format!("flock:default,{flock}"), "watcher")
        .await;

    let page = console.get("/users").await;
    assert_eq!(page.status, 200);
    page.assert_contains("Add user");
    page.assert_contains("href=\"/users/new\"");
    page.assert_contains(&format!(
        "<a href=\"{}\">bob@x.io</a>",
        user_path(&app, "bob@x.io").await
    ));
    page.assert_contains("3 users");
    let bob = row_of(&page, "bob@x.io");
    assert!(bob.contains(">user<"), "{bob}");
    assert!(bob.contains(">enabled<"), "{bob}");
    assert!(bob.contains(">required<"), "{bob}");
    assert!(bob.contains("<td>2</td>"), "{bob}");
    assert!(bob.contains("Night shift at the north gate"), "{bob}");
    let cy = row_of(&page, "cy@x.io");
    assert!(cy.contains(">disabled<"), "{cy}");
    let ann = row_of(&page, ADMIN);
    assert!(ann.contains(">admin<"), "{ann}");
    assert!(ann.contains("none"), "{ann}");
}

/// The table row that links to `email`.
fn row_of(page: &Page, email: &str) -> String {
    let at = page
        .body
        .find(&format!(">{email}</a></td>"))
        .unwrap_or_else(|| panic!("no row for {email}:\n{}", page.body));
    let start = page.body[..at].rfind("<tr").expect("row start");
    let end = page.body[at..].find("</tr>").expect("row end") + at;
    page.body[start..end].to_string()
}

#[tokio::test]
async fn users_list_shortens_long_notes_and_escapes_them() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    let note = format!("<b>bold</b> {}", "word ".repeat(100));
    let params = [
        ("email", "bob@x.io"),
        ("access_level", "user"),
        ("note", note.as_str()),
        ("send_welcome_mail", "false"),
    ];
    app.post("user/add", &params).await.ok();
    let page = console.get("/users").await;
    assert!(!page.body.contains("<b>bold</b>"), "note must be escaped");
    page.assert_contains(&html("<b>bold</b>"));
    page.assert_contains("…");
    assert!(
        !page.body.contains(&"word ".repeat(30)),
        "note not shortened"
    );
}

#[tokio::test]
async fn users_list_search_matches_email_or_note_ignoring_case() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    app.add_user("bob@x.io", "user").await;
    app.add_user("cy@y.io", "user").await;
    app.post(
        "user/note/add",
        &[("email", "cy@y.io"), ("note", "Works at the BAKERY")],
    )
    .await
    .ok();

    let page = console.get("/users?q=BOB").await;
    assert_eq!(page.status, 200);
    page.assert_contains("bob@x.io");
    assert!(!page.body.contains("cy@y.io"));
    page.assert_contains("value=\"BOB\"");
    page.assert_contains("1 match");

    let page = console.get("/users?q=bakery").await;
    page.assert_contains("cy@y.io");
    assert!(!page.body.contains("bob@x.io"));

    let page = console.get("/users?q=nobody-has-this").await;
    assert_eq!(page.status, 200);
    page.assert_contains("No users match");
    assert_eq!(rows(&page), 0);

    // A blank search is the whole list.
    let page = console.get("/users?q=+").await;
    assert_eq!(rows(&page), 3);
}

#[tokio::test]
async fn users_list_pages_by_fifty_with_next_and_first_links() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    let emails: Vec<String> = (0..119).map(|i| format!("user{i:03}@x.io")).collect();
    add_users_in_store(&app, emails).await;

    let first = console.get("/users").await;
    assert_eq!(rows(&first), 50);
    page_order_check(&first, "ann@x.io", "user048@x.io");
    assert!(href_of(&first, "first-page").is_none());
    let next = href_of(&first, "next-page").expect("next link");
    assert!(next.starts_with("/users?cursor="), "{next}");

    let second = console.get(&next).await;
    assert_eq!(second.status, 200);
    assert_eq!(rows(&second), 50);
    page_order_check(&second, "user049@x.io", "user098@x.io");
    assert!(!lists(&second, "ann@x.io"));
    assert_eq!(href_of(&second, "first-page").as_deref(), Some("/users"));

    let third = console
        .get(&href_of(&second, "next-page").expect("next"))
        .await;
    assert_eq!(rows(&third), 20);
    page_order_check(&third, "user099@x.io", "user118@x.io");
    assert!(href_of(&third, "next-page").is_none());
    assert_eq!(href_of(&third, "first-page").as_deref(), Some("/users"));
}

/// Asserts the page lists both ends of the expected range.
fn page_order_check(page: &Page, first: &str, last: &str) {
    assert!(lists(page, first), "{first} missing");
    assert!(lists(page, last), "{last} missing");
}

#[tokio::test]
async fn users_search_results_page_too_and_keep_the_query() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    let mut emails: Vec<String> = (0..60).map(|i| format!("crew{i:02}@x.io")).collect();
    emails.extend((0..10).map(|i| format!("guest{i}@x.io")));
    add_users_in_store(&app, emails).await;

    let first = console.get("/users?q=CREW").await;
    assert_eq!(rows(&first), 50);
    first.assert_contains("60 matches");
    let next = href_of(&first, "next-page").expect("next link");
    assert!(next.starts_with("/users?q=CREW&cursor="), "{next}");
    let second = console.get(&next).await;
    assert_eq!(rows(&second), 10);
    page_order_check(&second, "crew50@x.io", "crew59@x.io");
    assert!(!second.body.contains("guest"));
    assert_eq!(
        href_of(&second, "first-page").as_deref(),
        Some("/users?q=CREW")
    );
}

#[tokio::test]
async fn users_list_renders_ten_thousand_users_page_by_page() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    let emails: Vec<String> = (0..10_000).map(|i| format!("u{i:05}@x.io")).collect();
    add_users_in_store(&app, emails).await;

    let first = console.get("/users").await;
    assert_eq!(first.status, 200);
    assert_eq!(rows(&first), 50);
    first.assert_contains("10001 users");
    let second = console
        .get(&href_of(&first, "next-page").expect("next link"))
        .await;
    assert_eq!(second.status, 200);
    assert_eq!(rows(&second), 50);
    page_order_check(&second, "u00049@x.io", "u00098@x.io");
    assert!(href_of(&second, "next-page").is_some());

    let found = console.get("/users?q=u0999").await;
    assert_eq!(found.status, 200);
    assert_eq!(rows(&found), 10);
}

// ---- adding a user ----

#[tokio::test]
async fn add_user_form_offers_the_api_options_with_welcome_mail_ticked() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    let page = console.get("/users/new").await;
    assert_eq!(page.status, 200);
    page.assert_contains("id=\"add-user-form\"");
    page.assert_contains("name=\"email\"");
    page.assert_contains("<option value=\"admin\"");
    page.assert_contains("<option value=\"user\" selected>");
    page.assert_contains("Require two-factor authentication");
    page.assert_contains("<textarea id=\"note\" name=\"note\"");
    page.assert_contains("name=\"send_welcome_mail\" value=\"on\" checked>");
    assert!(
        !page
            .body
            .contains("name=\"totp_enabled\" value=\"on\" checked")
    );
}

#[tokio::test]
async fn add_user_creates_the_user_mails_a_welcome_link_and_opens_their_page() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    console.get("/users/new").await;
    let response = console
        .post(
            "/users/new",
            &[
                ("email", "Bob@X.io"),
                ("access_level", "admin"),
                ("totp_enabled", "on"),
                ("note", "Night shift"),
                ("send_welcome_mail", "on"),
            ],
        )
        .await;
    let path = user_path(&app, "bob@x.io").await;
    response.redirects_to(&path);
    let page = console.get(&path).await;
    page.assert_contains("User Bob@X.io added. A welcome mail");
    page.assert_contains("Night shift");

    let user = app.user("bob@x.io").await;
    assert_eq!(user["email"], "Bob@X.io");
    assert_eq!(user["access_level"], "admin");
    assert_eq!(user["two_factor_required"], true);
    assert_eq!(user["note"], "Night shift");
    let mails = app.outbox().await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("/welcome/"), "{}", mails[0]);
    assert!(mails[0].contains("Bob@X.io"), "{}", mails[0]);
}

#[tokio::test]
async fn add_user_with_boxes_unticked_sends_no_mail_and_requires_no_second_factor() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    console.get("/users/new").await;
    let response = console
        .post(
            "/users/new",
            &[
                ("email", "bob@x.io"),
                ("access_level", "user"),
                ("note", ""),
            ],
        )
        .await;
    response.redirects_to(&user_path(&app, "bob@x.io").await);
    let user = app.user("bob@x.io").await;
    assert_eq!(user["access_level"], "user");
    assert_eq!(user["two_factor_required"], false);
    assert_eq!(user["note"], serde_json::Value::Null);
    assert!(app.outbox().await.is_empty());
    let page = console.get(&response.location.unwrap()).await;
    page.assert_contains("No welcome mail was sent");
}

#[tokio::test]
async fn add_user_refuses_bad_input_keeping_what_was_typed() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    app.add_user("bob@x.io", "user").await;
    let long_note = "n".repeat(10_001);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("email", "not an email"),
                ("access_level", "admin"),
                ("totp_enabled", "on"),
                ("note", "kept note"),
            ],
            "Email: enter a valid email address.",
        ),
        (
            vec![
                ("email", "BOB@x.io"),
                ("access_level", "admin"),
                ("totp_enabled", "on"),
                ("note", "kept note"),
            ],
            "Email: BOB@x.io already has an account.",
        ),
        (
            vec![
                ("email", "cy@x.io"),
                ("access_level", "root"),
                ("note", "kept note"),
                ("send_welcome_mail", "on"),
            ],
            "Access level: choose admin or user.",
        ),
        (
            vec![
                ("email", "cy@x.io"),
                ("access_level", "user"),
                ("note", long_note.as_str()),
            ],
            "Note: longer than the maximum of 10000 characters.",
        ),
    ];
    let before = app.snapshot().await;
    for (fields, message) in cases {
        console.get("/users/new").await;
        let page = console.post("/users/new", &fields).await;
        assert_eq!(page.status, 400, "{fields:?}: {}", page.body);
        page.assert_contains(message);
        page.assert_contains("id=\"add-user-form\"");
        let typed = |name: &str| fields.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let email = typed("email").unwrap_or("");
        page.assert_contains(&format!("value=\"{email}\""));
        if let Some(note) = typed("note") {
            page.assert_contains(&format!(">{note}</textarea>"));
        }
        let totp_ticked = page
            .body
            .contains("name=\"totp_enabled\" value=\"on\" checked");
        assert_eq!(totp_ticked, typed("totp_enabled").is_some(), "{fields:?}");
        let mail_ticked = page
            .body
            .contains("name=\"send_welcome_mail\" value=\"on\" checked");
        assert_eq!(mail_ticked, typed("send_welcome_mail").is_some());
        if typed("access_level") == Some("admin") {
            page.assert_contains("<option value=\"admin\" selected>");
        }
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused form changed something"
    );
}

// ---- a user's page ----

#[tokio::test]
async fn user_page_shows_the_facts_and_a_form_per_action() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    let params = [
        ("email", "bob@x.io"),
        ("access_level", "user"),
        ("totp_enabled", "true"),
        ("note", "Night shift"),
        ("send_welcome_mail", "false"),
    ];
    app.post("user/add", &params).await.ok();
    let id = id_of(&app, "bob@x.io").await;
    let page = console.get(&format!("/users/{id}")).await;
    assert_eq!(page.status, 200);
    for text in [
        "<h1 id=\"user-email\">bob@x.io</h1>",
        "id=\"fact-access-level\">user<",
        "id=\"fact-status\">enabled<",
        "id=\"fact-summary-email\">on<",
        "id=\"fact-totp\">not enrolled<",
        "id=\"fact-webauthn\">not enrolled<",
        "id=\"fact-2fa-required\">yes<",
        " UTC</dd>",
        ">Night shift</textarea>",
        "id=\"disable-user\"",
        "id=\"change-access-level\"",
        "id=\"send-password-reset\"",
        "id=\"no-factors\"",
        "must enrol one at the next login",
        "id=\"toggle-summary-email\"",
        "id=\"save-note\"",
        "id=\"delete-note\"",
        "id=\"assign-flock-form\"",
        "<option value=\"flock:default\">Default Flock</option>",
        "id=\"no-flocks\"",
        &format!("href=\"/users/{id}/remove\""),
    ] {
        page.assert_contains(text);
    }
    assert!(!page.body.contains("id=\"enable-user\""));
    // Reset buttons only for what is enrolled.
    assert!(!page.body.contains("id=\"reset-totp\""));
    app.store
        .set_pending_totp(id, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".to_string())
        .expect("pending secret");
    app.store
        .confirm_totp(&Actor::named("test"), id, &|_| Some(1), Vec::new())
        .expect("confirm")
        .expect("confirmed");
    let page = console.get(&format!("/users/{id}")).await;
    page.assert_contains("id=\"fact-totp\">enrolled<");
    page.assert_contains("id=\"reset-totp\"");
    assert!(!page.body.contains("id=\"reset-webauthn\""));
    assert!(!page.body.contains("id=\"no-factors\""));
}

#[tokio::test]
async fn unknown_or_malformed_user_ids_are_a_404_page() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    for path in ["/users/999999", "/users/abc", "/users/999999/remove"] {
        let page = console.get(path).await;
        assert_eq!(page.status, 404, "{path}");
        page.assert_contains("Not found");
    }
    console.get("/users").await;
    for path in ["/users/999999/disable", "/users/abc/disable"] {
        let page = console.post(path, &[]).await;
        assert_eq!(page.status, 404, "{path}");
    }
    let page = console
        .post("/users/999999/access-level", &[("access_level", "bogus")])
        .await;
    assert_eq!(page.status, 404);
}

#[tokio::test]
async fn access_level_form_promotes_and_demotes() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    app.add_user("bob@x.io", "user").await;
    let path = user_path(&app, "bob@x.io").await;
    let action = format!("{path}/access-level");
    let page = submit(
        &console,
        &path,
        &action,
        &[("access_level", "admin")],
        &path,
    )
    .await;
    page.assert_contains("Access level of bob@x.io set to admin.");
    page.assert_contains("id=\"fact-access-level\">admin<");
    assert_eq!(app.user("bob@x.io").await["access_level"], "admin");

    let page = submit(&console, &path, &action, &[("access_level", "user")], &path).await;
    page.assert_contains("Access level of bob@x.io set to user.");
    assert_eq!(app.user("bob@x.io").await["access_level"], "user");

    let page = submit(&console, &path, &action, &[("access_level", "root")], &path).await;
    page.assert_contains("Access level: choose admin or user.");
    page.assert_contains("flash-error");
    assert_eq!(app.user("bob@x.io").await["access_level"], "user");
}

#[tokio::test]
async fn disable_and_enable_forms_switch_the_user_and_end_their_sessions() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    let bob = app.console_as("bob@x.io", "user").await;
    let path = user_path(&app, "bob@x.io").await;

    let page = submit(&console, &path, &format!("{path}/disable"), &[], &path).await;
    page.assert_contains("User bob@x.io disabled. Their sessions have ended.");
    page.assert_contains("id=\"fact-status\">disabled<");
    page.assert_contains("id=\"enable-user\"");
    assert_eq!(app.user("bob@x.io").await["disabled"], true);
    bob.get("/account").await.redirects_to("/login");

    let page = submit(&console, &path, &format!("{path}/enable"), &[], &path).await;
    page.assert_contains("User bob@x.io enabled.");
    page.assert_contains("id=\"disable-user\"");
    assert_eq!(app.user("bob@x.io").await["disabled"], false);
}

#[tokio::test]
async fn note_forms_save_clear_and_delete_the_note() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    app.add_user("bob@x.io", "user").await;
    let path = user_path(&app, "bob@x.io").await;
    let action = format!("{path}/note");

    let page = submit(
        &console,
        &path,
        &action,
        &[("note", "Line one\nLine <two>")],
        &path,
    )
    .await;
    page.assert_contains("Note of bob@x.io saved.");
    page.assert_contains(&html("Line <two>"));
    assert_eq!(app.user("bob@x.io").await["note"], "Line one\nLine <two>");

    let delete = format!("{path}/note/delete");
    let page = submit(&console, &path, &delete, &[], &path).await;
    page.assert_contains("Note of bob@x.io deleted.");
    assert!(!page.body.contains("id=\"delete-note\""));
    assert_eq!(app.user("bob@x.io").await["note"], serde_json::Value::Null);

    submit(&console, &path, &action, &[("note", "again")], &path).await;
    let page = submit(&console, &path, &action, &[("note", "")], &path).await;
    page.assert_contains("Note of bob@x.io deleted.");
    assert_eq!(app.user("bob@x.io").await["note"], serde_json::Value::Null);

    let long_note = "n".repeat(10_001);
    let page = submit(&console, &path, &action, &[("note", &long_note)], &path).await;
    page.assert_contains("Note: longer than the maximum of 10000 characters.");
    assert_eq!(app.user("bob@x.io").await["note"], serde_json::Value::Null);
}

#[tokio::test]
async fn summary_email_form_turns_it_off_and_on() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    app.add_user("bob@x.io", "user").await;
    let path = user_path(&app, "bob@x.io").await;
    let action = format!("{path}/summary-email");

    let page = submit(&console, &path, &action, &[("enabled", "off")], &path).await;
    page.assert_contains("Weekly summary email turned off for bob@x.io.");
    page.assert_contains("id=\"summary-state\">off<");
    assert_eq!(app.user("bob@x.io").await["summary_email_enabled"], false);

    let page = submit(&console, &path, &action, &[("enabled", "on")], &path).await;
    page.assert_contains("Weekly summary email turned on for bob@x.io.");
    assert_eq!(app.user("bob@x.io").await["summary_email_enabled"], true);

    let page = submit(&console, &path, &action, &[("enabled", "maybe")], &path).await;
    page.assert_contains("Weekly summary email: choose on or off.");
    assert_eq!(app.user("bob@x.io").await["summary_email_enabled"], true);
}

#[tokio::test]
async fn factor_resets_clear_the_factor_and_end_the_users_sessions() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    let path = user_path(&app, "ann@x.io").await;
    app.user_with_password("bob@x.io", "user").await;
    let bob_path = user_path(&app, "bob@x.io").await;

    for (action, message) in [
        (
            "totp/reset",
            "Authenticator app (TOTP) of bob@x.io removed.",
        ),
        (
            "webauthn/reset",
            "Security keys (WebAuthn) of bob@x.io removed.",
        ),
    ] {
        let bob = Console::new(&app);
        bob.login("bob@x.io", crate::console::PASSWORD)
            .await
            .redirects_to("/");
        assert_eq!(bob.get("/account").await.status, 200);
        let page = submit(
            &console,
            &bob_path,
            &format!("{bob_path}/{action}"),
            &[],
            &bob_path,
        )
        .await;
        page.assert_contains(message);
        page.assert_contains("Their sessions have ended.");
        bob.get("/account").await.redirects_to("/login");
        let user = app.user("bob@x.io").await;
        assert_eq!(user["totp_enabled"], false);
        assert_eq!(user["webauthn_enabled"], false);
    }
    // The admin's own page was never touched.
    assert_eq!(console.get(&path).await.status, 200);
}

#[tokio::test]
async fn password_reset_form_mails_a_reset_link_like_the_api() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    app.add_user("bob@x.io", "user").await;
    let path = user_path(&app, "bob@x.io").await;
    let page = submit(
        &console,
        &path,
        &format!("{path}/password-reset"),
        &[],
        &path,
    )
    .await;
    page.assert_contains("Password reset mail sent to bob@x.io.");
    let mails = app.outbox().await;
    assert_eq!(mails.len(), 1);
    // Undo quoted-printable soft line breaks, which may split the link.
    let mail = mails[0].replace("=\r\n", "").replace("=\n", "");
    assert!(mail.contains("Reset your Roost password"), "{mail}");
    let link_start = mail.find("/reset/").expect("reset link");
    let secret: String = mail[link_start + "/reset/".len()..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(secret.len(), 64);
    let reset = Console::new(&app).get(&format!("/reset/{secret}")).await;
    assert_eq!(reset.status, 200);
    reset.assert_contains("bob@x.io");
}

#[tokio::test]
async fn flock_forms_assign_replace_and_remove_roles() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    app.add_user("bob@x.io", "user").await;
    let ops = app.create_flock("Ops & Night").await;
    let path = user_path(&app, "bob@x.io").await;
    let assign = format!("{path}/flocks/assign");
    let unassign = format!("{path}/flocks/unassign");

    let page = console.get(&path).await;
    page.assert_contains(&format!(
        "<option value=\"{ops}\">{}</option>",
        html("Ops & Night")
    ));

    let page = submit(
        &console,
        &path,
        &assign,
        &[("flock_id", &ops), ("role", "manager")],
        &path,
    )
    .await;
    page.assert_contains("bob@x.io is now manager of Ops &#38; Night.");
    let row_id = format!("role-{}", ops.replace(':', "-"));
    page.assert_contains(&format!("<tr id=\"{row_id}\">"));
    page.assert_contains(&format!("id=\"unassign-{}\"", ops.replace(':', "-")));
    assert_eq!(
        app.flock_users(&ops).await,
        (sorted(&["bob@x.io"]), sorted(&[]))
    );

    let fields = [("flock_id", "flock:default"), ("role", "watcher")];
    submit(&console, &path, &assign, &fields, &path).await;
    let user = app.user("bob@x.io").await;
    assert_eq!(strings(&user["managed_flocks"]), sorted(&[&ops]));
    assert_eq!(strings(&user["watched_flocks"]), sorted(&["flock:default"]));

    // The other role in the same flock replaces the first.
    let fields = [("flock_id", ops.as_str()), ("role", "watcher")];
    let page = submit(&console, &path, &assign, &fields, &path).await;
    page.assert_contains("bob@x.io is now watcher of Ops &#38; Night.");
    assert_eq!(
        app.flock_users(&ops).await,
        (sorted(&[]), sorted(&["bob@x.io"]))
    );

    let page = submit(&console, &path, &unassign, &fields, &path).await;
    page.assert_contains("bob@x.io is no longer watcher of Ops &#38; Night.");
    assert_eq!(app.flock_users(&ops).await, (sorted(&[]), sorted(&[])));
    let user = app.user("bob@x.io").await;
    assert_eq!(strings(&user["watched_flocks"]), sorted(&["flock:default"]));

    // Refusals are flashes on the page, and change nothing.
    let before = app.snapshot().await;
    for (fields, message) in [
        (
            vec![("flock_id", UNKNOWN_FLOCK), ("role", "manager")],
            FLOCK_DOES_NOT_EXIST,
        ),
        (
            vec![("flock_id", "not-a-flock"), ("role", "manager")],
            "Flock role: choose a flock and a role (manager or watcher).",
        ),
        (
            vec![("flock_id", ops.as_str()), ("role", "owner")],
            "Flock role: choose a flock and a role (manager or watcher).",
        ),
    ] {
        let page = submit(&console, &path, &assign, &fields, &path).await;
        page.assert_contains(message);
        page.assert_contains("flash-error");
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn remove_asks_for_confirmation_then_removes_the_user() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    app.add_user("bob@x.io", "user").await;
    app.assign("bob@x.io", "flock:default", "watcher").await;
    let path = user_path(&app, "bob@x.io").await;

    let user_page = console.get(&path).await;
    assert_eq!(
        href_of(&user_page, "remove-user").as_deref(),
        Some(format!("{path}/remove").as_str())
    );
    let confirm = console.get(&format!("{path}/remove")).await;
    assert_eq!(confirm.status, 200);
    confirm.assert_contains("Remove <strong id=\"remove-email\">bob@x.io</strong>?");
    confirm.assert_contains("1 flock");
    confirm.assert_contains("id=\"confirm-remove-user\"");
    confirm.assert_contains(&format!("action=\"{path}/remove\""));
    // Seeing the confirmation removes nothing.
    app.user("bob@x.io").await;

    let response = console.post(&format!("{path}/remove"), &[]).await;
    response.redirects_to("/users");
    let list = console.get("/users").await;
    list.assert_contains("User bob@x.io removed.");
    assert!(!lists(&list, "bob@x.io"));
    app.get("user/get", &[("email", "bob@x.io")])
        .await
        .err(404, USER_DOES_NOT_EXIST);
    assert_eq!(console.get(&path).await.status, 404);
}

#[tokio::test]
async fn the_last_enabled_admin_cannot_be_demoted_disabled_or_removed() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    let path = user_path(&app, ADMIN).await;
    let before = app.snapshot().await;
    for (action, fields) in [
        ("access-level", vec![("access_level", "user")]),
        ("disable", vec![]),
        ("remove", vec![]),
    ] {
        let page = submit(&console, &path, &format!("{path}/{action}"), &fields, &path).await;
        page.assert_contains(LAST_ADMIN);
        page.assert_contains("flash flash-error");
    }
    assert_eq!(app.snapshot().await, before);
    let user = app.user(ADMIN).await;
    assert_eq!(user["access_level"], "admin");
    assert_eq!(user["disabled"], false);
}

// ---- who may reach the pages ----

/// Every user page and the form posts on them, with fields that would succeed.
fn pages(id: u64) -> Vec<String> {
    vec![
        "/users".to_string(),
        "/users?q=bob".to_string(),
        "/users/new".to_string(),
        format!("/users/{id}"),
        format!("/users/{id}/remove"),
    ]
}

fn posts(id: u64) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    vec![
        (
            "/users/new".to_string(),
            vec![
                ("email", "new@x.io"),
                ("access_level", "admin"),
                ("send_welcome_mail", "on"),
            ],
        ),
        (
            format!("/users/{id}/access-level"),
            vec![("access_level", "admin")],
        ),
        (format!("/users/{id}/disable"), vec![]),
        (format!("/users/{id}/enable"), vec![]),
        (format!("/users/{id}/note"), vec![("note", "changed")]),
        (format!("/users/{id}/note/delete"), vec![]),
        (
            format!("/users/{id}/summary-email"),
            vec![("enabled", "off")],
        ),
        (format!("/users/{id}/totp/reset"), vec![]),
        (format!("/users/{id}/webauthn/reset"), vec![]),
        (format!("/users/{id}/password-reset"), vec![]),
        (
            format!("/users/{id}/flocks/assign"),
            vec![("flock_id", "flock:default"), ("role", "manager")],
        ),
        (
            format!("/users/{id}/flocks/unassign"),
            vec![("flock_id", "flock:default"), ("role", "watcher")],
        ),
        (format!("/users/{id}/remove"), vec![]),
    ]
}

/// A target user with a note and a role, so that every post would change something.
async fn target(app: &TestApp) -> u64 {
    let params = [
        ("email", "bob@x.io"),
        ("access_level", "user"),
        ("note", "keep me"),
        ("send_welcome_mail", "false"),
    ];
    app.post("user/add", &params).await.ok();
    app.assign("bob@x.io", "flock:default", "watcher").await;
    id_of(app, "bob@x.io").await
}

#[tokio::test]
async fn users_pages_and_forms_refuse_non_admins_and_change_nothing() {
    let app = spawn_app().await;
    app.user_with_password(ADMIN, "admin").await;
    let id = target(&app).await;
    let console = app.console_as("eve@x.io", "user").await;
    let before = app.snapshot().await;
    for path in pages(id) {
        let page = console.get(&path).await;
        assert_eq!(page.status, 403, "{path}");
        page.assert_contains("Not allowed");
    }
    for (path, fields) in posts(id) {
        // A fresh token from a page the user may see, so the refusal is the permission check.
        assert_eq!(console.get("/account").await.status, 200);
        let page = console.post(&path, &fields).await;
        assert_eq!(page.status, 403, "{path}");
        page.assert_contains("Not allowed");
    }
    assert_eq!(app.snapshot().await, before);
    // Eve is still signed in and still a user.
    assert_eq!(console.get("/account").await.status, 200);
}

#[tokio::test]
async fn users_pages_and_forms_send_anonymous_visitors_to_login() {
    let app = spawn_app().await;
    app.user_with_password(ADMIN, "admin").await;
    let id = target(&app).await;
    let console = Console::new(&app);
    let before = app.snapshot().await;
    for path in pages(id) {
        let page = console.get(&path).await;
        page.redirects_to("/login");
        let location = page.location.unwrap_or_default();
        assert!(location.contains("next=%2Fusers"), "{path}: {location}");
    }
    for (path, fields) in posts(id) {
        // A new client each time: the server answers before reading the body of a post it
        // refuses, and a reused connection would then carry the unread rest.
        let console = Console::new(&app);
        console.post(&path, &fields).await.redirects_to("/login");
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn users_forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let console = app.console_as(ADMIN, "admin").await;
    let id = target(&app).await;
    console.get(&format!("/users/{id}")).await;
    let before = app.snapshot().await;
    for (path, fields) in posts(id) {
        let page = console.post_raw(&path, &fields).await;
        assert_eq!(page.status, 403, "{path}");
        page.assert_contains("Form expired");
        let mut forged = vec![("csrf_token", "0000")];
        forged.extend(fields.iter().copied());
        let page = console.post_raw(&path, &forged).await;
        assert_eq!(page.status, 403, "{path}");
    }
    assert_eq!(app.snapshot().await, before);
}
