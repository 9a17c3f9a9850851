//! Online backups, `roost backup --verify` and `roost restore`: a backup taken under write load
//! holds every write acknowledged before it began and passes the record and index checks; a
//! damaged one is refused by both commands with nothing replaced; the CLI reaches a running
//! server through its control socket.

use std::path::Path;

use reqwest::Method;
use roost::store::backup::{BackupError, unpack};

use crate::cli::{Sandbox, Server, run};
use crate::helpers::*;

/// Users added while a backup is taken: every one acknowledged before the backup began is in
/// it, it checks out (records decode, indexes match), and it opens as a store.
#[tokio::test]
async fn a_backup_under_write_load_holds_every_write_acknowledged_before_it_began() {
    let app = spawn_app().await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for writer in 0..16 {
        let (url, token) = (app.url("user/add"), app.admin_token.clone());
        let (stop, acknowledged) = (stop.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            let client = client();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let email = format!("w{writer}-{n}@x.io");
                let response = add_user_request(&client, &url, &token, &email, None)
                    .send()
                    .await
                    .expect("user/add");
                assert_eq!(response.status(), 200);
                acknowledged.lock().unwrap().push(email);
                n += 1;
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let file = app.data_dir.join("under-load.bak");
    let store = app.store.clone();
    let target = file.clone();
    let header = tokio::task::spawn_blocking(move || store.backup(&target))
        .await
        .unwrap()
        .expect("backup");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer");
    }
    let after = acknowledged.lock().unwrap().len();
    assert!(
        before.len() > 50 && after > before.len(),
        "{} then {after}",
        before.len()
    );

    let restored = tempfile::tempdir().unwrap();
    let database = restored.path().join("roost.redb");
    assert_eq!(unpack(&file, &database).expect("a sound backup"), header);
    std::fs::copy(
        app.data_dir.join("secrets.key"),
        restored.path().join("secrets.key"),
    )
    .unwrap();
    let copy = roost::store::Store::open(restored.path()).expect("opens");
    for email in &before {
        let user = roost::store::UserRef::Email(roost::domain::Email::parse(email).unwrap());
        copy.user_details(&user).unwrap_or_else(|_| {
            panic!("{email} was acknowledged before the backup and is not in it")
        });
    }
    // A point in time: no more users than were acknowledged when it ended.
    assert!(copy.user_count().unwrap() as usize <= after);
}

fn flip_a_byte(file: &Path, from_end: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes.len() - from_end;
    bytes[at] ^= 0x40;
    std::fs::write(file, bytes).unwrap();
}

#[tokio::test]
async fn a_damaged_backup_is_refused_by_verify_and_restore_and_nothing_is_replaced() {
    let sandbox = Sandbox::new();
    let data = sandbox.data_arg();
    sandbox.create_token("admin");
    let good = sandbox.dir.path().join("good.bak");
    let made = run(sandbox.cmd(&[
        "backup",
        "--out",
        good.to_str().unwrap(),
        "--data-dir",
        &data,
    ]));
    assert!(made.status.success(), "{}", made.stderr);
    let verified = run(sandbox.cmd(&[
        "backup",
        "--verify",
        good.to_str().unwrap(),
        "--data-dir",
        &data,
    ]));
    assert!(verified.status.success(), "{}", verified.stderr);
    assert!(
        verified.stdout.contains(&format!(
            "is a sound backup: schema {}",
            roost::store::SCHEMA_VERSION
        )),
        "{}",
        verified.stdout
    );

    let original = good.to_str().unwrap();
    let database = sandbox.data().join("roost.redb");
    let before = std::fs::read(&database).unwrap();
    let damaged = |name: &str, damage: &dyn Fn(&Path)| {
        let file = sandbox.dir.path().join(name);
        std::fs::copy(original, &file).unwrap();
        damage(&file);
        file
    };
    let cases = [
        (
            damaged("flipped.bak", &|f| flip_a_byte(f, 100)),
            "checksum does not match",
        ),
        (
            damaged("truncated.bak", &|f| {
                let bytes = std::fs::read(f).unwrap();
                std::fs::write(f, &bytes[..bytes.len() - 4096]).unwrap();
            }),
            "truncated",
        ),
        (
            damaged("newer.bak", &|f| {
                let text = std::fs::read(f).unwrap();
                let field = format!("\"schema_version\":{}", roost::store::SCHEMA_VERSION);
                let at = text
                    .windows(field.len())
                    .position(|w| w == field.as_bytes())
                    .unwrap();
                let mut text = text;
                text[at + 17] = b'9';
                std::fs::write(f, text).unwrap();
            }),
            "schema version 9",
        ),
        (
            damaged("not-a-backup.bak", &|f| {
                std::fs::write(f, b"hello\n").unwrap()
            }),
            "not a Roost backup",
        ),
    ];
    for (file, expected) in &cases {
        let file = file.to_str().unwrap();
        for args in [vec!["backup", "--verify", file], vec!["restore", file]] {
            let mut args = args.clone();
            args.extend(["--data-dir", &data]);
            let refused = run(sandbox.cmd(&args));
            assert!(!refused.status.success(), "{args:?} succeeded");
            assert!(
                refused.stderr.contains(expected),
                "{args:?}: {}",
                refused.stderr
            );
        }
        assert!(
            std::fs::read(&database).unwrap() == before,
            "{file} replaced the database"
        );
        assert!(
            !sandbox.data().join("backups").exists(),
            "nothing is kept aside when nothing is replaced"
        );
    }
    // The library refuses the same way (and leaves no half-written database).
    let target = sandbox.dir.path().join("unpacked.redb");
    assert!(matches!(
        unpack(&cases[0].0, &target),
        Err(BackupError::Damaged(_))
    ));
    assert!(!target.exists());
}

/// With a server running, `roost backup` asks it (the database is locked); `roost restore` is
/// refused until the server stops, then brings back the backed-up state and keeps the replaced
/// file.
#[tokio::test]
async fn backup_through_the_running_server_and_restore_once_it_stopped() {
    let sandbox = Sandbox::new();
    let data = sandbox.data_arg();
    let token = sandbox.create_token("admin");
    let server = Server::start(&sandbox);
    let add = |email: &'static str| {
        let (server, token) = (&server, &token);
        async move {
            server
                .call(
                    token,
                    Method::POST,
                    "user/add",
                    &[("email", email), ("access_level", "user")],
                )
                .await
                .ok();
        }
    };
    add("kept@x.io").await;
    let file = sandbox.dir.path().join("online.bak");
    let made = run(sandbox.cmd(&[
        "backup",
        "--out",
        file.to_str().unwrap(),
        "--data-dir",
        &data,
    ]));
    assert!(made.status.success(), "{}", made.stderr);
    assert!(
        made.stdout.starts_with("backup written to"),
        "{}",
        made.stdout
    );
    // On the trail, with who asked.
    let trail = server
        .call(
            &token,
            Method::GET,
            "audit_trail/fetch",
            &[("action_filter", "backup_create")],
        )
        .await;
    let entries = trail.ok()["audit_trail"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["user"], "cli (control socket)");
    assert!(
        entries[0]["message"]
            .as_str()
            .unwrap()
            .contains("online.bak"),
        "{entries:?}"
    );
    add("later@x.io").await;
    let refused = run(sandbox.cmd(&["restore", file.to_str().unwrap(), "--data-dir", &data]));
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("stop `roost serve`"),
        "{}",
        refused.stderr
    );
    server.kill();

    let restored = run(sandbox.cmd(&["restore", file.to_str().unwrap(), "--data-dir", &data]));
    assert!(restored.status.success(), "{}", restored.stderr);
    let kept: Vec<_> = std::fs::read_dir(sandbox.data().join("backups"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        kept.iter()
            .any(|name| name.starts_with("roost-before-restore-")),
        "{kept:?}"
    );
    let server = Server::start(&sandbox);
    let get = |email: &'static str| {
        let (server, token) = (&server, &token);
        async move {
            server
                .call(token, Method::GET, "user/get", &[("email", email)])
                .await
        }
    };
    get("kept@x.io").await.ok();
    get("later@x.io").await.err(404, "User does not exist.");
}

