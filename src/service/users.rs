//! Users: add, read, change, remove, and the admin's actions on their factors, links and locks.

use super::{Permission, Principal, ServiceError, ServiceResult, render_or_log};
use crate::auth::links::NewLink;
use crate::domain::{AccessLevel, Note};
use crate::mail;
use crate::state::AppState;
use crate::store::audit::AuditLine;
use crate::store::{NewUser, TokenPurpose, User, UserDetails, UserRef};

/// Adds a user and, if asked, queues a mail with a link to choose their password. The link, the
/// mail and the audit entry are stored in the transaction that creates the user, so a mailed
/// link always has its account and a created user always gets their mail.
pub async fn add(
    state: &AppState,
    who: &Principal,
    new: NewUser,
    send_welcome_mail: bool,
    admin_until: Option<u64>,
) -> ServiceResult<User> {
    who.require(Permission::Administer)?;
    let new = NewUser {
        note: new.note.filter(|note| !note.is_empty()),
        ..new
    };
    let link = send_welcome_mail.then(|| NewLink::new(TokenPurpose::SetPassword, None));
    let stored_link = link.map(|link| {
        let mail = render_or_log("welcome", mail::welcome(&link.url(&state.base_url)));
        (link.hash, link.token, mail)
    });
    let queued = stored_link
        .as_ref()
        .is_some_and(|(_, _, mail)| mail.is_some());
    let actor = who.actor();
    let now = state.clock.now();
    let user = state
        .write(move |store| {
            let link = stored_link
                .as_ref()
                .map(|(hash, token, mail)| (hash.as_str(), token.clone(), mail.clone()));
            store.add_user_until(&actor, new.clone(), link, admin_until, now)
        })
        .await?;
    if queued {
        state.mail_queued.notify_one();
    }
    Ok(user)
}

/// A page of users (with their flock roles), the cursor of the next page, and how many users
/// there are (or match `search`).
pub struct UsersPage {
    pub users: Vec<UserDetails>,
    pub next_cursor: Option<String>,
    pub total: u64,
}

/// At most `limit` users after `cursor`, by email; with `search`, the users whose email or note
/// contains it (any case). A search reads every user: it runs off the async workers and counts
/// against the scan limit.
pub async fn page(
    state: &AppState,
    who: &Principal,
    search: Option<String>,
    cursor: Option<String>,
    limit: usize,
) -> ServiceResult<UsersPage> {
    who.require(Permission::ReadAll)?;
    let Some(needle) = search else {
        return Ok(state.read(|store| {
            let page = store.list_users(cursor.as_deref(), Some(limit))?;
            Ok(UsersPage {
                users: page.users,
                next_cursor: page.next_cursor,
                total: store.user_count()?,
            })
        })?);
    };
    let _permit = crate::stream::scan_permit(state).ok_or(ServiceError::ScansBusy)?;
    let (users, next_cursor, total) = state
        .blocking(move |store| {
            store
                .snapshot()?
                .search_users(&needle, cursor.as_deref(), limit)
        })
        .await?;
    Ok(UsersPage {
        users,
        next_cursor,
        total,
    })
}

/// A user with their flock roles.
pub fn get(
    state: &AppState,
    who: &Principal,
    user: &UserRef,
) -> ServiceResult<std::sync::Arc<UserDetails>> {
    who.require(Permission::ReadAll)?;
    Ok(state.read(|store| store.user_details(user))?)
}

/// Sets (or with `None` removes) the note. An empty note is no note, whichever door it came
/// through: the API, the console and the list all show it as absent.
pub async fn set_note(
    state: &AppState,
    who: &Principal,
    user: UserRef,
    note: Option<Note>,
) -> ServiceResult<User> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    let note = note.map(Note::into_string).filter(|note| !note.is_empty());
    Ok(state
        .write(move |store| store.set_note(&actor, &user, note.clone()))
        .await?)
}

/// `user/edit` with nothing to change: the user must exist, and the call is on the record.
pub async fn edit_nothing(state: &AppState, who: &Principal, user: UserRef) -> ServiceResult<User> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| {
            let details = store.user_details(&user)?;
            let email = details.user.email.clone();
            store.record_event(
                &actor,
                AuditLine::new(
                    "user_edit",
                    format!("User ({email}) edited: nothing to change"),
                )
                .target(&email),
            )?;
            Ok(details.user.clone())
        })
        .await?)
}

