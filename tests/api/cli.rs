//! The `roost` binary as an operator runs it: each test gets a sandbox directory (the working
//! directory, so a default `./data` stays inside it) and every child is killed on drop.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(60);
const ROOST_VARS: [&str; 5] = [
    "ROOST_BIND",
    "ROOST_DATA_DIR",
    "ROOST_BASE_URL",
    "ROOST_SMTP_URL",
    "ROOST_MAIL_FROM",
];

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Sandbox {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("sandbox"),
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn data_arg(&self) -> String {
        self.data().to_str().expect("utf-8 path").to_string()
    }

    /// `roost ARGS` in the sandbox, with no `ROOST_*` variables from the outside.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_roost"));
        cmd.args(args).current_dir(self.dir.path());
        for var in ROOST_VARS {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// `roost token create` for the sandbox's data dir; returns the secret.
    pub fn create_token(&self, key_type: &str) -> String {
        let data = self.data_arg();
        let args = [
            "token",
            "create",
            "--type",
            key_type,
            "--note",
            "ci",
            "--data-dir",
            &data,
        ];
        let out = run(self.cmd(&args));
        assert!(out.status.success(), "token create failed: {}", out.stderr);
        single_line(&out.stdout)
    }
}

/// Runs a command to completion within `TIMEOUT`.
pub fn run(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = KillOnDrop(cmd.spawn().expect("spawn roost"));
    let stdout = read_all(child.0.stdout.take().expect("stdout"));
    let stderr = read_all(child.0.stderr.take().expect("stderr"));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "roost did not finish in {TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

#[track_caller]
fn single_line(stdout: &str) -> String {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stdout: {stdout:?}");
    assert!(stdout.ends_with('\n'), "{stdout:?}");
    lines[0].to_string()
}

pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `roost serve`; its stdout lines are collected as they come.
pub struct Server {
    pub child: KillOnDrop,
    lines: Receiver<String>,
    seen: Vec<String>,
    pub address: String,
}

impl Server {
    pub fn start(sandbox: &Sandbox) -> Server {
        let data = sandbox.data_arg();
        Server::spawn(sandbox.cmd(&["serve", "--bind", "127.0.0.1:0", "--data-dir", &data]))
    }

    pub fn spawn(cmd: Command) -> Server {
        Server::spawn_with_stderr(cmd, Stdio::null())
    }

    /// `spawn`, with stderr (the log) going to `stderr`.
    pub fn spawn_with_stderr(mut cmd: Command, stderr: Stdio) -> Server {
        cmd.stdout(Stdio::piped()).stderr(stderr);
        let mut child = KillOnDrop(cmd.spawn().expect("spawn roost serve"));
        let stdout = child.0.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            lines,
            seen: Vec::new(),
            address: String::new(),
        };
        let line = server.wait_for_line(|l| l.contains("listening on http"));
        let after = line.split("listening on ").nth(1).expect("address");
        let address = after.split_whitespace().next().expect("address");
        server.address = address.trim_end_matches('/').to_string();
        server
    }

    /// The first stdout line (already seen or still to come) matching `pred`.
    pub fn wait_for_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.seen.iter().find(|l| pred(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("no such line in {:?}", self.seen),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("roost serve exited; stdout was {:?}", self.seen)
                }
            }
        }
    }

    pub async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
    ) -> Resp {
        let auth = Auth::Param(token);
        send(build_request(
            &client(),
            &self.address,
            method,
            path,
            auth,
            params,
        ))
        .await
    }

    /// SIGKILL, no goodbye.
    pub fn kill(self) {
        drop(self.child);
    }
}

// ---- token create ----

#[tokio::test]
async fn cli_token_create_prints_only_the_secret_and_it_works() {
    let sandbox = Sandbox::new();
    let token = sandbox.create_token("admin");
    assert!(token.starts_with("roost_"), "{token}");
    let server = Server::start(&sandbox);
    server
        .call(&token, Method::GET, "ping", &[])
        .await
        .ok_bare();
    let resp = server
        .call(&token, Method::POST, "flock/create", &[("name", "Ops")])
        .await;
    resp.ok();
}

