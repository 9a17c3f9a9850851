//! `roost export` and `roost import`: a console moved through its JSON Lines export keeps every
//! user (passwords and second factors working), flock, role, API key, setting and audit entry;
//! a malformed export is refused with its line and imports nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cli::{Sandbox, Server, run};
use crate::console::{Console, PASSWORD};
use crate::helpers::*;
use crate::two_factor::{code_at, enroll, now};

/// A console with some of everything; returns it, ann's TOTP secret, an analyst key and the id
/// of the flock Ops.
async fn populated_app() -> (TestApp, String, String, String) {
    let app = spawn_app().await;
    let ann = app.console_as("ann@x.io", "admin").await;
    let (secret, _) = enroll(&ann, now()).await;
    app.add_user("bob@x.io", "user").await;
    app.post(
        "user/note/add",
        &[("email", "bob@x.io"), ("note", "on call")],
    )
    .await
    .ok();
    app.post("user/disable", &[("email", "bob@x.io")])
        .await
        .ok();
    let flock = app.create_flock("Ops").await;
    app.assign("ann@x.io", &flock, "manager").await;
    app.assign("bob@x.io", &flock, "watcher").await;
    app.new_flock_key(&flock, "admin").await;
    let analyst = app.new_key("analyst").await;
    app.post("settings/usermanagement/globally_enforce_2fa/enable", &[])
        .await
        .ok();
    (app, secret, analyst, flock)
}

/// `app` exported as an operator would (`roost export` into a fresh directory): the sandbox the
/// file lives in, the file, and its counts.
pub(crate) fn exported(app: &TestApp) -> (Sandbox, PathBuf, roost::store::export::ExportCounts) {
    let sandbox = Sandbox::new();
    let file = sandbox.dir.path().join("console.jsonl");
    let counts = app.store.export(&Actor::cli(), &file).expect("export");
    (sandbox, file, counts)
}

/// A new data directory holding `app`'s secrets key, as one moving the console prepares it (the
/// key seals TOTP and webhook secrets).
pub(crate) fn data_dir_with_secrets_key_of(app: &TestApp) -> tempfile::TempDir {
    let target = tempfile::tempdir().unwrap();
    std::fs::copy(
        app.data_dir.join("secrets.key"),
        target.path().join("secrets.key"),
    )
    .unwrap();
    target
}

pub(crate) fn import(sandbox: &Sandbox, file: &Path, data: &Path) -> crate::cli::Output {
    run(sandbox.cmd(&[
        "import",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]))
}

