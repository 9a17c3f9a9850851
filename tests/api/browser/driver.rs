//! The browser harness: a private chromedriver on a free port driving a headless Chromium with
//! a fresh profile, pointed at a `spawn_app()` server. Every step is bounded in time and fails
//! with the page's address and a screenshot, so a hung or broken page never hangs the suite.

use std::fmt::Display;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, TimeoutConfiguration, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};

use crate::helpers::TestApp;

const INSTALL_HINT: &str = "the browser tests need Chromium and its WebDriver: install the Debian \
     packages with `apt-get update && apt-get install -y --no-install-recommends chromium \
     chromium-driver`";

/// The longest any one step may take. Generous because the rest of the suite runs beside the
/// browser on two cores; a step that needs longer is a hang, not a slow machine.
const STEP: Duration = Duration::from_secs(30);

/// Chromium's defaults that make a run slow or nondeterministic (GPU probing, background
/// downloads, first-run UI, QUIC) are off; the window is a laptop's, so screenshots look like
/// what an admin sees.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
];
const WINDOW: (u32, u32) = (1280, 900);
/// Screenshots grow the window to the page's height, up to this.
const MAX_SCREENSHOT_HEIGHT: u32 = 4000;

/// One browser at a time: two Chromiums beside the rest of the suite would starve two cores.
static ONE_BROWSER: Mutex<()> = Mutex::const_new(());

/// A chromedriver we started. Dropping it ends its browser session (which closes Chromium)
/// and then the driver itself, also when a test panics halfway.
struct Chromedriver {
    child: Child,
    port: u16,
    session: Option<String>,
}

impl Chromedriver {
    async fn start() -> Chromedriver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start chromedriver ({error}); {INSTALL_HINT}"));
        let mut driver = Chromedriver {
            child,
            port,
            session: None,
        };
        driver.wait_until_ready().await;
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_until_ready(&mut self) {
        let status = format!("{}/status", self.url());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let deadline = Instant::now() + STEP;
        loop {
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("chromedriver exited at start ({exit}); {INSTALL_HINT}");
            }
            if let Ok(response) = client.get(&status).send().await
                && let Ok(body) = response.json::<Value>().await
                && body["value"]["ready"] == true
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on port {} within {STEP:?}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // Killing only the driver would leave Chromium running: ask it to end the session first.
        if let Some(session) = self.session.take() {
            delete_session(self.port, &session);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `DELETE /session/{id}` by hand, because `Drop` can't await and may run while a panic unwinds
/// the test's runtime.
fn delete_session(port: u16, session: &str) {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Chromium as Debian installs it; found on PATH so a missing package fails with the hint.
fn chromium_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("no `chromium` on PATH; {INSTALL_HINT}"))
}

pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

/// A signed-out browser on a fresh profile, looking at one app.
pub struct Browser {
    client: Client,
    base: String,
    // Field order is drop order: Chromium ends before its profile directory is removed, and
    // the lock is released last.
    driver: Chromedriver,
    _profile: tempfile::TempDir,
    /// `None` for a second browser, opened by a test that holds the lock through its first.
    _one_browser: Option<MutexGuard<'static, ()>>,
}

impl Browser {
    pub async fn open(app: &TestApp) -> Browser {
        let one_browser = ONE_BROWSER.lock().await;
        Browser::launch(app, Some(one_browser)).await
    }

    /// A second browser of its own (another profile: another person) beside this one, for a test
    /// where two people use the console at once. Close it before this one.
    pub async fn open_another(&self, app: &TestApp) -> Browser {
        Browser::launch(app, None).await
    }

    async fn launch(app: &TestApp, one_browser: Option<MutexGuard<'static, ()>>) -> Browser {
        let binary = chromium_binary();
        let mut driver = Chromedriver::start().await;
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities: Capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": binary, "args": args },
        })
        .as_object()
        .expect("capabilities object")
        .clone();
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let driver_url = driver.url();
        let connect = builder.connect(&driver_url);
        let client = match tokio::time::timeout(STEP, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => panic!("Chromium did not start ({error}); {INSTALL_HINT}"),
            Err(_) => panic!("Chromium did not start within {STEP:?}; {INSTALL_HINT}"),
        };
        if let Ok(Ok(Some(session))) = tokio::time::timeout(STEP, client.session_id()).await {
            driver.session = Some(session);
        }
        let timeouts = TimeoutConfiguration::new(
            Some(Duration::from_secs(10)),
            Some(STEP),
            Some(Duration::ZERO),
        );
        let browser = Browser {
            client,
            // The console's cookies and WebAuthn are for `localhost`, which is also what an
            // admin types; the server itself listens on 127.0.0.1.
            base: app.address.replacen("127.0.0.1", "localhost", 1),
            driver,
            _profile: profile,
            _one_browser: one_browser,
        };
        browser
            .bounded("set timeouts", browser.client.update_timeouts(timeouts))
            .await;
        browser
    }

