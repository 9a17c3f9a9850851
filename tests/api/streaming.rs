//! Lists are streamed with bounded memory: a 50 MB `users/list` from the real binary while its
//! RSS is watched, the scan limit's 503, a client that stops reading, `users/filter` pages, and
//! the bytes being those of the whole answer.

use std::time::{Duration, Instant};

use roost::auth::api_keys::issue_global_key;
use roost::domain::{AccessLevel, ApiKeyType, Email};
use roost::store::{NewUser, Store};
use serde_json::Value;

use crate::cli::{Sandbox, Server};
use crate::helpers::*;

const NOTE_CHARS: usize = 9_990;

/// A sandbox whose store holds `count` users with a note of `NOTE_CHARS` characters each, and an
/// admin key (returned).
fn sandbox_with_users(count: usize) -> (Sandbox, String) {
    let sandbox = Sandbox::new();
    let store = Store::open(&sandbox.data()).expect("store");
    let note = "n".repeat(NOTE_CHARS);
    for i in 0..count {
        let new = NewUser {
            email: Email::parse(&format!("user{i:05}@big.test")).unwrap(),
            access_level: AccessLevel::User,
            note: Some(note.clone()),
            two_factor_required: false,
        };
        store
            .add_user(&Actor::named("test"), new, None)
            .expect("add user");
    }
    let token = issue_global_key(&store, ApiKeyType::ReadOnly, "big", "tests").expect("key");
    (sandbox, token)
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

fn start(sandbox: &Sandbox, extra: &[&str]) -> Server {
    let data = sandbox.data_arg();
    let mut args = vec!["serve", "--bind", "127.0.0.1:0", "--data-dir", &data];
    args.extend_from_slice(extra);
    Server::spawn(sandbox.cmd(&args))
}

#[tokio::test]
async fn a_fifty_megabyte_user_list_streams_in_bounded_memory() {
    let (sandbox, token) = sandbox_with_users(5_000);
    // A cache that holds the whole file: what is measured is what a request costs, not the
    // cache's churn (bounded by `--db-cache-mb` and shared by all requests).
    let server = start(&sandbox, &["--db-cache-mb", "256"]);
    let pid = server.child.0.id();
    let client = client();
    // A first pass fills the database's page cache (bounded, shared by all requests): what is
    // measured after it is what a request itself costs.
    let warm = client
        .get(format!("{}/api/v1/users/list", server.address))
        .header("X-Canary-Auth-Token", &token)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);
    let mut warm = warm;
    while warm.chunk().await.expect("chunk").is_some() {}
    let before = rss_kb(pid);

    let response = client
        .get(format!("{}/api/v1/users/list", server.address))
        .header("X-Canary-Auth-Token", &token)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut response = response;
    let (mut total, mut users, mut peak) = (0usize, 0usize, before);
    let mut head = Vec::new();
    let mut tail = Vec::new();
    let marker = b"{\"access_level\":";
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        if head.len() < 64 {
            head.extend_from_slice(&chunk[..chunk.len().min(64)]);
        }
        // Count users across chunk boundaries: the end of the previous chunk plus this one.
        let mut window = tail.clone();
        window.extend_from_slice(&chunk);
        users += window.windows(marker.len()).filter(|w| w == marker).count();
        tail = chunk[chunk.len().saturating_sub(marker.len() - 1)..].to_vec();
        total += chunk.len();
        peak = peak.max(rss_kb(pid));
        // Read slowly, as a client on a slow link would: the server must not run ahead.
        if total % (4 << 20) < chunk.len() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(total > 50_000_000, "{total} bytes");
    assert_eq!(users, 5_000);
    assert!(head.starts_with(b"{\"result\":\"success\",\"users\":[{"));
    assert!(tail.ends_with(b"]}"));
    let grew_mb = peak.saturating_sub(before) as f64 / 1024.0;
    println!(
        "users/list: {total} bytes streamed; server RSS {before} kB before, {peak} kB at most"
    );
    assert!(
        grew_mb < 16.0,
        "the server's RSS grew by {grew_mb:.1} MB for a {} MB answer",
        total / 1_000_000
    );
}