#[tokio::test]
async fn cli_token_create_honours_roost_data_dir() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.cmd(&["token", "create", "--type", "read-only", "--note", "env"]);
    cmd.env("ROOST_DATA_DIR", sandbox.data());
    let out = run(cmd);
    assert!(out.status.success(), "{}", out.stderr);
    let token = single_line(&out.stdout);
    let server = Server::start(&sandbox);
    server
        .call(&token, Method::GET, "users/list", &[])
        .await
        .ok();
    let resp = server
        .call(&token, Method::POST, "flock/create", &[("name", "Ops")])
        .await;
    resp.err(403, KEY_NOT_ALLOWED);
}

#[test]
fn cli_token_create_rejects_unknown_type() {
    let sandbox = Sandbox::new();
    let data = sandbox.data_arg();
    let args = [
        "token",
        "create",
        "--type",
        "root",
        "--note",
        "x",
        "--data-dir",
        &data,
    ];
    let out = run(sandbox.cmd(&args));
    assert!(!out.status.success(), "{}", out.stdout);
    assert_eq!(out.stdout, "");
    assert!(!out.stderr.is_empty());
}

#[tokio::test]
async fn cli_token_create_fails_clearly_while_the_server_runs() {
    let sandbox = Sandbox::new();
    let _server = Server::start(&sandbox);
    let data = sandbox.data_arg();
    let args = [
        "token",
        "create",
        "--type",
        "admin",
        "--note",
        "x",
        "--data-dir",
        &data,
    ];
    let out = run(sandbox.cmd(&args));
    assert!(!out.status.success(), "{}", out.stdout);
    assert_eq!(out.stdout, "", "no secret printed");
    assert!(!out.stderr.trim().is_empty(), "says why");
}

// ---- admin create ----

#[tokio::test]
async fn cli_admin_create_creates_enabled_admin_and_prints_link() {
    let sandbox = Sandbox::new();
    let token = sandbox.create_token("read-only");
    let data = sandbox.data_arg();
    let args = ["admin", "create", "--email", "a@x.io", "--data-dir", &data];
    let out = run(sandbox.cmd(&args));
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.lines().any(|l| l.contains("http")),
        "{:?}",
        out.stdout
    );
    let server = Server::start(&sandbox);
    let resp = server
        .call(&token, Method::GET, "user/get", &[("email", "a@x.io")])
        .await;
    let user = &resp.ok()["user"];
    assert_eq!(user["access_level"], "admin");
    assert_eq!(user["disabled"], false);
}

#[test]
fn cli_admin_create_link_uses_base_url() {
    let sandbox = Sandbox::new();
    let data = sandbox.data_arg();
    let mut cmd = sandbox.cmd(&["admin", "create", "--email", "a@x.io", "--data-dir", &data]);
    cmd.env("ROOST_BASE_URL", "https://roost.example.com");
    let out = run(cmd);
    assert!(out.status.success(), "{}", out.stderr);
    let link = out
        .stdout
        .lines()
        .find(|l| l.contains("http"))
        .expect("a link");
    assert!(link.contains("https://roost.example.com/"), "{link}");
}

#[test]
fn cli_admin_create_rejects_malformed_email() {
    let sandbox = Sandbox::new();
    let data = sandbox.data_arg();
    let args = [
        "admin",
        "create",
        "--email",
        "not-an-email",
        "--data-dir",
        &data,
    ];
    let out = run(sandbox.cmd(&args));
    assert!(!out.status.success(), "{}", out.stdout);
    assert!(!out.stdout.contains("http"), "{}", out.stdout);
}

// ---- serve ----

