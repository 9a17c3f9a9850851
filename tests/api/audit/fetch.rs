//! `GET audit_trail/fetch`: newest first, paged with `limit` and the `cursor` it hands out, both
//! ways, without missing or repeating an entry; `action_filter` and `tz`; clear 400s for bad
//! parameters; global admin keys only.

use serde_json::{Value, json};

use super::USER;
use super::{AGENT, LANGUAGE, LOCALHOST, admin_key_actor, probe_client};
use crate::helpers::*;

/// `audit_trail/fetch` with `params`, as the harness's admin key.
pub async fn fetch(app: &TestApp, params: &[(&str, &str)]) -> Value {
    app.get("audit_trail/fetch", params).await.ok().clone()
}

/// The ids of a fetched page, in order.
fn ids(page: &Value) -> Vec<u64> {
    page["audit_trail"]
        .as_array()
        .expect("audit_trail is a list")
        .iter()
        .map(|entry| entry["id"].as_u64().expect("id"))
        .collect()
}

/// The ids of the entries matching `filter`, newest first, as the store has them.
pub fn stored_ids(app: &TestApp, filter: &AuditFilter) -> Vec<u64> {
    let page = app
        .store
        .audit_page(filter, AuditFrom::Newest, 10_000)
        .expect("audit page");
    page.entries.iter().map(|e| e.id).collect()
}

/// Walks every page with `limit` (plus `extra` params) forward along `cursor.next` and back along
/// `cursor.prev`, checking each against `expected` (ids newest first).
pub async fn walk(app: &TestApp, extra: &[(&str, &str)], limit: usize, expected: &[u64]) {
    let page_count = expected.len().div_ceil(limit).max(1) as u64;
    let limit_text = limit.to_string();
    let mut pages: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = extra.to_vec();
        params.push(("limit", &limit_text));
        if let Some(cursor) = &cursor {
            params.push(("cursor", cursor));
        }
        let page = fetch(app, &params).await;
        let number = pages.len() + 1;
        let want = &expected[(number - 1) * limit..(number * limit).min(expected.len())];
        assert_eq!(ids(&page), want, "page {number} forward: {page}");
        assert_eq!(page["page_number"], number as u64, "{page}");
        assert_eq!(page["page_count"], page_count, "{page}");
        assert_eq!(page["cursor"]["prev"].is_null(), number == 1, "{page}");
        cursor = page["cursor"]["next"].as_str().map(str::to_string);
        pages.push(page);
        if cursor.is_none() {
            break;
        }
        assert!(pages.len() < 1000, "the cursor never ends");
    }
    assert_eq!(pages.len() as u64, page_count);
    let seen: Vec<u64> = pages.iter().flat_map(ids).collect();
    assert_eq!(seen, expected, "every entry once, newest first");

    // And back: each previous page is the same page, entry for entry.
    let mut number = pages.len();
    let mut prev = pages[number - 1]["cursor"]["prev"]
        .as_str()
        .map(str::to_string);
    while let Some(cursor) = prev {
        number -= 1;
        let mut params = extra.to_vec();
        params.push(("limit", &limit_text));
        params.push(("cursor", &cursor));
        let page = fetch(app, &params).await;
        assert_eq!(
            page["audit_trail"],
            pages[number - 1]["audit_trail"],
            "page {number} back"
        );
        assert_eq!(page["page_number"], number as u64, "{page}");
        assert_eq!(page["page_count"], page_count, "{page}");
        assert_eq!(page["cursor"]["next"], pages[number - 1]["cursor"]["next"]);
        prev = page["cursor"]["prev"].as_str().map(str::to_string);
    }
    assert_eq!(number, 1, "back to the first page");
}

/// Entries of several kinds: users added, notes set, users disabled, flocks created.
pub async fn mixed_trail(app: &TestApp) {
    for n in 0..9 {
        let email = format!("u{n}@x.io");
        app.add_user(&email, "user").await;
        if n % 2 == 0 {
            let params = [("email", email.as_str()), ("note", "n")];
            app.post("user/note/add", &params).await.ok();
        }
        if n % 3 == 0 {
            app.post("user/disable", &[("email", &email)]).await.ok();
        }
        if n % 4 == 0 {
            app.create_flock(&format!("Flock {n}")).await;
        }
    }
}

