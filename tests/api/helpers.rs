//! Shared test harness: an in-process Roost on a random port with its own data dir, a client
//! that speaks the API the way scripts do, and a `snapshot()` of everything the API can read.

use reqwest::{Method, RequestBuilder};
use roost::auth::api_keys::issue_global_key;
use roost::config::Config;
use roost::domain::ApiKeyType;
use roost::startup::Application;
pub use roost::store::UserRef;
pub use roost::store::audit::{Actor, AuditFilter, AuditFrom};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const KEY_NOT_ALLOWED: &str = "This API key is not allowed to call this endpoint.";
pub const USER_DOES_NOT_EXIST: &str = "User does not exist.";
pub const FLOCK_DOES_NOT_EXIST: &str = "Flock does not exist.";
pub const LAST_ADMIN: &str = "Cannot disable, remove or demote the last enabled admin.";
/// Well-formed but never created.
pub const UNKNOWN_FLOCK: &str = "flock:0123456789abcdef0123456789abcdef";

pub struct TestApp {
    pub address: String,
    pub admin_token: String,
    pub data_dir: PathBuf,
    pub client: reqwest::Client,
    /// The running app's store, for arranging what the API can't (passwords) and for checking
    /// effects of console actions.
    pub store: roost::store::Store,
    /// The running app's weekly summaries, queued into its mail queue (its scheduler is off).
    pub summaries: roost::summaries::Summaries,
    /// The base URL the app builds links from (`http://localhost:<port>`).
    pub console_url: String,
    /// The app's password hashing workers: their computation count is what throttle tests count.
    pub hasher: roost::auth::passwords::PasswordHasher,
    /// The app's mail queue sender (readiness tests stop it).
    pub mail_sender: roost::mail::queue::MailSender,
    pub webhook_sender: roost::background::Worker,
    /// The app's scheduler of offboardings: tests move their clock, then run it.
    pub scheduler: roost::service::scheduler::Scheduler,
    /// The `--metrics-bind` listener's address, when the test asked for one.
    pub metrics_address: Option<String>,
    server: actix_web::dev::ServerHandle,
    _data_dir_guard: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The stop command is sent at once; the server's own thread carries it out.
        drop(self.server.stop(false));
    }
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Param(&'a str),
    Header(&'a str),
}

/// A response reduced to what the tests look at.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub text: String,
    pub body: Value,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("reqwest client")
}

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp data dir");
    spawn_app_in(dir, |_| {}).await
}

/// An app on a fresh data dir whose schedules run by `clock` (a test moves it, then runs
/// `scheduler.run_due()`).
pub async fn spawn_app_at(clock: &roost::clock::Clock) -> TestApp {
    let clock = clock.clone();
    spawn_app_in(tempfile::tempdir().expect("temp data dir"), move |config| {
        config.clock = clock
    })
    .await
}

/// An app on the data dir `dir` (which may hold data already), with `configure` applied to its
/// configuration.
pub async fn spawn_app_in(dir: tempfile::TempDir, configure: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config::with_data_dir(dir.path());
    config.bind = "127.0.0.1:0".to_string();
    // Summaries are driven by hand in tests/api/summaries.rs, never by the clock mid-test.
    config.summary_scheduler = false;
    configure(&mut config);
    let app = Application::build(config).await.expect("build application");
    let port = app.port();
    let store = app.store();
    let summaries = app.summaries();
    let console_url = app.base_url().to_string();
    let hasher = app.hasher();
    let mail_sender = app.mail_sender();
    let webhook_sender = app.webhook_sender();
    let scheduler = app.scheduler();
    let metrics_address = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let admin_token = issue_global_key(&store, ApiKeyType::Admin, "tests", "tests")
        .expect("issue global admin key");
    let server = app.server_handle();
    // On a thread of its own, so that the stop sent when the test ends is carried out: a server
    // left to the test's runtime would keep its workers (and its store, and their memory) alive
    // until the whole test binary exits.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        let _ = runtime.block_on(app.run_until_stopped());
    });
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        admin_token,
        data_dir: dir.path().to_path_buf(),
        client: client(),
        store,
        summaries,
        console_url,
        hasher,
        mail_sender,
        webhook_sender,
        scheduler,
        metrics_address,
        server,
        _data_dir_guard: dir,
    }
}

