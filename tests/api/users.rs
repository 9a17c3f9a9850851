use crate::helpers::*;
use serde_json::json;

fn add_params<'a>(email: &'a str, level: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("email", email),
        ("access_level", level),
        ("send_welcome_mail", "false"),
    ]
}

// ---- user/add ----

#[tokio::test]
async fn user_add_creates_user_with_seed_message() {
    let app = spawn_app().await;
    let params = [
        ("email", "a@x.io"),
        ("access_level", "user"),
        ("note", "from tests"),
        ("send_welcome_mail", "false"),
    ];
    let resp = app.post("user/add", &params).await;
    resp.ok_msg("User (a@x.io) successfully created.");
    let user = app.user("a@x.io").await;
    assert_eq!(user["email"], "a@x.io");
    assert_eq!(user["access_level"], "user");
    assert_eq!(user["disabled"], false);
    assert_eq!(user["note"], "from tests");
    assert_eq!(user["managed_flocks"], json!([]));
    assert_eq!(user["watched_flocks"], json!([]));
}

#[tokio::test]
async fn user_add_creates_admin() {
    let app = spawn_app().await;
    app.post("user/add", &add_params("boss@x.io", "admin"))
        .await
        .ok_msg("User (boss@x.io) successfully created.");
    assert_eq!(app.user("boss@x.io").await["access_level"], "admin");
}

#[tokio::test]
async fn user_add_with_totp_enabled_requires_second_factor() {
    let app = spawn_app().await;
    let mut params = add_params("a@x.io", "user");
    params.push(("totp_enabled", "true"));
    app.post("user/add", &params).await.ok();
    let user = app.user("a@x.io").await;
    assert_eq!(user["two_factor_required"], true, "{user}");
    assert_eq!(user["totp_enabled"], false, "not enrolled yet: {user}");
}

#[tokio::test]
async fn user_add_sends_welcome_mail_by_default() {
    let app = spawn_app().await;
    let params = [("email", "a@x.io"), ("access_level", "user")];
    app.post("user/add", &params).await.ok();
    let mails = app.outbox().await;
    assert_eq!(mails.len(), 1, "one welcome mail in {:?}", app.outbox_dir());
    assert!(mails[0].contains("a@x.io"), "mail is addressed to the user");
    assert!(mails[0].contains("http"), "mail carries the login link");
}

#[tokio::test]
async fn user_add_with_send_welcome_mail_false_sends_no_mail() {
    let app = spawn_app().await;
    app.post("user/add", &add_params("a@x.io", "user"))
        .await
        .ok();
    app.user("a@x.io").await;
    assert_eq!(app.outbox().await.len(), 0);
}