#[tokio::test]
async fn fetch_pages_forward_and_back_without_missing_or_repeating_an_entry() {
    let app = spawn_app().await;
    mixed_trail(&app).await;
    let all = stored_ids(&app, &AuditFilter::default());
    assert_eq!(
        all.len(),
        1 + 1 + 9 + 5 + 3 + 3,
        "the setup link, the key, users, notes, disables, flocks"
    );
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first");
    walk(&app, &[], 5, &all).await;
    walk(&app, &[], 7, &all).await;
    walk(&app, &[], 21, &all).await;
    walk(&app, &[], 100, &all).await;
    // Without a limit: the first 100.
    let page = fetch(&app, &[]).await;
    assert_eq!(ids(&page), all);
    assert_eq!(page["cursor"], json!({ "next": null, "prev": null }));
}

#[tokio::test]
async fn action_filter_pages_through_that_action_alone() {
    let app = spawn_app().await;
    mixed_trail(&app).await;
    for (action, count) in [("user_add", 9), ("user_note_add", 5), ("user_disable", 3)] {
        let filter = AuditFilter {
            action: Some(action.to_string()),
            ..AuditFilter::default()
        };
        let expected = stored_ids(&app, &filter);
        assert_eq!(expected.len(), count, "{action}");
        walk(&app, &[("action_filter", action)], 2, &expected).await;
        let page = fetch(&app, &[("action_filter", action)]).await;
        let trail = page["audit_trail"].as_array().expect("list");
        assert!(trail.iter().all(|e| e["action_type"] == action), "{page}");
    }
    // A known action nobody took: an empty first page.
    let page = fetch(&app, &[("action_filter", "user_login")]).await;
    assert_eq!(
        page,
        json!({
            "result": "success",
            "audit_trail": [],
            "cursor": { "next": null, "prev": null },
            "page_count": 1,
            "page_number": 1,
        })
    );
}

/// `2026-12-01 17:23:13 UTC+0000` of unix second `at`, in UTC.
pub fn utc_timestamp(at: u64) -> String {
    let time = jiff::Timestamp::from_second(at as i64).expect("a time");
    format!("{} UTC+0000", time.strftime("%Y-%m-%d %H:%M:%S"))
}

#[tokio::test]
async fn an_entry_reads_as_the_canary_console_writes_it() {
    let app = spawn_app().await;
    app.add_user(USER, "user").await;
    let params = [("email", USER)];
    let request = build_request(
        &probe_client(),
        &app.address,
        reqwest::Method::POST,
        "user/disable",
        Auth::Header(&app.admin_token),
        &params,
    );
    send(request).await.ok();
    let page = fetch(&app, &[("limit", "1")]).await;
    let stored = app
        .store
        .audit_page(&AuditFilter::default(), AuditFrom::Newest, 1)
        .expect("audit page")
        .entries;
    let entry = &stored[0];
    let expected = json!({
        "action_type": "user_disable",
        "additional_information": {
            "before": { "disabled": false },
            "after": { "disabled": true },
            "target": USER,
        },
        "flock_id": null,
        "id": entry.id,
        "message": format!("User ({USER}) disabled"),
        "timestamp": utc_timestamp(entry.at),
        "user": admin_key_actor(&app),
        "user_browser_agent": AGENT,
        "user_browser_language": LANGUAGE,
        "user_ip": LOCALHOST,
    });
    assert_eq!(page["audit_trail"], json!([expected]));
    assert_eq!(
        page["page_count"],
        super::audit_len(&app),
        "one entry a page"
    );
}

/// The v1 fixture's change log, kept whatever its age (retention off).
async fn upgraded_app() -> TestApp {
    let dir = crate::upgrade::data_dir_with("schema-v1.redb");
    spawn_app_in(dir, |config| config.audit_retention_days = 0).await
}

