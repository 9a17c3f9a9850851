//! What every request handler shares.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::HttpRequest;

use crate::auth::login_throttle::LoginThrottles;
use crate::auth::passwords::PasswordHasher;
use crate::auth::throttle::Throttle;
use crate::config::{SessionLimits, TrustedProxies};
use crate::mail::Mailer;
use crate::store::{Store, StoreResult};

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub mailer: Mailer,
    /// Wakes the mail queue's sender after a message was queued.
    pub mail_queued: Arc<tokio::sync::Notify>,
    /// The mail queue's sender (readiness asks whether it runs).
    pub mail_sender: crate::mail::queue::MailSender,
    pub webhook_sender: crate::background::Worker,
    /// The data directory (downloads of a backup are written there first, private).
    pub data_dir: Arc<std::path::Path>,
    /// Set once a stop was asked for (SIGTERM, SIGINT): answers then close their connection.
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
    pub summaries: crate::summaries::Summaries,
    /// Public URL of the console, without a trailing slash.
    pub base_url: Arc<str>,
    /// Bad API keys per client address.
    pub api_auth_failures: Arc<Throttle<IpAddr>>,
    /// Password checks per client address and per account, and forgot-password requests.
    pub login_throttles: Arc<LoginThrottles>,
    /// The bounded argon2 workers every password hash and check goes through.
    pub hasher: PasswordHasher,
    /// Whether session cookies need the Secure flag (an https base URL).
    pub secure_cookies: bool,
    /// The WebAuthn relying party; `None` when the base URL's host can't be one (an IP address).
    pub webauthn: Option<Arc<webauthn_rs::prelude::Webauthn>>,
    pub webauthn_ceremonies: Arc<crate::auth::webauthn::Ceremonies>,
    pub trusted_proxies: Arc<TrustedProxies>,
    pub session_limits: SessionLimits,
    /// Permits for lists, filters and exports running at once.
    pub scans: Arc<tokio::sync::Semaphore>,
    pub metrics: crate::metrics::Metrics,
    /// The time schedules run by (a test's clock in tests).
    pub clock: crate::clock::Clock,
    /// `--dormant-after`: the access review's threshold.
    pub dormant_after_days: u64,
    /// `--webhooks-allow-private`.
    pub webhooks_allow_private: bool,
}

impl AppState {
    /// The client's address: the peer's, or the one a trusted reverse proxy reports.
    pub fn client_address(&self, req: &HttpRequest) -> Option<IpAddr> {
        let forwarded_for = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok());
        crate::auth::client_address::client_address(
            &self.trusted_proxies,
            req.peer_addr().map(|addr| addr.ip()),
            forwarded_for,
        )
    }

    /// Where a request comes from, as the audit trail keeps it.
    pub fn origin(&self, req: &HttpRequest) -> crate::service::Origin {
        let header = |name: actix_web::http::header::HeaderName| {
            req.headers().get(name).map(|value| value.as_bytes())
        };
        crate::service::Origin::new(
            self.client_address(req).map(|ip| ip.to_string()),
            header(actix_web::http::header::USER_AGENT),
            header(actix_web::http::header::ACCEPT_LANGUAGE),
        )
    }

    /// Runs a short read (point lookups and small ranges: a key, a user, their roles, the
    /// settings) right here on the async worker. Such a read takes microseconds; hopping to a
    /// thread pool and back would cost more than the read, and under load it grows the pool to
    /// hundreds of threads that every request then pays for in context switches.
    pub fn read<T>(&self, work: impl FnOnce(&Store) -> StoreResult<T>) -> StoreResult<T> {
        work(&self.store)
    }

    /// Runs a read whose cost grows with the data (list, filter, export) on the blocking pool,
    /// so it can't stall the async workers.
    pub async fn blocking<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> StoreResult<T> + Send + 'static,
    {
        self.store.off_async(work).await
    }

    /// Runs store work that writes: after the writes before it, on the writer thread (see
    /// `Store::write_async`). The work may run twice, when its batch is redone.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Store) -> StoreResult<T> + Send + 'static,
    {
        self.store.write_async(work).await
    }
}
