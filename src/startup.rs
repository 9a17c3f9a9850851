//! Builds the running server from a `Config`; `main` and the integration tests both come here.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer};

use crate::api;
use crate::auth::links::NewLink;
use crate::auth::login_throttle::LoginThrottles;
use crate::auth::passwords::PasswordHasher;
use crate::auth::throttle::Throttle;
use crate::config::{Config, OUTBOX_DIR, SESSION_KEY_FILE, SessionLimits};
use crate::mail::{MailError, Mailer};
use crate::metrics::MetricsAccess;
use crate::request_limits::ConnectionTracker;
use crate::service::scheduler::Scheduler;
use crate::state::AppState;
use crate::store::audit::Actor;
use crate::store::{
    BACKUPS_DIR, DATABASE_FILE, Store, StoreError, StoreOptions, TokenPurpose, now_unix,
};
use crate::summaries::Summaries;
use crate::web;

/// Failed API authentications allowed per client address per window.
const API_AUTH_FAILURE_LIMIT: u32 = 20;
const API_AUTH_FAILURE_WINDOW_SECS: u64 = 60;
/// A request's headers must arrive within this.
const HEADERS_TIMEOUT: Duration = Duration::from_secs(5);
/// How often ended sessions are swept from the store.
const SESSION_SWEEP_EVERY: Duration = Duration::from_secs(10 * 60);
/// How often the audit trail's retention is applied.
const AUDIT_SWEEP_EVERY: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("mail configuration: {0}")]
    Mail(#[from] MailError),
    #[error("cannot read or create the session key in the data directory: {0}")]
    SessionKey(std::io::Error),
    #[error("cannot start the password hashing workers: {0}")]
    Hasher(std::io::Error),
    #[error("cannot set up the metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Options(#[from] crate::config::OptionError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot listen on {bind}: {source}")]
    Bind {
        bind: String,
        source: std::io::Error,
    },
}

/// How long a stopping server answers the requests in flight, and then how long the mail and
/// webhook senders may take to finish the delivery they are making.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

pub struct Application {
    mail_sender: crate::mail::queue::MailSender,
    webhook_sender: crate::background::Worker,
    port: u16,
    base_url: String,
    store: Store,
    summaries: Summaries,
    scheduler: Scheduler,
    hasher: PasswordHasher,
    server: Server,
    /// The `--metrics-bind` listener, and its port.
    metrics_server: Option<(Server, u16)>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let store = open_store(&config)?;
        raise_open_file_limit();
        let mailer = Mailer::from_settings(&config.mail, &config.data_dir)?;
        let bind_error = |source| StartupError::Bind {
            bind: config.bind.clone(),
            source,
        };
        // Read before anything listens: unusable files stop the start with the reason.
        let tls = match config.tls_files()? {
            Some(files) => Some(Arc::new(crate::tls::ReloadingCertificate::load(files)?)),
            None => None,
        };
        let listener = TcpListener::bind(&config.bind).map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        let base_url = config.base_url_for_port(address.port());

