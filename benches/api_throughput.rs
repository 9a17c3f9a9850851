//! Throughput and latency of the JSON API against baselines measured in the same run.
//!
//! `cargo bench --bench api_throughput` builds the release binary and, on this machine and in one
//! run, measures with `wrk` (a separate process, so the load generator is not the bottleneck):
//!
//! - a bare actix-web server (its own process, same worker count) whose handler parses the same
//!   query as `user/get` and answers JSON: the ceiling for reads;
//! - `GET /api/v1/user/get` on a real `roost serve` process;
//! - durable one-row redb commits in a loop, one thread: the cost of one acknowledged write;
//! - `POST /api/v1/user/note/add` and `POST /api/v1/user/add` with 32 clients;
//! - `user/get` and `users/filter` latency (one client) at 1,000 and at 100,000 users;
//!
//! and prints each figure, the ratios, and the `wrk` command behind each. `ROOST_BENCH_SECS`
//! sets the seconds per measurement (default 10), `ROOST_BENCH_USERS` the large population
//! (default 100000). Run without `--bench` (as `cargo test --benches` does) it makes a short
//! smoke pass with a small population instead. Needs `wrk` (`apt-get install wrk`).

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the environment of the child process that serves the bare baseline.
const BARE_SERVER_ENV: &str = "ROOST_BENCH_BARE_SERVER";
const CLIENTS: usize = 32;
const SMALL_POPULATION: usize = 1_000;

fn main() {
    if let Ok(listen) = std::env::var(BARE_SERVER_ENV) {
        return run_bare_server(&listen);
    }
    let full = std::env::args().any(|arg| arg == "--bench");
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
    let settings = Settings {
        seconds: env("ROOST_BENCH_SECS").unwrap_or(if full { 10.0 } else { 1.0 }),
        large_population: env("ROOST_BENCH_USERS")
            .map_or(if full { 100_000 } else { 2_000 }, |n| n as usize),
    };
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("api_throughput needs wrk as its load generator: apt-get install wrk");
        if full {
            std::process::exit(1);
        }
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(settings));
}

struct Settings {
    seconds: f64,
    large_population: usize,
}

/// One measured row: what, the figure, and the command that produced it.
struct Row {
    name: String,
    figure: String,
    command: String,
}

