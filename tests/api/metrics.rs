//! `/metrics`: off unless asked for, behind its bearer token or on a listener of its own, and
//! counting what ran (requests by route and status, logins by outcome, throttled requests) and
//! what is (users, sessions, mail queue, database size, last backup, hashing queue).

use crate::console::{Console, PASSWORD};
use crate::helpers::*;

pub(crate) const TOKEN: &str = "metrics-token-0123456789abcdef";

pub(crate) async fn with_token() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    spawn_app_in(dir, |config| config.metrics_token = Some(TOKEN.into())).await
}

/// GET `url`/metrics with `token` as the bearer token: status, WWW-Authenticate, body.
pub(crate) async fn scrape(
    app: &TestApp,
    base: &str,
    token: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut request = app.client.get(format!("{base}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("scrape");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_string());
    (status, challenge, response.text().await.unwrap())
}

/// `text` read by a Prometheus text-format parser, checked whole: every sample line was taken
/// (the parser skips what it can't read), and every metric is documented.
fn parsed(text: &str) -> prometheus_parse::Scrape {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_string())))
        .expect("Prometheus text format");
    let sample_lines = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .count();
    let taken: usize = scrape
        .samples
        .iter()
        .map(|sample| match &sample.value {
            prometheus_parse::Value::Histogram(buckets) => buckets.len(),
            _ => 1,
        })
        .sum();
    assert_eq!(
        taken, sample_lines,
        "lines the parser could not read:\n{text}"
    );
    for sample in &scrape.samples {
        let family = sample
            .metric
            .trim_end_matches("_count")
            .trim_end_matches("_sum");
        assert!(
            scrape.docs.contains_key(family),
            "{} has no HELP",
            sample.metric
        );
    }
    scrape
}

fn matching<'a>(
    scrape: &'a prometheus_parse::Scrape,
    name: &'a str,
    labels: &'a [(&str, &str)],
) -> impl Iterator<Item = &'a prometheus_parse::Sample> {
    scrape.samples.iter().filter(move |sample| {
        sample.metric == name
            && labels
                .iter()
                .all(|(key, value)| sample.labels.get(key) == Some(*value))
    })
}

/// Every sample of `text` named `name` whose labels include `labels`, summed (0 when none).
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let scrape = parsed(text);
    matching(&scrape, name, labels)
        .map(|sample| match sample.value {
            prometheus_parse::Value::Counter(value)
            | prometheus_parse::Value::Gauge(value)
            | prometheus_parse::Value::Untyped(value) => value,
            ref other => panic!("{name} is not a single value: {other:?}"),
        })
        .sum()
}

/// The buckets (upper bound, cumulative count) of the histogram `name` with `labels`.
fn buckets(text: &str, name: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
    let scrape = parsed(text);
    let found: Vec<_> = matching(&scrape, name, labels).collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}");
    match &found[0].value {
        prometheus_parse::Value::Histogram(counts) => counts
            .iter()
            .map(|count| (count.less_than, count.count))
            .collect(),
        other => panic!("{name} is not a histogram: {other:?}"),
    }
}

#[tokio::test]
async fn metrics_are_off_unless_configured() {
    let app = spawn_app().await;
    let (status, _, body) = scrape(&app, &app.address, Some(TOKEN)).await;
    assert_eq!(status, 404);
    assert!(body.contains("--metrics-token"), "{body}");
}