        let session_key =
            web::session::load_or_create_key(&config.data_dir).map_err(StartupError::SessionKey)?;
        let secure_cookies = base_url.starts_with("https://");
        let webauthn = match crate::auth::webauthn::relying_party(&base_url) {
            Ok(relying_party) => Some(Arc::new(relying_party)),
            Err(reason) => {
                tracing::warn!("security keys (WebAuthn) are unavailable: {reason}");
                None
            }
        };
        let hasher = PasswordHasher::start(config.hash_workers, config.hash_queue_limit())
            .map_err(StartupError::Hasher)?;
        let login_throttles = Arc::new(LoginThrottles::default());
        for (account, lock) in store.login_locks()? {
            login_throttles.restore_lock(account, lock);
        }
        spawn_session_sweeper(store.clone(), config.session_limits);
        // Swept before serving, so the trail never shows what retention should have removed.
        sweep_audit_trail(&store, config.audit_retention_days).await;
        spawn_audit_sweeper(store.clone(), config.audit_retention_days);
        let mail_queued = Arc::new(tokio::sync::Notify::new());
        let mail_sender = crate::mail::queue::spawn_sender(
            store.clone(),
            mailer.clone(),
            Arc::clone(&mail_queued),
            config.mail.retry_base,
        );
        let webhook_sender = crate::webhooks::spawn_sender(
            store.clone(),
            base_url.clone(),
            config.webhooks_allow_private,
            config.webhook_retry_base,
        );
        let summaries = Summaries::new(
            store.clone(),
            Arc::clone(&mail_queued),
            &base_url,
            config.summary_weekday,
            config.dormant_after_days,
        );
        let scheduler = Scheduler::new(
            store.clone(),
            Arc::clone(&mail_queued),
            &base_url,
            config.clock.clone(),
        );
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let state = AppState {
            store: store.clone(),
            mailer: mailer.clone(),
            mail_queued,
            mail_sender: mail_sender.clone(),
            webhook_sender: webhook_sender.clone(),
            stopping: Arc::clone(&stopping),
            data_dir: Arc::from(config.data_dir.as_path()),
            summaries: summaries.clone(),
            base_url: Arc::from(base_url.as_str()),
            api_auth_failures: Arc::new(Throttle::new(
                API_AUTH_FAILURE_LIMIT,
                API_AUTH_FAILURE_WINDOW_SECS,
            )),
            login_throttles,
            hasher: hasher.clone(),
            secure_cookies,
            webauthn,
            webauthn_ceremonies: Arc::default(),
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            session_limits: config.session_limits,
            scans: Arc::new(tokio::sync::Semaphore::new(
                config.request_limits.concurrent_scans.max(1),
            )),
            metrics: crate::metrics::Metrics::new()?,
            clock: config.clock.clone(),
            dormant_after_days: config.dormant_after_days,
            webhooks_allow_private: config.webhooks_allow_private,
        };
        let metrics_token: Option<Arc<str>> = config.metrics_token.as_deref().map(Arc::from);
        let main_metrics = match &metrics_token {
            Some(token) => MetricsAccess::Token(Arc::clone(token)),
            None => MetricsAccess::Off,
        };
        let state_for_metrics = state.clone();
        let request_limits = config.request_limits;
        let connections = ConnectionTracker::new(
            request_limits.connections_per_client,
            Arc::new(config.trusted_proxies.clone()),
        );
        let server = HttpServer::new(move || {
            App::new()
                // Query strings can hold an auth_token and some paths a one-time secret: the
                // request's line has the method and a redacted path only.
                .wrap(tracing_actix_web::TracingLogger::<
                    crate::logging::RedactedRequestSpan,
                >::new())
                .wrap(actix_web::middleware::from_fn(
                    crate::request_limits::body_deadlines,
                ))
                .wrap(actix_web::middleware::from_fn(close_when_stopping))
                .app_data(actix_web::web::Data::new(request_limits))
                .wrap(web::security_headers(secure_cookies))
                .app_data(actix_web::web::Data::new(state.clone()))
                .app_data(actix_web::web::Data::new(main_metrics.clone()))
                .configure(crate::health::routes)
                .configure(crate::metrics::routes)
                // The API takes API keys, never a session: it doesn't pay for loading one.
                .configure(api::routes)
                .service(
                    actix_web::web::scope("")
                        .wrap(actix_web::middleware::from_fn(
                            web::gate::second_factor_gate,
                        ))
                        .wrap(web::session_middleware(session_key.clone(), secure_cookies))
                        .configure(web::routes)
                        .default_service(actix_web::web::to(web::not_found)),
                )
        })
        .keep_alive(request_limits.keep_alive)
        // SIGTERM or SIGINT: stop accepting, answer what is in flight for at most this long.
        .shutdown_signal(stop_requested(Arc::clone(&stopping)))
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
        .client_request_timeout(HEADERS_TIMEOUT)
        .on_connect(move |connection, extensions| {
            crate::request_limits::on_connect(&connections, &request_limits, connection, extensions)
        });
        crate::tls::reload_on_sighup(tls.clone());
        let server = match &tls {
            Some(certificate) => server.listen_rustls_0_23(listener, certificate.server_config()?),
            None => server.listen(listener),
        }
        .map_err(bind_error)?
        .run();
        let metrics_server = match &config.metrics_bind {
            Some(bind) => Some(serve_metrics(bind, &state_for_metrics, metrics_token)?),
            None => None,
        };

