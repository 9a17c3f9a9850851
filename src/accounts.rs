//! Account actions that send mail, shared by the JSON API and the console so that both create the
//! same links and queue the same messages.

use crate::auth::links::NewLink;
use crate::domain::Email;
use crate::mail;
use crate::state::{AppState, BlockingError};
use crate::store::{MailContent, NewUser, TokenPurpose, User};

/// Renders a message; a template that can't render is logged and the message skipped, since mail
/// never fails the request that caused it.
fn render_or_log(
    what: &str,
    rendered: Result<MailContent, mail::MailError>,
) -> Option<MailContent> {
    rendered
        .map_err(|error| log::error!("cannot render the {what} mail: {error}"))
        .ok()
}

/// Adds a user and, if asked, queues a mail with a link to choose their password. The link and
/// the mail are stored in the transaction that creates the user, so a mailed link always has its
/// account and a created user always gets their mail, even across a crash or an SMTP outage.
pub async fn add_user(
    state: &AppState,
    new: NewUser,
    send_welcome_mail: bool,
) -> Result<User, BlockingError> {
    let link = send_welcome_mail.then(|| NewLink::new(TokenPurpose::SetPassword, None));
    let stored_link = link.map(|link| {
        let mail = render_or_log("welcome", mail::welcome(&link.url(&state.base_url)));
        (link.hash, link.token, mail)
    });
    let queued = stored_link
        .as_ref()
        .is_some_and(|(_, _, mail)| mail.is_some());
    let user = state
        .write(move |store| {
            let link = stored_link
                .as_ref()
                .map(|(hash, token, mail)| (hash.as_str(), token.clone(), mail.clone()));
            store.add_user_with_mail(new, link)
        })
        .await?;
    if queued {
        state.mail_queued.notify_one();
    }
    Ok(user)
}

/// Queues a mail to the user with `email` with a one-hour link to choose a new password, as an
/// admin asked (disabled users included). Their current password keeps working until the link is
/// used, so a mistaken reset locks nobody out.
pub async fn send_password_reset(state: &AppState, email: Email) -> Result<User, BlockingError> {
    queue_password_reset(state, email, false).await
}

/// The same, asked for by the person on the login page: a disabled account gets no link
/// (`UserDisabled`, decided in the transaction that would store it).
pub async fn send_self_service_reset(
    state: &AppState,
    email: Email,
) -> Result<User, BlockingError> {
    queue_password_reset(state, email, true).await
}

async fn queue_password_reset(
    state: &AppState,
    email: Email,
    only_if_enabled: bool,
) -> Result<User, BlockingError> {
    let link = NewLink::new(TokenPurpose::PasswordReset, None);
    let mail = render_or_log(
        "password reset",
        mail::password_reset(&link.url(&state.base_url)),
    );
    let queued = mail.is_some();
    let (hash, token) = (link.hash, link.token);
    let user = state
        .write(move |store| {
            store.insert_user_token_with_mail(&email, &hash, token, mail, only_if_enabled)
        })
        .await?;
    if queued {
        state.mail_queued.notify_one();
    }
    Ok(user)
}