#[tokio::test]
async fn lists_past_the_scan_limit_are_answered_busy_and_a_stalled_reader_lets_go() {
    let (sandbox, token) = sandbox_with_users(2_000);
    let server = start(
        &sandbox,
        &["--max-concurrent-scans", "1", "--write-timeout", "2s"],
    );
    // A client that asks for 20 MB and never reads: its stream holds the only scan permit.
    let address = server.address.trim_start_matches("http://").to_string();
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "GET /api/v1/users/list HTTP/1.1\r\nHost: x\r\nX-Canary-Auth-Token: {token}\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut stalled, request.as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let busy = client()
        .get(format!("{}/api/v1/users/filter", server.address))
        .query(&[("filter_str", "user"), ("limit", "1")])
        .header("X-Canary-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    let body: Value = busy.json().await.unwrap();
    assert_eq!(body["result"], "error");
    // Short reads are not scans: they go on.
    let get = client()
        .get(format!("{}/api/v1/user/get", server.address))
        .query(&[("email", "user00001@big.test")])
        .header("X-Canary-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    // The stalled client is cut off after the write timeout, and its permit comes back.
    let started = Instant::now();
    loop {
        let again = client()
            .get(format!("{}/api/v1/users/filter", server.address))
            .query(&[("filter_str", "user00001"), ("limit", "1")])
            .header("X-Canary-Auth-Token", &token)
            .send()
            .await
            .unwrap();
        if again.status() == 200 {
            println!("the stalled reader let go after {:?}", started.elapsed());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the stalled reader still holds the scan after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(stalled);
}

#[tokio::test]
async fn streamed_answers_are_byte_for_byte_the_whole_answer() {
    let app = spawn_app().await;
    let flock = app.create_flock("Ops").await;
    for (email, note) in [("b@x.io", "tab\there \"quoted\" ü"), ("a@x.io", "")] {
        app.add_user(email, "user").await;
        app.post("user/note/add", &[("email", email), ("note", note)])
            .await
            .ok();
        app.assign(email, &flock, "manager").await;
    }
    for (path, params) in [
        ("users/list", vec![]),
        ("users/list", vec![("limit", "1")]),
        ("users/filter", vec![("filter_str", "X.IO")]),
        ("users/filter", vec![("filter_str", "x.io"), ("limit", "1")]),
        ("flock/users", vec![("flock_id", flock.as_str())]),
        ("mail/queue", vec![]),
    ] {
        let resp = app.get(path, &params).await;
        resp.ok();
        let canonical = serde_json::to_string(&resp.body).unwrap();
        assert_eq!(resp.text, canonical, "{path} {params:?}");
    }
}

#[tokio::test]
async fn users_filter_pages_with_limit_and_cursor() {
    let app = spawn_app().await;
    for i in 0..7 {
        app.add_user(&format!("match{i}@x.io"), "user").await;
    }
    app.add_user("other@y.io", "user").await;
    app.post(
        "user/note/add",
        &[("email", "other@y.io"), ("note", "a MATCH in the note")],
    )
    .await
    .ok();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = vec![("filter_str", "match"), ("limit", "3")];
        if let Some(cursor) = &cursor {
            params.push(("cursor", cursor));
        }
        let body = app.get("users/filter", &params).await.ok().clone();
        let page: Vec<String> = body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_string())
            .collect();
        assert!(page.len() <= 3);
        seen.extend(page);
        match body.get("next_cursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let mut expected: Vec<String> = (0..7).map(|i| format!("match{i}@x.io")).collect();
    expected.push("other@y.io".into());
    assert_eq!(seen, expected);
    for limit in ["0", "1001", "x", "-1"] {
        app.get("users/filter", &[("filter_str", "match"), ("limit", limit)])
            .await
            .err(
                400,
                "Parameter 'limit' must be a whole number from 1 to 1000.",
            );
    }
}