        // `roost backup` asks a running server for a backup through it (the database is locked).
        if let Err(error) = crate::backups::serve_control_socket(store.clone(), &config.data_dir) {
            tracing::warn!(
                "no control socket in {} (`roost backup` won't reach this server): {error}",
                config.data_dir.display()
            );
        }
        crate::backups::spawn_scheduler(store.clone(), config.backups.clone(), &config.data_dir);
        // Built in the background: a big console starts answering at once, and the first
        // search finds the projection ready (or waits for it), reads find the users in memory.
        let searchable = store.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(error) = searchable.warm() {
                tracing::warn!(
                    "cannot read the users into memory yet: {}",
                    crate::error_chain::error_chain(&error)
                );
            }
        });
        if config.summary_scheduler {
            summaries.clone().spawn_scheduler();
        }
        // Its first run, at once, carries out what fell due while the server was down.
        scheduler.clone().spawn();
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("Roost is listening on {scheme}://{address} (console at {base_url})");
        if store.user_count()? == 0 {
            let link = NewLink::new(TokenPurpose::Setup, None);
            link.store(&store, &Actor::system())?;
            println!(
                "No users yet. Open this one-time link within 24 hours to create the first admin: {}",
                link.url(&base_url)
            );
        }

        Ok(Application {
            mail_sender,
            webhook_sender,
            metrics_server,
            port: address.port(),
            base_url,
            store,
            summaries,
            scheduler,
            hasher,
            server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the `--metrics-bind` listener, when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(_, port)| *port)
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// The weekly summaries, queued into this app's mail queue and delivered by its sender.
    pub fn summaries(&self) -> Summaries {
        self.summaries.clone()
    }

    /// The scheduler of this app's offboardings (tests run it after moving their clock).
    pub fn scheduler(&self) -> Scheduler {
        self.scheduler.clone()
    }

    /// The app's password hashing workers (tests count their computations).
    pub fn hasher(&self) -> PasswordHasher {
        self.hasher.clone()
    }

    /// Stops the server from outside (tests end their app with it).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGTERM, SIGINT or the handle): then no new connection is taken,
    /// requests in flight are answered (an answered write is durable), and the mail sender
    /// finishes the message it is sending.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = match self.metrics_server {
            // A server runs while it is awaited: the metrics listener alongside the main one,
            // stopped once the main one has.
            Some((metrics, _)) => {
                let metrics_handle = metrics.handle();
                let main = async {
                    let served = self.server.await;
                    metrics_handle.stop(true).await;
                    served
                };
                tokio::join!(main, metrics).0
            }
            None => self.server.await,
        };
        let (mail, webhooks) = tokio::join!(
            self.mail_sender.stop(SHUTDOWN_GRACE),
            self.webhook_sender.stop(SHUTDOWN_GRACE)
        );
        if !mail {
            tracing::warn!(
                "the mail sender was still delivering after {} s; the message stays queued",
                SHUTDOWN_GRACE.as_secs()
            );
        }
        if !webhooks {
            tracing::warn!(
                "the webhook sender was still delivering after {} s; the event stays queued",
                SHUTDOWN_GRACE.as_secs()
            );
        }
        // Whatever is still queued for the writer (a sweep, the sender's last record) is
        // committed before the process goes.
        self.store.close().await;
        tracing::info!("stopped");
        served
    }

    /// The mail queue's sender (tests stop it to see readiness fail).
    pub fn mail_sender(&self) -> crate::mail::queue::MailSender {
        self.mail_sender.clone()
    }

    /// The webhook sender (tests stop it as a shutdown does).
    pub fn webhook_sender(&self) -> crate::background::Worker {
        self.webhook_sender.clone()
    }
}

/// The `--metrics-bind` listener: `/metrics` only (with the token when one is set), one worker.
fn serve_metrics(
    bind: &str,
    state: &AppState,
    token: Option<Arc<str>>,
) -> Result<(Server, u16), StartupError> {
    let bind_error = |source| StartupError::Bind {
        bind: bind.to_string(),
        source,
    };
    let listener = TcpListener::bind(bind).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    let access = match token {
        Some(token) => MetricsAccess::Token(token),
        None => MetricsAccess::Open,
    };
    let state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(actix_web::web::Data::new(state.clone()))
            .app_data(actix_web::web::Data::new(access.clone()))
            .configure(crate::metrics::routes)
            .default_service(actix_web::web::to(|| async {
                HttpResponse::NotFound().json(serde_json::json!({
                    "result": "failure",
                    "message": "this listener serves GET /metrics only",
                }))
            }))
    })
    .workers(1)
    // The main listener's signal handling stops it.
    .disable_signals()
    .listen(listener)
    .map_err(bind_error)?
    .run();
    tracing::info!("metrics on http://{bind}/metrics");
    Ok((server, port))
}

