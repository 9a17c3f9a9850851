//! One-time links: a 256-bit secret in the URL, its hash in the store.

use std::time::Duration;

use super::{random_hex, sha256_hex};
use crate::store::audit::Actor;
use crate::store::{OneTimeToken, Store, StoreResult, TokenPurpose, now_unix};

pub const SETUP_TTL: Duration = Duration::from_secs(24 * 3600);
pub const SET_PASSWORD_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
pub const PASSWORD_RESET_TTL: Duration = Duration::from_secs(3600);

/// A link secret ready to be stored: `hash` goes to the store, `secret` into the URL only.
pub struct NewLink {
    pub secret: String,
    pub hash: String,
    pub token: OneTimeToken,
}

impl NewLink {
    pub fn new(purpose: TokenPurpose, user_id: Option<u64>) -> NewLink {
        let secret = random_hex(32);
        let created = now_unix();
        let ttl = match purpose {
            TokenPurpose::Setup => SETUP_TTL,
            TokenPurpose::SetPassword => SET_PASSWORD_TTL,
            TokenPurpose::PasswordReset => PASSWORD_RESET_TTL,
        };
        NewLink {
            hash: sha256_hex(&secret),
            secret,
            token: OneTimeToken {
                purpose,
                user_id,
                created,
                expires: created + ttl.as_secs(),
                used: false,
            },
        }
    }

    /// The URL a person opens, under `base_url`.
    pub fn url(&self, base_url: &str) -> String {
        let path = match self.token.purpose {
            TokenPurpose::Setup => "setup",
            TokenPurpose::SetPassword => "welcome",
            TokenPurpose::PasswordReset => "reset",
        };
        format!("{}/{path}/{}", base_url.trim_end_matches('/'), self.secret)
    }

    pub fn store(&self, store: &Store, actor: &Actor) -> StoreResult<()> {
        store.insert_one_time_token(actor, &self.hash, &self.token)
    }
}