#[tokio::test]
async fn the_token_is_required_and_compared_whole() {
    let app = with_token().await;
    for token in [
        None,
        Some(""),
        Some("metrics-token-0123456789abcde"),
        Some("metrics-token-0123456789abcdef0"),
        Some(&app.admin_token[..]),
    ] {
        let (status, challenge, body) = scrape(&app, &app.address, token).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"roost metrics\""));
        assert!(!body.contains("roost_"), "{body}");
    }
    // Not through the query string or a basic header either.
    let response = app
        .client
        .get(format!("{}/metrics?token={TOKEN}", app.address))
        .basic_auth("metrics", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let (status, _, body) = scrape(&app, &app.address, Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn requests_are_counted_by_route_and_status_never_by_raw_path() {
    let app = with_token().await;
    app.add_user("ann@x.io", "user").await;
    for _ in 0..3 {
        app.get("user/get", &[("email", "ann@x.io")]).await.ok();
    }
    app.get("user/get", &[("email", "nobody@x.io")])
        .await
        .err_status(404);
    let unknown = app
        .client
        .get(format!("{}/secret-looking-path-4242", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);

    let (status, _, text) = scrape(&app, &app.address, Some(TOKEN)).await;
    assert_eq!(status, 200);
    let route = ("route", "/api/v1/user/get");
    let requests = "roost_http_requests_total";
    assert_eq!(
        sample(
            &text,
            requests,
            &[route, ("method", "GET"), ("status", "200")]
        ),
        3.0
    );
    assert_eq!(sample(&text, requests, &[route, ("status", "404")]), 1.0);
    assert_eq!(
        sample(
            &text,
            "roost_http_request_duration_seconds_count",
            &[route, ("status", "200")]
        ),
        3.0
    );
    let latency = buckets(
        &text,
        "roost_http_request_duration_seconds",
        &[route, ("status", "200")],
    );
    assert_eq!(latency.last(), Some(&(f64::INFINITY, 3.0)), "{latency:?}");
    assert!(latency.windows(2).all(|pair| pair[0].1 <= pair[1].1));
    assert_eq!(
        sample(
            &text,
            requests,
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert!(!text.contains("secret-looking-path"), "raw path in labels");
    assert!(!text.contains("ann@x.io"), "an email in the metrics");
    assert!(!text.contains(&app.admin_token), "a token in the metrics");
}

#[tokio::test]
async fn logins_and_throttled_requests_are_counted_by_outcome() {
    let app = with_token().await;
    app.user_with_password("ann@x.io", "user").await;
    let console = Console::new(&app);
    console.login("ann@x.io", "wrong password!").await;
    console.login("ann@x.io", PASSWORD).await.redirects_to("/");
    // Bad API keys from one address: refused, then throttled.
    let mut throttled = 0;
    for _ in 0..30 {
        let status = app.get_as("not-a-key", "ping", &[]).await.status;
        if status == 429 {
            throttled += 1;
        }
    }
    assert!(throttled > 0, "no call was throttled");

    let (_, _, text) = scrape(&app, &app.address, Some(TOKEN)).await;
    let logins = "roost_logins_total";
    assert_eq!(
        sample(&text, logins, &[("step", "password"), ("outcome", "wrong")]),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            logins,
            &[("step", "password"), ("outcome", "verified")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "roost_throttled_requests_total",
            &[("route", "/api/v1/ping")]
        ),
        f64::from(throttled)
    );
}

#[tokio::test]
async fn gauges_show_the_state_at_scrape_time() {
    let app = with_token().await;
    let (_, _, text) = scrape(&app, &app.address, Some(TOKEN)).await;
    assert_eq!(sample(&text, "roost_users", &[]), 0.0);
    assert_eq!(sample(&text, "roost_last_backup_success", &[]), -1.0);
    assert_eq!(
        sample(&text, "roost_last_backup_timestamp_seconds", &[]),
        0.0
    );
    assert!(sample(&text, "roost_database_size_bytes", &[]) > 0.0);
    assert!(sample(&text, "roost_password_hash_queue_capacity", &[]) >= 1.0);
    assert_eq!(sample(&text, "roost_password_hash_queue_depth", &[]), 0.0);

    // Two users, their welcome mails held in the queue (its sender stopped), one backup.
    app.mail_sender
        .stop(std::time::Duration::from_secs(5))
        .await;
    for email in ["a@x.io", "b@x.io"] {
        app.post("user/add", &[("email", email), ("access_level", "user")])
            .await
            .ok();
    }
    app.store
        .backup(&app.data_dir.join("one.backup"))
        .expect("backup");
    let (_, _, text) = scrape(&app, &app.address, Some(TOKEN)).await;
    assert_eq!(sample(&text, "roost_users", &[]), 2.0);
    assert_eq!(sample(&text, "roost_mail_queue_depth", &[]), 2.0);
    assert!(sample(&text, "roost_mail_queue_oldest_age_seconds", &[]) >= 0.0);
    assert_eq!(sample(&text, "roost_last_backup_success", &[]), 1.0);
    assert!(sample(&text, "roost_last_backup_timestamp_seconds", &[]) > 1.7e9);
    assert!(sample(&text, "roost_store_changes_total", &[]) >= 2.0);
    // A failed backup (its file exists already) shows as failed.
    assert!(app.store.backup(&app.data_dir.join("one.backup")).is_err());
    let (_, _, text) = scrape(&app, &app.address, Some(TOKEN)).await;
    assert_eq!(sample(&text, "roost_last_backup_success", &[]), 0.0);
}

#[tokio::test]
async fn a_metrics_listener_of_its_own_serves_only_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir, |config| {
        config.metrics_bind = Some("127.0.0.1:0".into());
    })
    .await;
    let metrics = app.metrics_address.clone().expect("metrics listener");
    // Open there (no token configured), off on the main listener.
    let (status, _, text) = scrape(&app, &metrics, None).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("roost_users"), "{text}");
    assert_eq!(scrape(&app, &app.address, None).await.0, 404);
    // Nothing else is served there.
    for path in ["/api/v1/ping", "/healthz", "/login"] {
        let response = app
            .client
            .get(format!("{metrics}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404, "{path}");
    }

    // With a token too, the token is asked there.
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir, |config| {
        config.metrics_bind = Some("127.0.0.1:0".into());
        config.metrics_token = Some(TOKEN.into());
    })
    .await;
    let metrics = app.metrics_address.clone().expect("metrics listener");
    assert_eq!(scrape(&app, &metrics, None).await.0, 401);
    assert_eq!(scrape(&app, &metrics, Some(TOKEN)).await.0, 200);
    assert_eq!(scrape(&app, &app.address, Some(TOKEN)).await.0, 200);
}
