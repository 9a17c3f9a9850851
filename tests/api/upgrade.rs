//! Upgrades lose nothing: a data file written by each released schema (`tests/fixtures/`) is
//! opened by today's Roost, migrated, and every record it held is checked through the API, the
//! console and the store.

use std::path::Path;

use roost::store::{SCHEMA_VERSION, Store};
use serde_json::Value;

use crate::console::Console;
use crate::helpers::*;
use crate::two_factor::{code_at, now};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A data directory holding a copy of the fixture's database, as an operator's would.
pub fn data_dir_with(fixture_file: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(fixture(fixture_file), dir.path().join("roost.redb")).expect("copy fixture");
    dir
}

fn expected_v1() -> Value {
    let text = std::fs::read_to_string(fixture("schema-v1.json")).expect("fixture json");
    serde_json::from_str(&text).expect("fixture json parses")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn a_schema_v1_file_upgrades_and_keeps_every_record() {
    let expected = expected_v1();
    let secret = expected["totp_secret"].as_str().unwrap();
    let pending = expected["pending_totp_secret"].as_str().unwrap();
    let original = std::fs::read(fixture("schema-v1.redb")).unwrap();
    assert!(
        contains(&original, secret),
        "the v1 fixture stores the secret in clear"
    );

    let dir = data_dir_with("schema-v1.redb");
    let app = spawn_app_in(dir, |_| {}).await;
    assert_eq!(app.store.schema_version().unwrap(), SCHEMA_VERSION);

    // The file before the migration was kept aside, private, and is the v1 file.
    let backups: Vec<_> = std::fs::read_dir(app.data_dir.join("backups"))
        .expect("backups dir")
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let name = backups[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(name.starts_with("roost-schema-v1-"), "{name}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backups[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let kept_aside = std::fs::read(&backups[0]).unwrap();
    assert!(contains(&kept_aside, secret));

    // The database itself holds neither secret in clear anywhere, freed pages included.
    let upgraded = std::fs::read(app.data_dir.join("roost.redb")).unwrap();
    assert!(!contains(&upgraded, secret), "enrolled secret in clear");
    assert!(!contains(&upgraded, pending), "pending secret in clear");

    // Every user, through the fixture's own admin key.
    let admin_key = expected["admin_key"].as_str().unwrap();
    for want in expected["users"].as_array().unwrap() {
        let email = want["email"].as_str().unwrap();
        let got = app.get_as(admin_key, "user/get", &[("email", email)]).await;
        let user = &got.ok()["user"];
        for field in [
            "id",
            "email",
            "access_level",
            "disabled",
            "note",
            "summary_email_enabled",
            "two_factor_required",
            "totp_enabled",
            "managed_flocks",
            "watched_flocks",
        ] {
            assert_eq!(user[field], want[field], "{email}: {field}");
        }
    }
    let listed = app.get_as(admin_key, "users/list", &[]).await;
    assert_eq!(
        listed.ok()["users"].as_array().unwrap().len(),
        expected["users"].as_array().unwrap().len()
    );

    // The other keys keep their scope.
    let reader = expected["reader_key"].as_str().unwrap();
    app.get_as(reader, "users/list", &[]).await.ok();
    app.post_as(reader, "flock/create", &[("name", "x")])
        .await
        .err(403, KEY_NOT_ALLOWED);
    let ops = expected["ops_flock"].as_str().unwrap();
    let flock_key = expected["flock_key"].as_str().unwrap();
    let members = app
        .get_as(flock_key, "flock/users", &[("flock_id", ops)])
        .await;
    assert_eq!(strings(&members.ok()["managers"]), ["Ann@Fixture.test"]);
    assert_eq!(strings(&members.ok()["watchers"]), ["carol@fixture.test"]);
    let keys = app.get_as(admin_key, "auth_token/list", &[]).await;
    let notes: Vec<String> = keys.ok()["global_api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["note"].as_str().unwrap().to_string())
        .collect();
    assert!(notes.contains(&"fixture admin key".to_string()));
    assert!(notes.contains(&"fixture reader".to_string()));

    // Flocks, memberships both ways, settings, the mail queue, the change log.
    let flocks = app.get_as(admin_key, "flocks/list", &[]).await;
    let flocks = flocks.ok()["flocks"].clone();
    assert_eq!(flocks[ops], "Ops & <Friends>");
    assert_eq!(flocks[expected["empty_flock"].as_str().unwrap()], "Empty");
    assert_eq!(flocks["flock:default"], "Default Flock");
    let default_members = app.flock_users("flock:default").await;
    assert_eq!(default_members.1, ["dave@fixture.test"]);
    let settings = app.get_as(admin_key, "settings", &[]).await;
    assert_eq!(settings.ok()["settings"]["globally_enforce_2fa"], true);
    let queue = app.get_as(admin_key, "mail/queue", &[]).await;
    let queue = queue.ok()["mail_queue"].as_array().unwrap().clone();
    assert!(
        queue.is_empty() || queue[0]["to"] == "carol@fixture.test",
        "{queue:?}"
    );
    assert!(
        app.outbox()
            .await
            .iter()
            .any(|mail| mail.contains("Subject: Welcome to Roost")),
        "the queued mail was delivered after the upgrade"
    );
    // The change log became the start of the audit trail; retention then swept what was older
    // than 400 days.
    let migrated = AuditFilter {
        action: Some("change_log".into()),
        ..AuditFilter::default()
    };
    let changes = app
        .store
        .audit_page(&migrated, AuditFrom::Newest, 10_000)
        .unwrap()
        .entries;
    for want in expected["changes"].as_array().unwrap() {
        let at = want["at"].as_u64().unwrap();
        let kept = now().saturating_sub(at) < 400 * 24 * 3600;
        let text = want["text"].as_str().unwrap();
        assert_eq!(
            changes.iter().any(|c| c.at == at && c.message == text),
            kept,
            "change {text:?} (kept 400 days)"
        );
    }
    assert!(
        changes
            .iter()
            .all(|c| c.actor.starts_with("unknown") && c.ip.is_none()),
        "{changes:?}"
    );

    // Ann logs in with her password and a code of her (now sealed) secret.
    let password = expected["password"].as_str().unwrap();
    let ann = Console::new(&app);
    ann.login("ann@fixture.test", password)
        .await
        .redirects_to("/login/two-factor");
    ann.get("/login/two-factor").await;
    ann.post("/login/two-factor", &[("code", &code_at(secret, now()))])
        .await
        .redirects_to("/");
    // A recovery code of hers works instead, once.
    let recovery = expected["recovery_codes"][0].as_str().unwrap();
    let again = Console::new(&app);
    again
        .login("ann@fixture.test", password)
        .await
        .redirects_to("/login/two-factor");
    again.get("/login/two-factor").await;
    again
        .post("/login/two-factor", &[("recovery_code", recovery)])
        .await
        .redirects_to("/");

    // Carol's welcome link still works; enforcement sends her to enrollment, which shows the
    // pending secret she was shown before the upgrade.
    let link = format!("/welcome/{}", expected["link_secret"].as_str().unwrap());
    let carol = Console::new(&app);
    carol.get(&link).await.assert_contains("carol@fixture.test");
    carol
        .post(
            &link,
            &[
                ("password", "carol's new password"),
                ("confirm", "carol's new password"),
            ],
        )
        .await
        .redirects_to("/account/two-factor");
    carol
        .get("/account/two-factor")
        .await
        .assert_contains(pending);
}

#[tokio::test]
async fn an_upgraded_file_opens_again_without_migrating() {
    let dir = data_dir_with("schema-v1.redb");
    let path = dir.path().to_path_buf();
    drop(Store::open(&path).expect("first open migrates"));
    let store = Store::open(&path).expect("second open");
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let backups = std::fs::read_dir(path.join("backups")).unwrap().count();
    assert_eq!(backups, 1, "no second copy when nothing migrates");
}

#[tokio::test]
async fn another_secrets_key_is_refused_and_nothing_is_changed() {
    let dir = data_dir_with("schema-v1.redb");
    let path = dir.path().to_path_buf();
    let users_of = |store: &Store| {
        let page = store.list_users(None, None).unwrap();
        format!("{:?}", page.users)
    };
    let before = users_of(&Store::open(&path).expect("migrates with a new key"));
    let other = tempfile::tempdir().unwrap();
    let wrong_key = other.path().join("other.key");
    std::fs::write(&wrong_key, [3u8; 32]).unwrap();
    let refused = Store::open_with_key_file(&path, &wrong_key).err();
    let message = refused.expect("refused").to_string();
    assert!(message.contains("is not the key"), "{message}");
    // A missing key file is the same mistake: refused, and no stray key is left behind.
    let missing = other.path().join("missing.key");
    assert!(Store::open_with_key_file(&path, &missing).is_err());
    assert!(!missing.exists());
    // With the right key everything is as it was.
    assert_eq!(before, users_of(&Store::open(&path).expect("right key")));
}
