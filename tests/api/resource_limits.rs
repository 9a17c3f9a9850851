//! Nothing a client sends can hold the server: bodies that never come, connections hoarded from
//! one address, and the no-store rule on every answer that carries data.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::console::Console;
use crate::helpers::*;

fn host_port(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_string()
}

/// Everything the server sends on `stream` until it closes the connection, or what came within
/// `limit` if it doesn't.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&received).into(), true),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => return (String::from_utf8_lossy(&received).into(), false),
        }
    }
}

async fn app_with_short_body_timeouts() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    spawn_app_in(dir, |config| {
        config.request_limits.body_chunk_timeout = Duration::from_secs(1);
        config.request_limits.body_total_timeout = Duration::from_secs(3);
    })
    .await
}

#[tokio::test]
async fn a_body_that_never_arrives_is_answered_408_and_the_connection_closed() {
    let app = app_with_short_body_timeouts().await;
    let before = app.snapshot().await;
    let api = format!(
        "POST /api/v1/user/add?auth_token={} HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\n",
        app.admin_token
    );
    let console = "POST /login HTTP/1.1\r\nHost: x\r\n\
                   Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\n";
    for (what, head, expected_type) in [
        ("api", api.as_str(), "application/json"),
        ("console", console, "text/html"),
    ] {
        let started = Instant::now();
        let mut stream = TcpStream::connect(host_port(&app)).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
        let waited = started.elapsed();
        assert!(answer.starts_with("HTTP/1.1 408"), "{what}: {answer}");
        assert!(answer.contains(expected_type), "{what}: {answer}");
        assert!(closed, "{what}: the connection stays open");
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
            "{what}: answered after {waited:?}"
        );
    }
    assert_eq!(before, app.snapshot().await, "nothing changed");
}

#[tokio::test]
async fn a_body_trickling_in_is_cut_off_at_the_total_deadline() {
    let app = app_with_short_body_timeouts().await;
    let mut stream = TcpStream::connect(host_port(&app)).await.unwrap();
    let head = format!(
        "POST /api/v1/user/add HTTP/1.1\r\nHost: x\r\nX-Canary-Auth-Token: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n",
        app.admin_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // A byte every half second: each piece comes within the per-piece timeout.
    let mut answer = String::new();
    while started.elapsed() < Duration::from_secs(8) {
        if stream.write_all(b"x").await.is_err() {
            break;
        }
        let mut buffer = [0u8; 2048];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buffer)).await
        {
            answer.push_str(&String::from_utf8_lossy(&buffer[..n]));
            break;
        }
    }
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        waited >= Duration::from_millis(2500) && waited < Duration::from_secs(6),
        "cut off after {waited:?}"
    );
}

#[tokio::test]
async fn the_api_refuses_a_bad_key_before_reading_the_body() {
    let app = app_with_short_body_timeouts().await;
    for head in [
        "POST /api/v1/user/add?auth_token=wrong HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n",
        "POST /api/v1/user/add HTTP/1.1\r\nHost: x\r\nX-Canary-Auth-Token: wrong\r\nContent-Length: 60000\r\n\r\n",
    ] {
        let started = Instant::now();
        let mut stream = TcpStream::connect(host_port(&app)).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut buffer = [0u8; 2048];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("an answer")
            .unwrap();
        let answer = String::from_utf8_lossy(&buffer[..n]);
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        assert!(
            started.elapsed() < Duration::from_millis(800),
            "it waited for the body: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_connections() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_in(dir, |config| {
        config.request_limits.connections_per_client = 5;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(host_port(&app)).await.unwrap();
        // A request answered proves the server took this connection (they may be taken out of
        // order otherwise).
        stream
            .write_all(b"GET /static/roost.svg HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("answered")
            .unwrap();
        assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    // The sixth is accepted and shut at once, before it can send anything.
    let mut extra = TcpStream::connect(host_port(&app)).await.unwrap();
    let started = Instant::now();
    let _ = extra
        .write_all(b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (answer, closed) = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    assert!(
        closed && answer.is_empty(),
        "served past the limit: {answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // One of the five goes: there is room again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = TcpStream::connect(host_port(&app)).await.unwrap();
    again
        .write_all(b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut again, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn no_answer_with_data_may_be_cached() {
    let app = spawn_app().await;
    app.user_with_password("ann@x.io", "user").await;
    let admin = app.console_as("root@x.io", "admin").await;
    let flock = app.create_flock("Ops").await;
    let id = app.user("ann@x.io").await["id"].as_u64().unwrap();
    let pages = [
        "/".to_string(),
        "/users".into(),
        "/users?q=ann".into(),
        "/users/new".into(),
        format!("/users/{id}"),
        format!("/users/{id}/remove"),
        "/flocks".into(),
        format!("/flocks/{flock}"),
        "/api-keys".into(),
        "/settings".into(),
        "/account".into(),
        "/account/two-factor".into(),
        "/no-such-page".into(),
    ];
    for page in &pages {
        let answer = admin.get(page).await;
        assert_eq!(
            answer
                .headers
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{page} (status {})",
            answer.status
        );
    }
    let anonymous = Console::new(&app);
    for page in ["/login", "/forgot-password", "/account", "/setup/nothing"] {
        let answer = anonymous.get(page).await;
        assert_eq!(
            answer
                .headers
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{page}"
        );
    }
    for path in ["users/list", "user/get?email=ann@x.io", "no/such/endpoint"] {
        let response = app
            .client
            .get(format!("{}/api/v1/{path}", app.address))
            .header("X-Canary-Auth-Token", &app.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    }
    // The stylesheet may be cached: it holds nobody's data.
    let css = anonymous.get("/static/roost.css").await;
    assert_eq!(css.headers["cache-control"], "public, max-age=3600");
}