pub async fn set_disabled(
    state: &AppState,
    who: &Principal,
    user: UserRef,
    disabled: bool,
) -> ServiceResult<User> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.set_disabled(&actor, &user, disabled))
        .await?)
}

pub async fn set_access_level(
    state: &AppState,
    who: &Principal,
    user: UserRef,
    level: AccessLevel,
    until: Option<u64>,
) -> ServiceResult<User> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    let now = state.clock.now();
    Ok(state
        .write(move |store| store.set_access_level_until(&actor, &user, level, until, now))
        .await?)
}

/// Demands a second factor at the user's next login.
pub async fn require_two_factor(
    state: &AppState,
    who: &Principal,
    user: UserRef,
) -> ServiceResult<User> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.set_two_factor_required(&actor, &user, true))
        .await?)
}

/// An admin turns someone's summary mail on or off; people do their own from their account.
pub async fn set_summary_email(
    state: &AppState,
    who: &Principal,
    user: UserRef,
    enabled: bool,
) -> ServiceResult<User> {
    match (&user, who.user_id()) {
        (UserRef::Id(id), Some(own)) if *id == own => who.require(Permission::OwnAccount(own))?,
        _ => who.require(Permission::Administer)?,
    }
    let actor = who.actor();
    Ok(state
        .write(move |store| store.set_summary_email(&actor, &user, enabled))
        .await?)
}

pub async fn remove(state: &AppState, who: &Principal, user: UserRef) -> ServiceResult<User> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.remove_user(&actor, &user))
        .await?)
}

/// Removes the user's authenticator app (a lost phone) and ends their sessions.
pub async fn reset_totp(state: &AppState, who: &Principal, user: UserRef) -> ServiceResult<User> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.clear_totp(&actor, &user))
        .await?)
}

/// Removes every security key of the user and ends their sessions.
pub async fn reset_webauthn(
    state: &AppState,
    who: &Principal,
    user: UserRef,
) -> ServiceResult<User> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    Ok(state
        .write(move |store| store.clear_webauthn(&actor, &user))
        .await?)
}

/// Queues a mail to the user with a one-hour link to choose a new password, as an admin asked
/// (disabled users included). Their current password keeps working until the link is used.
pub async fn send_password_reset(
    state: &AppState,
    who: &Principal,
    user: UserRef,
) -> ServiceResult<User> {
    who.require(Permission::Administer)?;
    queue_password_reset(state, who, user, false).await
}

/// The same, asked for by the person on the login page (anybody may ask; the page answers the
/// same either way): a disabled account gets no link (`UserDisabled`).
pub async fn request_password_reset(
    state: &AppState,
    who: &Principal,
    user: UserRef,
) -> ServiceResult<User> {
    queue_password_reset(state, who, user, true).await
}

async fn queue_password_reset(
    state: &AppState,
    who: &Principal,
    user: UserRef,
    only_if_enabled: bool,
) -> ServiceResult<User> {
    let link = NewLink::new(TokenPurpose::PasswordReset, None);
    let mail = render_or_log(
        "password reset",
        mail::password_reset(&link.url(&state.base_url)),
    );
    let queued = mail.is_some();
    let (hash, token) = (link.hash, link.token);
    let actor = who.actor();
    let user = state
        .write(move |store| {
            store.insert_user_token_with_mail(
                &actor,
                &user,
                &hash,
                token.clone(),
                mail.clone(),
                only_if_enabled,
            )
        })
        .await?;
    if queued {
        state.mail_queued.notify_one();
    }
    Ok(user)
}

/// Lifts the user's login and second-factor locks and forgets their series.
pub async fn unlock(state: &AppState, who: &Principal, user: UserRef) -> ServiceResult<User> {
    who.require(Permission::Administer)?;
    let actor = who.actor();
    let user = state
        .write(move |store| store.unlock_account(&actor, &user))
        .await?;
    state.login_throttles.unlock(&user.email.key());
    Ok(user)
}