/// Sends a request and reduces the response; a 5xx is always a bug, so it fails the test here.
pub async fn send(request: RequestBuilder) -> Resp {
    let response = request.send().await.expect("request failed");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.expect("response body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    let resp = Resp {
        status,
        content_type,
        text,
        body,
    };
    assert!(status < 500, "server error: {resp:?}");
    resp
}

/// `/api/v1/...` URL for a path like `user/add`.
pub fn api_url(address: &str, path: &str) -> String {
    format!("{address}/api/v1/{path}")
}

/// Builds a request the way the contract describes: params in the query for GET, in a form
/// body otherwise; the token as `auth_token` param or `X-Canary-Auth-Token` header.
pub fn build_request(
    client: &reqwest::Client,
    address: &str,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    params: &[(&str, &str)],
) -> RequestBuilder {
    let mut all: Vec<(&str, &str)> = params.to_vec();
    if let Auth::Param(token) = auth {
        all.push(("auth_token", token));
    }
    let mut request = client.request(method.clone(), api_url(address, path));
    if let Auth::Header(token) = auth {
        request = request.header("X-Canary-Auth-Token", token);
    }
    if method == Method::GET {
        request.query(&all)
    } else {
        request.form(&all)
    }
}

impl Resp {
    /// Asserts 200 `{"result":"success", ...}` and returns the body.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "expected 200, got {self:?}");
        assert_eq!(self.body["result"], "success", "expected success: {self:?}");
        assert_json(self);
        &self.body
    }

    /// Asserts 200 with exactly `{"result":"success","msg":msg}`.
    #[track_caller]
    pub fn ok_msg(&self, msg: &str) {
        assert_eq!(self.status, 200, "expected 200, got {self:?}");
        assert_eq!(
            self.body,
            json!({"result": "success", "msg": msg}),
            "{self:?}"
        );
        assert_json(self);
    }

    /// Asserts 200 with exactly `{"result":"success"}`.
    #[track_caller]
    pub fn ok_bare(&self) {
        assert_eq!(self.status, 200, "expected 200, got {self:?}");
        assert_eq!(self.body, json!({"result": "success"}), "{self:?}");
        assert_json(self);
    }

    /// Asserts the exact error status and body `{"result":"error","message":message}`.
    #[track_caller]
    pub fn err(&self, status: u16, message: &str) {
        assert_eq!(self.status, status, "expected {status}, got {self:?}");
        assert_eq!(
            self.body,
            json!({"result": "error", "message": message}),
            "{self:?}"
        );
        assert_json(self);
    }

    /// Asserts the error status and the error shape, leaving the sentence open.
    #[track_caller]
    pub fn err_status(&self, status: u16) -> &str {
        assert_eq!(self.status, status, "expected {status}, got {self:?}");
        assert_eq!(self.body["result"], "error", "{self:?}");
        let obj = self.body.as_object().expect("error body is an object");
        assert_eq!(
            obj.len(),
            2,
            "error body has exactly result and message: {self:?}"
        );
        assert_json(self);
        let message = self.body["message"].as_str().expect("message is a string");
        assert!(!message.is_empty(), "empty error message: {self:?}");
        message
    }
}

