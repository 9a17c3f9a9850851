//! The audit trail, end to end: every change made through the API or a console form leaves
//! exactly one entry naming who acted, from which address and browser, and about whom; a refused
//! call leaves none; sign-ins of every outcome are on it; and the canary audit API pages, filters,
//! purges and downloads it.

mod api_changes;
mod api_refusals;
mod console_changes;
mod console_refusals;
mod download;
mod fetch;
mod logins;
mod purge;
mod world;

use reqwest::header::{ACCEPT_LANGUAGE, HeaderMap, HeaderValue, USER_AGENT};
use roost::store::audit::AuditEntry;

use crate::helpers::*;

/// The browser every request of these tests claims to be, so the trail can be seen to keep it.
pub const AGENT: &str = "AuditProbe/1.0 (roost integration tests)";
pub const LANGUAGE: &str = "de-CH,de;q=0.9,en;q=0.5";
/// The user of the tests that need just one.
pub const USER: &str = "ann@x.io";
/// Where the tests' requests come from, as the server sees them.
pub const LOCALHOST: &str = "127.0.0.1";

/// `User-Agent: AGENT` and `Accept-Language: LANGUAGE`.
pub fn browser_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, HeaderValue::from_static(AGENT));
    headers.insert(ACCEPT_LANGUAGE, HeaderValue::from_static(LANGUAGE));
    headers
}

/// An API client that sends `browser_headers()`.
pub fn probe_client() -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(browser_headers())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("reqwest client")
}

/// The id of the newest entry (0 for an empty trail).
pub fn newest_id(app: &TestApp) -> u64 {
    let page = app
        .store
        .audit_page(&AuditFilter::default(), AuditFrom::Newest, 1)
        .expect("audit page");
    page.entries.first().map_or(0, |entry| entry.id)
}

/// The entries recorded after entry `id`, oldest first.
pub fn entries_after(app: &TestApp, id: u64) -> Vec<AuditEntry> {
    let page = app
        .store
        .audit_page(&AuditFilter::default(), AuditFrom::NewerThan(id), 1000)
        .expect("audit page");
    let mut entries = page.entries;
    entries.reverse();
    entries
}

pub fn audit_len(app: &TestApp) -> u64 {
    app.store.audit_len().expect("audit length")
}

/// The action types of `entries`, for messages.
pub fn actions(entries: &[AuditEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.action_type.as_str()).collect()
}

/// Asserts that nothing was recorded after entry `id`.
#[track_caller]
pub fn assert_nothing_after(app: &TestApp, id: u64) {
    let entries = entries_after(app, id);
    assert!(entries.is_empty(), "recorded {:?}", actions(&entries));
}

/// How the trail names an API key: `API key <note> (<key id>)`.
pub fn key_actor(note: &str, key_id: &str) -> String {
    format!("API key {note} ({key_id})")
}

/// The key id inside a token `roost_<key id>_<secret>`.
pub fn key_id_of(token: &str) -> String {
    let rest = token.strip_prefix("roost_").expect("a roost_ token");
    rest.split('_').next().expect("key id").to_string()
}

/// The trail's name for the harness's own admin key (note `tests`).
pub fn admin_key_actor(app: &TestApp) -> String {
    key_actor("tests", &key_id_of(&app.admin_token))
}

/// What one entry should say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub action: String,
    pub actor: String,
    pub target: Option<String>,
    pub flock: Option<String>,
}

impl Expected {
    pub fn new(action: &str, actor: &str) -> Expected {
        Expected {
            action: action.to_string(),
            actor: actor.to_string(),
            target: None,
            flock: None,
        }
    }

    pub fn target(mut self, email: &str) -> Expected {
        self.target = Some(email.to_string());
        self
    }

    /// `None` if `entry` says this, from the tests' address and browser; else what differs.
    pub fn mismatch(&self, entry: &AuditEntry) -> Option<String> {
        let got = (
            entry.action_type.as_str(),
            entry.actor.as_str(),
            entry.ip.as_deref(),
            entry.user_agent.as_deref(),
            entry.language.as_deref(),
            entry.target.as_deref(),
            entry.flock_id.as_deref(),
            entry.message.is_empty(),
        );
        let want = (
            self.action.as_str(),
            self.actor.as_str(),
            Some(LOCALHOST),
            Some(AGENT),
            Some(LANGUAGE),
            self.target.as_deref(),
            self.flock.as_deref(),
            false,
        );
        (got != want).then(|| format!("got {got:?}\n   expected {want:?}"))
    }

    /// `None` if `entries` is exactly one entry saying this; else what differs.
    pub fn only_mismatch(&self, entries: &[AuditEntry]) -> Option<String> {
        match entries {
            [entry] => self.mismatch(entry),
            _ => Some(format!(
                "expected one {} entry, got {:?}",
                self.action,
                actions(entries)
            )),
        }
    }
}

/// Asserts that `entries` is exactly one entry saying `expected`.
#[track_caller]
pub fn assert_one(entries: &[AuditEntry], expected: &Expected) {
    if let Some(problem) = expected.only_mismatch(entries) {
        panic!("{problem}\n{entries:#?}");
    }
}
