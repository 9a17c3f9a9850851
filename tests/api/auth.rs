use crate::endpoints::{Endpoint, Fixture, USER, endpoints, fixture};
use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

const INVALID: &str = "Invalid auth_token";
const UNAUTHORIZED: &str = "Unauthorized";

/// A client that sends `X-Canary-Auth-Token` in title case (the default one sends lowercase).
fn title_case_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_title_case_headers()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

async fn call(app: &TestApp, ep: &Endpoint, auth: Auth<'_>) -> Resp {
    app.call(ep.method.clone(), ep.path, auth, &ep.params())
        .await
}

// ---- unauthenticated callers, every endpoint ----

#[tokio::test]
async fn every_endpoint_rejects_missing_or_wrong_token() {
    let paths = {
        let app = spawn_app().await;
        let fx = fixture(&app).await;
        endpoints(&fx)
            .into_iter()
            .map(|e| e.path)
            .collect::<Vec<_>>()
    };
    let mut failures = Failures::default();
    for path in paths {
        // A fresh app for each endpoint keeps the failures under the rate limit.
        let app = spawn_app().await;
        let fx = fixture(&app).await;
        let ep = endpoints(&fx).into_iter().find(|e| e.path == path).unwrap();
        let before = app.snapshot().await;
        let resp = call(&app, &ep, Auth::None).await;
        failures.check(format!("{path} without token"), &resp, 401, Some(INVALID));
        let resp = call(&app, &ep, Auth::Param("roost_0000000000000000_nope")).await;
        failures.check(format!("{path} wrong param"), &resp, 401, Some(INVALID));
        let resp = call(&app, &ep, Auth::Header("wrong")).await;
        failures.check(
            format!("{path} wrong header"),
            &resp,
            401,
            Some(UNAUTHORIZED),
        );
        let request = build_request(
            &title_case_client(),
            &app.address,
            ep.method.clone(),
            ep.path,
            Auth::Header("wrong"),
            &ep.params(),
        );
        let resp = send(request).await;
        failures.check(
            format!("{path} wrong Title-Case header"),
            &resp,
            401,
            Some(UNAUTHORIZED),
        );
        assert_eq!(before, app.snapshot().await, "{path} changed something");
    }
    failures.assert_none();
}

// ---- global key types, every endpoint ----

#[tokio::test]
async fn read_only_and_analyst_keys_may_only_call_get_endpoints() {
    let app = spawn_app().await;
    let fx: Fixture = fixture(&app).await;
    let mut failures = Failures::default();
    for key_type in ["read-only", "analyst"] {
        let token = app.new_key(key_type).await;
        for ep in endpoints(&fx) {
            let what = format!("{key_type} key: {} {}", ep.method, ep.path);
            if ep.is_read() {
                let resp = call(&app, &ep, Auth::Param(&token)).await;
                if resp.status != 200 || resp.body["result"] != "success" {
                    failures
                        .0
                        .push(format!("{what}: expected 200, got {}", resp.text));
                }
            } else {
                let before = app.snapshot().await;
                let resp = call(&app, &ep, Auth::Param(&token)).await;
                failures.check(what, &resp, 403, Some(KEY_NOT_ALLOWED));
                assert_eq!(
                    before,
                    app.snapshot().await,
                    "{} changed something",
                    ep.path
                );
            }
        }
    }
    failures.assert_none();
}

// ---- the token header ----

#[tokio::test]
async fn header_token_authenticates_in_any_case() {
    let app = spawn_app().await;
    let resp = app
        .call(Method::GET, "ping", Auth::Header(&app.admin_token), &[])
        .await;
    resp.ok_bare();
    let request = build_request(
        &title_case_client(),
        &app.address,
        Method::POST,
        "flock/create",
        Auth::Header(&app.admin_token),
        &[("name", "Ops")],
    );
    send(request).await.ok();
}