#[tokio::test]
async fn user_add_rejects_missing_email() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let params = [("access_level", "user")];
    app.post("user/add", &params)
        .await
        .err(400, &missing("email"));
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_add_rejects_missing_access_level() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let params = [("email", "a@x.io")];
    let resp = app.post("user/add", &params).await;
    resp.err(400, &missing("access_level"));
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_add_rejects_malformed_email() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    for email in ["not-an-email", "a@", "@x.io", "a b@x.io", "a@x.io,b@x.io"] {
        let resp = app.post("user/add", &add_params(email, "user")).await;
        resp.err(400, &bad_email("email"));
    }
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_add_rejects_email_over_254_characters() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let email = format!(
        "{}@{}.{}.{}.io",
        "a".repeat(60),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(63)
    );
    assert!(email.len() > 254);
    let resp = app.post("user/add", &add_params(&email, "user")).await;
    resp.err(400, &bad_email("email"));
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_add_rejects_unknown_access_level() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    for level in ["superuser", "", "Admins"] {
        let resp = app.post("user/add", &add_params("a@x.io", level)).await;
        assert_eq!(resp.status, 400, "{level:?}: {resp:?}");
    }
    let resp = app.post("user/add", &add_params("a@x.io", "root")).await;
    resp.err(400, BAD_ACCESS_LEVEL);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_add_rejects_bad_boolean() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    for name in ["send_welcome_mail", "totp_enabled"] {
        let params = [
            ("email", "a@x.io"),
            ("access_level", "user"),
            (name, "maybe"),
        ];
        app.post("user/add", &params)
            .await
            .err(400, &bad_bool(name));
    }
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_add_rejects_existing_user() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let before = app.snapshot().await;
    let resp = app.post("user/add", &add_params("a@x.io", "admin")).await;
    resp.err(409, "User (a@x.io) already exists.");
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_add_treats_emails_case_insensitively_and_trimmed() {
    let app = spawn_app().await;
    app.add_user("A@X.io", "user").await;
    let user = app.user("a@x.io").await;
    let email = user["email"].as_str().expect("email");
    assert!(email.eq_ignore_ascii_case("a@x.io"), "{user}");
    app.user(" a@X.IO ").await;

    let before = app.snapshot().await;
    let resp = app.post("user/add", &add_params(" a@x.io ", "user")).await;
    let message = resp.err_status(409);
    assert!(
        message.eq_ignore_ascii_case("User (a@x.io) already exists."),
        "{message}"
    );
    assert_eq!(before, app.snapshot().await);
    assert_eq!(
        app.get("users/list", &[]).await.ok()["users"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn user_add_rejects_note_over_10000_characters() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let note = "n".repeat(10_001);
    let mut params = add_params("a@x.io", "user");
    params.push(("note", &note));
    let resp = app.post("user/add", &params).await;
    resp.err(400, "Note longer than maximum (10000 characters).");
    assert_eq!(before, app.snapshot().await);
}

// ---- user/get, user/auth, users/list, users/filter ----

#[tokio::test]
async fn user_get_returns_typed_fields() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    app.add_user("a@x.io", "user").await;
    app.assign("a@x.io", &flock, "manager").await;
    app.assign("a@x.io", "flock:default", "watcher").await;
    let user = app.user("a@x.io").await;
    assert!(user["id"].is_u64(), "id is a number: {user}");
    for field in [
        "disabled",
        "summary_email_enabled",
        "totp_enabled",
        "webauthn_enabled",
    ] {
        assert!(user[field].is_boolean(), "{field} is a boolean: {user}");
    }
    assert!(user["note"].is_string() || user["note"].is_null(), "{user}");
    assert_eq!(user["managed_flocks"], json!([flock]));
    assert_eq!(user["watched_flocks"], json!(["flock:default"]));
}

#[tokio::test]
async fn user_get_rejects_unknown_user() {
    let app = spawn_app().await;
    let resp = app.get("user/get", &[("email", "nobody@x.io")]).await;
    resp.err(404, USER_DOES_NOT_EXIST);
}

#[tokio::test]
async fn user_get_rejects_malformed_email() {
    let app = spawn_app().await;
    let resp = app.get("user/get", &[("email", "nobody")]).await;
    resp.err(400, &bad_email("email"));
}

#[tokio::test]
async fn user_auth_returns_access_and_flocks() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    app.add_user("a@x.io", "user").await;
    app.assign("a@x.io", &flock, "watcher").await;
    let resp = app.get("user/auth", &[("email", "a@x.io")]).await;
    let body = resp.ok();
    assert_eq!(body["email"], "a@x.io");
    assert_eq!(body["access_level"], "user");
    assert_eq!(body["managed_flocks"], json!([]));
    assert_eq!(body["watched_flocks"], json!([flock]));
    let resp = app.get("user/auth", &[("email", "nobody@x.io")]).await;
    resp.err(404, USER_DOES_NOT_EXIST);
}

#[tokio::test]
async fn users_list_is_sorted_by_email_and_matches_user_get() {
    let app = spawn_app().await;
    for email in ["c@x.io", "a@x.io", "b@x.io"] {
        app.add_user(email, "user").await;
    }
    let resp = app.get("users/list", &[]).await;
    let users = resp.ok()["users"].as_array().expect("users").clone();
    let emails: Vec<&str> = users.iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["a@x.io", "b@x.io", "c@x.io"]);
    assert_eq!(users[1], app.user("b@x.io").await);
}

