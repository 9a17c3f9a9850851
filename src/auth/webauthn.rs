//! WebAuthn (security keys and passkeys) through webauthn-rs. The relying party id and origin come
//! from the base URL. Ceremony state stays in server memory under a random id that the session
//! carries; each state is taken out on use (single-use) and expires after five minutes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, PasskeyAuthentication,
    PasskeyRegistration, RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use crate::store::CredentialKind;

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

/// The console user a WebAuthn user handle names (`user_handle`'s inverse), if it is one.
pub fn user_of_handle(handle: Uuid) -> Option<u64> {
    u64::try_from(handle.as_u128()).ok()
}

/// Asks the authenticator to keep the credential (a discoverable one), as a passkey must be:
/// webauthn-rs's passkey registration leaves that to the authenticator. User verification is
/// already required by it.
pub fn require_discoverable(challenge: &mut CreationChallengeResponse) {
    if let Some(selection) = challenge.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Required);
        selection.require_resident_key = true;
    }
}

/// A passkey sign-in is started by a button (a modal prompt), not by the browser's autofill that
/// webauthn-rs prepares it for.
pub fn without_autofill(mut challenge: RequestChallengeResponse) -> RequestChallengeResponse {
    challenge.mediation = None;
    challenge
}

pub enum Ceremony {
    Registration {
        user_id: u64,
        name: String,
        kind: CredentialKind,
        state: PasskeyRegistration,
    },
    /// The factor step, after the password, against the user's credentials.
    Authentication {
        user_id: u64,
        state: PasskeyAuthentication,
    },
    /// Signing in with a passkey alone: nobody is known until the answer names its user.
    SignIn {
        next: String,
        state: Box<DiscoverableAuthentication>,
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
    fn a_passkey_registration_asks_for_a_discoverable_verified_credential() {
        let webauthn = relying_party("http://localhost:8080").unwrap();
        let (mut challenge, _) = webauthn
            .start_passkey_registration(user_handle(7), "ann@x.io", "ann@x.io", None)
            .unwrap();
        require_discoverable(&mut challenge);
        let json = serde_json::to_value(&challenge).unwrap();
        let selection = &json["publicKey"]["authenticatorSelection"];
        assert_eq!(selection["residentKey"], "required", "{json}");
        assert_eq!(selection["requireResidentKey"], true);
        assert_eq!(selection["userVerification"], "required");
        assert_eq!(json["publicKey"]["extensions"]["credProps"], true);
    }

    #[test]
    fn a_passkey_sign_in_is_a_modal_prompt_that_requires_verification() {
        let webauthn = relying_party("http://localhost:8080").unwrap();
        let (challenge, _) = webauthn.start_discoverable_authentication().unwrap();
        let json = serde_json::to_value(without_autofill(challenge)).unwrap();
        assert!(json.get("mediation").is_none_or(|m| m.is_null()), "{json}");
        assert_eq!(json["publicKey"]["userVerification"], "required");
        assert!(
            json["publicKey"]["allowCredentials"]
                .as_array()
                .is_none_or(|list| list.is_empty())
        );
    }

    #[test]
    fn a_user_handle_names_its_user_and_nothing_else_names_anyone() {
        assert_eq!(user_of_handle(user_handle(7)), Some(7));
        assert_eq!(user_of_handle(user_handle(u64::MAX)), Some(u64::MAX));
        assert_eq!(user_of_handle(Uuid::from_u128(u128::MAX)), None);
    }

    #[test]
    fn relying_party_needs_a_domain() {
        assert!(relying_party("http://localhost:8080").is_ok());
        assert!(relying_party("https://roost.example.org").is_ok());
        assert!(relying_party("not a url").is_err());
    }
}
