//! The browser console over HTTP: a cookie-keeping client that fills in the CSRF token the way a
//! browser submitting the page's form would, plus tests of login, sessions, CSRF, first-run
//! setup, one-time links and the account page.

use std::sync::Mutex;
use std::time::Duration;

use roost::auth::passwords::hash_password;
use roost::domain::Email;

use crate::helpers::*;

pub const PASSWORD: &str = "correct horse battery staple";

/// One browser: cookies kept, redirects not followed (tests assert them).
pub struct Console {
    pub base: String,
    client: reqwest::Client,
    jar: std::sync::Arc<reqwest::cookie::Jar>,
    csrf: Mutex<Option<String>>,
}

#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// Asserts a 303 to `path` (path only, query ignored unless given).
    pub fn redirects_to(&self, path: &str) {
        assert_eq!(self.status, 303, "expected a redirect: {}", self.body);
        let location = self.location.as_deref().unwrap_or("");
        assert!(
            location == path || location.starts_with(&format!("{path}?")),
            "redirected to {location:?}, expected {path}"
        );
    }

    pub fn assert_contains(&self, text: &str) {
        assert!(
            self.body.contains(text),
            "page (status {}) lacks {text:?}:\n{}",
            self.status,
            self.body
        );
    }
}

impl Console {
    pub fn new(app: &TestApp) -> Console {
        Console::with_headers(app, reqwest::header::HeaderMap::new())
    }

    /// A browser of the server at `base` (`http://127.0.0.1:PORT`), such as the real binary.
    pub fn at(base: &str) -> Console {
        Console::at_with_headers(base, reqwest::header::HeaderMap::new())
    }

    /// A browser that sends `headers` (a User-Agent, an Accept-Language) with every request.
    pub fn with_headers(app: &TestApp, headers: reqwest::header::HeaderMap) -> Console {
        Console::at_with_headers(&app.address, headers)
    }

    fn at_with_headers(base: &str, headers: reqwest::header::HeaderMap) -> Console {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .cookie_provider(std::sync::Arc::clone(&jar))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Console {
            base: base.to_string(),
            client,
            jar,
            csrf: Mutex::new(None),
        }
    }