#[tokio::test]
async fn users_list_pages_with_limit_and_cursor() {
    let app = spawn_app().await;
    let all = ["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io"];
    for email in all {
        app.add_user(email, "user").await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut params = vec![("limit", "2")];
        if let Some(c) = &cursor {
            params.push(("cursor", c));
        }
        let resp = app.get("users/list", &params).await;
        let body = resp.ok();
        let page = body["users"].as_array().expect("users");
        assert!(page.len() <= 2, "{body}");
        seen.extend(
            page.iter()
                .map(|u| u["email"].as_str().unwrap().to_string()),
        );
        match body.get("next_cursor").and_then(|c| c.as_str()) {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, all);
}

#[tokio::test]
async fn users_list_rejects_limit_out_of_range() {
    let app = spawn_app().await;
    for limit in ["0", "1001", "ten"] {
        let resp = app.get("users/list", &[("limit", limit)]).await;
        let message = resp.err_status(400);
        assert!(message.contains("limit"), "{limit}: {message}");
    }
}

#[tokio::test]
async fn users_filter_matches_email_or_note_in_any_case() {
    let app = spawn_app().await;
    app.add_user("alice@x.io", "user").await;
    app.add_user("bob@x.io", "user").await;
    app.add_user("carol@y.io", "user").await;
    let params = [("email", "carol@y.io"), ("note", "Night SHIFT")];
    app.post("user/note/add", &params).await.ok();

    let emails = |resp: Resp| -> Vec<String> {
        let users = resp.ok()["users"].as_array().expect("users").clone();
        let list: Vec<&str> = users.iter().map(|u| u["email"].as_str().unwrap()).collect();
        sorted(&list)
    };
    let resp = app.get("users/filter", &[("filter_str", "X.IO")]).await;
    assert_eq!(emails(resp), sorted(&["alice@x.io", "bob@x.io"]));
    let resp = app.get("users/filter", &[("filter_str", "shift")]).await;
    assert_eq!(emails(resp), ["carol@y.io"]);
    let resp = app.get("users/filter", &[("filter_str", "zzz")]).await;
    assert_eq!(emails(resp), Vec::<String>::new());
}

/// The filter searches an in-memory projection of emails and notes: every change shows in the
/// very next answer, long notes (kept out of the projection) included, and pages stay whole.
#[tokio::test]
async fn users_filter_follows_each_change_at_once() {
    let app = spawn_app().await;
    let emails = |resp: Resp| -> Vec<String> {
        let users = resp.ok()["users"].as_array().expect("users").clone();
        users
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_string())
            .collect()
    };
    let filter = |needle: &'static str| {
        let app = &app;
        async move { app.get("users/filter", &[("filter_str", needle)]).await }
    };
    app.add_user("dora@x.io", "user").await;
    assert_eq!(emails(filter("pager").await), Vec::<String>::new());
    let long = format!("{} Pager duty, Überstunden", "x".repeat(400));
    app.post("user/note/add", &[("email", "dora@x.io"), ("note", &long)])
        .await
        .ok();
    app.add_user("eve@x.io", "user").await;
    app.post("user/edit", &[("email", "eve@x.io"), ("note", "PAGER")])
        .await
        .ok();
    assert_eq!(emails(filter("pager").await), ["dora@x.io", "eve@x.io"]);
    assert_eq!(emails(filter("überstunden").await), ["dora@x.io"]);
    // One a page: the long note's match pages like any other.
    let first = app
        .get("users/filter", &[("filter_str", "pager"), ("limit", "1")])
        .await;
    let next = first.ok()["next_cursor"]
        .as_str()
        .expect("next page")
        .to_string();
    assert_eq!(emails(first), ["dora@x.io"]);
    let second = app
        .get(
            "users/filter",
            &[("filter_str", "pager"), ("limit", "1"), ("cursor", &next)],
        )
        .await;
    assert!(second.ok().get("next_cursor").is_none());
    assert_eq!(emails(second), ["eve@x.io"]);

    app.delete("user/note/delete", &[("email", "dora@x.io")])
        .await
        .ok();
    assert_eq!(emails(filter("pager").await), ["eve@x.io"]);
    app.post("user/remove", &[("email", "eve@x.io")]).await.ok();
    assert_eq!(emails(filter("pager").await), Vec::<String>::new());
    app.add_user("eve@x.io", "user").await;
    assert_eq!(emails(filter("pager").await), Vec::<String>::new());
    assert_eq!(emails(filter("EVE@").await), ["eve@x.io"]);
}

