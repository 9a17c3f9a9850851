//! Console sessions. The session lives on the server (`store::SessionRecord`, keyed by the hash
//! of a random id); the browser's cookie (encrypted and signed by actix-session) carries that id,
//! plus the CSRF token, the flash message and a login half-way through the factor step. Logout
//! deletes the record, and so does every event that must end a user's sessions (disable, remove,
//! demote, password change, factor reset), so a copied cookie stops working at once.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::cookie::Key;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use super::csrf;
use super::error::WebError;
use crate::auth::sha256_hex;
use crate::domain::AccessLevel;
use crate::service::{Principal, Who};
use crate::state::AppState;
use crate::store::{User, now_unix};

/// The cookie entry holding the session's random id (only its hash is stored).
const SESSION_ID: &str = "sid";

pub use crate::config::SESSION_KEY_FILE;

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
        Ok(_) => tracing::warn!("{} is too short; generating a new one", path.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut bytes = [0u8; 64];
    rand::fill(&mut bytes);
    write_private(&path, &bytes)?;
    Ok(Key::from(&bytes))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = crate::private_files::private_file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Starts a session for `user` who proved who they are (`how`): a fresh cookie (no state carried
/// over from before login), a new session record (the login is recorded with it), a new CSRF
/// token.
pub async fn start(
    req: &HttpRequest,
    session: &Session,
    state: &AppState,
    user: &User,
    how: &'static str,
) -> Result<(), WebError> {
    // Not `purge`: a purged session drops every later insert in this request.
    session.clear();
    session.renew();
    let who = Principal::new(
        Who::Anonymous {
            claimed: Some(user.email.clone()),
        },
        state.origin(req),
    );
    let opened = crate::service::sessions::open(state, &who, user.id, how).await?;
    session
        .insert(SESSION_ID, opened.id)
        .map_err(WebError::internal)?;
    csrf::rotate(session)
}

/// Ends the session (logout): its record goes, and the cookie with it.
pub async fn end(signed_in: &SignedIn, state: &AppState) -> Result<(), WebError> {
    crate::service::sessions::close(state, &signed_in.principal, signed_in.session_hash.clone())
        .await?;
    signed_in.session.purge();
    Ok(())
}

/// Drops the cookie's state (a login that can't go on), with no session record to end.
pub fn forget(session: &Session) {
    session.purge();
}

/// The hash the cookie's session is stored under.
fn session_hash(session: &Session) -> Option<String> {
    session
        .get::<String>(SESSION_ID)
        .ok()
        .flatten()
        .map(|id| sha256_hex(&id))
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
    /// The user as the services see them: who, with their roles, from where.
    pub principal: Principal,
    pub session: Session,
    /// The hash this session is stored under (to mark "this one", to keep it on a password
    /// change).
    pub session_hash: String,
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
    let login_required = || WebError::LoginRequired {
        next: super::next::same_site_path(Some(&next)),
    };
    let Some(hash) = session_hash(&session) else {
        return Err(login_required());
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| WebError::internal("AppState missing from the app"))?;
    let lookup = hash.clone();
    let Some((record, details)) = state.read(move |store| store.session_with_user(&lookup))? else {
        forget(&session);
        return Err(login_required());
    };
    let limits = state.session_limits;
    let now = now_unix();
    let timed_out = now.saturating_sub(record.created) > limits.absolute_secs
        || now.saturating_sub(record.last_seen) > limits.idle_secs;
    let principal = Principal::console_user(&details, state.origin(req));
    if timed_out || details.user.disabled {
        // Ended by time, not by anyone: no logout on the trail.
        let ended = hash.clone();
        state
            .write(move |store| store.end_sessions_by_hash(&ended))
            .await?;
        forget(&session);
        return Err(login_required());
    }
    if now.saturating_sub(record.last_seen) >= limits.seen_granularity_secs() {
        let touched = hash.clone();
        state
            .write(move |store| store.touch_session(&touched, now))
            .await?;
    }
    Ok(SignedIn {
        user: details.user,
        principal,
        session,
        session_hash: hash,
    })
}