    /// Ends the session cleanly; `Drop` covers the panicking path.
    pub async fn close(mut self) {
        let client = self.client.clone();
        if let Ok(Ok(())) = tokio::time::timeout(STEP, client.close()).await {
            self.driver.session = None;
        }
    }

    /// Runs one WebDriver step within `STEP`, failing with the page it was on.
    async fn bounded<T, E: Display>(
        &self,
        what: &str,
        step: impl Future<Output = Result<T, E>>,
    ) -> T {
        match tokio::time::timeout(STEP, step).await {
            Ok(Ok(value)) => value,
            Ok(Err(error)) => self.fail(&format!("{what}: {error}")).await,
            Err(_) => {
                self.fail(&format!("{what}: no answer within {STEP:?}"))
                    .await
            }
        }
    }

    /// Panics with what went wrong, where, and a screenshot of the page at that moment.
    async fn fail<T>(&self, problem: &str) -> T {
        let short = Duration::from_secs(5);
        let url = match tokio::time::timeout(short, self.client.current_url()).await {
            Ok(Ok(url)) => url.to_string(),
            _ => "unknown".to_string(),
        };
        let shot = match tokio::time::timeout(short, self.client.screenshot()).await {
            Ok(Ok(png)) => {
                // libtest names the thread after the test, so parallel failures don't collide.
                let test = std::thread::current()
                    .name()
                    .unwrap_or("browser")
                    .replace("::", "-");
                let path = screenshot_dir().join(format!("failed-{test}.png"));
                std::fs::create_dir_all(screenshot_dir())
                    .and_then(|()| std::fs::write(&path, png))
                    .map(|()| path.display().to_string())
                    .unwrap_or_else(|error| format!("not saved: {error}"))
            }
            _ => "not taken".to_string(),
        };
        panic!("browser: {problem}\n  page: {url}\n  screenshot: {shot}");
    }

    /// Gives the browser a virtual security key (WebDriver's WebAuthn extension) that answers
    /// every `navigator.credentials` call at once: a CTAP2 platform authenticator that keeps
    /// passkeys, verifies its user and always consents. Add it before the page asks for one.
    pub async fn add_virtual_authenticator(&self) -> String {
        let session = self
            .bounded("read session id", self.client.session_id())
            .await
            .expect("a WebDriver session");
        let command = AddVirtualAuthenticator { session };
        let answer = self
            .bounded(
                "add a virtual authenticator",
                self.client.issue_cmd(command),
            )
            .await;
        match answer.as_str() {
            Some(id) => id.to_string(),
            None => self.fail(&format!("authenticator id: {answer}")).await,
        }
    }

    /// Takes a virtual authenticator away, with every credential it holds (as if unplugged).
    pub async fn remove_virtual_authenticator(&self, authenticator: &str) {
        let session = self
            .bounded("read session id", self.client.session_id())
            .await
            .expect("a WebDriver session");
        let command = RemoveVirtualAuthenticator {
            session,
            authenticator: authenticator.to_string(),
        };
        self.bounded(
            "remove a virtual authenticator",
            self.client.issue_cmd(command),
        )
        .await;
    }