    async fn reduce(&self, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.text().await.expect("body");
        assert!(status < 500, "server error {status}: {body}");
        if let Some(token) = extract_csrf(&body) {
            *self.csrf.lock().unwrap() = Some(token);
        }
        Page {
            status,
            body,
            location,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        self.reduce(response).await
    }

    /// Posts a form as the last page fetched would: with its CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf.lock().unwrap().clone();
        let token = match token {
            Some(token) => token,
            None => {
                self.get("/login").await;
                self.csrf.lock().unwrap().clone().expect("csrf token")
            }
        };
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Posts exactly `fields` (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .expect("POST");
        self.reduce(response).await
    }

    /// Posts a form with its CSRF token from a client that a trusted proxy names in
    /// `X-Forwarded-For`.
    pub async fn post_forwarded_for(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        forwarded_for: &str,
    ) -> Page {
        let token = self.csrf().expect("fetch a page with a form first");
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("X-Forwarded-For", forwarded_for)
            .form(&all)
            .send()
            .await
            .expect("POST");
        self.reduce(response).await
    }

    /// The raw response of a form post (for answers the harness refuses, such as 503).
    pub async fn post_response(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf().expect("fetch a page with a form first");
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.client
            .post(format!("{}{path}", self.base))
            .form(&all)
            .send()
            .await
            .expect("POST")
    }

    /// The session cookie this browser holds, to copy into another client.
    pub fn session_cookie(&self) -> Option<String> {
        use reqwest::cookie::CookieStore;
        self.jar
            .cookies(&self.base.parse().expect("url"))
            .and_then(|value| value.to_str().ok().map(str::to_string))
    }

    /// Gives this browser a cookie it got elsewhere (`name=value`, as a `Set-Cookie` carries it):
    /// one kept from an older release, say.
    pub fn add_cookie(&self, cookie: &str) {
        self.jar.add_cookie_str(
            &format!("{cookie}; Path=/"),
            &self.base.parse().expect("url"),
        );
    }

    /// The CSRF token of the last page fetched.
    pub fn csrf(&self) -> Option<String> {
        self.csrf.lock().unwrap().clone()
    }

    /// Posts JSON as the WebAuthn script does, with the CSRF token in a header when given.
    pub async fn post_json(
        &self,
        path: &str,
        csrf: Option<&str>,
        body: &serde_json::Value,
    ) -> Page {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = csrf {
            request = request.header("X-CSRF-Token", token);
        }
        let response = request.send().await.expect("POST json");
        self.reduce(response).await
    }

    /// Posts `body` as JSON, unchecked (malformed on purpose), with the CSRF token in a header.
    pub async fn post_raw_json(&self, path: &str, csrf: &str, body: String) -> Page {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .header("X-CSRF-Token", csrf)
            .body(body)
            .send()
            .await
            .expect("POST json");
        self.reduce(response).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Page {
        self.get("/login").await;
        self.post("/login", &[("email", email), ("password", password)])
            .await
    }
}

pub fn extract_csrf(body: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = body.find(marker)? + marker.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_string())
}

impl TestApp {
    /// A user created through the API, with `PASSWORD` set directly in the store.
    pub async fn user_with_password(&self, email: &str, access_level: &str) {
        let params = [
            ("email", email),
            ("access_level", access_level),
            ("send_welcome_mail", "false"),
        ];
        self.post("user/add", &params).await.ok();
        let store = self.store.clone();
        let email = Email::parse(email).expect("email");
        tokio::task::spawn_blocking(move || {
            let id = store.user_by_email(&email).expect("user").user.id;
            let hash = hash_password(PASSWORD).expect("hash");
            store
                .change_password(&Actor::named("test"), id, hash, None)
                .expect("set password");
        })
        .await
        .expect("blocking");
    }