#[tokio::test]
async fn header_token_wins_over_auth_token_param() {
    let app = spawn_app().await;
    let request = app
        .client
        .get(app.url("ping"))
        .header("X-Canary-Auth-Token", &app.admin_token)
        .query(&[("auth_token", "wrong")]);
    send(request).await.ok_bare();
    let request = app
        .client
        .get(app.url("ping"))
        .header("X-Canary-Auth-Token", "wrong")
        .query(&[("auth_token", app.admin_token.as_str())]);
    send(request).await.err(401, UNAUTHORIZED);
}

#[tokio::test]
async fn token_with_valid_key_id_and_wrong_secret_is_rejected() {
    let app = spawn_app().await;
    let token = app.new_key("admin").await;
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let resp = app.get_as(&forged, "ping", &[]).await;
    resp.err(401, INVALID);
    let resp = app.get_as(&token[..token.len() - 1], "ping", &[]).await;
    resp.err(401, INVALID);
}

#[tokio::test]
async fn repeated_auth_failures_are_rate_limited_but_valid_keys_are_not() {
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let resp = app.get_as("wrong", "ping", &[]).await;
        statuses.push(resp.status);
        if resp.status == 429 {
            resp.err_status(429);
        }
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses[24], 429, "{statuses:?}");
    app.get("ping", &[]).await.ok_bare();
}

/// Status of a call with a bad key, as if from behind a proxy that reports `client`.
async fn bad_key_from(app: &TestApp, client: &str) -> u16 {
    app.client
        .get(format!("{}/api/v1/ping", app.address))
        .header("X-Canary-Auth-Token", "wrong")
        .header("X-Forwarded-For", client)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

#[tokio::test]
async fn forwarded_for_is_not_believed_without_trusted_proxies() {
    let app = spawn_app().await;
    // A client inventing a new address for each attempt is still one client.
    for n in 0..20 {
        assert_eq!(bad_key_from(&app, &format!("203.0.113.{n}")).await, 401);
    }
    assert_eq!(bad_key_from(&app, "203.0.113.99").await, 429);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_in(dir, |config| {
        config.trusted_proxies = roost::config::TrustedProxies::parse("127.0.0.1").expect("list");
    })
    .await;
    for _ in 0..20 {
        assert_eq!(bad_key_from(&app, "203.0.113.5").await, 401);
    }
    assert_eq!(bad_key_from(&app, "203.0.113.5").await, 429);
    // Prepending the noisy client's own guess of a fresh address doesn't help it: the proxy
    // appends the address it saw, and that is the one counted.
    assert_eq!(bad_key_from(&app, "198.51.100.7, 203.0.113.5").await, 429);
    // Everybody else behind the same proxy is unaffected.
    assert_eq!(bad_key_from(&app, "203.0.113.6").await, 401);
    app.get("ping", &[]).await.ok_bare();
}

// ---- flock keys ----

/// An app with `u@x.io`, flock `Ops` (a flock key's own) and flock `Dev` (another one).
async fn flock_app() -> (TestApp, String, String) {
    let app = spawn_app().await;
    app.add_user(USER, "user").await;
    let own = app.create_flock("Ops").await;
    let other = app.create_flock("Dev").await;
    (app, own, other)
}

fn membership<'a>(flocks: &'a str, role: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("email", USER),
        ("flock_id_list", flocks),
        ("flock_access_level", role),
    ]
}

#[tokio::test]
async fn flock_admin_key_may_change_memberships_of_its_flock() {
    let (app, own, _) = flock_app().await;
    let key = app.new_flock_key(&own, "admin").await;
    let resp = app
        .post_as(&key, "user/flock/assign", &membership(&own, "watcher"))
        .await;
    resp.ok_msg(&format!(
        "User {USER} successfully assigned to watcher flock(s) {}",
        py_list(&[&own])
    ));
    assert_eq!(app.flock_users(&own).await.1, [USER]);
    let resp = app
        .post_as(&key, "user/flock/unassign", &membership(&own, "watcher"))
        .await;
    resp.ok();
    assert_eq!(app.flock_users(&own).await, (vec![], vec![]));
    let params = [("flock_id", own.as_str()), ("emails", USER)];
    app.post_as(&key, "users/flock/assign/managers", &params)
        .await
        .ok();
    assert_eq!(app.flock_users(&own).await.0, [USER]);
    app.post_as(&key, "users/flock/assign/watchers", &params)
        .await
        .ok();
    assert_eq!(app.flock_users(&own).await, (vec![], sorted(&[USER])));
    let resp = app.get_as(&key, "flock/users", &[("flock_id", &own)]).await;
    assert_eq!(resp.ok()["watchers"], json!([USER]));
}

