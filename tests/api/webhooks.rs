//! Webhooks against real HTTP receivers on loopback started by the tests (the app runs with
//! `--webhooks-allow-private`, except where the refusal itself is tested): signatures verify,
//! Slack and Teams bodies have their shapes, a receiver that is down gets the event after it
//! comes back, redirects are not followed, private targets are refused without the flag.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::console::Console;
use crate::helpers::*;

const SECRET: &str = "a receiver's shared secret";

/// One request a receiver got: lowercase header names, the body.
#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A minimal HTTP/1.1 receiver: records each request and answers `answer` (a status line and
/// headers), closing the connection.
#[derive(Clone)]
struct Receiver {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(answer: &'static str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::serve(listener, answer)
    }

    async fn start_on(port: u16, answer: &'static str) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        Receiver::serve(listener, answer)
    }

    fn serve(listener: TcpListener, answer: &'static str) -> Receiver {
        let receiver = Receiver {
            port: listener.local_addr().unwrap().port(),
            received: Arc::default(),
        };
        let received = Arc::clone(&receiver.received);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let received = Arc::clone(&received);
                tokio::spawn(async move {
                    let mut data = Vec::new();
                    let mut buffer = [0u8; 4096];
                    let (head, body_start) = loop {
                        let n = stream.read(&mut buffer).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        data.extend_from_slice(&buffer[..n]);
                        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                            break (String::from_utf8_lossy(&data[..at]).to_string(), at + 4);
                        }
                    };
                    let headers: HashMap<String, String> = head
                        .lines()
                        .skip(1)
                        .filter_map(|line| line.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                        .collect();
                    let length: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = data[body_start..].to_vec();
                    while body.len() < length {
                        let n = stream.read(&mut buffer).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        body.extend_from_slice(&buffer[..n]);
                    }
                    received.lock().unwrap().push(Received { headers, body });
                    let response =
                        format!("{answer}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        receiver
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn got(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (at most 15 s) until `count` requests came.
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.got();
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} requests came",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn app_allowing_private() -> TestApp {
    spawn_app_in(tempfile::tempdir().unwrap(), |config| {
        config.webhooks_allow_private = true;
        config.webhook_retry_base = Duration::from_millis(200);
    })
    .await
}

async fn add_webhook(
    admin: &Console,
    url: &str,
    format: &str,
    actions: &str,
) -> crate::console::Page {
    admin.get("/settings/webhooks").await;
    admin
        .post(
            "/settings/webhooks",
            &[
                ("url", url),
                ("format", format),
                ("actions", actions),
                ("secret", SECRET),
            ],
        )
        .await
}

fn verify(received: &Received) {
    let header = &received.headers["x-roost-signature"];
    let (t, v1) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .expect("t=…,v1=…");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(&received.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, expected, "the signature verifies");
    let age = crate::two_factor::now().abs_diff(t.parse::<u64>().unwrap());
    assert!(age < 60, "a fresh timestamp");
}

#[tokio::test]
async fn subscribed_events_are_delivered_signed_and_listed() {
    let app = app_allowing_private().await;
    let receiver = Receiver::start("HTTP/1.1 200 OK").await;
    let admin = app.console_as("boss@x.io", "admin").await;
    add_webhook(
        &admin,
        &receiver.url("/path-secret-7f3a"),
        "generic",
        "user_add, user_disable",
    )
    .await
    .redirects_to("/settings/webhooks");
    app.add_user("ann@x.io", "user").await;
    app.post("user/note/add", &[("email", "ann@x.io"), ("note", "n")])
        .await
        .ok();
    app.post("user/disable", &[("email", "ann@x.io")])
        .await
        .ok();
    let got = receiver.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.got().len(),
        2,
        "the note (not subscribed) was not sent"
    );
    for received in &got {
        verify(received);
        assert_eq!(received.headers["content-type"], "application/json");
    }
    let first = got[0].json();
    assert_eq!(first["event"]["action_type"], "user_add");
    assert_eq!(first["event"]["target"], "ann@x.io");
    // The entry's own id, as the trail lists it.
    let trail = app
        .get("audit_trail/fetch", &[("action_filter", "user_add")])
        .await;
    let listed = trail.ok()["audit_trail"].to_string();
    let id = first["event"]["id"].as_u64().unwrap();
    assert!(
        id > 0 && listed.contains(&format!("\"id\":{id}")),
        "{id}: {listed}"
    );
    assert_eq!(first["console"], app.console_url);
    assert_eq!(got[0].headers["x-roost-event"], "user_add");
    assert_eq!(got[1].json()["event"]["action_type"], "user_disable");
    // A body tampered with fails the check.
    let mut tampered = got[0].clone();
    tampered.body.push(b' ');
    assert!(std::panic::catch_unwind(|| verify(&tampered)).is_err());
    // The page lists both deliveries.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = admin.get("/settings/webhooks").await;
        if page.body.matches("delivered (HTTP 200)").count() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", page.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The URL's path is not shown (a Slack or Teams URL's secret lives there).
    assert!(
        !admin
            .get("/settings/webhooks")
            .await
            .body
            .contains("path-secret-7f3a")
    );
}

#[tokio::test]
async fn slack_and_teams_get_their_shapes_and_a_test_event() {
    let app = app_allowing_private().await;
    let slack = Receiver::start("HTTP/1.1 200 OK").await;
    let teams = Receiver::start("HTTP/1.1 200 OK").await;
    let admin = app.console_as("boss@x.io", "admin").await;
    add_webhook(&admin, &slack.url("/services/T/B/x"), "slack", "").await;
    add_webhook(&admin, &teams.url("/webhookb2/x"), "teams", "").await;
    let page = admin.get("/settings/webhooks").await;
    page.assert_contains("id=\"test-webhook-1\"");
    admin
        .post("/settings/webhooks/1/test", &[])
        .await
        .redirects_to("/settings/webhooks");
    admin
        .post("/settings/webhooks/2/test", &[])
        .await
        .redirects_to("/settings/webhooks");
    // Slack, subscribed to every change, also got both webhooks' additions (its own too).
    let slack_got = slack.wait_for(3).await;
    for received in &slack_got {
        let body = received.json();
        let object = body.as_object().unwrap();
        assert_eq!(
            object.len(),
            1,
            "Slack's incoming webhook body is {{\"text\": …}}: {body}"
        );
        assert!(body["text"].as_str().unwrap().starts_with("Roost: "));
    }
    assert!(slack_got.iter().any(|r| {
        r.json()["text"]
            .as_str()
            .unwrap()
            .starts_with("Roost: Test event sent to webhook 1")
    }));
    // Teams got its own addition, then the test event.
    let teams_got = teams.wait_for(2).await;
    let card = teams_got
        .iter()
        .map(Received::json)
        .find(|card| card["summary"].as_str().unwrap().contains("Test event"))
        .expect("the test event");
    assert_eq!(card["@type"], "MessageCard");
    assert_eq!(card["@context"], "https://schema.org/extensions");
    assert!(
        card["summary"]
            .as_str()
            .unwrap()
            .contains("Test event sent to webhook 2")
    );
    assert!(card["text"].is_string() && card["title"].is_string());
    // Every change (the default) reaches both: a user added.
    app.add_user("ann@x.io", "user").await;
    slack.wait_for(4).await;
    teams.wait_for(3).await;
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_event_when_it_comes_back() {
    let app = app_allowing_private().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin = app.console_as("boss@x.io", "admin").await;
    add_webhook(
        &admin,
        &format!("http://127.0.0.1:{port}/hook"),
        "generic",
        "user_add",
    )
    .await
    .redirects_to("/settings/webhooks");
    let started = Instant::now();
    app.add_user("ann@x.io", "user").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the change didn't wait for the receiver"
    );
    // A failed try is on record, the event still queued.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (log, waiting) = app.store.webhook_deliveries(1).unwrap();
        if log.iter().any(|d| !d.delivered) && waiting == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no failed try recorded: {log:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let receiver = Receiver::start_on(port, "HTTP/1.1 200 OK").await;
    let got = receiver.wait_for(1).await;
    verify(&got[0]);
    assert_eq!(got[0].json()["event"]["target"], "ann@x.io");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (log, waiting) = app.store.webhook_deliveries(1).unwrap();
        if waiting == 0 && log.first().is_some_and(|d| d.delivered && d.attempts >= 2) {
            break;
        }
        assert!(Instant::now() < deadline, "{log:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = app_allowing_private().await;
    let inside = Receiver::start("HTTP/1.1 200 OK").await;
    let location: &'static str = Box::leak(
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {}",
            inside.url("/internal")
        )
        .into_boxed_str(),
    );
    let redirecting = Receiver::start(location).await;
    let admin = app.console_as("boss@x.io", "admin").await;
    add_webhook(&admin, &redirecting.url("/hook"), "generic", "user_add").await;
    app.add_user("ann@x.io", "user").await;
    redirecting.wait_for(1).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (log, _) = app.store.webhook_deliveries(1).unwrap();
        if log.iter().any(|d| d.outcome == "failed: HTTP 302") {
            break;
        }
        assert!(Instant::now() < deadline, "{log:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(inside.got().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn private_targets_and_bad_forms_are_refused() {
    let app = spawn_app().await;
    let admin = app.console_as("boss@x.io", "admin").await;
    for (url, format, secret, message) in [
        (
            "http://127.0.0.1:9/hook",
            "generic",
            SECRET,
            "127.0.0.1 is 127.0.0.1, not a public address",
        ),
        (
            "http://localhost:9/hook",
            "generic",
            SECRET,
            "not a public address",
        ),
        (
            "http://169.254.169.254/latest",
            "generic",
            SECRET,
            "not a public address",
        ),
        ("http://[::1]:9/", "slack", SECRET, "not a public address"),
        (
            "ftp://example.com/x",
            "generic",
            SECRET,
            "not an http or https URL",
        ),
        (
            "http://example.com/x",
            "carrier-pigeon",
            SECRET,
            "Format: choose generic, slack or teams.",
        ),
        (
            "http://93.184.216.34/x",
            "generic",
            "short",
            "Secret: at least 16 characters",
        ),
    ] {
        admin.get("/settings/webhooks").await;
        let page = admin
            .post(
                "/settings/webhooks",
                &[
                    ("url", url),
                    ("format", format),
                    ("actions", ""),
                    ("secret", secret),
                ],
            )
            .await;
        assert_eq!(page.status, 400, "{url}");
        page.assert_contains(message);
    }
    admin.get("/settings/webhooks").await;
    let page = admin
        .post(
            "/settings/webhooks",
            &[
                ("url", "http://93.184.216.34/x"),
                ("format", "generic"),
                ("actions", "user_add, no_such_action"),
                ("secret", SECRET),
            ],
        )
        .await;
    assert_eq!(page.status, 400);
    page.assert_contains("&#39;no_such_action&#39; is not an action type");
    assert!(app.store.webhooks().unwrap().is_empty());
    // Not for users, not without the form's token.
    let user = app.console_as("ann@x.io", "user").await;
    let status = user.get("/settings/webhooks").await.status;
    assert!(status == 403 || status == 303, "{status}");
    let forged = admin
        .post_raw(
            "/settings/webhooks",
            &[
                ("url", "http://93.184.216.34/x"),
                ("format", "generic"),
                ("secret", SECRET),
            ],
        )
        .await;
    assert!(forged.status >= 400);
    assert!(app.store.webhooks().unwrap().is_empty());
}

/// A console moved through its export keeps its webhooks (their sealed secrets open on the new
/// machine: the next event is signed as before) and its invitations (the link still works).
#[tokio::test]
async fn webhooks_and_invitations_move_with_an_export() {
    let app = app_allowing_private().await;
    let receiver = Receiver::start("HTTP/1.1 200 OK").await;
    let admin = app.console_as("boss@x.io", "admin").await;
    add_webhook(&admin, &receiver.url("/hook"), "generic", "user_add")
        .await
        .redirects_to("/settings/webhooks");
    let invitation =
        app.post("invite/create", &[("max_uses", "2")]).await.ok()["invitation"].clone();
    let link = invitation["link"].as_str().unwrap().to_string();
    let path = link.strip_prefix(&app.console_url).unwrap().to_string();
    let (sandbox, file, counts) = crate::export::exported(&app);
    assert_eq!((counts.webhooks, counts.invitations), (1, 1));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(SECRET),
        "a clear webhook secret in the export"
    );
    assert!(
        !text.contains(&path[8..]),
        "an invitation's link in the export"
    );
    // Without the secrets key the sealed webhook secret can't move: refused, nothing imported.
    let keyless = tempfile::tempdir().unwrap();
    let output = crate::export::import(&sandbox, &file, keyless.path());
    assert!(!output.status.success());
    assert!(
        output.stderr.contains("webhook secrets"),
        "{}",
        output.stderr
    );
    assert!(!keyless.path().join("roost.redb").exists());
    let target = crate::export::data_dir_with_secrets_key_of(&app);
    let output = crate::export::import(&sandbox, &file, target.path());
    assert!(output.status.success(), "{}", output.stderr);
    assert!(
        output.stdout.contains("1 webhooks, 1 invitations"),
        "{}",
        output.stdout
    );
    let before = app.store.webhooks().unwrap();
    drop(app);

    let moved = spawn_app_in(target, |config| {
        config.webhooks_allow_private = true;
        config.webhook_retry_base = Duration::from_millis(200);
    })
    .await;
    assert_eq!(moved.store.webhooks().unwrap(), before);
    moved.add_user("cy@x.io", "user").await;
    let got = receiver.wait_for(1).await;
    verify(&got[0]);
    assert_eq!(got[0].json()["event"]["target"], "cy@x.io");
    // A webhook added now gets a new id.
    let admin = Console::new(&moved);
    admin.login("boss@x.io", crate::console::PASSWORD).await;
    add_webhook(&admin, &receiver.url("/second"), "slack", "")
        .await
        .redirects_to("/settings/webhooks");
    let ids: Vec<u64> = moved
        .store
        .webhooks()
        .unwrap()
        .iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    // The invitation: listed as it was, its link still opens the sign-up page.
    let listed = moved.get("invites/list", &[]).await.ok()["invitations"].clone();
    assert_eq!(listed[0]["id"], invitation["id"]);
    assert_eq!(listed[0]["max_uses"], 2);
    let page = Console::new(&moved).get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
}

/// A shutdown lets the delivery under way finish and be recorded (so it isn't sent twice after
/// the restart); what is queued after stays queued for the next start.
#[tokio::test]
async fn a_stop_finishes_the_delivery_under_way_and_leaves_the_rest_queued() {
    let app = app_allowing_private().await;
    // A receiver that takes 1.5 s to answer, counting the requests it was sent.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let arrived = Arc::new(Mutex::new(0usize));
    let counter = Arc::clone(&arrived);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buffer = [0u8; 8192];
                let _ = stream.read(&mut buffer).await;
                *counter.lock().unwrap() += 1;
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    let admin = app.console_as("boss@x.io", "admin").await;
    add_webhook(
        &admin,
        &format!("http://127.0.0.1:{port}/slow"),
        "generic",
        "user_add",
    )
    .await
    .redirects_to("/settings/webhooks");
    let webhook = app.store.webhooks().unwrap()[0].id;
    app.add_user("ann@x.io", "user").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while *arrived.lock().unwrap() == 0 {
        assert!(Instant::now() < deadline, "the delivery never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let asked = Instant::now();
    assert!(app.webhook_sender.stop(Duration::from_secs(10)).await);
    assert!(
        asked.elapsed() >= Duration::from_millis(800),
        "the stop waited for the answer"
    );
    assert!(!app.webhook_sender.is_running());
    let (deliveries, _) = app.store.webhook_deliveries(webhook).unwrap();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert!(deliveries[0].delivered, "{deliveries:?}");
    assert!(app.store.due_deliveries(u64::MAX, 10).unwrap().is_empty());
    // Stopped: the next event waits in the queue for the next start.
    app.add_user("bob@x.io", "user").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(*arrived.lock().unwrap(), 1);
    assert_eq!(app.store.due_deliveries(u64::MAX, 10).unwrap().len(), 1);
}