    /// A console signed in as a new user with the given access level.
    pub async fn console_as(&self, email: &str, access_level: &str) -> Console {
        self.user_with_password(email, access_level).await;
        let console = Console::new(self);
        console.login(email, PASSWORD).await.redirects_to("/");
        console
    }
}

// ---- login and sessions ----

#[tokio::test]
async fn login_page_has_email_and_password_fields() {
    let app = spawn_app().await;
    let page = Console::new(&app).get("/login").await;
    assert_eq!(page.status, 200);
    page.assert_contains("name=\"email\"");
    page.assert_contains("name=\"password\"");
    page.assert_contains("name=\"csrf_token\"");
}

#[tokio::test]
async fn login_with_right_password_starts_a_rotated_httponly_session() {
    let app = spawn_app().await;
    app.user_with_password("ann@x.io", "admin").await;
    let console = Console::new(&app);
    let before = console.get("/login").await;
    let before_cookie = cookie_of(&before);
    let page = console.login("ann@x.io", PASSWORD).await;
    page.redirects_to("/");
    let cookie = cookie_of(&page).expect("login sets the session cookie");
    assert_ne!(
        Some(cookie.clone()),
        before_cookie,
        "session must rotate at login"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    console.get("/").await.redirects_to("/users");
    console.get("/account").await.assert_contains("ann@x.io");
}

fn cookie_of(page: &Page) -> Option<String> {
    page.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("roost_session="))
        .map(str::to_string)
}

#[tokio::test]
async fn login_with_wrong_password_or_unknown_email_says_the_same() {
    let app = spawn_app().await;
    app.user_with_password("ann@x.io", "admin").await;
    let console = Console::new(&app);
    let wrong_password = console.login("ann@x.io", "not the password").await;
    let unknown_email = console.login("nobody@x.io", PASSWORD).await;
    for page in [&wrong_password, &unknown_email] {
        assert_eq!(page.status, 401);
        page.assert_contains("The email or the password is wrong.");
    }
    wrong_password.assert_contains("value=\"ann@x.io\"");
    console.get("/account").await.redirects_to("/login");
}

#[tokio::test]
async fn disabled_users_cannot_log_in() {
    let app = spawn_app().await;
    app.user_with_password("ann@x.io", "admin").await;
    app.user_with_password("bob@x.io", "user").await;
    app.post("user/disable", &[("email", "bob@x.io")])
        .await
        .ok();
    let page = Console::new(&app).login("bob@x.io", PASSWORD).await;
    assert_eq!(page.status, 403);
    page.assert_contains("disabled");
}

#[tokio::test]
async fn repeated_failures_are_throttled_per_account_with_a_visible_wait() {
    let app = spawn_app().await;
    app.user_with_password("ann@x.io", "admin").await;
    let console = Console::new(&app);
    for _ in 0..5 {
        assert_eq!(
            console.login("ann@x.io", "wrong password!").await.status,
            401
        );
    }
    let page = console.login("ann@x.io", PASSWORD).await;
    assert_eq!(page.status, 429);
    page.assert_contains("Try again in");
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let console = app.console_as("ann@x.io", "admin").await;
    console.get("/account").await;
    console.post("/logout", &[]).await.redirects_to("/login");
    console.get("/account").await.redirects_to("/login");
}

#[tokio::test]
async fn disabling_demoting_or_removing_a_user_ends_their_session_at_once() {
    let app = spawn_app().await;
    app.user_with_password("root@x.io", "admin").await;
    for (action, level) in [
        ("user/disable", "user"),
        ("user/edit/access_level", "admin"),
        ("user/remove", "user"),
        ("user/2fa/disable", "user"),
    ] {
        let email = format!("{}@x.io", action.replace('/', "-"));
        let console = app.console_as(&email, level).await;
        assert_eq!(console.get("/account").await.status, 200);
        let mut params = vec![("email", email.as_str())];
        if action == "user/edit/access_level" {
            params.push(("access_level", "user"));
        }
        app.post(action, &params).await.ok();
        console.get("/account").await.redirects_to("/login");
    }
}

#[tokio::test]
async fn an_idle_session_ends_and_a_busy_one_ends_at_its_lifetime() {
    use std::time::Instant;
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_in(dir, |config| {
        config.session_limits = roost::config::SessionLimits {
            idle_secs: 4,
            absolute_secs: 7,
        };
    })
    .await;
    let idle = app.console_as("idle@x.io", "user").await;
    let idle_since = Instant::now();
    let busy = app.console_as("busy@x.io", "user").await;
    let busy_since = Instant::now();

    // Used every second past the idle limit: still signed in.
    while busy_since.elapsed() < Duration::from_secs(6) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(busy.get("/account").await.status, 200);
    }
    // Left alone longer than the idle limit: ended.
    assert!(idle_since.elapsed() > Duration::from_secs(5));
    idle.get("/account").await.redirects_to("/login");

    // However busy, a session ends at its lifetime.
    tokio::time::sleep(Duration::from_secs(9).saturating_sub(busy_since.elapsed())).await;
    busy.get("/account").await.redirects_to("/login");
    // A fresh login works again.
    let again = Console::new(&app);
    again.login("busy@x.io", PASSWORD).await.redirects_to("/");
    assert_eq!(again.get("/account").await.status, 200);
}

#[tokio::test]
async fn pages_need_a_session() {
    let app = spawn_app().await;
    let page = Console::new(&app).get("/account").await;
    page.redirects_to("/login");
    assert!(page.location.unwrap().contains("next=%2Faccount"));
}

#[tokio::test]
async fn login_next_parameter_only_redirects_within_the_console() {
    let app = spawn_app().await;
    app.user_with_password("ann@x.io", "admin").await;
    let console = Console::new(&app);
    console.get("/login").await;
    let fields = [
        ("email", "ann@x.io"),
        ("password", PASSWORD),
        ("next", "//evil.example/"),
    ];
    console.post("/login", &fields).await.redirects_to("/");
}

// ---- CSRF and headers ----

