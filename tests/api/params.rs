use crate::endpoints::{endpoints, fixture};
use crate::helpers::*;
use reqwest::header::CONTENT_TYPE;
use serde_json::json;

fn post_raw(app: &TestApp, path: &str) -> reqwest::RequestBuilder {
    app.client.post(app.url(path))
}

// ---- where parameters come from ----

#[tokio::test]
async fn post_params_are_read_from_the_query_string() {
    let app = spawn_app().await;
    let query = [
        ("auth_token", app.admin_token.as_str()),
        ("email", "a@x.io"),
        ("access_level", "user"),
        ("send_welcome_mail", "false"),
    ];
    let resp = send(post_raw(&app, "user/add").query(&query)).await;
    resp.ok_msg("User (a@x.io) successfully created.");
    app.user("a@x.io").await;
}

#[tokio::test]
async fn post_params_combine_query_string_and_form_body() {
    let app = spawn_app().await;
    let query = [
        ("auth_token", app.admin_token.as_str()),
        ("email", "a@x.io"),
    ];
    let form = [("access_level", "admin"), ("send_welcome_mail", "false")];
    let resp = send(post_raw(&app, "user/add").query(&query).form(&form)).await;
    resp.ok_msg("User (a@x.io) successfully created.");
    assert_eq!(app.user("a@x.io").await["access_level"], "admin");
}

#[tokio::test]
async fn post_params_are_read_from_a_json_body() {
    let app = spawn_app().await;
    let body = json!({
        "auth_token": app.admin_token,
        "email": "a@x.io",
        "access_level": "user",
        "send_welcome_mail": false,
        "totp_enabled": true,
    });
    let resp = send(post_raw(&app, "user/add").json(&body)).await;
    resp.ok_msg("User (a@x.io) successfully created.");
    assert_eq!(app.user("a@x.io").await["two_factor_required"], true);
    assert_eq!(
        app.outbox().await.len(),
        0,
        "send_welcome_mail=false as a JSON boolean"
    );
}

#[tokio::test]
async fn json_body_accepts_flock_list_as_array_and_token_in_header() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let flock = app.create_flock("Ops").await;
    let body = json!({
        "email": "a@x.io",
        "flock_id_list": ["flock:default", flock],
        "flock_access_level": "watcher",
    });
    let request = post_raw(&app, "user/flock/assign")
        .header("X-Canary-Auth-Token", &app.admin_token)
        .json(&body);
    send(request).await.ok_msg(&format!(
        "User a@x.io successfully assigned to watcher flock(s) {}",
        py_list(&["flock:default", &flock])
    ));
    assert_eq!(app.flock_users(&flock).await.1, ["a@x.io"]);
}

#[tokio::test]
async fn json_numbers_and_booleans_are_read_as_values() {
    let app = spawn_app().await;
    let body = json!({
        "auth_token": app.admin_token,
        "email": "a@x.io",
        "access_level": "user",
        "send_welcome_mail": 0,
        "note": 42,
    });
    send(post_raw(&app, "user/add").json(&body)).await.ok();
    assert_eq!(app.user("a@x.io").await["note"], "42");
    assert_eq!(app.outbox().await.len(), 0, "send_welcome_mail=0");
}

#[tokio::test]
async fn json_body_rejects_nested_values() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    for email in [json!({"x": 1}), json!(["a@x.io", "b@x.io"])] {
        let body = json!({"auth_token": app.admin_token, "email": email, "access_level": "user"});
        let resp = send(post_raw(&app, "user/add").json(&body)).await;
        let message = resp.err_status(400);
        assert!(message.contains("email"), "names the parameter: {message}");
    }
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn json_null_counts_as_absent() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let body = json!({"auth_token": app.admin_token, "email": "a@x.io", "access_level": null});
    let resp = send(post_raw(&app, "user/add").json(&body)).await;
    resp.err(400, &missing("access_level"));
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn delete_params_are_read_from_query_and_form_body() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    for how in ["query", "form"] {
        let params = [("email", "a@x.io"), ("note", "n")];
        app.post("user/note/add", &params).await.ok();
        let all = [
            ("auth_token", app.admin_token.as_str()),
            ("email", "a@x.io"),
        ];
        let request = app.client.delete(app.url("user/note/delete"));
        let request = if how == "query" {
            request.query(&all)
        } else {
            request.form(&all)
        };
        let resp = send(request).await;
        resp.ok_msg("User (a@x.io) note successfully removed.");
        let note = app.user("a@x.io").await["note"].clone();
        assert!(note.is_null() || note == "", "{how}: {note}");
    }
}

// ---- booleans ----

