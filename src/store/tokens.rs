use super::WriteTxn;
use redb::ReadableTable;

use super::audit::{Actor, AuditLine, record};
use super::mail_queue::enqueue;
use super::records::{decode, encode};
use super::sessions::end_sessions_in;
use super::tables::{ONE_TIME_TOKENS, USERS};
use super::users::{NewUser, UserRef, insert_new_user, read_user, resolve, write_user};
use super::{MailContent, OneTimeToken, Store, StoreError, StoreResult, TokenPurpose, User};
use crate::domain::{AccessLevel, Email, Refusal, Secret};

impl Store {
    /// Stores a one-time link under the hash of its secret. A new `Setup` link replaces any
    /// earlier unused one, so only the link printed last works.
    pub fn insert_one_time_token(
        &self,
        actor: &Actor,
        hash: &str,
        token: &OneTimeToken,
    ) -> StoreResult<()> {
        let txn = self.begin_write()?;
        {
            let mut table = txn.open_table(ONE_TIME_TOKENS)?;
            if token.purpose == TokenPurpose::Setup {
                table.retain(|_, bytes| {
                    serde_json::from_slice::<OneTimeToken>(bytes)
                        .map(|t| t.purpose != TokenPurpose::Setup)
                        .unwrap_or(true)
                })?;
            }
            table.insert(hash, encode(token)?.as_slice())?;
            record(
                &txn,
                actor,
                AuditLine::new(
                    "one_time_link_issue",
                    format!("One-time {} link issued", purpose_name(token.purpose)),
                )
                .details(serde_json::json!({ "purpose": token.purpose, "expires": token.expires })),
            )?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The live (unused, unexpired) token of one of `purposes` stored under `hash`.
    pub fn live_one_time_token(
        &self,
        hash: &str,
        purposes: &[TokenPurpose],
        now: u64,
    ) -> StoreResult<OneTimeToken> {
        let txn = self.begin_read()?;
        live_token(&txn.open_table(ONE_TIME_TOKENS)?, hash, purposes, now)
    }

    /// Stores a one-time link for `user`, in the transaction that finds them.
    pub fn insert_user_token(
        &self,
        actor: &Actor,
        user: &UserRef,
        hash: &str,
        token: OneTimeToken,
    ) -> StoreResult<User> {
        self.insert_user_token_with_mail(actor, user, hash, token, None, false)
    }

    /// Stores a one-time link for the user with `email` and queues the mail that carries it, in
    /// the transaction that finds them. With `only_if_enabled`, a disabled user gets nothing
    /// (`UserDisabled`).
    pub fn insert_user_token_with_mail(
        &self,
        actor: &Actor,
        user: &UserRef,
        hash: &str,
        mut token: OneTimeToken,
        mail: Option<MailContent>,
        only_if_enabled: bool,
    ) -> StoreResult<User> {
        let txn = self.begin_write()?;
        let user = {
            let id = resolve(&txn, user)?;
            let user = read_user(&txn.open_table(USERS)?, id)?;
            if only_if_enabled && user.disabled {
                return Err(StoreError::Refused(Refusal::UserDisabled));
            }
            token.user_id = Some(id);
            txn.open_table(ONE_TIME_TOKENS)?
                .insert(hash, encode(&token)?.as_slice())?;
            let mailed = mail.is_some();
            if let Some(mail) = mail {
                enqueue(&txn, &user.email, mail)?;
            }
            let line = if only_if_enabled {
                AuditLine::new(
                    "user_password_reset_request",
                    format!("Password reset link requested for user ({})", user.email),
                )
            } else {
                AuditLine::new(
                    "user_password_reset",
                    format!("Password reset email sent to {}", user.email),
                )
            };
            record(
                &txn,
                actor,
                line.target(&user.email).details(serde_json::json!({
                    "purpose": token.purpose,
                    "expires": token.expires,
                    "mail_queued": mailed,
                })),
            )?;
            user
        };
        txn.commit()?;
        Ok(user)
    }
}

impl Store {
    /// Uses a live link of one of `purposes`: marks it used, sets the user's password and ends
    /// their other sessions, all in one transaction.
    pub fn set_password_with_token(
        &self,
        actor: &Actor,
        hash: &str,
        purposes: &[TokenPurpose],
        password_hash: impl Into<Secret<String>>,
        now: u64,
    ) -> StoreResult<User> {
        let txn = self.begin_write()?;
        let user = {
            let mut tokens = txn.open_table(ONE_TIME_TOKENS)?;
            let token = live_token(&tokens, hash, purposes, now)?;
            let id = token
                .user_id
                .ok_or(StoreError::Refused(Refusal::LinkInvalid))?;
            let mut users = txn.open_table(USERS)?;
            let mut user =
                read_user(&users, id).map_err(|_| StoreError::Refused(Refusal::LinkInvalid))?;
            user.password_hash = Some(password_hash.into());
            user.session_generation += 1;
            write_user(&mut users, &user)?;
            end_sessions_in(&txn, id, None, None)?;
            record(
                &txn,
                actor,
                AuditLine::new(
                    "user_password_set",
                    format!(
                        "User ({}) set a password with a {} link",
                        user.email,
                        purpose_name(token.purpose)
                    ),
                )
                .target(&user.email)
                .details(serde_json::json!({ "purpose": token.purpose })),
            )?;
            let used = OneTimeToken {
                used: true,
                ..token
            };
            tokens.insert(hash, encode(&used)?.as_slice())?;
            user
        };
        txn.commit()?;
        Ok(user)
    }

    /// Uses the setup link: creates the first admin with a password. Refused once any user
    /// exists, so the link can't mint a second admin later.
    pub fn complete_setup(
        &self,
        actor: &Actor,
        hash: &str,
        email: Email,
        password_hash: impl Into<Secret<String>>,
        now: u64,
    ) -> StoreResult<User> {
        let txn = self.begin_write()?;
        let user = {
            let mut tokens = txn.open_table(ONE_TIME_TOKENS)?;
            let token = live_token(&tokens, hash, &[TokenPurpose::Setup], now)?;
            if txn.open_table(USERS)?.first()?.is_some() {
                return Err(StoreError::Refused(Refusal::LinkInvalid));
            }
            let new_admin = NewUser {
                email,
                access_level: AccessLevel::Admin,
                note: None,
                two_factor_required: false,
            };
            let mut user = insert_new_user(&txn, new_admin, actor)?;
            user.password_hash = Some(password_hash.into());
            write_user(&mut txn.open_table(USERS)?, &user)?;
            record(
                &txn,
                actor,
                AuditLine::new(
                    "user_add",
                    format!("User ({}) created as admin with the setup link", user.email),
                )
                .target(&user.email)
                .details(serde_json::json!({ "access_level": "admin", "setup": true })),
            )?;
            let used = OneTimeToken {
                used: true,
                ..token
            };
            tokens.insert(hash, encode(&used)?.as_slice())?;
            user
        };
        txn.commit()?;
        Ok(user)
    }

    /// Sets a new password for a signed-in user and ends their sessions except the one stored
    /// under `keep` (the one that asked), and any login half-way through the factor step.
    pub fn change_password(
        &self,
        actor: &Actor,
        user_id: u64,
        password_hash: impl Into<Secret<String>>,
        keep: Option<&str>,
    ) -> StoreResult<User> {
        let hash = password_hash.into();
        self.replace_password(actor, user_id, Some(hash), keep, |user| {
            AuditLine::new(
                "user_password_change",
                format!("User ({}) changed their password", user.email),
            )
        })
    }

    /// The user stops using a password: from now on they sign in with a passkey only. Refused
    /// unless they have a passkey (it would leave them no way in); every other session ends, as
    /// with a password change.
    pub fn remove_password(&self, actor: &Actor, user_id: u64, keep: &str) -> StoreResult<User> {
        self.replace_password(actor, user_id, None, Some(keep), |user| {
            AuditLine::new(
                "user_password_remove",
                format!(
                    "User ({}) stopped using a password: they sign in with a passkey",
                    user.email
                ),
            )
        })
    }

    fn replace_password(
        &self,
        actor: &Actor,
        user_id: u64,
        password_hash: Option<Secret<String>>,
        keep: Option<&str>,
        line: impl FnOnce(&User) -> AuditLine,
    ) -> StoreResult<User> {
        let txn = self.begin_write()?;
        let user = {
            let mut users = txn.open_table(USERS)?;
            let mut user = read_user(&users, user_id)?;
            user.password_hash = password_hash;
            if !user.has_a_way_in() {
                return Err(StoreError::Refused(Refusal::LastWayIn));
            }
            user.session_generation += 1;
            write_user(&mut users, &user)?;
            let ended = end_sessions_in(&txn, user_id, None, keep)?;
            record(
                &txn,
                actor,
                line(&user)
                    .target(&user.email)
                    .details(serde_json::json!({ "other_sessions_ended": ended })),
            )?;
            user
        };
        txn.commit()?;
        Ok(user)
    }
}

fn live_token(
    tokens: &impl ReadableTable<&'static str, &'static [u8]>,
    hash: &str,
    purposes: &[TokenPurpose],
    now: u64,
) -> StoreResult<OneTimeToken> {
    let token: OneTimeToken = match tokens.get(hash)? {
        Some(bytes) => decode(bytes.value())?,
        None => return Err(StoreError::Refused(Refusal::LinkInvalid)),
    };
    if token.used || token.expires <= now || !purposes.contains(&token.purpose) {
        return Err(StoreError::Refused(Refusal::LinkInvalid));
    }
    Ok(token)
}

/// Drops used and expired links, so the table only holds links that can still be opened.
pub(super) fn sweep_dead_tokens(txn: &WriteTxn<'_>, now: u64) -> StoreResult<()> {
    txn.open_table(ONE_TIME_TOKENS)?.retain(|_, bytes| {
        serde_json::from_slice::<OneTimeToken>(bytes)
            .map(|token| !token.used && token.expires > now)
            .unwrap_or(false)
    })?;
    Ok(())
}

fn purpose_name(purpose: TokenPurpose) -> &'static str {
    match purpose {
        TokenPurpose::Setup => "setup",
        TokenPurpose::SetPassword => "welcome",
        TokenPurpose::PasswordReset => "password reset",
    }
}