async fn run(settings: Settings) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "api_throughput: {} s per measurement, {CLIENTS} clients, {cores} cores, roost {}",
        settings.seconds,
        env!("CARGO_BIN_EXE_roost")
    );
    let scratch = tempfile::tempdir().expect("temp dir");
    let scripts = Scripts::write(scratch.path());
    let mut rows = Vec::new();
    let wrk = Wrk {
        seconds: settings.seconds,
    };

    // Reads: the bare handler, then Roost, each alone on the machine but for wrk.
    let bare = BareServer::start();
    let bare_get = wrk.throughput(
        &format!(
            "{}/api/v1/user/get?email=bench-000001%40bench.test",
            bare.base
        ),
        &[],
        None,
    );
    drop(bare);
    rows.push(bare_get.row("bare actix-web handler, same query, JSON answer"));

    let redb_commits = raw_redb_commits(&scratch.path().join("baseline.redb"), settings.seconds);
    rows.push(Row {
        name: "raw redb durable one-row commits, one thread".into(),
        figure: format!("{redb_commits:.0}/s"),
        command: "in-process loop (benches/api_throughput.rs raw_redb_commits)".into(),
    });

    let roost = RoostServer::start(&scratch.path().join("roost-data"));
    let auth = format!("X-Canary-Auth-Token: {}", roost.token);
    let client = reqwest::Client::new();
    seed_users(&client, &roost, 0, SMALL_POPULATION).await;

    let get_url = format!(
        "{}/api/v1/user/get?email=bench-000001%40bench.test",
        roost.base
    );
    let roost_get = wrk.throughput(&get_url, &[&auth], None);
    rows.push(roost_get.row("roost GET user/get (32 clients)"));

    let small_get = wrk.latency(
        &format!("{}/api/v1/user/get", roost.base),
        &[&auth],
        Some(&Scripts::random_user(scratch.path(), SMALL_POPULATION)),
    );
    rows.push(small_get.row(&format!(
        "roost user/get latency at {SMALL_POPULATION} users (1 client, random user)"
    )));
    let filter_url = format!("{}/api/v1/users/filter?filter_str=bench-000042", roost.base);
    let small_filter = wrk.latency(&filter_url, &[&auth], None);
    rows.push(small_filter.row(&format!(
        "roost users/filter latency at {SMALL_POPULATION} users (1 client)"
    )));

    let note = wrk.throughput(
        &format!("{}/api/v1/user/note/add", roost.base),
        &[&auth],
        Some(&scripts.note_add),
    );
    rows.push(note.row("roost POST user/note/add (32 clients)"));

    // bench-000000.. up to the large population (the random reads pick among them).
    seed_users(
        &client,
        &roost,
        SMALL_POPULATION,
        settings.large_population.saturating_sub(SMALL_POPULATION),
    )
    .await;
    let population = settings.large_population.max(SMALL_POPULATION);
    let large_get = wrk.latency(
        &format!("{}/api/v1/user/get", roost.base),
        &[&auth],
        Some(&Scripts::random_user(
            scratch.path(),
            settings.large_population,
        )),
    );
    rows.push(large_get.row(&format!(
        "roost user/get latency at {population} users (1 client, random user)"
    )));
    let large_filter = wrk.latency(&filter_url, &[&auth], None);
    rows.push(large_filter.row(&format!(
        "roost users/filter latency at {population} users (1 client)"
    )));
    // Last: it adds users by the ten thousand.
    let add = wrk.throughput(
        &format!("{}/api/v1/user/add", roost.base),
        &[&auth],
        Some(&scripts.user_add),
    );
    rows.push(add.row("roost POST user/add (32 clients)"));
    drop(roost);

    println!();
    for row in &rows {
        println!("{:<68} {:>22}", row.name, row.figure);
    }
    println!();
    let ratio = |name: &str, value: f64, target: &str| {
        println!("{name:<68} {value:>8.2}   target {target}");
    };
    ratio(
        "user/get / bare actix-web",
        roost_get.per_second / bare_get.per_second,
        ">= 0.6",
    );
    ratio(
        "user/note/add / raw redb commits",
        note.per_second / redb_commits,
        ">= 2",
    );
    ratio(
        "user/add / raw redb commits",
        add.per_second / redb_commits,
        ">= 2",
    );
    ratio(
        &format!("user/get p50 at {population} / at {SMALL_POPULATION} users"),
        large_get.p50.as_secs_f64() / small_get.p50.as_secs_f64(),
        "<= 1.2",
    );
    println!(
        "{:<68} {:>8.2}   target < 50 ms",
        format!("users/filter p50 at {population} users, ms"),
        large_filter.p50.as_secs_f64() * 1000.0
    );
    println!();
    println!("commands:");
    for row in &rows {
        println!("  {}: {}", row.name, row.command);
    }
}

/// What one `wrk` run measured.
struct Measured {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    command: String,
    latency_only: bool,
}

impl Measured {
    fn row(&self, name: &str) -> Row {
        let figure = if self.latency_only {
            format!("p50 {} p99 {}", millis(self.p50), millis(self.p99))
        } else {
            format!("{:.0}/s (p50 {})", self.per_second, millis(self.p50))
        };
        Row {
            name: name.to_string(),
            figure,
            command: self.command.clone(),
        }
    }
}

fn millis(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1000.0)
}

struct Wrk {
    seconds: f64,
}

impl Wrk {
    /// 32 connections on two threads.
    fn throughput(&self, url: &str, headers: &[&str], script: Option<&Path>) -> Measured {
        self.run(url, headers, script, 2, CLIENTS, false)
    }

