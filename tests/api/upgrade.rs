//! Upgrades lose nothing: a data file written by each released schema (`tests/fixtures/`) is
//! opened by today's Roost, migrated, and every record it held is checked through the API, the
//! console and the store. One check runs for every fixture; what a later schema added (sealed
//! secrets, console sessions, login locks) is checked where its fixture holds it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use roost::config::SessionLimits;
use roost::domain::{Email, Lock};
use roost::store::{SCHEMA_VERSION, Store};
use serde_json::Value;

use crate::console::Console;
use crate::helpers::*;
use crate::two_factor::{code_at, enroll, now};

/// The schemas whose fixture the tests below open; every released schema but today's.
const FIXTURES: [u64; 4] = [1, 2, 3, 4];

/// Long enough that the sessions a fixture's release opened are still live whenever this runs,
/// short enough that one from 2001 has ended.
const TEN_YEARS: u64 = 10 * 365 * 24 * 3600;

/// The change log's retention (schemas 1–2 swept lines older than this at open; the migrated
/// lines are audit entries under the default `--audit-retention` of the same length).
const KEEP_CHANGES_SECS: u64 = 400 * 24 * 3600;

/// Where redb's file header ends its flags (its commit slots follow).
const REDB_FLAGS_END: usize = 64;

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A data directory holding a copy of the fixture's database, as an operator's would.
pub fn data_dir_with(fixture_file: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(fixture_path(fixture_file), dir.path().join("roost.redb")).expect("copy fixture");
    dir
}

/// The data file of one released schema and what it holds (`schema-vN.json`).
struct Fixture {
    version: u64,
    expected: Value,
}

impl Fixture {
    fn load(version: u64) -> Fixture {
        let path = fixture_path(&format!("schema-v{version}.json"));
        let text = std::fs::read_to_string(&path).expect("fixture json");
        let expected: Value = serde_json::from_str(&text).expect("fixture json parses");
        assert_eq!(expected["schema_version"], version, "{}", path.display());
        Fixture { version, expected }
    }

    fn database(&self) -> String {
        format!("schema-v{}.redb", self.version)
    }

    fn str(&self, key: &str) -> &str {
        self.expected[key]
            .as_str()
            .unwrap_or_else(|| panic!("schema-v{}.json: {key}", self.version))
    }

    fn list(&self, key: &str) -> &[Value] {
        self.expected[key].as_array().map_or(&[], Vec::as_slice)
    }

    /// The secrets key the fixture's TOTP secrets are sealed with (schema 2 on); schema 1 kept
    /// them in clear and had no key.
    fn secrets_key(&self) -> Option<PathBuf> {
        self.expected["secrets_key"].as_str().map(fixture_path)
    }

    /// The database beside the files an operator's data directory holds with it: the secrets
    /// key, and the console's cookie key (so the browsers' cookies of that release still open).
    fn data_dir(&self) -> tempfile::TempDir {
        let dir = data_dir_with(&self.database());
        for (key, file) in [
            ("secrets_key", "secrets.key"),
            ("session_key", "session.key"),
        ] {
            if let Some(name) = self.expected[key].as_str() {
                std::fs::copy(fixture_path(name), dir.path().join(file)).expect("copy key");
            }
        }
        dir
    }

    /// Every TOTP-enrolled user of the fixture: (email, secret, recovery codes).
    fn totp_users(&self) -> Vec<(String, String, Vec<String>)> {
        let mut users = vec![(
            "ann@fixture.test".to_string(),
            self.str("totp_secret").to_string(),
            strings(&self.expected["recovery_codes"]),
        )];
        if let Some(more) = self.expected.get("second_totp_user") {
            users.push((
                more["email"].as_str().unwrap().to_string(),
                more["secret"].as_str().unwrap().to_string(),
                strings(&more["recovery_codes"]),
            ));
        }
        users
    }