/// Resolves on SIGTERM or SIGINT, once `stopping` is set: from then on every answer closes its
/// connection, so keep-alive clients let go instead of holding the server for the whole grace
/// period.
async fn stop_requested(stopping: Arc<std::sync::atomic::AtomicBool>) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!("cannot listen for SIGTERM: {error}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    stopping.store(true, std::sync::atomic::Ordering::Release);
    tracing::info!(
        "stopping: answering the requests in flight (at most {} s), taking no new ones",
        SHUTDOWN_GRACE.as_secs()
    );
}

/// Once the server is stopping, each answer closes its connection.
async fn close_when_stopping(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let stopping = req
        .app_data::<actix_web::web::Data<AppState>>()
        .map(|state| Arc::clone(&state.stopping));
    let mut response = next.call(req).await?.map_into_boxed_body();
    if stopping.is_some_and(|stopping| stopping.load(std::sync::atomic::Ordering::Acquire)) {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(response)
}

/// Opens the store `config` describes. Everything Roost creates from here on is private (umask
/// 077), and what it finds readable by others in the data directory is tightened.
pub fn open_store(config: &Config) -> Result<Store, StoreError> {
    crate::private_files::restrict_umask();
    let store = Store::open_with(&config.data_dir, &StoreOptions::from_config(config))?;
    tighten_private_files(config);
    Ok(store)
}

/// Everything in the data directory that holds secrets or data, private: said once and
/// tightened if a file or directory from before (or copied in) is readable by others.
fn tighten_private_files(config: &Config) {
    use crate::private_files::{tighten, tighten_dir_and_files};
    let data_dir = &config.data_dir;
    tighten(data_dir);
    tighten(&data_dir.join(DATABASE_FILE));
    tighten(&data_dir.join(SESSION_KEY_FILE));
    tighten(&config.secrets_key_path());
    for dir in [OUTBOX_DIR, BACKUPS_DIR] {
        let dir = data_dir.join(dir);
        if dir.exists() {
            tighten_dir_and_files(&dir);
        }
    }
}

/// Deletes ended sessions now and every `SESSION_SWEEP_EVERY`: a session that timed out is
/// refused anyway, this keeps the table to the sessions that can still be used.
fn spawn_session_sweeper(store: Store, limits: SessionLimits) {
    tokio::spawn(async move {
        loop {
            let swept = store
                .write_async(move |store| {
                    store.sweep_sessions(now_unix(), limits.idle_secs, limits.absolute_secs)
                })
                .await;
            match swept {
                Ok(0) => {}
                Ok(count) => tracing::info!("swept {count} ended sessions"),
                Err(error) => tracing::error!("sweeping ended sessions failed: {error}"),
            }
            tokio::time::sleep(SESSION_SWEEP_EVERY).await;
        }
    });
}

async fn sweep_audit_trail(store: &Store, retention_days: u64) {
    match crate::service::audit::sweep(store, retention_days).await {
        Ok(0) => {}
        Ok(count) => {
            tracing::info!("deleted {count} audit trail entries older than {retention_days} days")
        }
        Err(error) => tracing::error!("sweeping the audit trail failed: {error}"),
    }
}

/// Applies the audit trail's retention once a day (the start already did it once).
fn spawn_audit_sweeper(store: Store, retention_days: u64) {
    if retention_days == 0 {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(AUDIT_SWEEP_EVERY).await;
            sweep_audit_trail(&store, retention_days).await;
        }
    });
}

/// Raises the soft limit of open files to the hard limit, so the connection limits decide how
/// many clients are served, not a default of 1024.
fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
        let raised = unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return;
            }
            if limit.rlim_cur >= limit.rlim_max {
                tracing::info!("open files limit: {}", limit.rlim_cur);
                return;
            }
            let before = limit.rlim_cur;
            limit.rlim_cur = limit.rlim_max;
            (libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0).then_some(before)
        };
        match raised {
            Some(before) => tracing::info!(
                "open files limit raised from {before} to {}",
                limit.rlim_max
            ),
            None => tracing::warn!(
                "could not raise the open files limit: {}",
                std::io::Error::last_os_error()
            ),
        }
    }
}