fn audit_entries(trail: &Value) -> Vec<Value> {
    trail["audit_trail"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_console_moves_through_export_and_import_whole() {
    let (app, secret, analyst, flock) = populated_app().await;
    let (sandbox, file, counts) = exported(&app);
    assert_eq!((counts.users, counts.roles, counts.api_keys), (2, 2, 3));
    assert_eq!(counts.flocks, 2, "the default flock and Ops");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "header");
    assert_eq!(first["format"], 1);
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["kind"], "end");
    // Secrets stay what they are at rest: hashes and sealed TOTP secrets, never the clear ones.
    assert!(!text.contains(&secret), "a clear TOTP secret in the export");
    assert!(
        !text.contains(&app.admin_token),
        "a clear API key in the export"
    );
    assert!(!text.contains(PASSWORD));
    assert!(text.contains("$argon2id$"));
    // The export is on the trail.
    let trail = app
        .get("audit_trail/fetch", &[("action_filter", "data_export")])
        .await;
    assert_eq!(audit_entries(trail.ok()).len(), 1);

    // A new machine: the secrets key comes along (it seals the TOTP secrets).
    let target = data_dir_with_secrets_key_of(&app);
    let output = import(&sandbox, &file, target.path());
    assert!(output.status.success(), "{}", output.stderr);
    assert!(
        output
            .stdout
            .contains("2 users, 2 flocks, 2 roles, 3 API keys"),
        "{}",
        output.stdout
    );
    let before_users: Vec<Value> = {
        let mut users = Vec::new();
        for email in ["ann@x.io", "bob@x.io"] {
            users.push(app.user(email).await);
        }
        users
    };
    let before_flocks = app.get("flocks/list", &[]).await.ok().clone();
    let before_settings = app.get("settings", &[]).await.ok().clone();
    let reads = read_endpoints(&flock);
    let mut before_reads = Vec::new();
    for (path, params) in &reads {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        before_reads.push(app.get(path, &params).await.ok().clone());
    }
    let before_trail = audit_entries(app.get("audit_trail/fetch", &[]).await.ok());
    let old_admin_token = app.admin_token.clone();
    drop(app);

    let moved = spawn_app_in(target, |_| {}).await;
    for (email, before) in ["ann@x.io", "bob@x.io"].iter().zip(&before_users) {
        assert_eq!(&moved.user(email).await, before, "{email}");
    }
    assert_eq!(moved.get("flocks/list", &[]).await.ok(), &before_flocks);
    assert_eq!(moved.get("settings", &[]).await.ok(), &before_settings);
    // Every read endpoint answers as before (see `read_endpoints` for the ones left out).
    for ((path, params), before) in reads.iter().zip(&before_reads) {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let after = moved.get(path, &params).await.ok().clone();
        assert_eq!(
            without_last_use(after, Some(before)),
            without_last_use(before.clone(), None),
            "{path} {params:?}"
        );
    }
    // The keys still authenticate (their hashes moved).
    moved.get_as(&old_admin_token, "ping", &[]).await.ok();
    moved.get_as(&analyst, "ping", &[]).await.ok();
    // Every entry of the trail moved, and the import is the newest change.
    let after_trail = audit_entries(moved.get("audit_trail/fetch", &[]).await.ok());
    // (The export's own entry is recorded once the file is written, so it is not in it.)
    for entry in before_trail
        .iter()
        .filter(|entry| entry["action_type"] != "data_export")
    {
        assert!(after_trail.contains(entry), "lost: {entry}");
    }
    assert!(
        after_trail
            .iter()
            .any(|entry| entry["action_type"] == "data_import"),
        "{after_trail:?}"
    );
    // Ann logs in with her password and her authenticator app.
    let console = Console::new(&moved);
    console
        .login("ann@x.io", PASSWORD)
        .await
        .redirects_to("/login/two-factor");
    console.get("/login/two-factor").await;
    console
        .post(
            "/login/two-factor",
            &[("code", &code_at(&secret, now() + 30))],
        )
        .await
        .redirects_to("/");
    // New ids continue after the imported ones.
    moved.add_user("cy@x.io", "user").await;
    let id_of = |email: &str| {
        moved
            .store
            .user_details(&UserRef::Email(roost::domain::Email::parse(email).unwrap()))
            .unwrap()
            .user
            .id
    };
    let cy = id_of("cy@x.io");
    assert!(cy > id_of("ann@x.io") && cy > id_of("bob@x.io"), "{cy}");
}

/// Every GET endpoint of the API with the parameters it needs here. Not compared: the audit
/// trail (the import adds its own entry; compared entry by entry instead), the sessions (not
/// carried: people log in again) and the mail queue (not carried either).
fn read_endpoints(flock: &str) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let flock = flock.to_string();
    vec![
        ("ping", vec![]),
        ("settings", vec![]),
        ("user/get", vec![("email", "ann@x.io".into())]),
        ("user/get", vec![("email", "bob@x.io".into())]),
        ("user/auth", vec![("email", "ann@x.io".into())]),
        ("user/auth", vec![("email", "bob@x.io".into())]),
        ("users/list", vec![]),
        ("users/filter", vec![("filter_str", "x.io".into())]),
        ("users/filter", vec![("filter_str", "on call".into())]),
        ("flocks/list", vec![]),
        ("flock/users", vec![("flock_id", flock.clone())]),
        ("auth_token/list", vec![]),
        ("flock/auth_token/list", vec![("flock_id", flock)]),
    ]
}

