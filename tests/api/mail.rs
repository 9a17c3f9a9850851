//! Mail through a real SMTP server on loopback: mailin-embedded runs inside the test process and
//! keeps every message it accepts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::{AuthMechanism, Handler, Response, Server, SslConfig, response};
use roost::domain::{AccessLevel, Email};
use roost::store::{MailContent, NewUser, QueuedMail, Store};

use crate::helpers::{Actor, TestApp, TestCertificate, spawn_app_in};

/// One message as the SMTP server received it.
#[derive(Debug, Clone)]
struct Received {
    rcpt: Vec<String>,
    data: String,
    /// Who logged in (AUTH PLAIN) before sending, if anyone.
    user: Option<String>,
}

impl Received {
    /// The body with quoted-printable soft line breaks undone.
    fn unfolded(&self) -> String {
        self.data.replace("=\r\n", "").replace("=\n", "")
    }

    /// The first `/<kind>/<secret>` path in the message.
    fn link_path(&self, kind: &str) -> String {
        let unfolded = self.unfolded();
        let start = unfolded
            .find(&format!("/{kind}/"))
            .unwrap_or_else(|| panic!("no /{kind}/ link in {}", self.data));
        unfolded[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
            .collect()
    }
}

/// A real SMTP server on loopback (mailin's protocol state machine, served by
/// mailin-embedded on its own threads) that keeps every message it accepts.
#[derive(Clone, Default)]
struct SmtpSink {
    received: Arc<Mutex<Vec<Received>>>,
    /// Messages whose DATA began.
    started: Arc<std::sync::atomic::AtomicUsize>,
    /// How long the sink takes to accept a message once its data is in (a slow relay).
    accept_delay: Duration,
}

/// One SMTP session's view: mailin clones the handler for each connection.
#[derive(Clone)]
struct SinkSession {
    received: Arc<Mutex<Vec<Received>>>,
    started: Arc<std::sync::atomic::AtomicUsize>,
    accept_delay: Duration,
    rcpt: Vec<String>,
    data: Vec<u8>,
    user: Option<String>,
}

/// The only account the sink accepts; mailin offers AUTH only after STARTTLS.
const SMTP_USER: &str = "user";
const SMTP_PASSWORD: &str = "hunter2";

impl Handler for SinkSession {
    fn auth_plain(&mut self, _authorization_id: &str, user: &str, password: &str) -> Response {
        if user == SMTP_USER && password == SMTP_PASSWORD {
            self.user = Some(user.to_string());
            response::AUTH_OK
        } else {
            response::INVALID_CREDENTIALS
        }
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.rcpt = to.to_vec();
        self.data.clear();
        self.started
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        std::thread::sleep(self.accept_delay);
        let message = Received {
            rcpt: std::mem::take(&mut self.rcpt),
            data: String::from_utf8_lossy(&std::mem::take(&mut self.data)).into_owned(),
            user: self.user.clone(),
        };
        self.received.lock().expect("sink lock").push(message);
        response::OK
    }
}

impl SmtpSink {
    /// Serves SMTP on `127.0.0.1:port` (0 for any free port); returns the port.
    async fn start(&self, port: u16) -> u16 {
        self.start_with(port, SslConfig::None)
    }

    /// Serves SMTP offering STARTTLS with `cert` for `localhost`; returns the port.
    fn start_with_starttls(&self, cert: &TestCertificate) -> u16 {
        let ssl = SslConfig::SelfSigned {
            cert_path: cert.cert_path.display().to_string(),
            key_path: cert.key_path.display().to_string(),
        };
        self.start_with(0, ssl)
    }

    fn start_with(&self, port: u16, ssl: SslConfig) -> u16 {
        // With TLS the sink wants a login too (mailin then demands one before MAIL).
        let with_auth = !matches!(ssl, SslConfig::None);
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the SMTP sink");
        let port = listener.local_addr().expect("sink address").port();
        let mut server = Server::new(SinkSession {
            received: Arc::clone(&self.received),
            started: Arc::clone(&self.started),
            accept_delay: self.accept_delay,
            rcpt: Vec::new(),
            data: Vec::new(),
            user: None,
        });
        server
            .with_name("sink.test")
            .with_ssl(ssl)
            .expect("the sink's TLS set-up")
            .with_tcp_listener(listener);
        if with_auth {
            server.with_auth(AuthMechanism::Plain);
        }
        // Blocking IO on its own threads; it lives as long as the test process.
        std::thread::spawn(move || {
            if let Err(error) = server.serve() {
                eprintln!("SMTP sink stopped: {error}");
            }
        });
        port
    }