#[tokio::test]
async fn forms_without_or_with_a_wrong_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let console = app.console_as("ann@x.io", "admin").await;
    console.get("/account").await;
    for fields in [
        vec![("enabled", "off")],
        vec![("csrf_token", "0000"), ("enabled", "off")],
    ] {
        let page = console.post_raw("/account/summary-email", &fields).await;
        assert_eq!(page.status, 403);
        page.assert_contains("Form expired");
    }
    let user = app
        .get("user/get", &[("email", "ann@x.io")])
        .await
        .ok()
        .clone();
    assert_eq!(user["user"]["summary_email_enabled"], true);
    let login = Console::new(&app)
        .post_raw("/login", &[("email", "ann@x.io"), ("password", PASSWORD)])
        .await;
    assert_eq!(login.status, 403);
}

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let app = spawn_app().await;
    let console = app.console_as("ann@x.io", "admin").await;
    for path in ["/login", "/account", "/static/roost.css"] {
        let page = console.get(path).await;
        let header = |name: &str| {
            page.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let csp = header("content-security-policy");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("referrer-policy"), "no-referrer");
        assert_eq!(header("x-content-type-options"), "nosniff");
    }
    let css = console.get("/static/roost.css").await;
    assert!(
        css.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    assert_eq!(console.get("/static/nope.css").await.status, 404);
}

// ---- first run and one-time links ----

fn setup_link(app: &TestApp) -> String {
    use roost::auth::links::NewLink;
    use roost::store::TokenPurpose;
    let link = NewLink::new(TokenPurpose::Setup, None);
    link.store(&app.store, &Actor::named("test"))
        .expect("store setup link");
    link.url(&app.address)
        .trim_start_matches(&app.address)
        .to_string()
}