/// `answer` without the keys' last-use times (using a key to compare changes them), and without
/// keys `before` doesn't list (the one the test harness issued on the new machine).
fn without_last_use(mut answer: Value, before: Option<&Value>) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("last_used");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut answer);
    if let Some(before) = before
        && let Some(keys) = answer
            .get_mut("global_api_keys")
            .and_then(Value::as_array_mut)
    {
        let known: Vec<&Value> = before["global_api_keys"]
            .as_array()
            .map(|keys| keys.iter().map(|key| &key["key_id"]).collect())
            .unwrap_or_default();
        keys.retain(|key| known.contains(&&key["key_id"]));
    }
    answer
}

/// `path`'s lines, with `change` applied to them, written to a new file beside it.
fn rewritten(path: &Path, name: &str, change: impl FnOnce(&mut Vec<String>)) -> PathBuf {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    change(&mut lines);
    let out = path.with_file_name(name);
    std::fs::write(&out, lines.join("\n") + "\n").unwrap();
    out
}

fn line_of(lines: &[String], kind: &str) -> usize {
    lines
        .iter()
        .position(|line| line.contains(&format!("\"kind\":\"{kind}\"")))
        .unwrap_or_else(|| panic!("no {kind} line"))
}

fn webhook_line(format: &str, actions: &str) -> String {
    format!(
        r#"{{"kind":"webhook","id":3,"record":{{"url":"https://hooks.example.com/x","format":{format},"actions":{actions},"secret":"sealed:v1:00","created":1,"created_by":"cli"}}}}"#
    )
}

fn invitation_line(hash: &str) -> String {
    serde_json::json!({"kind": "invitation", "hash": hash, "record": {
        "created": 1, "created_by": "cli", "expires_at": 2, "max_uses": 1,
        "access_level": "user", "managed_flocks": [], "watched_flocks": [],
        "email_domain": null, "revoked": false, "uses": []
    }})
    .to_string()
}