    fn messages(&self) -> Vec<Received> {
        self.received.lock().expect("sink lock").clone()
    }

    /// Waits, at most 10 s, for `count` messages.
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.messages();
            if messages.len() >= count || Instant::now() > deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Waits, at most 10 s, until the queue holds exactly `count` messages and each has failed a
/// delivery at least once; returns them.
async fn failed_deliveries(app: &TestApp, count: usize) -> Vec<QueuedMail> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let queue = app.store.mail_queue().expect("queue");
        assert_eq!(queue.len(), count, "{queue:?}");
        if queue.iter().all(|mail| mail.attempts >= 1) {
            return queue;
        }
        assert!(Instant::now() < deadline, "no delivery was attempted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port nothing listens on (for now).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

async fn spawn_app_with_smtp(dir: tempfile::TempDir, port: u16) -> TestApp {
    spawn_app_in(dir, |config| {
        config.mail.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        config.mail.retry_base = Duration::from_millis(300);
    })
    .await
}

async fn spawn_app_with_sink() -> (TestApp, SmtpSink) {
    let sink = SmtpSink::default();
    let port = sink.start(0).await;
    let dir = tempfile::tempdir().expect("temp data dir");
    (spawn_app_with_smtp(dir, port).await, sink)
}

#[tokio::test]
async fn user_add_delivers_a_multipart_welcome_mail_over_smtp() {
    let (app, sink) = spawn_app_with_sink().await;
    let params = [("email", "new@x.io"), ("access_level", "user")];
    app.post("user/add", &params).await.ok();
    let messages = sink.wait_for(1).await;
    assert_eq!(messages.len(), 1, "one welcome mail");
    let mail = &messages[0];
    assert_eq!(mail.rcpt, vec!["new@x.io".to_string()]);
    for header in [
        "From: Roost <roost@localhost>",
        "To: new@x.io",
        "Subject: Welcome to Roost",
        "Date: ",
        "Message-ID: <",
        "Content-Type: multipart/alternative",
        "Content-Type: text/plain",
        "Content-Type: text/html",
    ] {
        assert!(mail.data.contains(header), "no '{header}' in {}", mail.data);
    }
    let path = mail.link_path("welcome");
    assert_eq!(path.len(), "/welcome/".len() + 64, "{path}");
    // The link works: it opens the set-password page.
    let page = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .expect("open link");
    assert_eq!(page.status(), 200);
    app.wait_for_mail_queue().await;
}

#[tokio::test]
async fn user_add_without_welcome_mail_sends_nothing() {
    let (app, sink) = spawn_app_with_sink().await;
    app.add_user("quiet@x.io", "user").await;
    app.wait_for_mail_queue().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.messages().is_empty(), "{:?}", sink.messages());
}

#[tokio::test]
async fn password_reset_mail_carries_a_one_hour_reset_link() {
    let (app, sink) = spawn_app_with_sink().await;
    app.add_user("ann@x.io", "user").await;
    app.post("user/password/reset", &[("email", "ann@x.io")])
        .await
        .ok();
    let messages = sink.wait_for(1).await;
    assert_eq!(messages.len(), 1);
    let mail = &messages[0];
    assert!(mail.data.contains("To: ann@x.io"));
    assert!(mail.data.contains("Subject: Reset your Roost password"));
    assert!(mail.unfolded().contains("within 1 hour"));
    assert!(mail.data.contains("Content-Type: multipart/alternative"));
    let path = mail.link_path("reset");
    let page = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .expect("open link");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("page").contains("ann@x.io"));
}

#[tokio::test]
async fn smtp_down_queues_the_mail_and_delivers_it_when_the_server_is_back() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp data dir");
    let app = spawn_app_with_smtp(dir, port).await;
    let started = Instant::now();
    let params = [("email", "late@x.io"), ("access_level", "user")];
    app.post("user/add", &params).await.ok();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the request did not wait for mail"
    );

    // The failed attempt shows in the queue, without the message's content.
    let deadline = Instant::now() + Duration::from_secs(10);
    let entry = loop {
        let body = app.get("mail/queue", &[]).await.ok().clone();
        let queue = body["mail_queue"].as_array().expect("array").clone();
        assert_eq!(queue.len(), 1, "{body}");
        if queue[0]["attempts"].as_u64().unwrap_or(0) >= 1 || Instant::now() > deadline {
            break queue[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(entry["to"], "late@x.io");
    assert_eq!(entry["kind"], "welcome");
    assert!(
        entry["attempts"].as_u64().expect("attempts") >= 1,
        "{entry}"
    );
    assert!(
        entry["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{entry}"
    );
    assert!(entry.get("text").is_none() && entry.get("html").is_none());
    assert!(!entry.to_string().contains("/welcome/"), "{entry}");

    // Other keys can't read the queue.
    let analyst = app.new_key("analyst").await;
    app.get_as(&analyst, "mail/queue", &[])
        .await
        .err(403, crate::helpers::KEY_NOT_ALLOWED);

    // The server comes back: the retry delivers the message and it leaves the queue.
    let sink = SmtpSink::default();
    sink.start(port).await;
    let messages = sink.wait_for(1).await;
    assert_eq!(messages.len(), 1, "delivered after the outage");
    assert!(messages[0].data.contains("To: late@x.io"));
    assert!(messages[0].unfolded().contains("/welcome/"));
    app.wait_for_mail_queue().await;
    let body = app.get("mail/queue", &[]).await.ok().clone();
    assert_eq!(body["mail_queue"], serde_json::json!([]));
}

#[tokio::test]
async fn queued_mail_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp data dir");
    {
        // A previous run queued a mail and stopped before delivering it.
        let store = Store::open(dir.path()).expect("open store");
        let new = NewUser {
            email: Email::parse("kept@x.io").expect("email"),
            access_level: AccessLevel::User,
            note: None,
            two_factor_required: false,
        };
        store
            .add_user(&Actor::named("test"), new, None)
            .expect("add user");
        let content = MailContent {
            kind: "welcome".to_string(),
            subject: "Queued before the restart".to_string(),
            text: "plain".to_string(),
            html: Some("<p>html</p>".to_string()),
        };
        let to = Email::parse("kept@x.io").expect("email");
        store.enqueue_mail(&to, content).expect("enqueue");
    }
    let sink = SmtpSink::default();
    let port = sink.start(0).await;
    let app = spawn_app_with_smtp(dir, port).await;
    let messages = sink.wait_for(1).await;
    assert_eq!(
        messages.len(),
        1,
        "the queued mail went out after the restart"
    );
    assert!(
        messages[0]
            .data
            .contains("Subject: Queued before the restart")
    );
    app.wait_for_mail_queue().await;
}

#[tokio::test]
async fn the_settings_page_lists_outgoing_mail() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp data dir");
    let app = spawn_app_with_smtp(dir, port).await;
    let params = [("email", "late@x.io"), ("access_level", "user")];
    app.post("user/add", &params).await.ok();
    let console = app.console_as("boss@x.io", "admin").await;
    let page = console.get("/settings").await;
    page.assert_contains("Outgoing mail");
    page.assert_contains("late@x.io");
    page.assert_contains("welcome");
}

#[tokio::test]
async fn weekly_summaries_wait_out_an_smtp_outage_and_go_out_once() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp data dir");
    let app = spawn_app_with_smtp(dir, port).await;
    for (email, level) in [("boss@x.io", "admin"), ("crew@x.io", "user")] {
        let params = [
            ("email", email),
            ("access_level", level),
            ("send_welcome_mail", "false"),
        ];
        app.post("user/add", &params).await.ok();
    }
    let now = now_unix();
    assert_eq!(
        app.summaries
            .queue_now(Actor::named("test"), now)
            .await
            .expect("queue"),
        2
    );

    // Both wait in the queue after a failed attempt; the week counts as sent all the same, so
    // the scheduler won't queue it a second time while the server is down.
    let queue = failed_deliveries(&app, 2).await;
    assert!(
        queue
            .iter()
            .all(|mail| mail.content.kind == "weekly summary")
    );
    assert_eq!(app.summaries.queue_if_due(now).await.expect("check"), 0);

    let sink = SmtpSink::default();
    sink.start(port).await;
    let messages = sink.wait_for(2).await;
    app.wait_for_mail_queue().await;
    let mut to: Vec<String> = messages.iter().flat_map(|m| m.rcpt.clone()).collect();
    to.sort();
    assert_eq!(to, ["boss@x.io", "crew@x.io"]);
    for message in &messages {
        assert!(message.data.contains("Subject: Your weekly Roost summary"));
        assert!(message.data.contains("Content-Type: multipart/alternative"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 2, "each summary went out once");
}

#[tokio::test]
async fn required_starttls_never_falls_back_to_plain_text() {
    // The SMTP server offers no STARTTLS; with TLS required, nothing may be sent in the clear.
    let sink = SmtpSink::default();
    let port = sink.start(0).await;
    let dir = tempfile::tempdir().expect("temp data dir");
    let app = spawn_app_in(dir, |config| {
        config.mail.smtp_url = Some(format!("smtp://user:hunter2@127.0.0.1:{port}?tls=required"));
        config.mail.retry_base = Duration::from_secs(60);
    })
    .await;
    let params = [("email", "safe@x.io"), ("access_level", "user")];
    app.post("user/add", &params).await.ok();

    let failed = failed_deliveries(&app, 1).await.remove(0);
    let error = failed.last_error.expect("the error is kept");
    assert!(error.contains("STARTTLS is not supported"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
    assert!(sink.messages().is_empty(), "a message went out without TLS");
}

#[tokio::test]
async fn starttls_with_the_relays_ca_delivers_and_without_it_delivers_nothing() {
    let cert = TestCertificate::localhost();
    let sink = SmtpSink::default();
    let port = sink.start_with_starttls(&cert);
    let url = format!("smtp://{SMTP_USER}:{SMTP_PASSWORD}@localhost:{port}?tls=required");

    // Without the relay's CA its certificate is refused: nothing goes out, the mail waits.
    let dir = tempfile::tempdir().expect("temp data dir");
    let untrusting = spawn_app_in(dir, |config| {
        config.mail.smtp_url = Some(url.clone());
        config.mail.retry_base = Duration::from_secs(60);
    })
    .await;
    let params = [("email", "first@x.io"), ("access_level", "user")];
    untrusting.post("user/add", &params).await.ok();
    let failed = failed_deliveries(&untrusting, 1).await.remove(0);
    let error = failed.last_error.expect("the error is kept");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert!(sink.messages().is_empty());

    // With `--smtp-ca` naming it, the same server is trusted and the mail goes through TLS.
    let dir = tempfile::tempdir().expect("temp data dir");
    let trusting = spawn_app_in(dir, |config| {
        config.mail.smtp_url = Some(url.clone());
        config.mail.smtp_ca = Some(cert.cert_path.clone());
    })
    .await;
    let params = [("email", "second@x.io"), ("access_level", "user")];
    trusting.post("user/add", &params).await.ok();
    let messages = sink.wait_for(1).await;
    assert_eq!(
        messages.len(),
        1,
        "delivered over STARTTLS: {:?}",
        trusting.store.mail_queue()
    );
    assert_eq!(messages[0].rcpt, ["second@x.io"]);
    assert_eq!(
        messages[0].user.as_deref(),
        Some(SMTP_USER),
        "logged in over TLS"
    );
    trusting.wait_for_mail_queue().await;
}

/// SIGTERM while a message is on the wire to a slow relay: the delivery is finished (the relay
/// has the message, the queue has forgotten it) before the process exits 0.
#[tokio::test]
async fn sigterm_lets_the_message_being_delivered_finish() {
    use crate::cli::{Sandbox, Server as Roost};
    let sink = SmtpSink {
        accept_delay: Duration::from_secs(2),
        ..SmtpSink::default()
    };
    let port = sink.start(0).await;
    let sandbox = Sandbox::new();
    let token = sandbox.create_token("admin");
    let data = sandbox.data_arg();
    let smtp = format!("smtp://127.0.0.1:{port}");
    let server = Roost::spawn(sandbox.cmd(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        "--smtp-url",
        &smtp,
    ]));
    server
        .call(
            &token,
            reqwest::Method::POST,
            "user/add",
            &[("email", "ann@x.io"), ("access_level", "user")],
        )
        .await
        .ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.started.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the delivery never began");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(sink.messages().is_empty(), "accepted before the stop");
    let pid = libc::pid_t::try_from(server.child.0.id()).expect("pid");
    // SAFETY: signals the child this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let mut child = server.child;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("status") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 20 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    let received = sink.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt, vec!["ann@x.io".to_string()]);
    let store = Store::open(&sandbox.data()).expect("reopen");
    assert!(store.mail_queue().unwrap().is_empty(), "still queued");
}