/// `--backup-every 1s --backup-keep 2`: backups keep coming, the oldest are deleted, and each
/// one left is sound.
#[tokio::test]
async fn scheduled_backups_come_on_time_and_only_the_newest_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let scheduled = dir.path().join("scheduled");
    let target = scheduled.clone();
    let app = spawn_app_in(dir, move |config| {
        config.backups.every_secs = 1;
        config.backups.keep = 2;
        config.backups.dir = Some(target);
    })
    .await;
    app.add_user("a@x.io", "user").await;
    let listed = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&scheduled)
            .map(|entries| {
                entries
                    .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
                    // Not the temporary files of one being written.
                    .filter(|name| name.ends_with(".bak"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 4 {
        assert!(std::time::Instant::now() < deadline, "only {seen:?}");
        let now = listed();
        // Between a new backup's rename into place and the oldest one's deletion, one more
        // exists for a moment; never more than that.
        assert!(now.len() <= 3, "more than --backup-keep + 1: {now:?}");
        seen.extend(now);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut kept = listed();
    while kept.len() != 2 {
        assert!(std::time::Instant::now() < deadline, "{kept:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        kept = listed();
    }
    for name in &kept {
        assert!(
            name.starts_with("roost-") && name.ends_with(".bak"),
            "{name}"
        );
        let unpacked = tempfile::tempdir().unwrap();
        let header = unpack(&scheduled.join(name), &unpacked.path().join("roost.redb"))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(header.records > 0);
    }
}

/// The control socket answers anything but `backup /absolute/path` with an error line and
/// writes nothing.
#[tokio::test]
async fn the_control_socket_refuses_what_it_does_not_know() {
    use std::io::{BufRead, BufReader, Write};
    let app = spawn_app().await;
    let socket = app.data_dir.join("roost.sock");
    for request in [
        "nonsense\n",
        "backup relative.bak\n",
        "backup\n",
        "\u{7}\u{0}backup /tmp/x\n",
    ] {
        let path = socket.clone();
        let request = request.to_string();
        let answer = tokio::task::spawn_blocking(move || {
            let mut stream = std::os::unix::net::UnixStream::connect(path).expect("connect");
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut answer = String::new();
            BufReader::new(&stream).read_line(&mut answer).unwrap();
            answer
        })
        .await
        .unwrap();
        assert!(answer.starts_with("error unknown request"), "{answer:?}");
    }
    assert!(!app.data_dir.join("relative.bak").exists());
}