#[tokio::test]
async fn flock_admin_key_is_refused_for_other_flocks() {
    let (app, own, other) = flock_app().await;
    let key = app.new_flock_key(&own, "admin").await;
    let before = app.snapshot().await;
    let both = format!("{own},{other}");
    let resp = app
        .post_as(&key, "user/flock/assign", &membership(&both, "watcher"))
        .await;
    resp.err_status(403);
    let resp = app
        .post_as(
            &key,
            "user/flock/assign",
            &membership("flock:default", "manager"),
        )
        .await;
    resp.err_status(403);
    let params = [("flock_id", other.as_str()), ("emails", USER)];
    let resp = app
        .post_as(&key, "users/flock/assign/managers", &params)
        .await;
    resp.err_status(403);
    let resp = app
        .get_as(&key, "flock/users", &[("flock_id", &other)])
        .await;
    resp.err_status(403);
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn flock_admin_key_is_refused_for_global_endpoints() {
    let (app, own, _) = flock_app().await;
    let key = app.new_flock_key(&own, "admin").await;
    let before = app.snapshot().await;
    let calls: [(&str, Vec<(&str, &str)>); 7] = [
        (
            "user/add",
            vec![("email", "n@x.io"), ("access_level", "user")],
        ),
        ("user/remove", vec![("email", USER)]),
        ("user/disable", vec![("email", USER)]),
        ("flock/create", vec![("name", "Mine")]),
        ("flock/rename", vec![("flock_id", &own), ("name", "Mine")]),
        ("flock/delete", vec![("flock_id", &own)]),
        (
            "auth_token/add",
            vec![("auth_token_type", "admin"), ("note", "x")],
        ),
    ];
    for (path, params) in &calls {
        println!("{path}");
        let resp = app.post_as(&key, path, params).await;
        resp.err_status(403);
    }
    for path in ["auth_token/list", "settings", "users/list"] {
        println!("{path}");
        app.get_as(&key, path, &[]).await.err_status(403);
    }
    assert_eq!(before, app.snapshot().await);
}

#[tokio::test]
async fn flock_keys_see_only_their_flock_in_flocks_list() {
    let (app, own, _) = flock_app().await;
    for key_type in ["admin", "read-only"] {
        let key = app.new_flock_key(&own, key_type).await;
        let resp = app.get_as(&key, "flocks/list", &[]).await;
        assert_eq!(
            resp.ok()["flocks"],
            json!({own.as_str(): "Ops"}),
            "{key_type}"
        );
    }
}

#[tokio::test]
async fn flock_read_only_key_may_only_read_its_flock() {
    let (app, own, other) = flock_app().await;
    app.assign(USER, &own, "manager").await;
    let key = app.new_flock_key(&own, "read-only").await;
    let resp = app.get_as(&key, "flock/users", &[("flock_id", &own)]).await;
    assert_eq!(resp.ok()["managers"], json!([USER]));
    let before = app.snapshot().await;
    let resp = app
        .post_as(&key, "user/flock/assign", &membership(&own, "watcher"))
        .await;
    resp.err_status(403);
    let resp = app
        .post_as(&key, "user/flock/unassign", &membership(&own, "manager"))
        .await;
    resp.err_status(403);
    let params = [("flock_id", own.as_str()), ("emails", USER)];
    let resp = app
        .post_as(&key, "users/flock/assign/watchers", &params)
        .await;
    resp.err_status(403);
    let resp = app
        .get_as(&key, "flock/users", &[("flock_id", &other)])
        .await;
    resp.err_status(403);
    assert_eq!(before, app.snapshot().await);
}
