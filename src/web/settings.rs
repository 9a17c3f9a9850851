//! Console-wide settings (admins only): enforcing two-factor authentication for everyone,
//! signing in with a passkey alone, and API access, which only this page can turn back on once `settings/api/disable` turned it off.

use actix_web::web;
use askama::Template;

use super::csrf::{CsrfForm, EmptyForm};
use super::error::WebError;
use super::forms::ToggleForm;
use super::page::{PageContext, PageResult, flash_success, ok, see_other};
use super::session::SignedIn;
use crate::config::weekday_name;
use crate::service::settings;
use crate::state::AppState;
use crate::store::now_unix;
use crate::summaries;
use crate::timestamps;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/settings", web::get().to(show))
        .route("/settings/enforce-2fa", web::post().to(enforce_2fa))
        .route("/settings/passwordless", web::post().to(passwordless))
        .route("/settings/api", web::post().to(api_access))
        .route("/settings/summaries", web::post().to(send_summaries))
        .route("/settings/backup", web::post().to(download_backup));
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    page: PageContext,
    globally_enforce_2fa: bool,
    passwordless_sign_in: bool,
    api_enabled: bool,
    mail_transport: &'static str,
    /// The first `MAIL_QUEUE_SHOWN` queued messages, and how many more wait.
    mail_queue: Vec<QueuedMailRow>,
    mail_queue_more: usize,
    summary_weekday: String,
    /// The past week's change log, newest first: (when, what).
    recent_changes: Vec<ChangeRow>,
    recent_changes_more: usize,
    /// The Monday of the last week whose summaries were queued.
    last_summary_week: Option<String>,
}

/// A summary run queues one message per user: the card lists the head of the queue.
const MAIL_QUEUE_SHOWN: usize = 50;
/// The "Recent changes" card lists this many of the past week's changes.
const RECENT_CHANGES_SHOWN: usize = 50;

/// One message of the outgoing mail queue, as the "Outgoing mail" card lists it (no content).
struct QueuedMailRow {
    to: String,
    kind: String,
    attempts: u32,
    next_attempt: String,
    last_error: String,
}

/// A change as the Settings card lists it: when, what, by whom.
pub struct ChangeRow {
    pub at: String,
    pub message: String,
    pub actor: String,
}

async fn show(signed_in: SignedIn, state: web::Data<AppState>) -> PageResult {
    signed_in.require_admin()?;
    let week_ago = now_unix().saturating_sub(7 * 24 * 3600);
    let (settings, queue, queue_len, last_summary_week, (changes, change_count)) = state
        .blocking(move |store| {
            let snapshot = store.snapshot()?;
            let mut queue = Vec::new();
            snapshot.visit_mail_queue(Some(MAIL_QUEUE_SHOWN), |mail| {
                queue.push(mail);
                Ok::<(), crate::store::StoreError>(())
            })?;
            Ok((
                store.settings()?,
                queue,
                snapshot.mail_queue_len()?,
                store.last_summary_week()?,
                snapshot.newest_changes(week_ago, RECENT_CHANGES_SHOWN)?,
            ))
        })
        .await?;
    let recent_changes_more = change_count.saturating_sub(changes.len());
    let recent_changes = changes
        .into_iter()
        .map(|change| ChangeRow {
            at: timestamps::console_minute(change.at),
            message: change.message,
            actor: change.actor,
        })
        .collect();
    let mail_queue_more = usize::try_from(queue_len)
        .unwrap_or(usize::MAX)
        .saturating_sub(queue.len());
    let mail_queue = queue
        .into_iter()
        .map(|mail| QueuedMailRow {
            to: mail.to.to_string(),
            kind: mail.content.kind,
            attempts: mail.attempts,
            next_attempt: if mail.next_attempt_at_ms == 0 {
                "now".to_string()
            } else {
                timestamps::rfc3339(mail.next_attempt_at_ms / 1000)
            },
            last_error: mail.last_error.unwrap_or_default(),
        })
        .collect();
    ok(&SettingsPage {
        page: PageContext::signed_in(&signed_in, "Settings"),
        globally_enforce_2fa: settings.globally_enforce_2fa,
        passwordless_sign_in: settings.passwordless_sign_in,
        api_enabled: settings.api_enabled,
        mail_transport: state.mailer.describe(),
        mail_queue,
        mail_queue_more,
        summary_weekday: weekday_name(state.summaries.weekday()),
        recent_changes,
        recent_changes_more,
        last_summary_week: last_summary_week
            .map(|week| timestamps::date(summaries::week_start(week))),
    })
}

/// `on` or `off`, as the toggle buttons send it; anything else is a tampered form.
fn parse_toggle(form: &ToggleForm) -> Result<bool, WebError> {
    form.parse()
        .ok_or_else(|| WebError::BadRequest("The setting must be turned 'on' or 'off'.".into()))
}

