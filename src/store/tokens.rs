use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::records::{decode, encode};
use super::tables::{ONE_TIME_TOKENS, USER_ID_BY_EMAIL, USERS};
use super::users::read_user;
use super::{OneTimeToken, Store, StoreError, StoreResult, TokenPurpose, User};
use crate::domain::Email;

impl Store {
    /// Stores a one-time link under the hash of its secret. A new `Setup` link replaces any
    /// earlier unused one, so only the link printed last works.
    pub fn insert_one_time_token(&self, hash: &str, token: &OneTimeToken) -> StoreResult<()> {
        let txn = self.db.begin_write()?;
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
        }
        txn.commit()?;
        Ok(())
    }

    /// The live (unused, unexpired) token stored under `hash`.
    pub fn live_one_time_token(&self, hash: &str, now: u64) -> StoreResult<OneTimeToken> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(ONE_TIME_TOKENS)?;
        let token: OneTimeToken = match table.get(hash)? {
            Some(bytes) => decode(bytes.value())?,
            None => return Err(StoreError::TokenInvalid),
        };
        if token.used || token.expires <= now {
            return Err(StoreError::TokenInvalid);
        }
        Ok(token)
    }

    /// Stores a one-time link for the user with `email`, in the transaction that finds them.
    pub fn insert_user_token(
        &self,
        email: &Email,
        hash: &str,
        mut token: OneTimeToken,
    ) -> StoreResult<User> {
        let txn = self.db.begin_write()?;
        let user = {
            let id = txn
                .open_table(USER_ID_BY_EMAIL)?
                .get(email.key().as_str())?
                .map(|v| v.value())
                .ok_or(StoreError::UserNotFound)?;
            let user = read_user(&txn.open_table(USERS)?, id)?;
            token.user_id = Some(id);
            txn.open_table(ONE_TIME_TOKENS)?
                .insert(hash, encode(&token)?.as_slice())?;
            user
        };
        txn.commit()?;
        Ok(user)
    }
}

/// Drops used and expired links, so the table only holds links that can still be opened.
pub(super) fn sweep_dead_tokens(txn: &WriteTransaction, now: u64) -> StoreResult<()> {
    txn.open_table(ONE_TIME_TOKENS)?.retain(|_, bytes| {
        serde_json::from_slice::<OneTimeToken>(bytes)
            .map(|token| !token.used && token.expires > now)
            .unwrap_or(false)
    })?;
    Ok(())
}