    /// One connection: the time one request takes, nothing queued before it.
    fn latency(&self, url: &str, headers: &[&str], script: Option<&Path>) -> Measured {
        self.run(url, headers, script, 1, 1, true)
    }

    fn run(
        &self,
        url: &str,
        headers: &[&str],
        script: Option<&Path>,
        threads: usize,
        connections: usize,
        latency_only: bool,
    ) -> Measured {
        let mut args = vec![
            format!("-t{threads}"),
            format!("-c{connections}"),
            format!("-d{}s", self.seconds.ceil() as u64),
            "--latency".to_string(),
        ];
        for header in headers {
            args.push("-H".into());
            args.push((*header).to_string());
        }
        if let Some(script) = script {
            args.push("-s".into());
            args.push(script.display().to_string());
        }
        args.push(url.to_string());
        let output = Command::new("wrk").args(&args).output().expect("run wrk");
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(output.status.success(), "wrk failed: {text}");
        assert!(
            !text.contains("Non-2xx") && !text.contains("Socket errors"),
            "wrk saw failed requests on {url}:\n{text}"
        );
        let shown: Vec<String> = args
            .iter()
            .map(|arg| {
                if arg.starts_with("X-Canary-Auth-Token") {
                    "'X-Canary-Auth-Token: KEY'".to_string()
                } else if arg.contains(' ') || arg.contains('?') {
                    format!("'{arg}'")
                } else {
                    arg.clone()
                }
            })
            .collect();
        Measured {
            per_second: field(&text, "Requests/sec:").expect("Requests/sec"),
            p50: percentile(&text, "50%").expect("p50"),
            p99: percentile(&text, "99%").expect("p99"),
            command: format!("wrk {}", shown.join(" ")),
            latency_only,
        }
    }
}

fn field(text: &str, label: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .and_then(|rest| rest.trim().parse().ok())
}