#[tokio::test]
async fn setup_link_creates_the_first_admin_once() {
    let app = spawn_app().await;
    let path = setup_link(&app);
    let console = Console::new(&app);
    console
        .get(&path)
        .await
        .assert_contains("Create the first admin");
    let mismatch = [
        ("email", "root@x.io"),
        ("password", PASSWORD),
        ("confirm", "something else entirely"),
    ];
    let page = console.post(&path, &mismatch).await;
    assert_eq!(page.status, 400);
    page.assert_contains("do not match");
    page.assert_contains("value=\"root@x.io\"");
    let fields = [
        ("email", "root@x.io"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    console.post(&path, &fields).await.redirects_to("/");
    console.get("/account").await.assert_contains("root@x.io");
    let user = app
        .get("user/get", &[("email", "root@x.io")])
        .await
        .ok()
        .clone();
    assert_eq!(user["user"]["access_level"], "admin");
    assert_eq!(Console::new(&app).get(&path).await.status, 410);
    let again = Console::new(&app);
    again.get("/login").await;
    assert_eq!(again.post(&path, &fields).await.status, 410);
}

#[tokio::test]
async fn welcome_link_from_user_add_sets_the_password_once() {
    let app = spawn_app().await;
    let params = [("email", "new@x.io"), ("access_level", "user")];
    app.post("user/add", &params).await.ok();
    app.wait_for_mail_queue().await;
    let mail = std::fs::read_dir(app.data_dir.join("outbox"))
        .expect("outbox")
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .next()
        .expect("welcome mail");
    let unfolded = mail.replace("=\r\n", "").replace("=\n", "");
    let start = unfolded.find("/welcome/").expect("link");
    let path: String = unfolded[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let console = Console::new(&app);
    console.get(&path).await.assert_contains("new@x.io");
    let short = [("password", "short"), ("confirm", "short")];
    assert_eq!(console.post(&path, &short).await.status, 400);
    let fields = [("password", PASSWORD), ("confirm", PASSWORD)];
    console.post(&path, &fields).await.redirects_to("/");
    console.get("/").await.redirects_to("/account");
    assert_eq!(Console::new(&app).get(&path).await.status, 410);
    let fresh = Console::new(&app);
    fresh.login("new@x.io", PASSWORD).await.redirects_to("/");
}

// ---- account ----

#[tokio::test]
async fn account_password_change_needs_the_current_password_and_ends_other_sessions() {
    let app = spawn_app().await;
    let console = app.console_as("ann@x.io", "user").await;
    let other = Console::new(&app);
    other.login("ann@x.io", PASSWORD).await.redirects_to("/");
    console.get("/account").await;
    let wrong = [
        ("current", "not my password"),
        ("password", "a brand new password"),
        ("confirm", "a brand new password"),
    ];
    let page = console.post("/account/password", &wrong).await;
    assert_eq!(page.status, 400);
    page.assert_contains("Current password");
    let right = [
        ("current", PASSWORD),
        ("password", "a brand new password"),
        ("confirm", "a brand new password"),
    ];
    console
        .post("/account/password", &right)
        .await
        .redirects_to("/account");
    console
        .get("/account")
        .await
        .assert_contains("Password changed");
    other.get("/account").await.redirects_to("/login");
    let fresh = Console::new(&app);
    assert_eq!(fresh.login("ann@x.io", PASSWORD).await.status, 401);
    fresh
        .login("ann@x.io", "a brand new password")
        .await
        .redirects_to("/");
}

#[tokio::test]
async fn account_summary_email_toggle() {
    let app = spawn_app().await;
    let console = app.console_as("ann@x.io", "user").await;
    console.get("/account").await;
    console
        .post("/account/summary-email", &[("enabled", "off")])
        .await
        .redirects_to("/account");
    let page = console.get("/account").await;
    page.assert_contains("Weekly summary email turned off.");
    let user = app
        .get("user/get", &[("email", "ann@x.io")])
        .await
        .ok()
        .clone();
    assert_eq!(user["user"]["summary_email_enabled"], false);
}

#[tokio::test]
async fn session_cookie_is_secure_when_the_base_url_is_https() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = roost::config::Config::with_data_dir(dir.path());
    config.bind = "127.0.0.1:0".to_string();
    config.base_url = Some("https://roost.example.org".to_string());
    let app = roost::startup::Application::build(config)
        .await
        .expect("app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let response = client()
        .get(format!("{address}/login"))
        .send()
        .await
        .expect("GET /login");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("roost_session="))
        .expect("session cookie")
        .to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

// ---- forgotten passwords ----

fn outbox_mails(app: &TestApp) -> Vec<String> {
    std::fs::read_dir(app.data_dir.join("outbox"))
        .map(|entries| {
            entries
                .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn forgot_password_answers_the_same_for_known_and_unknown_addresses() {
    let app = spawn_app().await;
    app.user_with_password("ann@x.io", "user").await;
    let console = Console::new(&app);
    console
        .get("/login")
        .await
        .assert_contains("/forgot-password");
    console.get("/forgot-password").await;
    let known = console
        .post("/forgot-password", &[("email", "ann@x.io")])
        .await;
    let unknown = console
        .post("/forgot-password", &[("email", "nobody@x.io")])
        .await;
    assert_eq!(known.status, 200);
    assert_eq!(unknown.status, 200);
    let sent = "If an account exists for that address";
    known.assert_contains(sent);
    unknown.assert_contains(sent);

    // The mail goes out in the background: wait for it, bounded.
    let mails = wait_for_outbox(&app, 1).await;
    assert_eq!(mails.len(), 1, "exactly one mail, to the known address");
    assert!(mails[0].contains("To: ann@x.io"));
    let path = reset_path(&mails[0]);
    let browser = Console::new(&app);
    browser.get(&path).await.assert_contains("ann@x.io");
    let fields = [
        ("password", "a fresh long password"),
        ("confirm", "a fresh long password"),
    ];
    browser.post(&path, &fields).await.redirects_to("/");
    Console::new(&app)
        .login("ann@x.io", "a fresh long password")
        .await
        .redirects_to("/");
}

/// Waits, at most 5 s, until the outbox holds `count` mails (sent from a background task).
async fn wait_for_outbox(app: &TestApp, count: usize) -> Vec<String> {
    for _ in 0..50 {
        let mails = outbox_mails(app);
        if mails.len() >= count {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    outbox_mails(app)
}

/// The first `/reset/<secret>` path in a mail.
fn reset_path(mail: &str) -> String {
    let unfolded = mail.replace("=\r\n", "").replace("=\n", "");
    let start = unfolded.find("/reset/").expect("reset link");
    unfolded[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
        .collect()
}

#[tokio::test]
async fn a_disabled_account_gets_no_self_service_link_and_no_session_from_one() {
    let app = spawn_app().await;
    app.user_with_password("ann@x.io", "user").await;
    app.user_with_password("bob@x.io", "user").await;
    app.post("user/disable", &[("email", "ann@x.io")])
        .await
        .ok();
    let console = Console::new(&app);
    console.get("/forgot-password").await;
    for email in ["ann@x.io", "bob@x.io"] {
        let page = console.post("/forgot-password", &[("email", email)]).await;
        page.assert_contains("If an account exists for that address");
    }
    // Bob's mail goes out in the background; Ann's request, made first, sends nothing.
    wait_for_outbox(&app, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mails = outbox_mails(&app);
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("To: bob@x.io"));

    // An admin may still send Ann a link; it sets the password but signs nobody in.
    app.post("user/password/reset", &[("email", "ann@x.io")])
        .await
        .ok();
    let mails = app.outbox().await;
    let ann_mail = mails
        .iter()
        .find(|mail| mail.contains("To: ann@x.io"))
        .expect("the admin's reset mail");
    let path = reset_path(ann_mail);
    let ann = Console::new(&app);
    ann.get(&path).await.assert_contains("ann@x.io");
    let fields = [
        ("password", "a fresh long password"),
        ("confirm", "a fresh long password"),
    ];
    ann.post(&path, &fields).await.redirects_to("/login");
    ann.get("/login")
        .await
        .assert_contains("this account is disabled");
    ann.get("/account").await.redirects_to("/login");
    // Once enabled, the new password is the one that works.
    app.post("user/enable", &[("email", "ann@x.io")]).await.ok();
    Console::new(&app)
        .login("ann@x.io", "a fresh long password")
        .await
        .redirects_to("/");
}

#[tokio::test]
async fn forgot_password_needs_csrf_and_a_valid_address() {
    let app = spawn_app().await;
    let console = Console::new(&app);
    console.get("/forgot-password").await;
    let forged = console
        .post_raw("/forgot-password", &[("email", "ann@x.io")])
        .await;
    assert_eq!(forged.status, 403);
    let bad = console
        .post("/forgot-password", &[("email", "not an address")])
        .await;
    assert_eq!(bad.status, 400);
    bad.assert_contains("value=\"not an address\"");
}

#[tokio::test]
async fn expired_links_are_refused() {
    use roost::auth::links::NewLink;
    use roost::store::TokenPurpose;
    let app = spawn_app().await;
    app.user_with_password("ann@x.io", "user").await;
    let store = app.store.clone();
    let path = tokio::task::spawn_blocking(move || {
        let email = Email::parse("ann@x.io").expect("email");
        let mut link = NewLink::new(TokenPurpose::PasswordReset, None);
        link.token.expires = link.token.created - 1;
        store
            .insert_user_token(
                &Actor::named("test"),
                &UserRef::Email(email.clone()),
                &link.hash,
                link.token.clone(),
            )
            .expect("store link");
        link.url("").to_string()
    })
    .await
    .expect("blocking");
    let console = Console::new(&app);
    assert_eq!(console.get(&path).await.status, 410);
    console.get("/login").await;
    let fields = [
        ("password", "a fresh long password"),
        ("confirm", "a fresh long password"),
    ];
    assert_eq!(console.post(&path, &fields).await.status, 410);
    assert_eq!(
        Console::new(&app)
            .login("ann@x.io", "a fresh long password")
            .await
            .status,
        401
    );
}
