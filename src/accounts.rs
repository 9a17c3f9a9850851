//! Account actions that send mail, shared by the JSON API and the console so that both create the
//! same links and send the same messages.

use crate::auth::links::NewLink;
use crate::domain::Email;
use crate::mail::OutgoingMail;
use crate::state::{AppState, BlockingError};
use crate::store::{NewUser, TokenPurpose, User};

/// Adds a user and, if asked, mails them a link to choose their password. The link is stored in
/// the transaction that creates the user, so a mailed link always has its account.
pub async fn add_user(
    state: &AppState,
    new: NewUser,
    send_welcome_mail: bool,
) -> Result<User, BlockingError> {
    let link = send_welcome_mail.then(|| NewLink::new(TokenPurpose::SetPassword, None));
    let stored_link = link.as_ref().map(|l| (l.hash.clone(), l.token.clone()));
    let user = state
        .blocking(move |store| {
            store.add_user(
                new,
                stored_link
                    .as_ref()
                    .map(|(hash, token)| (hash.as_str(), token.clone())),
            )
        })
        .await?;
    if let Some(link) = link {
        let url = link.url(&state.base_url);
        state
            .mailer
            .send_or_log(&user.email, OutgoingMail::welcome(&url))
            .await;
    }
    Ok(user)
}

/// Mails the user with `email` a one-hour link to choose a new password. Their current password
/// keeps working until the link is used, so a mistaken reset locks nobody out.
pub async fn send_password_reset(state: &AppState, email: Email) -> Result<User, BlockingError> {
    let link = NewLink::new(TokenPurpose::PasswordReset, None);
    let (hash, token) = (link.hash.clone(), link.token.clone());
    let user = state
        .blocking(move |store| store.insert_user_token(&email, &hash, token))
        .await?;
    let url = link.url(&state.base_url);
    state
        .mailer
        .send_or_log(&user.email, OutgoingMail::password_reset(&url))
        .await;
    Ok(user)
}
