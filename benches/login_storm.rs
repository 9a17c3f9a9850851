//! The password path under a login storm, against same-run baselines.
//!
//! `cargo bench --bench login_storm` starts the release `roost` binary as its own process (so its
//! memory is its own), drives HTTP load with `wrk` from separate processes (so the load generator
//! is not the bottleneck) and prints, in one run:
//! - raw argon2 verifications/s on as many threads as Roost has hashing workers (the ceiling);
//! - correct logins/s during a 64-connection login storm (64 accounts, each connection its own
//!   client address through `--trusted-proxies`), and the ratio to the ceiling;
//! - `GET /api/v1/user/get` p50/p99 latency and req/s alone, and during the storm;
//! - a burst of wrong passwords from one address (refused past the limits);
//! - the server's peak RSS (VmHWM) over all of it.
//!
//! `ROOST_BENCH_SECS` sets the seconds per measurement (default 5). Needs `wrk`
//! (`apt-get install wrk`). Run without `--bench` (as `cargo test --benches` does) it makes a
//! short smoke pass.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use roost::auth::api_keys::issue_global_key;
use roost::auth::passwords::{HashMemory, hash_password, verify_with};
use roost::domain::{AccessLevel, ApiKeyType, Email};
use roost::store::audit::Actor;
use roost::store::{NewUser, Store};

const PASSWORD: &str = "storm password 12345";
const STORM_ACCOUNTS: usize = 64;
const STORM_CONNECTIONS: usize = 64;
const READ_CONNECTIONS: usize = 32;

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let seconds: u64 = std::env::var("ROOST_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 5 } else { 1 });
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("login_storm needs wrk on the PATH: apt-get install wrk");
        std::process::exit(2);
    }
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("login_storm: {seconds} s per measurement, {workers} cores = hashing workers");

    let data = tempfile::tempdir().expect("temp dir");
    let token = prepare(data.path());
    let port = free_port();
    let server = Server::start(data.path(), port);
    let base = format!("http://127.0.0.1:{port}");
    let read_url = format!("{base}/api/v1/user/get?auth_token={token}&email=reader%40bench.test");

    let raw_rate = raw_argon2_rate(workers, seconds);

    // A warm-up run, then the figure.
    wrk(&read_url, READ_CONNECTIONS, seconds.min(2), None);
    let reads_alone = wrk(&read_url, READ_CONNECTIONS, seconds, None);

    let scripts = tempfile::tempdir().expect("temp dir");
    let (cookie, csrf) = login_form(&base);
    let storm_script = scripts.path().join("storm.lua");
    std::fs::write(&storm_script, storm_lua(&cookie, &csrf, true)).expect("script");
    let storm_alone = wrk(
        &format!("{base}/login"),
        STORM_CONNECTIONS,
        seconds,
        Some(&storm_script),
    );

    // The storm again, with the reads measured inside it.
    let storm = {
        let url = format!("{base}/login");
        let script = storm_script.clone();
        std::thread::spawn(move || wrk(&url, STORM_CONNECTIONS, seconds + 2, Some(&script)))
    };
    std::thread::sleep(Duration::from_secs(1));
    let reads_in_storm = wrk(&read_url, READ_CONNECTIONS, seconds, None);
    let storm_with_reads = storm.join().expect("storm thread");

    // Wrong passwords from one address (no X-Forwarded-For): the limits refuse most at once.
    let wrong_script = scripts.path().join("wrong.lua");
    std::fs::write(&wrong_script, storm_lua(&cookie, &csrf, false)).expect("script");
    let wrong = wrk(
        &format!("{base}/login"),
        STORM_CONNECTIONS,
        seconds,
        Some(&wrong_script),
    );

    let peak_rss_mb = server.peak_rss_kb() as f64 / 1024.0;
    let rss_now_mb = server.rss_kb() as f64 / 1024.0;
    drop(server);

    let logins_alone = storm_alone.ok_per_sec();
    println!();
    println!("{:<62} {:>12}", "measurement", "figure");
    println!(
        "{:<62} {:>12.1}",
        format!("baseline: raw argon2 verifications/s on {workers} threads"),
        raw_rate
    );
    println!(
        "{:<62} {:>12.1}",
        format!("login storm ({STORM_CONNECTIONS} connections): correct logins/s"),
        logins_alone
    );
    println!(
        "{:<62} {:>12}",
        "  its refused answers (429/503)", storm_alone.not_ok
    );
    println!(
        "{:<62} {:>12.0}",
        "GET user/get alone: req/s", reads_alone.requests_per_sec
    );
    println!(
        "{:<62} {:>12.2}",
        "GET user/get alone: p50 ms", reads_alone.p50_ms
    );
    println!(
        "{:<62} {:>12.2}",
        "GET user/get alone: p99 ms", reads_alone.p99_ms
    );
    println!(
        "{:<62} {:>12.0}",
        "GET user/get during the storm: req/s", reads_in_storm.requests_per_sec
    );
    println!(
        "{:<62} {:>12.2}",
        "GET user/get during the storm: p50 ms", reads_in_storm.p50_ms
    );
    println!(
        "{:<62} {:>12.2}",
        "GET user/get during the storm: p99 ms", reads_in_storm.p99_ms
    );
    println!(
        "{:<62} {:>12.1}",
        "  correct logins/s meanwhile",
        storm_with_reads.ok_per_sec()
    );
    println!(
        "{:<62} {:>12}",
        format!("wrong passwords from one address ({STORM_CONNECTIONS} conns): answers"),
        wrong.requests
    );
    println!(
        "{:<62} {:>12}",
        "  of them refused (401 wrong, 429 over the limits)", wrong.not_ok
    );
    println!("{:<62} {:>12.1}", "server peak RSS (VmHWM) MB", peak_rss_mb);
    println!("{:<62} {:>12.1}", "server RSS at the end MB", rss_now_mb);
    println!();
    println!(
        "ratio logins/s / raw argon2 rate:           {:.3}  (target >= 0.8)",
        logins_alone / raw_rate
    );
    println!(
        "ratio read p99 in storm / read p99 alone:   {:.3}  (target <= 2)",
        reads_in_storm.p99_ms / reads_alone.p99_ms
    );
    println!("peak RSS:                                   {peak_rss_mb:.1} MB (target < 100)");
}

