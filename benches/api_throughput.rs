//! Throughput of the JSON API against same-run baselines.
//!
//! `cargo bench` measures, on this machine and in one run:
//! - req/s of `GET /api/v1/user/get` and `POST /api/v1/user/note/add` against a real Roost server;
//! - a bare actix-web JSON handler under the same load generator (the ceiling for reads);
//! - a raw redb loop of durable one-row commits (the ceiling for acknowledged writes);
//!
//! and prints each figure and the ratios. `ROOST_BENCH_SECS` sets the seconds per measurement
//! (default 5) and `ROOST_BENCH_CONCURRENCY` the concurrent clients (default 16). Run without
//! `--bench` (as `cargo test --benches` does) it makes a short smoke pass instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use roost::auth::api_keys::issue_global_key;
use roost::config::Config;
use roost::domain::ApiKeyType;
use roost::startup::Application;

struct Settings {
    seconds: f64,
    concurrency: usize,
}

fn settings() -> Settings {
    let full = std::env::args().any(|arg| arg == "--bench");
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
    Settings {
        seconds: env("ROOST_BENCH_SECS").unwrap_or(if full { 5.0 } else { 0.3 }),
        concurrency: env("ROOST_BENCH_CONCURRENCY").map_or(16, |c| c.max(1.0) as usize),
    }
}

fn main() {
    let settings = settings();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run(settings));
}

#[derive(Clone, Copy)]
enum Load {
    Get,
    PostForm,
}

async fn run(settings: Settings) {
    println!(
        "api_throughput: {} s per measurement, {} concurrent clients, {} cores",
        settings.seconds,
        settings.concurrency,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let bare = start_bare_actix().await;
    let bare_rps = measure(&settings, Load::Get, format!("{bare}/"), String::new()).await;

    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::with_data_dir(data_dir.path());
    config.bind = "127.0.0.1:0".to_string();
    let app = Application::build(config).await.expect("roost app");
    let token = issue_global_key(&app.store(), ApiKeyType::Admin, "bench", "bench").expect("key");
    let roost = format!("http://127.0.0.1:{}/api/v1", app.port());
    tokio::task::spawn_local(app.run_until_stopped());

    let client = reqwest::Client::new();
    let added = client
        .post(format!("{roost}/user/add"))
        .form(&[
            ("auth_token", token.as_str()),
            ("email", "bench@example.org"),
            ("access_level", "user"),
            ("send_welcome_mail", "false"),
        ])
        .send()
        .await
        .expect("user/add");
    assert!(
        added.status().is_success(),
        "user/add failed: {}",
        added.status()
    );

    let get_rps = measure(
        &settings,
        Load::Get,
        format!("{roost}/user/get?auth_token={token}&email=bench@example.org"),
        String::new(),
    )
    .await;
    let note_rps = measure(
        &settings,
        Load::PostForm,
        format!("{roost}/user/note/add"),
        format!("auth_token={token}&email=bench%40example.org&note=benchmark+note"),
    )
    .await;

    let redb_dir = tempfile::tempdir().expect("temp dir");
    let redb_cps = tokio::task::spawn_blocking({
        let path = redb_dir.path().join("baseline.redb");
        let seconds = settings.seconds;
        move || raw_redb_commits(&path, seconds)
    })
    .await
    .expect("redb baseline");

    println!();
    println!("{:<44} {:>12}", "measurement", "per second");
    println!(
        "{:<44} {:>12.0}",
        "baseline: bare actix-web JSON handler", bare_rps
    );
    println!(
        "{:<44} {:>12.0}",
        "baseline: raw redb durable commits", redb_cps
    );
    println!("{:<44} {:>12.0}", "roost GET /api/v1/user/get", get_rps);
    println!(
        "{:<44} {:>12.0}",
        "roost POST /api/v1/user/note/add", note_rps
    );
    println!();
    println!(
        "ratio user/get / bare actix-web:        {:.3}",
        get_rps / bare_rps
    );
    println!(
        "ratio user/note/add / raw redb commits: {:.3}",
        note_rps / redb_cps
    );
    println!(
        "ratio user/note/add / bare actix-web:   {:.3}",
        note_rps / bare_rps
    );
}

async fn start_bare_actix() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = HttpServer::new(|| {
        App::new().route(
            "/",
            web::get()
                .to(|| async { HttpResponse::Ok().json(serde_json::json!({"result": "success"})) }),
        )
    })
    .listen(listener)
    .expect("listen")
    .run();
    tokio::task::spawn_local(server);
    format!("http://127.0.0.1:{port}")
}

/// Requests per second completed by `concurrency` clients looping for `seconds`, after a short
/// warm-up. Every response must be a 200, or the run aborts.
async fn measure(settings: &Settings, load: Load, url: String, body: String) -> f64 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(settings.concurrency)
        .build()
        .expect("client");
    let warmup = Duration::from_secs_f64((settings.seconds / 5.0).min(1.0));
    let window = Duration::from_secs_f64(settings.seconds);
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let completed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..settings.concurrency {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        let (counting, stop, completed) = (counting.clone(), stop.clone(), completed.clone());
        tasks.push(tokio::task::spawn_local(async move {
            while !stop.load(Ordering::Relaxed) {
                let request = match load {
                    Load::Get => client.get(&url),
                    Load::PostForm => client
                        .post(&url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.clone()),
                };
                let response = request.send().await.expect("request");
                let status = response.status();
                let _ = response.bytes().await;
                assert!(status.is_success(), "{url} answered {status}");
                if counting.load(Ordering::Relaxed) {
                    completed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(warmup).await;
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let count = completed.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("load task");
    }
    count as f64 / elapsed.as_secs_f64()
}

/// Durable one-row commits per second straight into redb: the floor cost of an acknowledged
/// write on this disk.
fn raw_redb_commits(path: &std::path::Path, seconds: f64) -> f64 {
    use redb::{Database, TableDefinition};
    const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("baseline");
    let db = Database::create(path).expect("redb");
    let value = [7u8; 200];
    let window = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut commits = 0u64;
    while started.elapsed() < window {
        let txn = db.begin_write().expect("begin");
        {
            let mut table = txn.open_table(TABLE).expect("table");
            table
                .insert(commits % 1000, value.as_slice())
                .expect("insert");
        }
        txn.commit().expect("commit");
        commits += 1;
    }
    commits as f64 / started.elapsed().as_secs_f64()
}