impl Resp {
    /// For table-driven tests: `None` if this is the expected error, else what went wrong.
    pub fn error_mismatch(&self, status: u16, message: Option<&str>) -> Option<String> {
        let shape_ok = self.body["result"] == "error"
            && self.body["message"].as_str().is_some_and(|m| !m.is_empty())
            && self.body.as_object().is_some_and(|o| o.len() == 2)
            && self.content_type.starts_with("application/json");
        let message_ok = message.is_none_or(|m| self.body["message"] == m);
        let expected = message.unwrap_or("<any message>");
        (self.status != status || !shape_ok || !message_ok).then(|| {
            format!(
                "expected {status} {expected:?}, got {} {}",
                self.status, self.text
            )
        })
    }
}

/// Collects every mismatch of a table-driven test, to report them all at once.
#[derive(Default)]
pub struct Failures(pub Vec<String>);

impl Failures {
    pub fn check(&mut self, what: String, resp: &Resp, status: u16, message: Option<&str>) {
        if let Some(problem) = resp.error_mismatch(status, message) {
            self.0.push(format!("{what}: {problem}"));
        }
    }

    #[track_caller]
    pub fn assert_none(&self) {
        assert!(
            self.0.is_empty(),
            "{} failures:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

#[track_caller]
fn assert_json(resp: &Resp) {
    assert!(
        resp.content_type.starts_with("application/json"),
        "content-type is not application/json: {resp:?}"
    );
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        api_url(&self.address, path)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        params: &[(&str, &str)],
    ) -> Resp {
        send(build_request(
            &self.client,
            &self.address,
            method,
            path,
            auth,
            params,
        ))
        .await
    }

    pub async fn post(&self, path: &str, params: &[(&str, &str)]) -> Resp {
        self.post_as(&self.admin_token, path, params).await
    }

    pub async fn get(&self, path: &str, params: &[(&str, &str)]) -> Resp {
        self.get_as(&self.admin_token, path, params).await
    }

    pub async fn delete(&self, path: &str, params: &[(&str, &str)]) -> Resp {
        let auth = Auth::Param(&self.admin_token);
        self.call(Method::DELETE, path, auth, params).await
    }

    pub async fn post_as(&self, token: &str, path: &str, params: &[(&str, &str)]) -> Resp {
        self.call(Method::POST, path, Auth::Param(token), params)
            .await
    }

    pub async fn get_as(&self, token: &str, path: &str, params: &[(&str, &str)]) -> Resp {
        self.call(Method::GET, path, Auth::Param(token), params)
            .await
    }

    /// Adds a user without a welcome mail.
    pub async fn add_user(&self, email: &str, access_level: &str) {
        self.post(
            "user/add",
            &[
                ("email", email),
                ("access_level", access_level),
                ("send_welcome_mail", "false"),
            ],
        )
        .await
        .ok();
    }

    /// The `user` object of `user/get`.
    pub async fn user(&self, email: &str) -> Value {
        self.get("user/get", &[("email", email)]).await.ok()["user"].clone()
    }

    pub async fn create_flock(&self, name: &str) -> String {
        let resp = self.post("flock/create", &[("name", name)]).await;
        resp.ok()["flock_id"]
            .as_str()
            .expect("flock_id is a string")
            .to_string()
    }

    pub async fn assign(&self, email: &str, flock_ids: &str, role: &str) {
        self.post(
            "user/flock/assign",
            &[
                ("email", email),
                ("flock_id_list", flock_ids),
                ("flock_access_level", role),
            ],
        )
        .await
        .ok();
    }

    /// `(managers, watchers)` of a flock, sorted.
    pub async fn flock_users(&self, flock_id: &str) -> (Vec<String>, Vec<String>) {
        let resp = self.get("flock/users", &[("flock_id", flock_id)]).await;
        let body = resp.ok();
        (strings(&body["managers"]), strings(&body["watchers"]))
    }

    /// The `global_api_key` object of `auth_token/add`.
    pub async fn add_key(&self, key_type: &str) -> Value {
        let params = [("auth_token_type", key_type), ("note", "test key")];
        let resp = self.post("auth_token/add", &params).await;
        resp.ok()["global_api_key"].clone()
    }

    pub async fn new_key(&self, key_type: &str) -> String {
        token_of(&self.add_key(key_type).await)
    }

    /// The `flock_api_key` object of `flock/auth_token/add`.
    pub async fn add_flock_key(&self, flock_id: &str, key_type: &str) -> Value {
        let params = [
            ("flock_id", flock_id),
            ("note", "test flock key"),
            ("auth_token_type", key_type),
        ];
        let resp = self.post("flock/auth_token/add", &params).await;
        resp.ok()["flock_api_key"].clone()
    }

    pub async fn new_flock_key(&self, flock_id: &str, key_type: &str) -> String {
        token_of(&self.add_flock_key(flock_id, key_type).await)
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    /// Contents of every `.eml` file in the outbox, once the mail queue has drained (mail goes
    /// out in the background).
    pub async fn outbox(&self) -> Vec<String> {
        self.wait_for_mail_queue().await;
        read_outbox(&self.outbox_dir())
    }

    /// Waits, at most 10 s, until every queued message has been delivered.
    pub async fn wait_for_mail_queue(&self) {
        for _ in 0..200 {
            if self.store.mail_queue().expect("mail queue").is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the mail queue did not drain within 10 s");
    }

    /// Everything the API can read, minus `last_used`; equal before and after a failed call.
    pub async fn snapshot(&self) -> Value {
        let users = self.get("users/list", &[]).await.ok().clone();
        let flocks = self.get("flocks/list", &[]).await.ok().clone();
        let mut members = Map::new();
        let mut flock_keys = Map::new();
        let ids = flocks["flocks"].as_object().expect("flocks is an object");
        for id in ids.keys() {
            let resp = self.get("flock/users", &[("flock_id", id)]).await;
            members.insert(id.clone(), resp.ok().clone());
            let resp = self.get("flock/auth_token/list", &[("flock_id", id)]).await;
            let keys = without_last_used(&resp.ok()["flock_api_keys"]);
            flock_keys.insert(id.clone(), keys);
        }
        let settings = self.get("settings", &[]).await.ok().clone();
        let keys = self.get("auth_token/list", &[]).await;
        let keys = without_last_used(&keys.ok()["global_api_keys"]);
        json!({
            "users": users,
            "flocks": flocks,
            "members": members,
            "flock_keys": flock_keys,
            "settings": settings,
            "keys": keys,
            "outbox": self.outbox().await.len(),
        })
    }
}

pub fn token_of(key: &Value) -> String {
    let token = key["auth_token"].as_str().expect("auth_token is a string");
    token.to_string()
}

fn without_last_used(keys: &Value) -> Value {
    let mut keys = keys.as_array().expect("key list is an array").clone();
    for key in &mut keys {
        key.as_object_mut()
            .expect("key is an object")
            .remove("last_used");
    }
    Value::Array(keys)
}

pub fn read_outbox(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut mails: Vec<String> = entries
        .map(|e| e.expect("outbox entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "eml"))
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).expect("read mail")).into_owned())
        .collect();
    mails.sort();
    mails
}

/// A JSON array of strings as a sorted `Vec`.
pub fn strings(value: &Value) -> Vec<String> {
    let array = value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"));
    let mut out: Vec<String> = array
        .iter()
        .map(|v| v.as_str().expect("string element").to_string())
        .collect();
    out.sort();
    out
}

/// `vec!["a", "b"]` as owned, sorted strings, to compare with `strings()`.
pub fn sorted(items: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    out.sort();
    out
}

/// The seed's Python-style list: `[u'flock:default', u'flock:…']`.
pub fn py_list(ids: &[&str]) -> String {
    let inner: Vec<String> = ids.iter().map(|id| format!("u'{id}'")).collect();
    format!("[{}]", inner.join(", "))
}

pub fn missing(name: &str) -> String {
    format!("Missing required parameter '{name}'.")
}

pub fn bad_email(name: &str) -> String {
    format!("Parameter '{name}' is not a valid email address.")
}

pub fn bad_bool(name: &str) -> String {
    format!("Parameter '{name}' must be a boolean (true/false, 1/0, yes/no, on/off).")
}

pub fn bad_flock_id(name: &str) -> String {
    format!("Parameter '{name}' is not a valid flock id.")
}

/// The message for one bad item of a comma-separated list parameter.
pub fn bad_flock_id_in_list(name: &str, item: &str) -> String {
    format!("Parameter '{name}' contains an invalid flock id: '{item}'.")
}

pub fn bad_email_in_list(name: &str, item: &str) -> String {
    format!("Parameter '{name}' contains an invalid email address: '{item}'.")
}

pub const BAD_ACCESS_LEVEL: &str = "Parameter 'access_level' must be 'admin' or 'user'.";
pub const BAD_FLOCK_ROLE: &str = "Parameter 'flock_access_level' must be 'manager' or 'watcher'.";

/// A self-signed certificate for `localhost` (an SMTP relay with a private CA; Roost's own
/// HTTPS), with its key, in a directory of its own.
pub struct TestCertificate {
    pub cert_path: std::path::PathBuf,
    pub key_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCertificate {
    pub fn localhost() -> TestCertificate {
        use openssl::asn1::{Asn1Integer, Asn1Time};
        use openssl::bn::BigNum;
        use openssl::ec::{EcGroup, EcKey};
        use openssl::hash::MessageDigest;
        use openssl::nid::Nid;
        use openssl::pkey::PKey;
        use openssl::x509::extension::SubjectAlternativeName;
        use openssl::x509::{X509Builder, X509NameBuilder};

        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
        let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", "localhost").expect("CN");
        let name = name.build();
        let mut builder = X509Builder::new().expect("builder");
        builder.set_version(2).expect("v3");
        let serial = BigNum::from_u32(1)
            .and_then(|n| Asn1Integer::from_bn(&n))
            .expect("serial");
        builder.set_serial_number(&serial).expect("serial");
        builder.set_subject_name(&name).expect("subject");
        builder.set_issuer_name(&name).expect("issuer");
        builder.set_pubkey(&key).expect("public key");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let a_day_ago = i64::try_from(now).expect("time") - 24 * 3600;
        let yesterday = Asn1Time::from_unix(a_day_ago).expect("not before");
        builder.set_not_before(&yesterday).expect("not before");
        let tomorrow = Asn1Time::days_from_now(1).expect("not after");
        builder.set_not_after(&tomorrow).expect("not after");
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .build(&builder.x509v3_context(None, None))
            .expect("subject alt name");
        builder.append_extension(san).expect("extension");
        builder.sign(&key, MessageDigest::sha256()).expect("sign");
        let cert = builder.build();

        let dir = tempfile::tempdir().expect("temp dir");
        let cert_path = dir.path().join("relay.pem");
        let key_path = dir.path().join("relay.key");
        std::fs::write(&cert_path, cert.to_pem().expect("pem")).expect("write cert");
        let key_pem = key.private_key_to_pem_pkcs8().expect("key pem");
        std::fs::write(&key_path, key_pem).expect("write key");
        TestCertificate {
            cert_path,
            key_path,
            _dir: dir,
        }
    }
}

/// `user/add` of `email` (a user, no welcome mail, `note` if given) to `url` with `token`: what
/// the load tests send, many at a time.
pub fn add_user_request(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    email: &str,
    note: Option<&str>,
) -> RequestBuilder {
    let mut form = vec![
        ("email", email),
        ("access_level", "user"),
        ("send_welcome_mail", "false"),
    ];
    if let Some(note) = note {
        form.push(("note", note));
    }
    client
        .post(url)
        .header("X-Canary-Auth-Token", token)
        .form(&form)
}
