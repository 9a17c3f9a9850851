//! Console sessions. The cookie (encrypted and signed by actix-session) holds the user id, the
//! user's session generation at login, and timestamps; the generation in the store is the
//! server-side switch: disabling, removing, demoting a user, resetting a factor or changing the
//! password bumps it, and every session issued before ends on its next request.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::cookie::Key;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use super::csrf;
use super::error::WebError;
use crate::domain::AccessLevel;
use crate::state::AppState;
use crate::store::{StoreError, User, now_unix};

/// How long a console session lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session unused for this long has ended.
    pub idle_secs: u64,
    /// A session older than this has ended, however busy.
    pub absolute_secs: u64,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle_secs: 30 * 60,
            absolute_secs: 12 * 3600,
        }
    }
}

impl SessionLimits {
    /// `seen` is only rewritten when older than this (a minute, or less for short idle
    /// limits), to spare a new cookie on every request.
    fn seen_granularity_secs(&self) -> u64 {
        (self.idle_secs / 4).clamp(1, 60)
    }
}

const USER_ID: &str = "uid";
const GENERATION: &str = "gen";
const SIGNED_IN_AT: &str = "at";
const SEEN_AT: &str = "seen";

pub const SESSION_KEY_FILE: &str = "session.key";

/// Password checked, second factor owed: only the factor step may be reached.
const PENDING_USER_ID: &str = "pending_uid";
const PENDING_GENERATION: &str = "pending_gen";
const PENDING_AT: &str = "pending_at";
const PENDING_NEXT: &str = "pending_next";
/// How long the factor step may take after the password.
pub const PENDING_TIMEOUT_SECS: u64 = 5 * 60;
/// Signed in, but 2FA is required and none is enrolled: only enrollment may be reached.
const MUST_ENROLL: &str = "must_enroll";

/// The cookie key, kept in the data directory so a restart doesn't log everyone out.
pub fn load_or_create_key(data_dir: &Path) -> std::io::Result<Key> {
    let path = data_dir.join(SESSION_KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() >= 64 => return Ok(Key::from(&bytes)),
        Ok(_) => log::warn!("{} is too short; generating a new one", path.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut bytes = [0u8; 64];
    rand::fill(&mut bytes);
    write_private(&path, &bytes)?;
    Ok(Key::from(&bytes))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Starts a session for `user`: a fresh session (no state carried over from before login), a new
/// CSRF token.
pub fn start(session: &Session, user: &User) -> Result<(), WebError> {
    // Not `purge`: a purged session drops every later insert in this request.
    session.clear();
    session.renew();
    let now = now_unix();
    let insert = |key: &str, value: u64| session.insert(key, value).map_err(WebError::internal);
    insert(USER_ID, user.id)?;
    insert(GENERATION, user.session_generation)?;
    insert(SIGNED_IN_AT, now)?;
    insert(SEEN_AT, now)?;
    csrf::rotate(session)
}

/// Keeps the current session valid after the user's own change bumped their generation
/// (a password change ends their *other* sessions).
pub fn adopt_generation(session: &Session, user: &User) -> Result<(), WebError> {
    session.renew();
    session
        .insert(GENERATION, user.session_generation)
        .map_err(WebError::internal)
}

pub fn end(session: &Session) {
    session.purge();
}

/// After a correct password for a user with a second factor: a fresh session that only records
/// who is half-way through logging in, and where to go afterwards.
pub fn start_pending(session: &Session, user: &User, next: &str) -> Result<(), WebError> {
    session.clear();
    session.renew();
    let insert = |key: &str, value: u64| session.insert(key, value).map_err(WebError::internal);
    insert(PENDING_USER_ID, user.id)?;
    insert(PENDING_GENERATION, user.session_generation)?;
    insert(PENDING_AT, now_unix())?;
    session
        .insert(PENDING_NEXT, next)
        .map_err(WebError::internal)?;
    csrf::rotate(session)
}

/// The user id and generation of a pending login that hasn't timed out.
pub fn pending(session: &Session) -> Option<(u64, u64)> {
    let read = |key: &str| session.get::<u64>(key).ok().flatten();
    let at = read(PENDING_AT)?;
    if now_unix().saturating_sub(at) > PENDING_TIMEOUT_SECS {
        return None;
    }
    Some((read(PENDING_USER_ID)?, read(PENDING_GENERATION)?))
}

pub fn pending_next(session: &Session) -> String {
    session
        .get::<String>(PENDING_NEXT)
        .ok()
        .flatten()
        .unwrap_or_else(|| "/".to_string())
}

pub fn is_pending(session: &Session) -> bool {
    session.contains_key(PENDING_USER_ID)
}

pub fn require_enrollment(session: &Session) -> Result<(), WebError> {
    session
        .insert(MUST_ENROLL, true)
        .map_err(WebError::internal)
}

pub fn must_enroll(session: &Session) -> bool {
    session.get::<bool>(MUST_ENROLL).ok().flatten() == Some(true)
}

pub fn enrollment_done(session: &Session) {
    session.remove(MUST_ENROLL);
}

/// A request from a signed-in, enabled user whose session is still valid.
pub struct SignedIn {
    pub user: User,
    pub session: Session,
}

impl SignedIn {
    pub fn is_admin(&self) -> bool {
        self.user.access_level == AccessLevel::Admin
    }

    pub fn require_admin(&self) -> Result<(), WebError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(WebError::Forbidden)
        }
    }
}

impl FromRequest for SignedIn {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<SignedIn, WebError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { signed_in(&req).await })
    }
}

async fn signed_in(req: &HttpRequest) -> Result<SignedIn, WebError> {
    let session = req.get_session();
    // Only a page can be returned to; a form post's path can't be replayed with GET.
    let next = match (
        req.method() == actix_web::http::Method::GET,
        req.query_string(),
    ) {
        (false, _) => "/".to_string(),
        (true, "") => req.path().to_string(),
        (true, query) => format!("{}?{query}", req.path()),
    };
    let login_required = || WebError::LoginRequired { next: next.clone() };
    let read = |key: &str| session.get::<u64>(key).ok().flatten();
    let (Some(user_id), Some(generation), Some(signed_in_at), Some(seen_at)) = (
        read(USER_ID),
        read(GENERATION),
        read(SIGNED_IN_AT),
        read(SEEN_AT),
    ) else {
        return Err(login_required());
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| WebError::internal("AppState missing from the app"))?;
    let limits = state.session_limits;
    let now = now_unix();
    if now.saturating_sub(signed_in_at) > limits.absolute_secs
        || now.saturating_sub(seen_at) > limits.idle_secs
    {
        end(&session);
        return Err(login_required());
    }
    let user = match state.blocking(move |store| store.user_by_id(user_id)).await {
        Ok(user) => user,
        Err(crate::state::BlockingError::Store(StoreError::UserNotFound)) => {
            end(&session);
            return Err(login_required());
        }
        Err(error) => return Err(error.into()),
    };
    if user.disabled || user.session_generation != generation {
        end(&session);
        return Err(login_required());
    }
    if now.saturating_sub(seen_at) >= limits.seen_granularity_secs() {
        session.insert(SEEN_AT, now).map_err(WebError::internal)?;
    }
    Ok(SignedIn { user, session })
}