#[tokio::test]
async fn the_migrated_change_log_reads_in_its_order_and_tz_renders_it_in_that_zone() {
    let app = upgraded_app().await;
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v1.json"),
    )
    .expect("fixture json");
    let fixture: Value = serde_json::from_str(&fixture).expect("fixture parses");
    let changes = fixture["changes"].as_array().expect("changes");
    // Every change was made at 2026-12-01 17:23:13 UTC.
    assert!(changes.iter().all(|c| c["at"] == 1_796_145_793u64));
    for (tz, timestamp) in [
        (None, "2026-12-01 17:23:13 UTC+0000"),
        (Some("UTC"), "2026-12-01 17:23:13 UTC+0000"),
        (Some("Europe/Berlin"), "2026-12-01 18:23:13 UTC+0100"),
        (Some("America/New_York"), "2026-12-01 12:23:13 UTC-0500"),
        (Some("Asia/Kolkata"), "2026-12-01 22:53:13 UTC+0530"),
    ] {
        let mut params = vec![("action_filter", "change_log"), ("limit", "1000")];
        params.extend(tz.map(|tz| ("tz", tz)));
        let page = fetch(&app, &params).await;
        let mut trail = page["audit_trail"].as_array().expect("list").clone();
        trail.reverse();
        assert_eq!(trail.len(), changes.len(), "{page}");
        for (entry, change) in trail.iter().zip(changes) {
            let want = json!({
                "action_type": "change_log",
                "additional_information": null,
                "flock_id": null,
                "id": entry["id"],
                "message": change["text"],
                "timestamp": timestamp,
                "user": "unknown (change log before the audit trail)",
                "user_browser_agent": null,
                "user_browser_language": null,
                "user_ip": null,
            });
            assert_eq!(*entry, want, "tz {tz:?}");
        }
        let ids: Vec<u64> = trail.iter().map(|e| e["id"].as_u64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "in the log's order");
    }
}

#[tokio::test]
async fn fetch_refuses_bad_parameters_with_a_clear_message() {
    let app = spawn_app().await;
    let limit = "Parameter 'limit' must be a whole number from 1 to 1000.";
    let cursor = "Parameter 'cursor' is not a cursor of this audit trail.";
    let tz = "Parameter 'tz' is not a time zone such as 'Europe/Berlin'.";
    let action = "Parameter 'action_filter' must be an action type such as 'user_login'.";
    let cases: &[(&str, &str, &str)] = &[
        ("limit", "0", limit),
        ("limit", "1001", limit),
        ("limit", "-1", limit),
        ("limit", "ten", limit),
        ("limit", "2.5", limit),
        ("cursor", "bogus", cursor),
        ("cursor", "older.", cursor),
        ("cursor", "older.x", cursor),
        ("cursor", "newer.-3", cursor),
        ("cursor", "sideways.3", cursor),
        ("tz", "Mars/Olympus", tz),
        ("tz", "+01:00", tz),
        ("action_filter", "User Login", action),
        ("action_filter", "user-login", action),
        ("action_filter", "no_such_action", action),
    ];
    let before = super::audit_len(&app);
    let mut failures = Failures::default();
    for (name, value, message) in cases {
        let resp = app.get("audit_trail/fetch", &[(name, value)]).await;
        failures.check(format!("{name}={value}"), &resp, 400, Some(message));
    }
    let twice = [("limit", "1"), ("limit", "2")];
    let resp = app.get("audit_trail/fetch", &twice).await;
    failures.check("limit twice".into(), &resp, 400, None);
    failures.assert_none();
    assert_eq!(super::audit_len(&app), before);
}

#[tokio::test]
async fn only_global_admin_keys_may_read_or_purge_the_trail() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    let keys = [
        app.new_key("read-only").await,
        app.new_key("analyst").await,
        app.new_flock_key(&flock, "admin").await,
        app.new_flock_key(&flock, "read-only").await,
    ];
    let before = super::audit_len(&app);
    let mut failures = Failures::default();
    for key in &keys {
        for path in ["audit_trail/fetch", "audit_trail/download/json"] {
            let resp = app.get_as(key, path, &[]).await;
            failures.check(format!("GET {path}"), &resp, 403, Some(KEY_NOT_ALLOWED));
        }
        let resp = app.post_as(key, "audit_trail/purge", &[("id", "1")]).await;
        failures.check("POST purge".into(), &resp, 403, Some(KEY_NOT_ALLOWED));
    }
    for (method, path) in [
        (reqwest::Method::GET, "audit_trail/fetch"),
        (reqwest::Method::GET, "audit_trail/download/json"),
        (reqwest::Method::POST, "audit_trail/purge"),
    ] {
        let resp = app
            .call(method.clone(), path, Auth::None, &[("id", "1")])
            .await;
        failures.check(
            format!("{method} {path} without a key"),
            &resp,
            401,
            Some("Invalid auth_token"),
        );
        let resp = app
            .call(
                method.clone(),
                path,
                Auth::Header("roost_0_0"),
                &[("id", "1")],
            )
            .await;
        failures.check(
            format!("{method} {path} with a bad key"),
            &resp,
            401,
            Some("Unauthorized"),
        );
    }
    failures.assert_none();
    assert_eq!(
        super::audit_len(&app),
        before,
        "nothing purged, nothing added"
    );
}
