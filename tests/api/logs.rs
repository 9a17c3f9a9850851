//! What the real binary logs: one line per request with a redacted path, in text or JSON, and
//! never a secret (an API key in a query string, a password, a one-time link).

use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::cli::{Sandbox, Server};
use crate::console::Console;

const PASSWORD: &str = "correct horse battery staple";

/// The log so far, once it holds a line containing `needle` (the writer is a thread of its own:
/// a line may come a moment after the answer).
fn log_with(path: &std::path::Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(needle) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the server logging to a file in `format`, takes it through the setup link (a secret
/// path and a password), and an API call with its key in the query string. Returns the log and
/// the secrets that must not be in it.
async fn exercise(format: &str) -> (String, Vec<String>) {
    let sandbox = Sandbox::new();
    let token = sandbox.create_token("admin");
    let log_path = sandbox.dir.path().join("stderr.log");
    let log_file = std::fs::File::create(&log_path).expect("log file");
    let data = sandbox.data_arg();
    let cmd = sandbox.cmd(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        "--log-format",
        format,
    ]);
    let mut server = Server::spawn_with_stderr(cmd, Stdio::from(log_file));
    let setup_line = server.wait_for_line(|line| line.contains("/setup/"));
    let setup_url = setup_line
        .split_whitespace()
        .find(|word| word.contains("/setup/"))
        .expect("setup link")
        .to_string();
    let setup_secret = setup_url.rsplit('/').next().expect("secret").to_string();
    let setup_path = format!("/setup/{setup_secret}");

    server
        .call(&token, Method::GET, "ping", &[])
        .await
        .ok_bare();
    let console = Console::at(&server.address);
    assert_eq!(console.get(&setup_path).await.status, 200);
    let fields = [
        ("email", "first@x.io"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    console.post(&setup_path, &fields).await;
    console.get("/logout-page-that-does-not-exist").await;
    let log = log_with(&log_path, "/logout-page-that-does-not-exist");
    let token_secret = token.rsplit('_').next().expect("secret part").to_string();
    (
        log,
        vec![token, token_secret, setup_secret, PASSWORD.to_string()],
    )
}

#[tokio::test]
async fn text_lines_name_each_request_with_a_redacted_path_and_no_secret() {
    let (log, secrets) = exercise("text").await;
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "{secret:?} is in the log:\n{log}"
        );
    }
    assert!(!log.contains("auth_token"), "{log}");
    let requests: Vec<&str> = log.lines().filter(|l| l.contains(" answered ")).collect();
    assert!(
        requests
            .iter()
            .any(|l| l.contains("method=GET path=/api/v1/ping status=200 ms=")),
        "{log}"
    );
    assert!(
        requests
            .iter()
            .any(|l| l.contains("method=POST path=/setup/[redacted] status=303")),
        "{log}"
    );
    assert!(
        requests.iter().all(|l| l.contains("client=127.0.0.1")),
        "{log}"
    );
}

#[tokio::test]
async fn json_lines_are_one_object_each_with_the_requests_fields() {
    let (log, secrets) = exercise("json").await;
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "{secret:?} is in the log:\n{log}"
        );
    }
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let ping = lines
        .iter()
        .find(|line| line["path"] == "/api/v1/ping")
        .expect("the ping's line");
    assert_eq!(ping["message"], "answered");
    assert_eq!(ping["status"], 200);
    assert_eq!(ping["method"], "GET");
    assert_eq!(ping["client"], "127.0.0.1");
    assert!(ping["ms"].is_number(), "{ping}");
    assert!(
        lines
            .iter()
            .any(|line| line["path"] == "/setup/[redacted]" && line["status"] == 303),
        "{log}"
    );
}