#[tokio::test]
async fn booleans_accept_every_documented_spelling() {
    let app = spawn_app().await;
    let spellings = [
        ("true", true),
        ("True", true),
        ("TRUE", true),
        ("1", true),
        ("yes", true),
        ("Yes", true),
        ("on", true),
        ("ON", true),
        ("false", false),
        ("False", false),
        ("0", false),
        ("no", false),
        ("NO", false),
        ("off", false),
        ("Off", false),
    ];
    for (i, (spelling, value)) in spellings.into_iter().enumerate() {
        let email = format!("u{i}@x.io");
        let mails = app.outbox().await.len();
        let params = [
            ("email", email.as_str()),
            ("access_level", "user"),
            ("send_welcome_mail", spelling),
        ];
        app.post("user/add", &params).await.ok();
        let sent = app.outbox().await.len() - mails;
        assert_eq!(sent, usize::from(value), "send_welcome_mail={spelling}");
    }
}

#[tokio::test]
async fn booleans_reject_other_values() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    for value in ["maybe", "2", "t", "yess", "truee"] {
        let params = [
            ("email", "a@x.io"),
            ("access_level", "user"),
            ("send_welcome_mail", value),
        ];
        let resp = app.post("user/add", &params).await;
        resp.err(400, &bad_bool("send_welcome_mail"));
    }
    assert_eq!(before, app.snapshot().await);
}

// ---- duplicates ----

#[tokio::test]
async fn duplicate_param_with_different_values_is_rejected() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let params = [
        ("email", "a@x.io"),
        ("email", "b@x.io"),
        ("access_level", "user"),
        ("send_welcome_mail", "false"),
    ];
    let message = "Parameter 'email' was given more than once with different values.";
    app.post("user/add", &params).await.err(400, message);
    // Across query string and body as well.
    let query = [
        ("auth_token", app.admin_token.as_str()),
        ("email", "a@x.io"),
    ];
    let form = [("email", "b@x.io"), ("access_level", "user")];
    let resp = send(post_raw(&app, "user/add").query(&query).form(&form)).await;
    resp.err(400, message);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn duplicate_param_with_the_same_value_is_accepted() {
    let app = spawn_app().await;
    let params = [
        ("email", "a@x.io"),
        ("email", "a@x.io"),
        ("access_level", "user"),
        ("send_welcome_mail", "false"),
    ];
    let resp = app.post("user/add", &params).await;
    resp.ok_msg("User (a@x.io) successfully created.");
}

// ---- bodies ----

#[tokio::test]
async fn oversize_body_is_rejected_with_413() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let note = "n".repeat(70 * 1024);
    let params = [
        ("email", "a@x.io"),
        ("access_level", "user"),
        ("note", note.as_str()),
    ];
    app.post("user/add", &params).await.err_status(413);
    let body = json!({"auth_token": app.admin_token, "email": "a@x.io", "access_level": "user", "note": note});
    send(post_raw(&app, "user/add").json(&body))
        .await
        .err_status(413);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn body_just_under_the_limit_is_read() {
    let app = spawn_app().await;
    app.add_user("a@x.io", "user").await;
    let padding = "p".repeat(60 * 1024);
    let params = [
        ("email", "a@x.io"),
        ("note", "short"),
        ("padding", padding.as_str()),
    ];
    app.post("user/note/add", &params).await.ok();
    assert_eq!(app.user("a@x.io").await["note"], "short");
}

#[tokio::test]
async fn non_utf8_body_is_rejected_with_400() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let mut body = format!(
        "auth_token={}&email=a%40x.io&access_level=user&send_welcome_mail=false&note=",
        app.admin_token
    )
    .into_bytes();
    body.extend_from_slice(&[0xff, 0xfe, 0xfd]);
    let request = post_raw(&app, "user/add")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    send(request).await.err_status(400);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn malformed_json_body_is_rejected_with_400() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    for body in [r#"{"email": "a@x.io", "#, r#"["email", "a@x.io"]"#, "null"] {
        let request = post_raw(&app, "user/add")
            .header("X-Canary-Auth-Token", &app.admin_token)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        send(request).await.err_status(400);
    }
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn other_body_types_are_rejected_with_415() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let request = post_raw(&app, "user/add")
        .query(&[("auth_token", app.admin_token.as_str())])
        .header(CONTENT_TYPE, "text/plain")
        .body("email=a@x.io&access_level=user");
    send(request).await.err_status(415);
    assert_eq!(before, app.snapshot().await);
}

// ---- routing ----

#[tokio::test]
async fn unknown_endpoint_answers_404() {
    let app = spawn_app().await;
    let resp = app.get("user/teleport", &[("email", "a@x.io")]).await;
    resp.err(404, "Unknown API endpoint.");
    app.post("users/purge", &[])
        .await
        .err(404, "Unknown API endpoint.");
}

