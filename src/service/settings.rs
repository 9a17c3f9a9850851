//! The console's switches, and the weekly summaries sent by hand.

use super::{Permission, Principal, ServiceError, ServiceResult};
use crate::state::AppState;
use crate::store::audit::AuditLine;
use crate::store::{Settings, now_unix};

pub fn get(state: &AppState, who: &Principal) -> ServiceResult<Settings> {
    who.require(Permission::ReadAll)?;
    Ok(state.read(|store| store.settings())?)
}

/// Demands a second factor of everyone (at their next login) or stops demanding it.
pub async fn enforce_2fa(state: &AppState, who: &Principal, on: bool) -> ServiceResult<Settings> {
    let line = if on {
        AuditLine::new(
            "settings_2fa_enforce_enable",
            "Two-factor authentication enforced for everyone",
        )
    } else {
        AuditLine::new(
            "settings_2fa_enforce_disable",
            "Two-factor authentication no longer enforced for everyone",
        )
    };
    update(state, who, line, move |settings| {
        settings.globally_enforce_2fa = on
    })
    .await
}

/// Lets a passkey alone sign its owner in, or not (then passkeys serve as a second factor only).
/// Sessions already open stay: the switch governs how the next sign-in may go.
pub async fn passwordless_sign_in(
    state: &AppState,
    who: &Principal,
    on: bool,
) -> ServiceResult<Settings> {
    let line = if on {
        AuditLine::new(
            "settings_passwordless_enable",
            "Signing in with a passkey alone allowed",
        )
    } else {
        AuditLine::new(
            "settings_passwordless_disable",
            "Signing in with a passkey alone forbidden: passkeys serve as a second factor only",
        )
    };
    update(state, who, line, move |settings| {
        settings.passwordless_sign_in = on
    })
    .await
}

/// The enabled users who sign in with a passkey only (no password): turning passwordless
/// sign-in off leaves them needing a reset link, so the one who turns it off is told who.
pub async fn passkey_only_users(
    state: &AppState,
    who: &Principal,
) -> ServiceResult<Vec<crate::domain::Email>> {
    who.require(Permission::ReadAll)?;
    Ok(state.blocking(|store| store.passkey_only_users()).await?)
}

/// Turns the API on or off (off: every call is answered 403 until an admin turns it on in the
/// console).
pub async fn api_access(state: &AppState, who: &Principal, on: bool) -> ServiceResult<Settings> {
    let line = if on {
        AuditLine::new("settings_api_enable", "API access turned on")
    } else {
        AuditLine::new("settings_api_disable", "API access turned off")
    };
    update(state, who, line, move |settings| settings.api_enabled = on).await
}

async fn update(
    state: &AppState,
    who: &Principal,
    line: AuditLine,
    change: impl Fn(&mut Settings) + Send + 'static,
) -> ServiceResult<Settings> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.update_settings(&actor, line.clone(), &change))
        .await?)
}

/// Queues this week's summaries now, whatever the day; returns how many.
pub async fn send_summaries_now(state: &AppState, who: &Principal) -> ServiceResult<usize> {
    who.require(Permission::Administer)?;
    state
        .summaries
        .queue_now(who.actor(), now_unix())
        .await
        .map_err(|error| match error {
            crate::summaries::SummaryError::Store(store) => ServiceError::from(store),
            other => ServiceError::Summary(other),
        })
}

/// Records that an admin downloads a backup of the whole database (before it is written: the
/// trail says who took one even if the download is cut short).
pub async fn record_backup_download(state: &AppState, who: &Principal) -> ServiceResult<()> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| {
            store.record_event(
                &actor,
                crate::store::audit::AuditLine::new(
                    "backup_download",
                    "Backup of the database downloaded".to_string(),
                ),
            )
        })
        .await?)
}