    /// Flock id -> name. Schema 1's JSON names its two flocks by role.
    fn flocks(&self) -> Vec<(String, String)> {
        match self.expected["flocks"].as_object() {
            Some(flocks) => flocks
                .iter()
                .map(|(id, name)| (id.clone(), name.as_str().unwrap().to_string()))
                .collect(),
            None => vec![
                (self.str("ops_flock").to_string(), "Ops & <Friends>".into()),
                (self.str("empty_flock").to_string(), "Empty".into()),
                ("flock:default".to_string(), "Default Flock".into()),
            ],
        }
    }

    /// The emails (as stored) holding `role` ("managed_flocks", "watched_flocks") in `flock`.
    fn members(&self, flock: &str, role: &str) -> Vec<String> {
        let mut emails: Vec<String> = self
            .list("users")
            .iter()
            .filter(|user| strings(&user[role]).iter().any(|id| id == flock))
            .map(|user| user["email"].as_str().unwrap().to_string())
            .collect();
        emails.sort_by_key(|email| email.to_lowercase());
        emails
    }

    fn user(&self, email: &str) -> &Value {
        self.list("users")
            .iter()
            .find(|user| user["email"].as_str().unwrap().eq_ignore_ascii_case(email))
            .unwrap_or_else(|| panic!("no {email} in the fixture"))
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Whether two redb files hold the same bytes but for the flags at the start, which say whether
/// the file is open.
fn same_file(one: &[u8], other: &[u8]) -> bool {
    one.len() == other.len()
        && one
            .iter()
            .zip(other)
            .rposition(|(a, b)| a != b)
            .is_none_or(|at| at < REDB_FLAGS_END)
}

/// The schema version a data file records, read with redb alone (a `Store` would migrate it).
fn schema_version_of(database: &Path) -> u64 {
    use redb::{ReadableDatabase, TableDefinition};
    const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    let db = redb::Database::open(database).expect("a redb file");
    let txn = db.begin_read().expect("read");
    let meta = txn.open_table(META).expect("meta table");
    let version = meta.get("schema_version").expect("read").expect("version");
    u64::from_le_bytes(version.value().try_into().expect("8 bytes"))
}

fn email(text: &str) -> Email {
    Email::parse(text).expect("email")
}

/// Text as the console's templates write it.
fn html(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

#[tokio::test]
async fn a_schema_v1_file_upgrades_and_keeps_every_record() {
    upgrades_and_keeps_every_record(1).await;
}

#[tokio::test]
async fn a_schema_v2_file_upgrades_and_keeps_every_record() {
    upgrades_and_keeps_every_record(2).await;
}

#[tokio::test]
async fn a_schema_v3_file_upgrades_and_keeps_every_record() {
    upgrades_and_keeps_every_record(3).await;
}

#[tokio::test]
async fn a_schema_v4_file_upgrades_and_keeps_every_record() {
    upgrades_and_keeps_every_record(4).await;
}

#[test]
fn every_released_schema_has_a_fixture_and_its_test() {
    let released: Vec<u64> = (1..SCHEMA_VERSION).collect();
    assert_eq!(
        FIXTURES.to_vec(),
        released,
        "a fixture for each released schema"
    );
    for version in released {
        let fixture = Fixture::load(version);
        assert!(
            fixture_path(&fixture.database()).exists(),
            "schema-v{version}.redb"
        );
        if let Some(key) = fixture.secrets_key() {
            assert!(key.exists(), "{}", key.display());
        }
    }
}

async fn upgrades_and_keeps_every_record(version: u64) {
    let fixture = Fixture::load(version);
    let secrets: Vec<String> = fixture
        .totp_users()
        .into_iter()
        .map(|(_, secret, _)| secret)
        .chain([fixture.str("pending_totp_secret").to_string()])
        .collect();
    // Schema 1 stored TOTP secrets in clear; schema 2 sealed them.
    let original = std::fs::read(fixture_path(&fixture.database())).unwrap();
    for secret in &secrets {
        assert_eq!(
            contains(&original, secret),
            version == 1,
            "a TOTP secret in clear in the v{version} fixture"
        );
    }

    let dir = fixture.data_dir();
    let app = spawn_app_in(dir, |config| {
        config.session_limits = SessionLimits {
            idle_secs: TEN_YEARS,
            absolute_secs: TEN_YEARS,
        };
    })
    .await;
    assert_eq!(app.store.schema_version().unwrap(), SCHEMA_VERSION);

    // The file before the migration was kept aside, private, and is the fixture's file.
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
    assert!(
        name.starts_with(&format!("roost-schema-v{version}-")),
        "{name}"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backups[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The fixture's file (the copy is taken while the file is open, and marked so).
    let kept_aside = std::fs::read(&backups[0]).unwrap();
    assert!(
        same_file(&kept_aside, &original),
        "the copy aside is the file"
    );

    // The database itself holds no secret in clear anywhere, freed pages included; a sealed
    // fixture's key is still the key (nothing was sealed anew under another).
    let upgraded = std::fs::read(app.data_dir.join("roost.redb")).unwrap();
    for secret in &secrets {
        assert!(!contains(&upgraded, secret), "a TOTP secret in clear");
    }
    if let Some(key) = fixture.secrets_key() {
        assert_eq!(
            std::fs::read(app.data_dir.join("secrets.key")).unwrap(),
            std::fs::read(key).unwrap()
        );
    }

    // Every user, through the fixture's own admin key, and as the store reads them.
    let admin_key = fixture.str("admin_key");
    for want in fixture.list("users") {
        let address = want["email"].as_str().unwrap();
        let got = app
            .get_as(admin_key, "user/get", &[("email", address)])
            .await;
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
            "webauthn_enabled",
            "managed_flocks",
            "watched_flocks",
        ] {
            if let Some(wanted) = want.get(field) {
                assert_eq!(user[field], *wanted, "{address}: {field}");
            }
        }
        let stored = app.store.user_by_email(&email(address)).unwrap().user;
        assert_eq!(
            stored.password_hash.is_some(),
            want["has_password"].as_bool().unwrap(),
            "{address}: password"
        );
        let numbers = [
            (
                "recovery_codes_left",
                stored.recovery_code_hashes.len() as u64,
            ),
            ("factor_failures", u64::from(stored.factor_failures)),
            ("factor_locked_until", stored.factor_locked_until),
            ("factor_lockouts", u64::from(stored.factor_lockouts)),
            ("factor_lockouts_since", stored.factor_lockouts_since),
        ];
        for (field, got) in numbers {
            if let Some(wanted) = want.get(field) {
                assert_eq!(got, wanted.as_u64().unwrap(), "{address}: {field}");
            }
        }
        if let Some(wanted) = want.get("has_pending_totp") {
            assert_eq!(
                stored.pending_totp_secret.is_some(),
                wanted.as_bool().unwrap(),
                "{address}: pending secret"
            );
        }
    }
    let listed = app.get_as(admin_key, "users/list", &[]).await;
    assert_eq!(
        listed.ok()["users"].as_array().unwrap().len(),
        fixture.list("users").len()
    );

    // The other keys keep their scope.
    let reader = fixture.str("reader_key");
    app.get_as(reader, "users/list", &[]).await.ok();
    app.post_as(reader, "flock/create", &[("name", "x")])
        .await
        .err(403, KEY_NOT_ALLOWED);
    let ops = fixture.str("ops_flock");
    let flock_key = fixture.str("flock_key");
    app.get_as(flock_key, "flock/users", &[("flock_id", ops)])
        .await
        .ok();
    app.get_as(flock_key, "users/list", &[])
        .await
        .err(403, KEY_NOT_ALLOWED);
    // Every key, and only those, with what it was made with (the harness adds its own).
    let key_id = |token: &str| token.split('_').nth(1).unwrap().to_string();
    let keys = app.get_as(admin_key, "auth_token/list", &[]).await;
    let mut global: Vec<[String; 4]> = keys.ok()["global_api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["key_id"].as_str() != Some(&key_id(&app.admin_token)))
        .map(|k| {
            ["key_id", "auth_token_type", "note", "created_by"]
                .map(|field| k[field].as_str().unwrap().to_string())
        })
        .collect();
    global.sort();
    let mut want_global = vec![
        [
            key_id(admin_key),
            "admin".into(),
            "fixture admin key".into(),
            "cli".into(),
        ],
        [
            key_id(reader),
            "read-only".into(),
            "fixture reader".into(),
            "cli".into(),
        ],
    ];
    want_global.sort();
    assert_eq!(global, want_global);
    for (id, _) in fixture.flocks() {
        let flock_keys = app
            .get_as(admin_key, "flock/auth_token/list", &[("flock_id", &id)])
            .await;
        let flock_keys = flock_keys.ok()["flock_api_keys"]
            .as_array()
            .unwrap()
            .clone();
        if id != ops {
            assert!(flock_keys.is_empty(), "{id}: {flock_keys:?}");
            continue;
        }
        assert_eq!(flock_keys.len(), 1, "{flock_keys:?}");
        assert_eq!(flock_keys[0]["key_id"], fixture.str("flock_key_id"));
        assert_eq!(key_id(flock_key), fixture.str("flock_key_id"));
        assert_eq!(flock_keys[0]["note"], "ops reader");
        assert_eq!(flock_keys[0]["auth_token_type"], "read-only");
        assert_eq!(flock_keys[0]["created_by"], "api key x");
    }

    // Flocks and their members both ways (the users' roles above, each flock's members here).
    let flocks = app.get_as(admin_key, "flocks/list", &[]).await;
    let flocks = flocks.ok()["flocks"].clone();
    let want_flocks = fixture.flocks();
    assert_eq!(
        flocks.as_object().unwrap().len(),
        want_flocks.len(),
        "{flocks}"
    );
    for (id, name) in &want_flocks {
        assert_eq!(flocks[id.as_str()], name.as_str(), "flock {id}");
        let members = app
            .get_as(admin_key, "flock/users", &[("flock_id", id)])
            .await;
        let members = members.ok();
        assert_eq!(
            strings(&members["managers"]),
            fixture.members(id, "managed_flocks"),
            "managers of {name}"
        );
        assert_eq!(
            strings(&members["watchers"]),
            fixture.members(id, "watched_flocks"),
            "watchers of {name}"
        );
    }

    // Settings, the mail queue.
    let settings = app.get_as(admin_key, "settings", &[]).await;
    assert_eq!(settings.ok()["settings"]["globally_enforce_2fa"], true);
    // Schema 5's switch, absent before: allowed (no earlier credential is a passkey).
    assert_eq!(settings.ok()["settings"]["passwordless_sign_in"], true);
    if fixture.version >= 4 {
        schema_v4_records_are_kept(&fixture, &app, admin_key).await;
    }
    let queue = app.get_as(admin_key, "mail/queue", &[]).await;
    let queue = queue.ok()["mail_queue"].as_array().unwrap().clone();
    assert!(
        queue.is_empty() || queue[0]["to"] == "carol@fixture.test",
        "{queue:?}"
    );
    // The one queued mail, delivered after the upgrade (unless the release that wrote the
    // fixture delivered it already, as schema 4's did while it was served to add its records).
    let outbox = app.outbox().await;
    if fixture.expected["queued_mail_delivered"] == true {
        assert!(queue.is_empty() && outbox.is_empty(), "{outbox:?}");
    } else {
        assert_eq!(outbox.len(), 1, "{outbox:?}");
        assert!(
            outbox[0].contains("Subject: Welcome to Roost")
                && outbox[0].contains("To: carol@fixture.test"),
            "{}",
            outbox[0]
        );
    }

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
    let mut kept = 0;
    for want in fixture.list("changes") {
        let at = want["at"].as_u64().unwrap();
        let keep = now().saturating_sub(at) < KEEP_CHANGES_SECS;
        let text = want["text"].as_str().unwrap();
        assert_eq!(
            changes.iter().any(|c| c.at == at && c.message == text),
            keep,
            "change {text:?} (kept 400 days)"
        );
        kept += usize::from(keep);
    }
    assert_eq!(changes.len(), kept, "{changes:?}");
    assert!(
        changes
            .iter()
            .all(|c| c.actor.starts_with("unknown") && c.ip.is_none()),
        "{changes:?}"
    );

    sessions_are_kept(&fixture, &app).await;

    // Each TOTP-enrolled user logs in with their password and a code of their (sealed) secret.
    let password = fixture.str("password");
    for (address, secret, _) in fixture.totp_users() {
        let console = Console::new(&app);
        console
            .login(&address, password)
            .await
            .redirects_to("/login/two-factor");
        console.get("/login/two-factor").await;
        console
            .post("/login/two-factor", &[("code", &code_at(&secret, now()))])
            .await
            .redirects_to("/");
    }
    // A recovery code of ann's works instead.
    let (ann, _, codes) = &fixture.totp_users()[0];
    let again = Console::new(&app);
    again
        .login(ann, password)
        .await
        .redirects_to("/login/two-factor");
    again.get("/login/two-factor").await;
    again
        .post("/login/two-factor", &[("recovery_code", &codes[0])])
        .await
        .redirects_to("/");

    // Carol's welcome link still works; enforcement sends her to enrollment, which shows the
    // pending secret she was shown before the upgrade.
    let pending = fixture.str("pending_totp_secret");
    let link = format!("/welcome/{}", fixture.str("link_secret"));
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

    // Locked accounts stay locked until an admin unlocks them; the admin console (root, made to
    // enroll by the enforcement) shows every user as stored.
    let locked: Vec<&Value> = fixture
        .list("login_locks")
        .iter()
        .filter(|lock| lock["until"].as_u64().unwrap() > now())
        .collect();
    for lock in fixture.list("login_locks") {
        let address = lock["email"].as_str().unwrap();
        let want = Lock {
            until: lock["until"].as_u64().unwrap(),
            lockouts: lock["lockouts"].as_u64().unwrap() as u32,
            since: lock["since"].as_u64().unwrap(),
        };
        assert_eq!(
            app.store.login_lock(&email(address)).unwrap(),
            Some(want),
            "{address}"
        );
    }
    for lock in &locked {
        let address = lock["email"].as_str().unwrap();
        let page = Console::new(&app).login(address, password).await;
        assert_eq!(page.status, 429, "{address}: the lock outlived the upgrade");
    }
    let root = Console::new(&app);
    root.login("root@fixture.test", password)
        .await
        .redirects_to("/account/two-factor");
    enroll(&root, now()).await;
    for want in fixture.list("users") {
        let address = want["email"].as_str().unwrap();
        let id = want["id"].as_u64().unwrap();
        let page = root.get(&format!("/users/{id}")).await;
        assert_eq!(page.status, 200, "{address}");
        page.assert_contains(&format!("<h1 id=\"user-email\">{}</h1>", html(address)));
        let totp = if address == "root@fixture.test" || want["totp_enabled"] == true {
            "enrolled"
        } else {
            "not enrolled"
        };
        page.assert_contains(&format!("<dd id=\"fact-totp\">{totp}</dd>"));
        let status = if want["disabled"] == true {
            "disabled"
        } else {
            "enabled"
        };
        page.assert_contains(&format!("id=\"fact-status\">{status}</span>"));
        if let Some(note) = want["note"].as_str() {
            page.assert_contains(&format!("maxlength=\"10000\">{}</textarea>", html(note)));
        }
        let is_locked = locked.iter().any(|lock| lock["email"] == address);
        assert_eq!(
            page.body.contains("id=\"fact-login-locked\""),
            is_locked,
            "{address}: locked"
        );
    }
    for (id, name) in &want_flocks {
        root.get(&format!("/flocks/{id}"))
            .await
            .assert_contains(&html(name));
    }
    for lock in &locked {
        let address = lock["email"].as_str().unwrap();
        let id = fixture.user(address)["id"].as_u64().unwrap();
        root.get(&format!("/users/{id}")).await;
        root.post(&format!("/users/{id}/unlock"), &[])
            .await
            .redirects_to(&format!("/users/{id}"));
        let page = Console::new(&app).login(address, password).await;
        assert_eq!(page.status, 303, "{address} logs in once unlocked");
        assert!(app.store.login_lock(&email(address)).unwrap().is_none());
    }
}

/// What schema 4 added: grants that end (with who gave them), a scheduled offboarding, an
/// invitation.
async fn schema_v4_records_are_kept(fixture: &Fixture, app: &TestApp, admin_key: &str) {
    let want = &fixture.expected["schema_v4"];
    let granted_by = want["granted_by"].as_str().unwrap();
    let admin = &want["expiring_admin"];
    let user = app
        .get_as(
            admin_key,
            "user/get",
            &[("email", admin["email"].as_str().unwrap())],
        )
        .await;
    assert_eq!(
        user.ok()["user"]["expiring_access"],
        serde_json::json!([{"grant": "admin", "expires_at": admin["expires_at"], "granted_by": granted_by}])
    );
    let stored = app
        .store
        .user_by_email(&email(admin["email"].as_str().unwrap()))
        .unwrap()
        .user;
    assert_eq!(
        stored.made_admin.map(|made| made.by).as_deref(),
        Some(granted_by)
    );
    let role = &want["expiring_role"];
    let user = app
        .get_as(
            admin_key,
            "user/get",
            &[("email", role["email"].as_str().unwrap())],
        )
        .await;
    assert_eq!(
        user.ok()["user"]["expiring_access"],
        serde_json::json!([{"grant": role["grant"], "flock_id": role["flock_id"],
            "expires_at": role["expires_at"], "granted_by": granted_by}])
    );
    let leaving = &want["offboarding"];
    let stored = app
        .store
        .user_by_email(&email(leaving["email"].as_str().unwrap()))
        .unwrap()
        .user;
    let scheduled = stored.offboarding.expect("the scheduled offboarding");
    assert_eq!(
        roost::timestamps::rfc3339(scheduled.at),
        leaving["at"].as_str().unwrap()
    );
    assert_eq!(scheduled.revoke_api_keys, leaving["revoke_api_keys"]);
    assert_eq!(scheduled.scheduled_by, granted_by);
    let invites = app.get_as(admin_key, "invites/list", &[]).await;
    let invites = invites.ok()["invitations"].as_array().unwrap().clone();
    let invitation = &want["invitation"];
    assert_eq!(invites.len(), 1, "{invites:?}");
    for field in [
        "id",
        "email_domain",
        "access_level",
        "max_uses",
        "expires_at",
    ] {
        assert_eq!(invites[0][field], invitation[field], "{field}");
    }
    assert_eq!(invites[0]["created_by"], granted_by);
}

/// The console sessions of the fixture's release: those within today's limits are still listed
/// and still sign their browser in, the others are swept; an admin ends one.
async fn sessions_are_kept(fixture: &Fixture, app: &TestApp) {
    let sessions = fixture.list("sessions");
    if sessions.is_empty() {
        assert_eq!(app.store.session_count().unwrap(), 0);
        return;
    }
    let admin_key = fixture.str("admin_key");
    let live = |session: &Value| {
        let created = session["created"].as_u64().unwrap();
        let last_seen = session["last_seen"].as_u64().unwrap();
        now().saturating_sub(created) <= TEN_YEARS && now().saturating_sub(last_seen) <= TEN_YEARS
    };
    // Ended sessions are swept at start, by a task of their own.
    let live_count = sessions.iter().filter(|session| live(session)).count() as u64;
    let mut waited = 0;
    while app.store.session_count().unwrap() != live_count && waited < 100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(app.store.session_count().unwrap(), live_count);
    for session in sessions {
        let address = session["email"].as_str().unwrap();
        let id = fixture.user(address)["id"].as_u64().unwrap();
        let stored = app.store.sessions_of(id).unwrap();
        let public_id = session["public_id"].as_str().unwrap();
        let found = stored.iter().find(|s| s.public_id() == public_id);
        assert_eq!(
            found.is_some(),
            live(session),
            "{address}'s session {public_id}"
        );
        let Some(found) = found else { continue };
        assert_eq!(found.record.created, session["created"].as_u64().unwrap());
        assert_eq!(
            found.record.last_seen,
            session["last_seen"].as_u64().unwrap()
        );
        let listed = app
            .get_as(admin_key, "user/sessions", &[("email", address)])
            .await;
        let listed = listed.ok()["sessions"].clone();
        let view = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|view| view["id"] == public_id)
            .unwrap_or_else(|| panic!("{address}'s session {public_id} in {listed}"));
        assert_eq!(view["ip"], session["ip"], "{address}");
        assert_eq!(view["user_agent"], session["user_agent"], "{address}");
    }

    // The browser holding the cookie of a live session is still signed in.
    let cookie = &fixture.expected["session_cookie"];
    let address = cookie["email"].as_str().unwrap();
    let browser = Console::new(app);
    browser.add_cookie(cookie["cookie"].as_str().unwrap());
    let page = browser.get("/account").await;
    assert_eq!(page.status, 200, "{page:?}");
    page.assert_contains(address);
    // An admin ends that user's other sessions, one by one; the browser's stays.
    let id = fixture.user(address)["id"].as_u64().unwrap();
    let mine = sessions
        .iter()
        .find(|session| session["email"] == address)
        .unwrap()["public_id"]
        .clone();
    for session in app.store.sessions_of(id).unwrap() {
        if session.public_id() == mine {
            continue;
        }
        let revoked = app
            .post_as(
                admin_key,
                "user/sessions/revoke",
                &[("email", address), ("session_id", session.public_id())],
            )
            .await;
        assert_eq!(revoked.ok()["revoked"], 1);
    }
    let left = app.store.sessions_of(id).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].public_id(), mine);
    assert_eq!(browser.get("/account").await.status, 200);
}

#[tokio::test]
async fn an_upgraded_file_opens_again_without_migrating() {
    for version in FIXTURES {
        let fixture = Fixture::load(version);
        // The database alone in its directory; a sealed fixture's key kept elsewhere and named
        // (as `--secrets-key-file` does).
        let dir = data_dir_with(&fixture.database());
        let path = dir.path().to_path_buf();
        let elsewhere = tempfile::tempdir().unwrap();
        let key = elsewhere.path().join("roost-secrets.key");
        if let Some(fixture_key) = fixture.secrets_key() {
            std::fs::copy(fixture_key, &key).unwrap();
        }
        drop(Store::open_with_key_file(&path, &key).expect("first open migrates"));
        assert!(!path.join("secrets.key").exists());
        let store = Store::open_with_key_file(&path, &key).expect("second open");
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let backups = std::fs::read_dir(path.join("backups")).unwrap().count();
        assert_eq!(
            backups, 1,
            "v{version}: no second copy when nothing migrates"
        );
    }
}

#[tokio::test]
async fn another_secrets_key_is_refused_and_nothing_is_changed() {
    for version in FIXTURES {
        let fixture = Fixture::load(version);
        let dir = fixture.data_dir();
        let path = dir.path().to_path_buf();
        let database = path.join("roost.redb");
        let other = tempfile::tempdir().unwrap();
        let wrong_key = other.path().join("other.key");
        std::fs::write(&wrong_key, [3u8; 32]).unwrap();
        let missing = other.path().join("missing.key");
        let refused = |key: &Path| {
            let refused = Store::open_with_key_file(&path, key).err();
            refused.expect("refused").to_string()
        };
        if fixture.secrets_key().is_some() {
            // A file whose secrets are sealed already: another key, or none, is refused before
            // anything is migrated.
            let message = refused(&wrong_key);
            assert!(message.contains("is not the key"), "v{version}: {message}");
            refused(&missing);
            assert!(!missing.exists());
            assert_eq!(schema_version_of(&database), version, "nothing migrated");
            assert!(
                !path.join("backups").exists(),
                "v{version}: nothing copied aside"
            );
        }
        let users_of = |store: &Store| {
            let page = store.list_users(None, None).unwrap();
            format!("{:?}", page.users)
        };
        let before = users_of(&Store::open(&path).expect("migrates"));
        let message = refused(&wrong_key);
        assert!(message.contains("is not the key"), "v{version}: {message}");
        // A missing key file is the same mistake: refused, and no stray key is left behind.
        refused(&missing);
        assert!(!missing.exists());
        // With the right key everything is as it was.
        assert_eq!(before, users_of(&Store::open(&path).expect("right key")));
    }
}