#[tokio::test]
async fn cli_serve_prints_address_and_setup_link_on_empty_data_dir() {
    let sandbox = Sandbox::new();
    let mut server = Server::start(&sandbox);
    assert!(
        server.address.starts_with("http://127.0.0.1:"),
        "{}",
        server.address
    );
    let port: u16 = server
        .address
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .expect("port");
    assert_ne!(port, 0);
    let link = server.wait_for_line(|l| l.contains("/setup/"));
    assert!(link.contains("http"), "{link}");
    let resp = send(client().get(format!("{}/api/v1/ping", server.address))).await;
    resp.err(401, "Invalid auth_token");
}

#[tokio::test]
async fn cli_without_subcommand_serves_with_env_and_default_data_dir() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.cmd(&[]);
    cmd.env("ROOST_BIND", "127.0.0.1:0");
    let server = Server::spawn(cmd);
    server.kill();
    // The default data dir is ./data, i.e. inside the sandbox.
    let entries = std::fs::read_dir(sandbox.data()).expect("./data was created");
    assert!(entries.count() > 0, "./data holds the database");
}

#[test]
fn cli_help_documents_every_subcommand() {
    let sandbox = Sandbox::new();
    let cases: [(&[&str], &[&str]); 4] = [
        (&["--help"], &["serve", "admin", "token"]),
        (
            &["serve", "--help"],
            &[
                "--bind",
                "--data-dir",
                "--base-url",
                "--smtp-url",
                "ROOST_BIND",
                "ROOST_DATA_DIR",
            ],
        ),
        (&["admin", "create", "--help"], &["--email", "--data-dir"]),
        (
            &["token", "create", "--help"],
            &["--type", "--note", "--data-dir"],
        ),
    ];
    for (args, words) in cases {
        let out = run(sandbox.cmd(args));
        assert!(out.status.success(), "{args:?}: {}", out.stderr);
        for word in words {
            assert!(
                out.stdout.contains(word),
                "{args:?} mentions {word}: {}",
                out.stdout
            );
        }
    }
    assert!(!sandbox.data().exists(), "--help touches no data");
}

// ---- durability ----

#[tokio::test]
async fn cli_acknowledged_writes_survive_sigkill() {
    let sandbox = Sandbox::new();
    let token = sandbox.create_token("admin");
    let server = Server::start(&sandbox);
    let post = |path: &'static str, params: Vec<(&'static str, String)>| {
        let server = &server;
        let token = &token;
        async move {
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            server.call(token, Method::POST, path, &params).await
        }
    };
    let email = |i: usize| format!("user{i:02}@x.io");
    let mut flocks = Vec::new();
    for i in 0..10 {
        let resp = post("flock/create", vec![("name", format!("Flock {i}"))]).await;
        flocks.push(
            resp.ok()["flock_id"]
                .as_str()
                .expect("flock_id")
                .to_string(),
        );
    }
    for i in 0..15 {
        let params = vec![
            ("email", email(i)),
            ("access_level", "user".to_string()),
            ("send_welcome_mail", "false".to_string()),
        ];
        post("user/add", params).await.ok();
    }
    for i in 0..15 {
        let params = vec![("email", email(i)), ("note", format!("note {i}"))];
        post("user/note/add", params).await.ok();
    }
    for (i, flock) in flocks.iter().enumerate() {
        let params = vec![
            ("email", email(i)),
            ("flock_id_list", flock.clone()),
            ("flock_access_level", "manager".to_string()),
        ];
        post("user/flock/assign", params).await.ok();
    }
    server.kill();

    let server = Server::start(&sandbox);
    let resp = server.call(&token, Method::GET, "flocks/list", &[]).await;
    let listed = resp.ok()["flocks"].clone();
    for (i, flock) in flocks.iter().enumerate() {
        assert_eq!(listed[flock], format!("Flock {i}"), "{listed}");
    }
    for i in 0..15 {
        let email = email(i);
        let resp = server
            .call(&token, Method::GET, "user/get", &[("email", &email)])
            .await;
        let user = &resp.ok()["user"];
        assert_eq!(user["note"], format!("note {i}"), "{user}");
        let managed = flocks.get(i).map_or(json!([]), |f| json!([f]));
        assert_eq!(user["managed_flocks"], managed, "{user}");
    }
}