#[tokio::test]
async fn users_filter_rejects_empty_filter() {
    let app = spawn_app().await;
    let resp = app.get("users/filter", &[("filter_str", "")]).await;
    resp.err(400, "Parameter 'filter_str' cannot be empty.");
}

// ---- user/disable, user/enable, summary email ----

#[tokio::test]
async fn user_disable_disables_user_and_summary_email() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let params = [("email", "a@x.io")];
    app.post("user/summary_email/enable", &params).await.ok();
    let resp = app.post("user/disable", &params).await;
    resp.ok_msg("User (a@x.io) successfully disabled.");
    let user = app.user("a@x.io").await;
    assert_eq!(user["disabled"], true);
    assert_eq!(user["summary_email_enabled"], false);
}

#[tokio::test]
async fn user_enable_enables_user_and_summary_email() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let params = [("email", "a@x.io")];
    app.post("user/disable", &params).await.ok();
    let resp = app.post("user/enable", &params).await;
    resp.ok_msg("User (a@x.io) successfully enabled.");
    let user = app.user("a@x.io").await;
    assert_eq!(user["disabled"], false);
    assert_eq!(user["summary_email_enabled"], true);
}

#[tokio::test]
async fn user_summary_email_disable_and_enable() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let params = [("email", "a@x.io")];
    let resp = app.post("user/summary_email/disable", &params).await;
    resp.ok_msg("Successfully disabled summary email for email a@x.io");
    assert_eq!(app.user("a@x.io").await["summary_email_enabled"], false);
    let resp = app.post("user/summary_email/enable", &params).await;
    resp.ok_msg("Successfully enabled summary email for email a@x.io");
    assert_eq!(app.user("a@x.io").await["summary_email_enabled"], true);
}

// ---- second factors ----

#[tokio::test]
async fn user_2fa_disable_returns_seed_message() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let resp = app.post("user/2fa/disable", &[("email", "a@x.io")]).await;
    resp.ok_msg("Successfully disabled two-factor authentication for user a@x.io");
    assert_eq!(app.user("a@x.io").await["totp_enabled"], false);
}

#[tokio::test]
async fn user_webauthn_disable_returns_bare_success() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let resp = app
        .post("user/webauthn/disable", &[("email", "a@x.io")])
        .await;
    resp.ok_bare();
    assert_eq!(app.user("a@x.io").await["webauthn_enabled"], false);
}

// ---- user/edit, user/edit/access_level ----

#[tokio::test]
async fn user_edit_sets_note() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let params = [("email", "a@x.io"), ("note", "edited")];
    let resp = app.post("user/edit", &params).await;
    resp.ok_msg("User (a@x.io) successfully edited.");
    assert_eq!(app.user("a@x.io").await["note"], "edited");
}

#[tokio::test]
async fn user_edit_without_note_keeps_note() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let params = [("email", "a@x.io"), ("note", "kept")];
    app.post("user/note/add", &params).await.ok();
    let resp = app.post("user/edit", &[("email", "a@x.io")]).await;
    resp.ok_msg("User (a@x.io) successfully edited.");
    assert_eq!(app.user("a@x.io").await["note"], "kept");
}

#[tokio::test]
async fn user_edit_access_level_changes_level() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let params = [("email", "a@x.io"), ("access_level", "admin")];
    app.post("user/edit/access_level", &params).await.ok_bare();
    assert_eq!(app.user("a@x.io").await["access_level"], "admin");
}

#[tokio::test]
async fn user_edit_access_level_rejects_unknown_access_level() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let before = app.snapshot().await;
    let params = [("email", "a@x.io"), ("access_level", "owner")];
    let resp = app.post("user/edit/access_level", &params).await;
    resp.err(400, BAD_ACCESS_LEVEL);
    assert_eq!(before, app.snapshot().await);
}