#[tokio::test]
async fn wrong_method_answers_405() {
    let app = spawn_app().await;
    let before = app.snapshot().await;
    let params = [("email", "a@x.io"), ("access_level", "user")];
    app.get("user/add", &params)
        .await
        .err(405, "Method not allowed.");
    app.post("users/list", &[])
        .await
        .err(405, "Method not allowed.");
    assert_eq!(before, app.snapshot().await);
}

// ---- table-driven bad input over every endpoint ----

#[tokio::test]
async fn every_endpoint_rejects_each_missing_required_param() {
    let app = spawn_app().await;
    let fx = fixture(&app).await;
    let before = app.snapshot().await;
    let mut failures = Failures::default();
    for ep in endpoints(&fx) {
        for name in ep.required {
            let params = ep.params_without(name);
            let auth = Auth::Param(&app.admin_token);
            let resp = app.call(ep.method.clone(), ep.path, auth, &params).await;
            let what = format!("{} {} without {name}", ep.method, ep.path);
            failures.check(what, &resp, 400, Some(&missing(name)));
        }
    }
    failures.assert_none();
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn every_endpoint_rejects_empty_required_param() {
    let app = spawn_app().await;
    let fx = fixture(&app).await;
    let before = app.snapshot().await;
    let mut failures = Failures::default();
    for ep in endpoints(&fx) {
        // An empty note or email list is a value in its own right (clearing).
        for name in ep
            .required
            .iter()
            .filter(|n| !["note", "emails"].contains(n))
        {
            let params = ep.params_with(name, "");
            let auth = Auth::Param(&app.admin_token);
            let resp = app.call(ep.method.clone(), ep.path, auth, &params).await;
            let what = format!("{} {} with empty {name}", ep.method, ep.path);
            failures.check(what, &resp, 400, None);
        }
    }
    failures.assert_none();
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn every_email_endpoint_rejects_unknown_user_and_malformed_email() {
    let app = spawn_app().await;
    let fx = fixture(&app).await;
    let before = app.snapshot().await;
    let mut failures = Failures::default();
    for ep in endpoints(&fx) {
        if !ep.has("email") || ep.path == "user/add" {
            continue;
        }
        let auth = Auth::Param(&app.admin_token);
        let params = ep.params_with("email", "nobody@x.io");
        let resp = app.call(ep.method.clone(), ep.path, auth, &params).await;
        let what = format!("{} {} unknown email", ep.method, ep.path);
        failures.check(what, &resp, 404, Some(USER_DOES_NOT_EXIST));
        let params = ep.params_with("email", "nobody");
        let resp = app.call(ep.method.clone(), ep.path, auth, &params).await;
        let what = format!("{} {} malformed email", ep.method, ep.path);
        failures.check(what, &resp, 400, Some(&bad_email("email")));
    }
    failures.assert_none();
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn every_flock_endpoint_rejects_unknown_and_malformed_flock_ids() {
    let app = spawn_app().await;
    let fx = fixture(&app).await;
    let before = app.snapshot().await;
    let mut failures = Failures::default();
    for ep in endpoints(&fx) {
        for name in ["flock_id", "flock_id_list"] {
            if !ep.has(name) {
                continue;
            }
            let auth = Auth::Param(&app.admin_token);
            let params = ep.params_with(name, UNKNOWN_FLOCK);
            let resp = app.call(ep.method.clone(), ep.path, auth, &params).await;
            let what = format!("{} {} unknown {name}", ep.method, ep.path);
            failures.check(what, &resp, 404, Some(FLOCK_DOES_NOT_EXIST));
            for bad in ["flock:xyz", "default"] {
                let params = ep.params_with(name, bad);
                let resp = app.call(ep.method.clone(), ep.path, auth, &params).await;
                let what = format!("{} {} {name}={bad}", ep.method, ep.path);
                let message = if name == "flock_id_list" {
                    bad_flock_id_in_list(name, bad)
                } else {
                    bad_flock_id(name)
                };
                failures.check(what, &resp, 400, Some(&message));
            }
        }
    }
    failures.assert_none();
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn no_endpoint_answers_500_to_garbage() {
    let app = spawn_app().await;
    let fx = fixture(&app).await;
    let garbage = [
        "\u{0}",
        "'; DROP TABLE users; --",
        "%%%",
        "ünï©ødé",
        "flock:default,,,",
    ];
    for ep in endpoints(&fx) {
        if ep.path == "settings/api/disable" {
            continue;
        }
        for value in garbage {
            let params: Vec<(&str, &str)> = ep.params().iter().map(|(k, _)| (*k, value)).collect();
            let auth = Auth::Param(&app.admin_token);
            // `send` fails the test on any 5xx.
            let resp = app.call(ep.method.clone(), ep.path, auth, &params).await;
            assert!(resp.body.is_object(), "{} {value:?}: {resp:?}", ep.path);
        }
    }
}