/// 48 clients adding users (each with a note) as fast as the server at `address` takes them,
/// until it goes away; each returns the emails it was answered 200 for.
fn add_users_until_gone(
    address: &str,
    token: &str,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Vec<tokio::task::JoinHandle<Vec<String>>>,
) {
    let url = format!("{address}/api/v1/user/add");
    let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for client_number in 0..48 {
        let (url, token, stopping) = (url.clone(), token.to_string(), stopping.clone());
        clients.push(tokio::spawn(async move {
            let client = client();
            let mut acknowledged = Vec::new();
            for n in 0.. {
                if stopping.load(std::sync::atomic::Ordering::Relaxed) && n % 2 == 0 {
                    // Keep some requests in flight as the server goes.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let email = format!("load-{client_number}-{n}@x.io");
                let note = format!("note of {email}");
                let sent = add_user_request(&client, &url, &token, &email, Some(&note))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 200 => acknowledged.push(email),
                    // A stopping server may answer 503 before closing; nothing was written.
                    Ok(response) if response.status() == 503 => break,
                    Ok(response) => panic!("{email}: {}", response.status()),
                    // The server is gone.
                    Err(_) => break,
                }
            }
            acknowledged
        }));
    }
    (stopping, clients)
}

async fn acknowledged_by(clients: Vec<tokio::task::JoinHandle<Vec<String>>>) -> Vec<String> {
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.expect("client"));
    }
    assert!(acknowledged.len() > 200, "only {} adds", acknowledged.len());
    acknowledged
}

/// Starts the server again and finds every acknowledged user, with its note.
async fn assert_every_user_is_there(sandbox: &Sandbox, token: &str, acknowledged: &[String]) {
    let server = Server::start(sandbox);
    let resp = server.call(token, Method::GET, "users/list", &[]).await;
    let stored: std::collections::HashMap<String, Value> = resp.ok()["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|user| {
            (
                user["email"].as_str().unwrap_or("").to_string(),
                user.clone(),
            )
        })
        .collect();
    for email in acknowledged {
        let user = stored
            .get(email)
            .unwrap_or_else(|| panic!("{email} was acknowledged and is lost"));
        assert_eq!(user["note"], format!("note of {email}"), "{user}");
    }
}

/// Group commit under load: 48 clients add users as fast as the server takes them (changes
/// wait for the writer together and share flushes), the server is killed mid-stream, and every
/// user whose addition was answered 200 is there after a restart, with its note.
#[tokio::test]
async fn cli_acknowledged_writes_survive_sigkill_under_concurrent_load() {
    let sandbox = Sandbox::new();
    let token = sandbox.create_token("admin");
    let server = Server::start(&sandbox);
    let (stopping, clients) = add_users_until_gone(&server.address, &token);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stopping.store(true, std::sync::atomic::Ordering::Relaxed);
    server.kill();
    let acknowledged = acknowledged_by(clients).await;
    assert_every_user_is_there(&sandbox, &token, &acknowledged).await;
}

/// SIGTERM under the same load: the server stops taking connections, answers what is in
/// flight, stops its mail sender and exits 0 within the grace period; every acknowledged user
/// is there after a restart.
#[tokio::test]
async fn cli_sigterm_under_load_exits_cleanly_and_keeps_every_acknowledged_write() {
    let sandbox = Sandbox::new();
    let token = sandbox.create_token("admin");
    let mut server = Server::start(&sandbox);
    let (stopping, clients) = add_users_until_gone(&server.address, &token);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stopping.store(true, std::sync::atomic::Ordering::Relaxed);
    let pid = libc::pid_t::try_from(server.child.0.id()).expect("pid");
    // SAFETY: sends a signal to the child this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = server.child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(25),
            "still running 25 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    let acknowledged = acknowledged_by(clients).await;
    assert_every_user_is_there(&sandbox, &token, &acknowledged).await;
}