/// A data directory with `STORM_ACCOUNTS` users and a reader, all with `PASSWORD`, and an admin
/// API key (returned).
fn prepare(dir: &Path) -> String {
    let store = Store::open(dir).expect("store");
    let hash = hash_password(PASSWORD).expect("hash");
    let mut emails: Vec<String> = (0..STORM_ACCOUNTS)
        .map(|n| format!("storm{n}@bench.test"))
        .collect();
    emails.push("reader@bench.test".to_string());
    for email in emails {
        let user = store
            .add_user(
                &Actor::named("benchmark"),
                NewUser {
                    email: Email::parse(&email).expect("email"),
                    access_level: AccessLevel::User,
                    note: Some("benchmark user".into()),
                    two_factor_required: false,
                },
                None,
            )
            .expect("add user");
        store
            .change_password(&Actor::named("benchmark"), user.id, hash.clone(), None)
            .expect("password");
    }
    issue_global_key(&store, ApiKeyType::Admin, "bench", "bench").expect("key")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

struct Server {
    child: Child,
}

impl Server {
    fn start(data_dir: &Path, port: u16) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_roost"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--trusted-proxies", "127.0.0.1"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start roost");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "roost did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child }
    }

    fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .unwrap_or(0)
    }

    fn peak_rss_kb(&self) -> u64 {
        self.status_kb("VmHWM:")
    }

    fn rss_kb(&self) -> u64 {
        self.status_kb("VmRSS:")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Argon2 verifications per second on `threads` threads, each reusing its memory as Roost's
/// workers do.
fn raw_argon2_rate(threads: usize, seconds: u64) -> f64 {
    let hash = hash_password(PASSWORD).expect("hash");
    let window = Duration::from_secs(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let hash = hash.clone();
            std::thread::spawn(move || {
                let mut memory = HashMemory::new();
                let mut done = 0u64;
                while started.elapsed() < window {
                    assert!(verify_with(&mut memory, PASSWORD, &hash));
                    done += 1;
                }
                done
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
    total as f64 / started.elapsed().as_secs_f64()
}

/// The login form's session cookie and CSRF token, as a browser would hold them.
fn login_form(base: &str) -> (String, String) {
    let output = Command::new("curl")
        .args(["-s", "-i", &format!("{base}/login")])
        .output();
    let text = match output {
        Ok(output) => String::from_utf8_lossy(&output.stdout).into_owned(),
        Err(_) => http_get(base, "/login"),
    };
    let cookie = text
        .lines()
        .find_map(|line| {
            let lower = line.to_ascii_lowercase();
            lower
                .starts_with("set-cookie:")
                .then(|| line["set-cookie:".len()..].trim().to_string())
        })
        .and_then(|value| value.split(';').next().map(str::to_string))
        .expect("the login page sets a cookie");
    let marker = "name=\"csrf_token\" value=\"";
    let start = text.find(marker).expect("csrf field") + marker.len();
    let end = text[start..].find('"').expect("csrf end") + start;
    (cookie, text[start..end].to_string())
}

/// A bare HTTP/1.0 GET, for machines without curl.
fn http_get(base: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    text
}

/// A wrk script posting logins: with `correct`, the right password for one of the storm accounts
/// from a client address of its own (through the trusted proxy); else wrong passwords for them
/// all from this one address.
fn storm_lua(cookie: &str, csrf: &str, correct: bool) -> String {
    let password = if correct {
        PASSWORD.replace(' ', "+")
    } else {
        "wrong+guess".to_string()
    };
    let forwarded = if correct {
        r#"headers["X-Forwarded-For"] = "10.7." .. (i % 250) .. "." .. (n % 250 + 1)"#
    } else {
        ""
    };
    format!(
        r#"
local n = 0
local offset = 0
function setup(thread)
  thread:set("offset", math.random(0, {accounts}))
end
function request()
  n = n + 1
  local i = (n + offset) % {accounts}
  local headers = {{}}
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  headers["Cookie"] = "{cookie}"
  {forwarded}
  local body = "csrf_token={csrf}&email=storm" .. i .. "%40bench.test&password={password}"
  return wrk.format("POST", "/login", headers, body)
end
"#,
        accounts = STORM_ACCOUNTS,
    )
}

struct WrkResult {
    requests: u64,
    not_ok: u64,
    seconds: f64,
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl WrkResult {
    /// 2xx and 3xx answers per second (a correct login answers 303).
    fn ok_per_sec(&self) -> f64 {
        self.requests.saturating_sub(self.not_ok) as f64 / self.seconds
    }
}

fn wrk(url: &str, connections: usize, seconds: u64, script: Option<&Path>) -> WrkResult {
    let mut command = Command::new("wrk");
    command.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--timeout",
        "10s",
        "--latency",
    ]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command.arg(url).output().expect("run wrk");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    parse_wrk(&text, seconds).unwrap_or_else(|| panic!("unreadable wrk output:\n{text}"))
}

fn parse_wrk(text: &str, seconds: u64) -> Option<WrkResult> {
    let latency = |label: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.trim_start().starts_with(label))?;
        let value = line.split_whitespace().nth(1)?;
        duration_ms(value)
    };
    let requests: u64 = text
        .lines()
        .find(|l| l.contains("requests in"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let not_ok = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let requests_per_sec = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    Some(WrkResult {
        requests,
        not_ok,
        seconds: seconds as f64,
        requests_per_sec,
        p50_ms: latency("50%")?,
        p99_ms: latency("99%")?,
    })
}

/// wrk's `812.00us`, `3.25ms`, `1.20s` in milliseconds.
fn duration_ms(value: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (value, 1.0)
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}