    /// Waits until the page has loaded, its deferred scripts included: a button a script binds
    /// does nothing when clicked before.
    pub async fn wait_for_scripts(&self) {
        let deadline = Instant::now() + STEP;
        loop {
            let state = self
                .bounded(
                    "read document.readyState",
                    self.client.execute("return document.readyState;", vec![]),
                )
                .await;
            if state == "complete" {
                return;
            }
            if Instant::now() > deadline {
                let problem = format!("the page did not finish loading: {state}");
                return self.fail(&problem).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.bounded(&format!("open {path}"), self.client.goto(&url))
            .await;
    }

    /// The path of the page shown, without the query.
    pub async fn path(&self) -> String {
        let url = self.bounded("read url", self.client.current_url()).await;
        url.path().to_string()
    }

    /// Waits until the browser shows `path` (query ignored): after a submit, the redirect's end.
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + STEP;
        loop {
            let now = self.path().await;
            if now == path {
                return;
            }
            if Instant::now() > deadline {
                let body = self.body_text().await;
                let problem = format!("expected to reach {path}, still on {now}:\n{body}");
                return self.fail(&problem).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for an element matching `css` and returns it.
    pub async fn wait_for(&self, css: &str) -> Element {
        let wait = self
            .client
            .wait()
            .at_most(STEP)
            .for_element(Locator::Css(css));
        self.bounded(&format!("find {css}"), wait).await
    }

    pub async fn body_text(&self) -> String {
        self.text("body").await
    }

    /// Visible text of the first element matching `css` if there is one, read in a single
    /// script run: an element handle goes stale when a redirect replaces the page between
    /// finding the element and reading it, so a wait that polls must not hold one.
    async fn current_text(&self, css: &str) -> Option<String> {
        let script = "const found = document.querySelector(arguments[0]); \
                      return found ? found.innerText : null;";
        let read = self.client.execute(script, vec![css.into()]);
        match tokio::time::timeout(STEP, read).await {
            Ok(Ok(serde_json::Value::String(text))) => Some(text.trim().to_string()),
            // No such element yet, or the page was being replaced while the script ran.
            Ok(Ok(_)) | Ok(Err(_)) => None,
            Err(_) => {
                self.fail(&format!("read {css}: no answer within {STEP:?}"))
                    .await
            }
        }
    }

    /// Waits until the visible text of the page contains `text`.
    pub async fn wait_for_text(&self, text: &str) {
        let deadline = Instant::now() + STEP;
        loop {
            let body = self.body_text().await;
            if body.contains(text) {
                return;
            }
            if Instant::now() > deadline {
                let problem = format!("page never showed {text:?}; it shows:\n{body}");
                return self.fail(&problem).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the first element matching `css` reads exactly `expected`: after a submit
    /// that returns to the same page, the old page may still be the one answering.
    pub async fn wait_for_element_text(&self, css: &str, expected: &str) {
        let deadline = Instant::now() + STEP;
        loop {
            let now = self.text(css).await;
            if now == expected {
                return;
            }
            if Instant::now() > deadline {
                let problem = format!("{css} reads {now:?}, expected {expected:?}");
                return self.fail(&problem).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(text) = self.current_text(css).await {
                return text;
            }
            if Instant::now() > deadline {
                return self.fail(&format!("no {css} on the page")).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether anything matches `css` right now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        let what = format!("look for {css}");
        let found = self.bounded(&what, self.client.find_all(Locator::Css(css)));
        !found.await.is_empty()
    }

    /// Types into the input whose id or name is `field`, replacing what was there.
    pub async fn fill(&self, field: &str, value: &str) {
        let input = self.wait_for(&field_selector(field)).await;
        self.bounded(&format!("clear {field}"), input.clear()).await;
        self.bounded(&format!("type into {field}"), input.send_keys(value))
            .await;
    }

    /// Types into the first input matching `css`, replacing what was there.
    pub async fn fill_css(&self, css: &str, value: &str) {
        let input = self.wait_for(css).await;
        self.bounded(&format!("clear {css}"), input.clear()).await;
        self.bounded(&format!("type into {css}"), input.send_keys(value))
            .await;
    }

    /// Picks the option with `value` in the select whose id or name is `field`.
    pub async fn select(&self, field: &str, value: &str) {
        let select = self.wait_for(&field_selector(field)).await;
        self.bounded(
            &format!("choose {value} in {field}"),
            select.select_by_value(value),
        )
        .await;
    }

    /// Ticks or clears the checkbox whose id or name is `field`, as a click would.
    pub async fn set_checkbox(&self, field: &str, checked: bool) {
        let checkbox = self.wait_for(&field_selector(field)).await;
        let selected = self
            .bounded(&format!("read {field}"), checkbox.is_selected())
            .await;
        if selected != checked {
            self.bounded(&format!("click {field}"), checkbox.click())
                .await;
        }
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        let element = self.wait_for(css).await;
        self.bounded(&format!("click {css}"), element.click()).await;
    }

    /// Saves the page as `target/screenshots/{name}.png`, the window stretched to the whole
    /// page so that nothing below the fold is missed, and returns the file.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        // The window's height includes the browser's own frame, which the page doesn't get.
        let measured = self
            .bounded(
                "measure page",
                self.client.execute(
                    "return document.documentElement.scrollHeight \
                     + window.outerHeight - window.innerHeight;",
                    vec![],
                ),
            )
            .await;
        let height = measured
            .as_u64()
            .map_or(WINDOW.1, |h| h as u32)
            .clamp(WINDOW.1, MAX_SCREENSHOT_HEIGHT);
        self.bounded(
            "resize for screenshot",
            self.client.set_window_size(WINDOW.0, height),
        )
        .await;
        let png = self.bounded("screenshot", self.client.screenshot()).await;
        self.bounded(
            "restore window",
            self.client.set_window_size(WINDOW.0, WINDOW.1),
        )
        .await;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("create target/screenshots");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }
}

/// `POST /session/{id}/webauthn/authenticator`, which fantoccini has no method for.
#[derive(Debug)]
struct AddVirtualAuthenticator {
    session: String,
}

impl WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(
        &self,
        base_url: &url::Url,
        _session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/webauthn/authenticator", self.session))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (reqwest::Method, Option<String>) {
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        (reqwest::Method::POST, Some(options.to_string()))
    }
}

/// `DELETE /session/{id}/webauthn/authenticator/{authenticatorId}`.
#[derive(Debug)]
struct RemoveVirtualAuthenticator {
    session: String,
    authenticator: String,
}

impl WebDriverCompatibleCommand for RemoveVirtualAuthenticator {
    fn endpoint(
        &self,
        base_url: &url::Url,
        _session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/webauthn/authenticator/{}",
            self.session, self.authenticator
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (reqwest::Method, Option<String>) {
        (reqwest::Method::DELETE, None)
    }
}

/// An input named or identified by `field`, never the hidden CSRF token.
fn field_selector(field: &str) -> String {
    format!("#{field}, [name=\"{field}\"]:not([type=hidden])")
}