#[test]
fn cli_refuses_malformed_options_before_touching_the_data_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (option, value, expected) in [
        (
            "--trusted-proxies",
            "127.0.0.1,proxy.local",
            "--trusted-proxies: 'proxy.local' is not an IP address",
        ),
        (
            "--session-idle",
            "soon",
            "--session-idle: 'soon' is not a duration",
        ),
        (
            "--session-lifetime",
            "0s",
            "--session-lifetime must be at least 1s",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_roost"))
            .args(["token", "create", "--type", "admin", "--note", "x"])
            .args([option, value])
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .expect("run roost");
        assert!(!out.status.success(), "{option} {value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
    // Nothing ran: no database was created.
    assert!(!dir.path().join("roost.redb").exists());
}

// ---- files on disk ----

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

impl Sandbox {
    /// `roost ARGS` started by a shell whose umask is 000, as on a careless host.
    fn cmd_under_umask_000(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("umask 000; exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_roost"))
            .args(args)
            .current_dir(self.dir.path());
        for var in ROOST_VARS {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null());
        cmd
    }
}

#[tokio::test]
async fn cli_creates_every_file_private_whatever_the_umask() {
    let sandbox = Sandbox::new();
    let data = sandbox.data_arg();
    let args = [
        "token",
        "create",
        "--type",
        "admin",
        "--note",
        "ci",
        "--data-dir",
        &data,
    ];
    let out = run(sandbox.cmd_under_umask_000(&args));
    assert!(out.status.success(), "{}", out.stderr);
    let token = single_line(&out.stdout);
    let server = Server::spawn(sandbox.cmd_under_umask_000(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--data-dir",
        &data,
    ]));
    server
        .call(
            &token,
            Method::POST,
            "user/add",
            &[("email", "ann@x.io"), ("access_level", "user")],
        )
        .await
        .ok();
    let outbox = sandbox.data().join("outbox");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mail = loop {
        let found = std::fs::read_dir(&outbox)
            .ok()
            .and_then(|mut entries| entries.next())
            .map(|entry| entry.expect("entry").path());
        if let Some(mail) = found {
            break mail;
        }
        assert!(Instant::now() < deadline, "no welcome mail in the outbox");
        std::thread::sleep(Duration::from_millis(50));
    };
    let data_dir = sandbox.data();
    assert_eq!(mode_of(&data_dir), 0o700, "data dir");
    assert_eq!(mode_of(&outbox), 0o700, "outbox");
    for file in [
        data_dir.join("roost.redb"),
        data_dir.join("secrets.key"),
        data_dir.join("session.key"),
        mail,
    ] {
        assert_eq!(mode_of(&file), 0o600, "{}", file.display());
    }
}

#[test]
fn cli_tightens_files_others_could_read_and_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    sandbox.create_token("admin");
    let data_dir = sandbox.data();
    let set = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    set(&data_dir, 0o755);
    set(&data_dir.join("roost.redb"), 0o644);
    set(&data_dir.join("secrets.key"), 0o640);
    let data = sandbox.data_arg();
    let out = run(sandbox.cmd(&[
        "token",
        "create",
        "--type",
        "admin",
        "--note",
        "x",
        "--data-dir",
        &data,
    ]));
    assert!(out.status.success(), "{}", out.stderr);
    for (file, mode) in [("", 0o755), ("roost.redb", 0o644), ("secrets.key", 0o640)] {
        let path = data_dir.join(file);
        assert_eq!(
            mode_of(&path) & 0o077,
            0,
            "{} still open to others",
            path.display()
        );
        assert!(
            out.stderr.contains(&format!("(mode {mode:o})")),
            "no warning for {}: {}",
            path.display(),
            out.stderr
        );
    }
}