#[tokio::test]
async fn a_malformed_export_is_refused_with_its_line_and_imports_nothing() {
    let (app, _, _, _) = populated_app().await;
    let sandbox = Sandbox::new();
    let good = sandbox.dir.path().join("good.jsonl");
    app.store.export(&Actor::cli(), &good).expect("export");
    let secrets_key = app.data_dir.join("secrets.key");

    type Change = Box<dyn FnOnce(&mut Vec<String>)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "not json",
            Box::new(|lines| lines[2] = "{not json".into()),
            "line 3: not an export line",
        ),
        (
            "unknown kind",
            Box::new(|lines| lines[2] = r#"{"kind":"session","record":{}}"#.into()),
            "line 3: not an export line: unknown variant `session`",
        ),
        (
            "no header",
            Box::new(|lines| {
                lines.remove(0);
            }),
            "line 1: the first line must be the export header",
        ),
        (
            "newer schema",
            Box::new(|lines| {
                lines[0] = lines[0].replace(
                    &format!("\"schema_version\":{}", roost::store::SCHEMA_VERSION),
                    "\"schema_version\":99",
                )
            }),
            "line 1: written by a newer Roost (schema 99",
        ),
        (
            "duplicate email",
            Box::new(|lines| {
                let user = line_of(lines, "user");
                let copy = lines[user].replacen("\"id\":", "\"id\":9", 1);
                lines.insert(user + 1, copy);
            }),
            "appears twice",
        ),
        (
            "role of an unknown user",
            Box::new(|lines| {
                let role = line_of(lines, "role");
                lines[role] = lines[role].replacen("\"user\":", "\"user\":77", 1);
            }),
            "no such user or flock in the file",
        ),
        (
            "two roles in one flock",
            Box::new(|lines| {
                let role = line_of(lines, "role");
                let other = if lines[role].contains("\"manager\"") {
                    lines[role].replace("\"manager\"", "\"watcher\"")
                } else {
                    lines[role].replace("\"watcher\"", "\"manager\"")
                };
                lines.insert(role + 1, other);
            }),
            "has two roles in flock",
        ),
        (
            "malformed flock id",
            Box::new(|lines| {
                let flock = lines
                    .iter()
                    .rposition(|line| line.contains("\"kind\":\"flock\""))
                    .unwrap();
                lines[flock] = lines[flock].replacen("\"id\":\"flock:", "\"id\":\"floc k:", 1);
            }),
            "malformed flock id",
        ),
        (
            "bad access level",
            Box::new(|lines| {
                let user = line_of(lines, "user");
                lines[user] = lines[user].replacen(
                    "\"access_level\":\"admin\"",
                    "\"access_level\":\"root\"",
                    1,
                );
            }),
            "user: ",
        ),
        (
            "user id at the end of the range",
            Box::new(|lines| {
                let user = line_of(lines, "user");
                lines[user] =
                    lines[user].replacen("\"id\":", "\"id\":18446744073709551615,\"was\":", 1);
            }),
            "is out of range",
        ),
        (
            "webhook of an unknown action",
            Box::new(|lines| {
                let end = lines.len() - 1;
                lines.insert(
                    end,
                    webhook_line(r#""generic""#, r#"["user_add","no_such"]"#),
                );
            }),
            "webhook 3: unknown action type \"no_such\"",
        ),
        (
            "webhook of an unknown format",
            Box::new(|lines| {
                let end = lines.len() - 1;
                lines.insert(end, webhook_line(r#""fax""#, "[]"));
            }),
            "webhook 3: stored record is unreadable: unknown variant `fax`",
        ),
        (
            "invitation under something not a hash",
            Box::new(|lines| {
                let end = lines.len() - 1;
                lines.insert(end, invitation_line("../../etc/passwd"));
            }),
            "invitation: its hash is not a SHA-256 in hex",
        ),
        (
            "invitation twice",
            Box::new(|lines| {
                let end = lines.len() - 1;
                let hash = "a".repeat(64);
                lines.insert(end, invitation_line(&hash));
                lines.insert(end, invitation_line(&hash));
            }),
            "an invitation appears twice",
        ),
        (
            "cut short",
            Box::new(|lines| {
                lines.pop();
            }),
            "the end line is missing: the file is cut short",
        ),
        (
            "counts changed",
            Box::new(|lines| {
                let user = line_of(lines, "audit");
                lines.remove(user);
            }),
            "the end line counts",
        ),
    ];
    for (name, change, expected) in cases {
        let file = rewritten(&good, &format!("{}.jsonl", name.replace(' ', "-")), change);
        let target = tempfile::tempdir().unwrap();
        std::fs::copy(&secrets_key, target.path().join("secrets.key")).unwrap();
        let output = import(&sandbox, &file, target.path());
        assert!(!output.status.success(), "{name}: imported");
        assert!(
            output.stderr.contains(expected),
            "{name}: {}",
            output.stderr
        );
        assert!(output.stderr.contains("line "), "{name}: {}", output.stderr);
        let left: Vec<_> = std::fs::read_dir(target.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            left,
            vec!["secrets.key".to_string()],
            "{name}: left {left:?}"
        );
    }

    // Sealed TOTP secrets and another secrets key: refused, nothing left behind.
    let target = tempfile::tempdir().unwrap();
    let output = import(&sandbox, &good, target.path());
    assert!(!output.status.success());
    assert!(
        output.stderr.contains("sealed with another secrets key"),
        "{}",
        output.stderr
    );
    assert!(!target.path().join("roost.redb").exists());

    // Into a data directory that has a database: refused, the database untouched.
    let output = import(&sandbox, &good, &app.data_dir);
    assert!(!output.status.success());
    assert!(
        output.stderr.contains("already holds a database"),
        "{}",
        output.stderr
    );
    app.get("ping", &[]).await.ok();
}

#[tokio::test]
async fn roost_export_asks_the_running_server_or_reads_the_stopped_database() {
    let sandbox = Sandbox::new();
    let token = sandbox.create_token("admin");
    let data = sandbox.data_arg();
    let server = Server::start(&sandbox);
    server
        .call(
            &token,
            reqwest::Method::POST,
            "user/add",
            &[("email", "ann@x.io"), ("access_level", "user")],
        )
        .await
        .ok();
    let live = sandbox.dir.path().join("live.jsonl");
    let output = run(sandbox.cmd(&["export", "--out", "live.jsonl", "--data-dir", &data]));
    assert!(output.status.success(), "{}", output.stderr);
    assert!(output.stdout.contains("1 users"), "{}", output.stdout);
    assert!(std::fs::read_to_string(&live).unwrap().contains("ann@x.io"));
    // An existing file is never overwritten.
    let again = run(sandbox.cmd(&["export", "--out", "live.jsonl", "--data-dir", &data]));
    assert!(!again.status.success());
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    server.kill();

    let stopped = run(sandbox.cmd(&["export", "--out", "stopped.jsonl", "--data-dir", &data]));
    assert!(stopped.status.success(), "{}", stopped.stderr);
    // Both were recorded on the trail, and the second export holds the first's entry.
    let text = std::fs::read_to_string(sandbox.dir.path().join("stopped.jsonl")).unwrap();
    assert_eq!(text.matches("\"action_type\":\"data_export\"").count(), 1);
}

/// What waits for a time (a scheduled offboarding, a role that ends) moves with the export and
/// is carried out by the imported console: the scheduler's index is rebuilt by the import.
#[tokio::test]
async fn schedules_move_with_an_export_and_run_in_the_imported_console() {
    use roost::clock::Clock;
    let start = now();
    let app = spawn_app_in(tempfile::tempdir().unwrap(), |config| {
        config.clock = Clock::manual(start)
    })
    .await;
    app.add_user("boss@x.io", "admin").await;
    app.add_user("leaver@x.io", "user").await;
    app.add_user("temp@x.io", "user").await;
    let ops = app.create_flock("Ops").await;
    let at = roost::timestamps::rfc3339(start + 3600);
    app.post("user/offboard", &[("email", "leaver@x.io"), ("at", &at)])
        .await
        .ok();
    app.post(
        "user/flock/assign",
        &[
            ("email", "temp@x.io"),
            ("flock_id_list", &ops),
            ("flock_access_level", "manager"),
            ("expires_at", &at),
        ],
    )
    .await
    .ok();
    let (sandbox, file, _) = exported(&app);
    let target = data_dir_with_secrets_key_of(&app);
    let output = import(&sandbox, &file, target.path());
    assert!(output.status.success(), "{}", output.stderr);
    drop(app);

    // Before their time, the imported console shows both schedules; at it, carries them out.
    let clock = Clock::manual(start + 60);
    let moved = spawn_app_in(target, {
        let clock = clock.clone();
        move |config| config.clock = clock
    })
    .await;
    assert_eq!(moved.user("leaver@x.io").await["offboarding"]["at"], at);
    assert_eq!(
        moved.user("temp@x.io").await["expiring_access"][0]["expires_at"],
        at
    );
    clock.set(start + 3600);
    let run = moved.scheduler.run_due().await.unwrap();
    assert_eq!(run.offboarded.len(), 1);
    assert_eq!(run.expired.len(), 1);
    assert_eq!(moved.user("leaver@x.io").await["disabled"], true);
    assert_eq!(moved.flock_users(&ops).await, (vec![], vec![]));
}
