//! Prometheus metrics. Counters and histograms are updated as requests and logins run; the
//! gauges (users, sessions, mail queue, database size, last backup, hashing queue, writer) are
//! read when `/metrics` is scraped, so they cost the requests nothing. Each server has its own
//! registry (no global recorder): two consoles in one process, as in the tests, don't mix.
//!
//! `/metrics` is off unless `--metrics-token` (then it answers on the main listener to
//! `Authorization: Bearer TOKEN`) or `--metrics-bind` (a listener of its own, for a network only
//! the scraper reaches; the token is asked there too when both are given) is set.

mod endpoint;

use std::path::Path;
use std::sync::Arc;

use actix_web::http::StatusCode;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

pub use endpoint::{MetricsAccess, routes};

use crate::auth::passwords::PasswordHasher;
use crate::store::Store;

/// Where the gauges are read from when `/metrics` is scraped.
pub struct Sources<'a> {
    pub store: &'a Store,
    pub hasher: &'a PasswordHasher,
    pub data_dir: &'a Path,
}

/// Request latency buckets, seconds: from a cached read (tens of µs) to a slow export.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    5.0,
];

/// The route label of a request that matched no route: its path is not used (any client could
/// grow the label set without bound).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The metrics of one server.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    throttled: IntCounterVec,
    logins: IntCounterVec,
    gauges: Gauges,
}

/// Read at scrape time.
struct Gauges {
    users: IntGauge,
    sessions: IntGauge,
    mail_queue: IntGauge,
    mail_oldest_age: IntGauge,
    database_bytes: IntGauge,
    last_backup_time: IntGauge,
    last_backup_success: IntGauge,
    hash_in_flight: IntGauge,
    hash_capacity: IntGauge,
    writer_batches: IntGauge,
    writer_changes: IntGauge,
    writer_redone: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("roost".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from a request's headers to its answer",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "status"],
        )?;
        let throttled = IntCounterVec::new(
            Opts::new(
                "throttled_requests_total",
                "Requests refused for coming too often (429)",
            ),
            &["route"],
        )?;
        let logins = IntCounterVec::new(
            Opts::new("logins_total", "Login steps by outcome"),
            &["step", "outcome"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(throttled.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let gauge = IntGauge::new(name, help)?;
            registry.register(Box::new(gauge.clone()))?;
            Ok(gauge)
        };
        let gauges = Gauges {
            users: gauge("users", "User accounts")?,
            sessions: gauge("sessions", "Console sessions stored (not yet swept)")?,
            mail_queue: gauge("mail_queue_depth", "Mails waiting to be delivered")?,
            mail_oldest_age: gauge(
                "mail_queue_oldest_age_seconds",
                "Age of the oldest mail waiting to be delivered (0 when none waits)",
            )?,
            database_bytes: gauge("database_size_bytes", "Size of the database file")?,
            last_backup_time: gauge(
                "last_backup_timestamp_seconds",
                "When the last backup since start ended, Unix seconds (0: none yet)",
            )?,
            last_backup_success: gauge(
                "last_backup_success",
                "1 if the last backup since start succeeded, 0 if it failed, -1 if none ran",
            )?,
            hash_in_flight: gauge(
                "password_hash_queue_depth",
                "Password hashes and checks queued or running",
            )?,
            hash_capacity: gauge(
                "password_hash_queue_capacity",
                "Password hashes and checks that may be queued or running before new ones are refused",
            )?,
            writer_batches: gauge(
                "store_commits_total",
                "Batches of changes the store's writer committed since start",
            )?,
            writer_changes: gauge(
                "store_changes_total",
                "Changes the store's writer applied since start",
            )?,
            writer_redone: gauge(
                "store_batches_redone_total",
                "Batches redone one change at a time (a change was refused or read outside its transaction)",
            )?,
        };
        Ok(Metrics(Arc::new(Inner {
            registry,
            requests,
            latency,
            throttled,
            logins,
            gauges,
        })))
    }

    /// Counts an answered request. `route` is the matched route pattern (never the raw path).
    pub fn request(&self, route: &str, method: &str, status: StatusCode, seconds: f64) {
        let status_label = status.as_str();
        let inner = &self.0;
        inner
            .requests
            .with_label_values(&[route, method, status_label])
            .inc();
        inner
            .latency
            .with_label_values(&[route, status_label])
            .observe(seconds);
        if status == StatusCode::TOO_MANY_REQUESTS {
            inner.throttled.with_label_values(&[route]).inc();
        }
    }

    /// Counts a login step (`password`, `second_factor`) by how it ended.
    pub fn login(&self, step: &str, outcome: &str) {
        self.0.logins.with_label_values(&[step, outcome]).inc();
    }

    /// The text exposition, with the gauges read now from `sources`.
    pub fn render(&self, sources: &Sources<'_>) -> Result<String, String> {
        let gauges = &self.0.gauges;
        let store = sources.store;
        let now = crate::store::now_unix();
        let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        gauges
            .users
            .set(count(store.user_count().map_err(|e| e.to_string())?));
        gauges
            .sessions
            .set(count(store.session_count().map_err(|e| e.to_string())?));
        let queue = store.mail_queue().map_err(|e| e.to_string())?;
        gauges.mail_queue.set(count(queue.len() as u64));
        let oldest = queue.iter().map(|mail| mail.created).min();
        gauges
            .mail_oldest_age
            .set(oldest.map_or(0, |created| count(now.saturating_sub(created))));
        let database = sources.data_dir.join(crate::store::DATABASE_FILE);
        gauges.database_bytes.set(
            std::fs::metadata(&database)
                .map(|meta| count(meta.len()))
                .unwrap_or(0),
        );
        match store.last_backup() {
            Some(backup) => {
                gauges.last_backup_time.set(count(backup.at));
                gauges.last_backup_success.set(i64::from(backup.succeeded));
            }
            None => {
                gauges.last_backup_time.set(0);
                gauges.last_backup_success.set(-1);
            }
        }
        let hasher = sources.hasher;
        gauges.hash_in_flight.set(count(hasher.in_flight() as u64));
        gauges
            .hash_capacity
            .set(count((hasher.workers() + hasher.queue_capacity()) as u64));
        let (batches, changes, redone) = store.writer_counts();
        gauges.writer_batches.set(count(batches));
        gauges.writer_changes.set(count(changes));
        gauges.writer_redone.set(count(redone));

        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.0.registry.gather(), &mut text)
            .map_err(|e| e.to_string())?;
        String::from_utf8(text).map_err(|e| e.to_string())
    }
}