// ---- user/remove ----

#[tokio::test]
async fn user_remove_removes_user_and_memberships() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    app.add_user("a@x.io", "user").await;
    app.assign("a@x.io", &flock, "manager").await;
    app.assign("a@x.io", "flock:default", "watcher").await;
    let resp = app.post("user/remove", &[("email", "a@x.io")]).await;
    resp.ok_msg("User (a@x.io) successfully removed.");
    let resp = app.get("user/get", &[("email", "a@x.io")]).await;
    resp.err(404, USER_DOES_NOT_EXIST);
    assert_eq!(app.flock_users(&flock).await, (vec![], vec![]));
    assert_eq!(app.flock_users("flock:default").await, (vec![], vec![]));
    // The same address comes back as a new user without the old memberships.
    app.add_user("a@x.io", "user").await;
    let user = app.user("a@x.io").await;
    assert_eq!(user["managed_flocks"], json!([]));
    assert_eq!(user["watched_flocks"], json!([]));
}

// ---- user/password/reset ----

#[tokio::test]
async fn user_password_reset_mails_the_user() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    assert_eq!(app.outbox().await.len(), 0);
    let resp = app
        .post("user/password/reset", &[("email", "a@x.io")])
        .await;
    resp.ok_msg("Password reset email sent to a@x.io");
    let mails = app.outbox().await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("a@x.io"), "mail is addressed to the user");
    assert!(mails[0].contains("http"), "mail carries the reset link");
}

#[tokio::test]
async fn user_password_reset_rejects_unknown_user_without_mail() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let resp = app
        .post("user/password/reset", &[("email", "nobody@x.io")])
        .await;
    resp.err(404, USER_DOES_NOT_EXIST);
    assert_eq!(before, app.snapshot().await);
}

// ---- the last enabled admin ----

#[tokio::test]
async fn user_disable_refuses_last_enabled_admin() {
    let app = spawn_app().await;
    app.add_user("one@x.io", "admin").await;
    let before = app.snapshot().await;
    let resp = app.post("user/disable", &[("email", "one@x.io")]).await;
    resp.err(409, LAST_ADMIN);
    assert_eq!(before, app.snapshot().await);

    app.add_user("two@x.io", "admin").await;
    let resp = app.post("user/disable", &[("email", "one@x.io")]).await;
    resp.ok_msg("User (one@x.io) successfully disabled.");
    let before = app.snapshot().await;
    let resp = app.post("user/disable", &[("email", "two@x.io")]).await;
    resp.err(409, LAST_ADMIN);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn user_remove_refuses_last_enabled_admin() {
    let app = spawn_app().await;
    app.add_user("one@x.io", "admin").await;
    app.add_user("two@x.io", "admin").await;
    // A disabled admin does not count.
    app.post("user/disable", &[("email", "one@x.io")])
        .await
        .ok();
    let before = app.snapshot().await;
    let resp = app.post("user/remove", &[("email", "two@x.io")]).await;
    resp.err(409, LAST_ADMIN);
    assert_eq!(before, app.snapshot().await);
    let resp = app.post("user/remove", &[("email", "one@x.io")]).await;
    resp.ok_msg("User (one@x.io) successfully removed.");
}

#[tokio::test]
async fn user_edit_access_level_refuses_to_demote_last_enabled_admin() {
    let app = spawn_app().await;
    app.add_user("one@x.io", "admin").await;
    let demote = [("email", "one@x.io"), ("access_level", "user")];
    let before = app.snapshot().await;
    let resp = app.post("user/edit/access_level", &demote).await;
    resp.err(409, LAST_ADMIN);
    assert_eq!(before, app.snapshot().await);
    app.add_user("two@x.io", "admin").await;
    app.post("user/edit/access_level", &demote).await.ok_bare();
    assert_eq!(app.user("one@x.io").await["access_level"], "user");
}

#[tokio::test]
async fn user_disable_works_for_plain_users_without_any_admin_user() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let resp = app.post("user/disable", &[("email", "a@x.io")]).await;
    resp.ok_msg("User (a@x.io) successfully disabled.");
}
