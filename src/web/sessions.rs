//! Sessions as people see them: their own on the account page (end any or all others), and the
//! rows and lock facts a user's page shows (whose forms are in `users::actions`).

use actix_web::web;
use serde::Deserialize;

use super::csrf::{CsrfForm, EmptyForm};
use super::error::WebError;
use super::page::{PageResult, flash_success, see_other};
use super::session::{self, SignedIn};
use crate::service::sessions;
use crate::state::AppState;
use crate::store::{PUBLIC_ID_CHARS, StoredSession, User, UserRef, now_unix};
use crate::timestamps;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/sessions/end", web::post().to(end_own))
        .route(
            "/account/sessions/end-others",
            web::post().to(end_own_others),
        );
}

/// One session as a table row.
pub struct SessionRow {
    pub id: String,
    pub device: String,
    pub ip: String,
    pub created: String,
    pub last_seen: String,
    /// The session this page was asked for with.
    pub current: bool,
}

pub fn session_rows(sessions: &[StoredSession], current_hash: Option<&str>) -> Vec<SessionRow> {
    sessions
        .iter()
        .map(|session| SessionRow {
            id: session.public_id().to_string(),
            device: describe_device(&session.record.user_agent),
            ip: session
                .record
                .ip
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            created: timestamps::console_second(session.record.created),
            last_seen: timestamps::console_second(session.record.last_seen),
            current: Some(session.hash.as_str()) == current_hash,
        })
        .collect()
}

/// "Firefox on Linux" from a User-Agent; the raw string when neither part is recognised.
pub fn describe_device(user_agent: &str) -> String {
    let has = |needle: &str| user_agent.contains(needle);
    // Order matters: Edge and Opera say Chrome, Chrome says Safari.
    let browser = if has("Edg/") {
        Some("Edge")
    } else if has("OPR/") || has("Opera") {
        Some("Opera")
    } else if has("Firefox/") {
        Some("Firefox")
    } else if has("Chrome/") || has("Chromium/") || has("HeadlessChrome/") {
        Some("Chrome")
    } else if has("Safari/") {
        Some("Safari")
    } else if has("curl/") {
        Some("curl")
    } else {
        None
    };
    let system = if has("Android") {
        Some("Android")
    } else if has("iPhone") || has("iPad") {
        Some("iOS")
    } else if has("Windows") {
        Some("Windows")
    } else if has("Mac OS X") || has("Macintosh") {
        Some("macOS")
    } else if has("CrOS") {
        Some("ChromeOS")
    } else if has("Linux") {
        Some("Linux")
    } else {
        None
    };
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_string(),
        (None, Some(system)) => format!("a browser on {system}"),
        (None, None) if user_agent.is_empty() => "unknown device".to_string(),
        (None, None) => user_agent.chars().take(60).collect(),
    }
}

/// Lock status of an account, for the admin's user page.
pub struct LockFacts {
    /// Logging in with a password is refused until then.
    pub login_until: Option<String>,
    /// The second-factor step is refused until then.
    pub factor_until: Option<String>,
}

impl LockFacts {
    pub fn of(state: &AppState, user: &User) -> LockFacts {
        let now = now_unix();
        LockFacts {
            login_until: state
                .login_throttles
                .lock_of(&user.email.key(), now)
                .map(|lock| timestamps::console_second(lock.until)),
            factor_until: (user.factor_locked_until > now)
                .then(|| timestamps::console_second(user.factor_locked_until)),
        }
    }

    pub fn locked(&self) -> bool {
        self.login_until.is_some() || self.factor_until.is_some()
    }
}

#[derive(Deserialize)]
pub struct SessionForm {
    /// A session's public id; absent for "all".
    pub(super) session_id: Option<String>,
}

/// A public id as the forms send it, or a 404: anything else names no session.
pub(super) fn parse_public_id(raw: &str) -> Result<String, WebError> {
    let valid = raw.len() == PUBLIC_ID_CHARS && raw.bytes().all(|b| b.is_ascii_hexdigit());
    if valid {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(WebError::NotFound)
    }
}

/// Ends one of the user's own sessions; ending the current one is logging out.
async fn end_own(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<SessionForm>,
) -> PageResult {
    let public_id = parse_public_id(form.session_id.as_deref().unwrap_or(""))?;
    if crate::store::public_id(&signed_in.session_hash) == public_id {
        session::end(&signed_in, &state).await?;
        return Ok(see_other("/login?logged_out=1"));
    }
    let own = UserRef::Id(signed_in.user.id);
    sessions::revoke(&state, &signed_in.principal, own, Some(public_id), None).await?;
    flash_success(&signed_in.session, "The session has ended.");
    Ok(see_other("/account#sessions"))
}

async fn end_own_others(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    let own = UserRef::Id(signed_in.user.id);
    let keep = Some(signed_in.session_hash.clone());
    let ended = sessions::revoke(&state, &signed_in.principal, own, None, keep).await?;
    flash_success(&signed_in.session, ended_message(ended, "other "));
    Ok(see_other("/account#sessions"))
}

pub(super) fn ended_message(ended: usize, which: &str) -> String {
    match ended {
        0 => format!("There were no {which}sessions to end."),
        1 => format!("1 {which}session ended."),
        n => format!("{n} {which}sessions ended."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_from_the_user_agent() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
                "Chrome on macOS",
            ),
            ("curl/8.5.0", "curl"),
            ("", "unknown device"),
            ("something odd", "something odd"),
        ];
        for (agent, expected) in cases {
            assert_eq!(describe_device(agent), expected, "{agent}");
        }
    }
}