async fn enforce_2fa(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<ToggleForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let on = parse_toggle(&form)?;
    settings::enforce_2fa(&state, &signed_in.principal, on).await?;
    tracing::info!(
        "two-factor enforcement turned {} by {}",
        if on { "on" } else { "off" },
        signed_in.user.email
    );
    flash_success(
        &signed_in.session,
        if on {
            "Two-factor authentication is now enforced for everyone."
        } else {
            "Two-factor authentication is no longer enforced for everyone."
        },
    );
    Ok(see_other("/settings"))
}

async fn passwordless(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<ToggleForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let on = parse_toggle(&form)?;
    settings::passwordless_sign_in(&state, &signed_in.principal, on).await?;
    tracing::info!(
        "passwordless sign-in {} by {}",
        if on { "allowed" } else { "forbidden" },
        signed_in.user.email
    );
    if on {
        flash_success(
            &signed_in.session,
            "Passkeys now sign their owners in on their own.",
        );
        return Ok(see_other("/settings"));
    }
    let stranded = settings::passkey_only_users(&state, &signed_in.principal).await?;
    let mut message = "Signing in with a passkey alone is off: passkeys serve as a second factor after the password.".to_string();
    if !stranded.is_empty() {
        let named: Vec<String> = stranded.iter().take(10).map(ToString::to_string).collect();
        let more = stranded.len().saturating_sub(named.len());
        message.push_str(&format!(
            " {} user{} no password and can't sign in now: {}{}. Send them a password reset from their user page (or allow passkeys again).",
            stranded.len(),
            if stranded.len() == 1 { " has" } else { "s have" },
            named.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() },
        ));
    }
    flash_success(&signed_in.session, &message);
    Ok(see_other("/settings"))
}

async fn api_access(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<ToggleForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let on = parse_toggle(&form)?;
    settings::api_access(&state, &signed_in.principal, on).await?;
    // Warn, like `settings/api/disable`: every script using the API is affected.
    tracing::warn!(
        "API access turned {} by {}",
        if on { "on" } else { "off" },
        signed_in.user.email
    );
    flash_success(
        &signed_in.session,
        if on {
            "API access is on: API keys work again."
        } else {
            "API access is off: every API call is refused until it is turned on here."
        },
    );
    Ok(see_other("/settings"))
}

/// Queues every opted-in user's summary now, whatever the day (the scheduler then skips this
/// week). The sender delivers them in the background; the "Outgoing mail" card shows progress.
async fn send_summaries(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    _form: CsrfForm<EmptyForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let queued = settings::send_summaries_now(&state, &signed_in.principal).await?;
    tracing::info!(
        "weekly summaries queued by hand by {} for {queued} users",
        signed_in.user.email
    );
    let message = match queued {
        0 => "No user receives weekly summaries: nothing was queued.".to_string(),
        1 => "The weekly summary was queued for 1 user.".to_string(),
        n => format!("Weekly summaries were queued for {n} users."),
    };
    flash_success(&signed_in.session, &message);
    Ok(see_other("/settings"))
}

/// A backup of the whole database as a download (`roost backup`'s format: `roost restore` takes
/// it). Written to a private file in the data directory first (the backup is consistent as of
/// one moment, and its checksum leads the file), streamed from there, then deleted.
async fn download_backup(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    _form: CsrfForm<EmptyForm>,
) -> Result<actix_web::HttpResponse, super::error::WebError> {
    signed_in.require_admin()?;
    let permit =
        crate::stream::scan_permit(&state).ok_or(crate::service::ServiceError::ScansBusy)?;
    settings::record_backup_download(&state, &signed_in.principal).await?;
    tracing::info!("backup downloaded by {}", signed_in.user.email);
    let now = crate::store::now_unix();
    let file_name = format!(
        "roost-{}.bak",
        crate::timestamps::rfc3339(now).replace(':', "-")
    );
    let scratch = state
        .data_dir
        .join(format!(".download-{}.bak", crate::auth::random_hex(8)));
    let mut response = actix_web::HttpResponse::Ok();
    response
        .content_type("application/octet-stream")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ));
    Ok(crate::stream::stream_body(
        &state,
        permit,
        response,
        move |store, sink| {
            let written = store.backup(&scratch).map_err(|error| {
                crate::stream::StreamError::Io(std::io::Error::other(error.to_string()))
            });
            let copied = written.and_then(|_| {
                let mut file = std::fs::File::open(&scratch)?;
                std::io::copy(&mut file, sink)?;
                Ok(())
            });
            let _ = std::fs::remove_file(&scratch);
            copied
        },
    ))
}