/// A line of wrk's latency distribution, e.g. `     50%  412.00us`.
fn percentile(text: &str, label: &str) -> Option<Duration> {
    let value = text
        .lines()
        .find_map(|line| line.trim().strip_prefix(label))?
        .trim();
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// wrk's Lua scripts for the POST loads.
struct Scripts {
    note_add: PathBuf,
    user_add: PathBuf,
}

impl Scripts {
    fn write(dir: &Path) -> Scripts {
        let note_add = dir.join("note_add.lua");
        std::fs::write(
            &note_add,
            r#"wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "email=bench-000001%40bench.test&note=benchmark+note"
"#,
        )
        .expect("write script");
        // Every request a new user: each wrk thread numbers its own.
        let user_add = dir.join("user_add.lua");
        std::fs::write(
            &user_add,
            r#"local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
function request()
  counter = counter + 1
  local body = "email=load-" .. tid .. "-" .. counter .. "%40bench.test&access_level=user&send_welcome_mail=false"
  return wrk.format(nil, nil, nil, body)
end
"#,
        )
        .expect("write script");
        Scripts { note_add, user_add }
    }
}

impl Scripts {
    /// `user/get` of a random seeded user (`bench-000000`.. below `population`) per request,
    /// so the latency is that of the store, not of a user kept in memory.
    fn random_user(dir: &Path, population: usize) -> PathBuf {
        let path = dir.join(format!("random_user_{population}.lua"));
        std::fs::write(
            &path,
            format!(
                r#"math.randomseed(42)
function request()
  local n = math.random(0, {last})
  return wrk.format("GET", wrk.path .. string.format("?email=bench-%06d%%40bench.test", n))
end
"#,
                last = population - 1
            ),
        )
        .expect("write script");
        path
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

fn wait_until_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server on {port} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process that is killed when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct BareServer {
    base: String,
    _process: Server,
}

impl BareServer {
    fn start() -> BareServer {
        let port = free_port();
        let child = Command::new(std::env::current_exe().expect("own path"))
            .env(BARE_SERVER_ENV, format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .spawn()
            .expect("start the bare server");
        wait_until_listening(port);
        BareServer {
            base: format!("http://127.0.0.1:{port}"),
            _process: Server { child },
        }
    }
}

/// The bare baseline: actix-web with the same worker count as `roost serve` (one per core), a
/// handler that parses the query `user/get` takes and answers a JSON object of the same shape.
fn run_bare_server(listen: &str) {
    use actix_web::{App, HttpResponse, HttpServer, web};

    #[derive(serde::Deserialize)]
    struct Query {
        email: String,
    }

    async fn user_get(query: web::Query<Query>) -> HttpResponse {
        HttpResponse::Ok().json(serde_json::json!({
            "result": "success",
            "user": {
                "access_level": "user", "disabled": false, "email": query.email, "id": 1,
                "managed_flocks": [], "note": null, "summary_email_enabled": true,
                "totp_enabled": false, "two_factor_required": false, "watched_flocks": [],
                "webauthn_enabled": false
            }
        }))
    }

    actix_web::rt::System::new().block_on(async {
        HttpServer::new(|| App::new().route("/api/v1/user/get", web::get().to(user_get)))
            .bind(listen)
            .expect("bind")
            .run()
            .await
            .expect("bare server");
    });
}

struct RoostServer {
    base: String,
    token: String,
    _process: Server,
}

impl RoostServer {
    /// `roost serve` as an operator runs it (default logging, written to a file), with an
    /// admin key made by `roost token create` beforehand.
    fn start(data_dir: &Path) -> RoostServer {
        let binary = env!("CARGO_BIN_EXE_roost");
        std::fs::create_dir_all(data_dir).expect("data dir");
        let created = Command::new(binary)
            .args([
                "token",
                "create",
                "--type",
                "admin",
                "--note",
                "bench",
                "--data-dir",
            ])
            .arg(data_dir)
            .output()
            .expect("roost token create");
        assert!(created.status.success(), "token create failed");
        let token = String::from_utf8_lossy(&created.stdout).trim().to_string();
        let port = free_port();
        let log = std::fs::File::create(data_dir.join("server.log")).expect("log file");
        let child = Command::new(binary)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            // wrk's 32 connections come from one address.
            .args(["--max-connections-per-client", "0", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start roost");
        wait_until_listening(port);
        RoostServer {
            base: format!("http://127.0.0.1:{port}"),
            token,
            _process: Server { child },
        }
    }
}

/// Adds users `bench-{from}`.. up to `count` of them through `user/add`, 64 at a time. Not
/// measured: it only builds the population the latency rows need.
async fn seed_users(client: &reqwest::Client, roost: &RoostServer, from: usize, count: usize) {
    let started = Instant::now();
    let workers = 64;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..workers {
        let client = client.clone();
        let url = format!("{}/api/v1/user/add", roost.base);
        let token = roost.token.clone();
        tasks.spawn(async move {
            let mut n = from + worker;
            while n < from + count {
                let email = format!("bench-{n:06}@bench.test");
                let note = format!("seeded user number {n}");
                let response = client
                    .post(&url)
                    .header("X-Canary-Auth-Token", &token)
                    .form(&[
                        ("email", email.as_str()),
                        ("access_level", "user"),
                        ("send_welcome_mail", "false"),
                        ("note", note.as_str()),
                    ])
                    .send()
                    .await
                    .expect("user/add");
                assert!(
                    response.status().is_success(),
                    "seeding {email}: {}",
                    response.status()
                );
                n += workers;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("seeding task");
    }
    println!(
        "seeded {count} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let _ = std::io::stdout().flush();
}

/// Durable one-row commits per second straight into redb: the floor cost of an acknowledged
/// write on this disk.
fn raw_redb_commits(path: &Path, seconds: f64) -> f64 {
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
