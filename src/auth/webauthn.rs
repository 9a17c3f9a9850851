//! WebAuthn (security keys and passkeys) through webauthn-rs. The relying party id and origin come
//! from the base URL. Ceremony state stays in server memory under a random id that the session
//! carries; each state is taken out on use (single-use) and expires after five minutes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use webauthn_rs::prelude::{
    PasskeyAuthentication, PasskeyRegistration, Url, Uuid, Webauthn, WebauthnBuilder,
};

use super::random_hex;

const CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);
/// Bound on ceremonies kept at once, so unauthenticated starts can't grow memory without limit.
const MAX_CEREMONIES: usize = 10_000;

/// The relying party for `base_url`, or why there is none (WebAuthn needs a domain name, not an
/// IP address, as its id).
pub fn relying_party(base_url: &str) -> Result<Webauthn, String> {
    let origin = Url::parse(base_url).map_err(|e| format!("base URL {base_url}: {e}"))?;
    let rp_id = origin
        .host_str()
        .ok_or_else(|| format!("base URL {base_url} has no host"))?
        .to_string();
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|builder| builder.rp_name("Roost").build())
        .map_err(|e| format!("relying party {rp_id}: {e}"))
}

/// The opaque WebAuthn user handle of a console user.
pub fn user_handle(user_id: u64) -> Uuid {
    Uuid::from_u128(u128::from(user_id))
}

pub enum Ceremony {
    Registration {
        user_id: u64,
        name: String,
        state: PasskeyRegistration,
    },
    Authentication {
        user_id: u64,
        state: PasskeyAuthentication,
    },
}

#[derive(Default)]
pub struct Ceremonies {
    pending: Mutex<HashMap<String, (Instant, Ceremony)>>,
}

impl Ceremonies {
    /// Keeps `ceremony` and returns the id to put in the session.
    pub fn insert(&self, ceremony: Ceremony) -> String {
        let id = random_hex(16);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|_, (started, _)| started.elapsed() < CEREMONY_TTL);
        if pending.len() >= MAX_CEREMONIES {
            // Drop the oldest rather than refuse: a flood can delay, not lock out, real users.
            if let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, (started, _))| *started)
                .map(|(id, _)| id.clone())
            {
                pending.remove(&oldest);
            }
        }
        pending.insert(id.clone(), (Instant::now(), ceremony));
        id
    }

    /// Takes the ceremony out (it can't be used twice), if it hasn't expired.
    pub fn take(&self, id: &str) -> Option<Ceremony> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let (started, ceremony) = pending.remove(id)?;
        (started.elapsed() < CEREMONY_TTL).then_some(ceremony)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relying_party_needs_a_domain() {
        assert!(relying_party("http://localhost:8080").is_ok());
        assert!(relying_party("https://roost.example.org").is_ok());
        assert!(relying_party("not a url").is_err());
    }
}
