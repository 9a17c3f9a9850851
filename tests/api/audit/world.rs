//! One running console per table, signed in as its only admin, and for each case a `Scene` of its
//! own: users, flocks, keys, sessions and factors that no other case touches. A case acts on its
//! scene and then finds exactly its own entry.

use std::sync::atomic::{AtomicU32, Ordering};

use reqwest::Method;
use roost::auth::api_keys::issue;
use roost::auth::passwords::hash_password;
use roost::domain::{AccessLevel, ApiKeyType, Email, FlockKeyType, FlockName};
use roost::store::{ApiKeyScope, NewUser, WebauthnCredential};
use serde_json::json;

use super::{browser_headers, probe_client};
use crate::console::{Console, PASSWORD};
use crate::helpers::*;

/// The only admin: a console user, signed in.
pub const ADMIN: &str = "root@x.io";
/// A well-formed session id no session has.
pub const UNKNOWN_SESSION: &str = "0123456789abcdef";
/// The note of each scene's flock key.
pub const FLOCK_KEY_NOTE: &str = "ops robot";

pub struct World {
    pub app: TestApp,
    /// API calls with the tests' browser headers.
    pub api: reqwest::Client,
    /// ADMIN's browser.
    pub admin: Console,
    pub admin_id: u64,
    scenes: AtomicU32,
}

/// What one case acts on.
pub struct Scene {
    pub admin_id: u64,
    /// A user with a password and a note, manager of `flock`, signed in twice, with a security
    /// key and an authenticator app shown for enrollment but not confirmed.
    pub user: String,
    pub user_id: u64,
    /// A user in no flock who never signed in.
    pub other: String,
    pub other_id: u64,
    /// USER's browser, signed in.
    pub console: Console,
    /// `Ops n`: `user` manages it.
    pub flock: String,
    /// `Empty n`: nobody is in it.
    pub empty_flock: String,
    /// A global read-only key.
    pub reader: String,
    pub reader_id: String,
    /// An admin key of `flock`.
    pub flock_key: String,
    pub flock_key_id: String,
    /// The public ids of the session of `console` and of the user's other one.
    pub own_session: String,
    pub other_session: String,
    pub totp_secret: String,
    /// The id of the user's security key.
    pub credential: String,
}

/// Everything a scene needs from the store, made without the API (a case may have turned it off).
struct Stored {
    user_id: u64,
    other_id: u64,
    flock: String,
    empty_flock: String,
    reader: (String, String),
    flock_key: (String, String),
}

impl World {
    pub async fn new() -> World {
        let app = spawn_app().await;
        app.user_with_password(ADMIN, "admin").await;
        let admin = Console::with_headers(&app, browser_headers());
        admin.login(ADMIN, PASSWORD).await.redirects_to("/");
        admin.get("/account").await;
        let admin_id = user_id(&app, ADMIN);
        World {
            app,
            api: probe_client(),
            admin,
            admin_id,
            scenes: AtomicU32::new(0),
        }
    }

    /// A scene of fresh users, flocks, keys and sessions.
    pub async fn scene(&self) -> Scene {
        let n = self.scenes.fetch_add(1, Ordering::Relaxed);
        let (user, other) = (format!("ann{n}@x.io"), format!("bob{n}@x.io"));
        let store = self.app.store.clone();
        let emails = (user.clone(), other.clone());
        let stored =
            tokio::task::spawn_blocking(move || store_scene(&store, n, &emails.0, &emails.1))
                .await
                .expect("scene set up in the store");

        let console = Console::with_headers(&self.app, browser_headers());
        assert_eq!(console.login(&user, PASSWORD).await.status, 303);
        let own_session = self.session_ids(stored.user_id).pop().expect("a session");
        let second = Console::with_headers(&self.app, browser_headers());
        assert_eq!(second.login(&user, PASSWORD).await.status, 303);
        let other_session = self
            .session_ids(stored.user_id)
            .into_iter()
            .find(|id| *id != own_session)
            .expect("a second session");
        // The enrollment page shows a new secret (and is where a login goes while 2FA is
        // enforced, so this works either way).
        let page = console.get("/account/two-factor").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let totp_secret = between(&page.body, "id=\"totp-secret\">", "</code>").to_string();
        let credential = format!("key-{n}");
        self.app
            .store
            .add_webauthn_credential(
                &Actor::named("test"),
                stored.user_id,
                security_key(&credential, "Desk key"),
                Vec::new(),
            )
            .expect("store a security key");
        Scene {
            admin_id: self.admin_id,
            user,
            user_id: stored.user_id,
            other,
            other_id: stored.other_id,
            console,
            flock: stored.flock,
            empty_flock: stored.empty_flock,
            reader: stored.reader.0,
            reader_id: stored.reader.1,
            flock_key: stored.flock_key.0,
            flock_key_id: stored.flock_key.1,
            own_session,
            other_session,
            totp_secret,
            credential,
        }
    }

    fn session_ids(&self, user_id: u64) -> Vec<String> {
        let sessions = self.app.store.sessions_of(user_id).expect("sessions");
        sessions.iter().map(|s| s.public_id().to_string()).collect()
    }

    /// Calls the API as a script would, with the tests' browser headers.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        params: &[(&str, &str)],
    ) -> Resp {
        let auth = token.map_or(Auth::None, Auth::Param);
        send(build_request(
            &self.api,
            &self.app.address,
            method,
            path,
            auth,
            params,
        ))
        .await
    }
}

fn store_scene(store: &roost::store::Store, n: u32, user: &str, other: &str) -> Stored {
    let actor = Actor::named("test");
    let new_user = |email: &str, note: Option<&str>| NewUser {
        email: Email::parse(email).expect("email"),
        access_level: AccessLevel::User,
        note: note.map(str::to_string),
        two_factor_required: false,
    };
    let user = store
        .add_user(&actor, new_user(user, Some("on call")), None)
        .expect("add user");
    let hash = hash_password(PASSWORD).expect("hash");
    store
        .change_password(&actor, user.id, hash, None)
        .expect("set password");
    let other = store
        .add_user(&actor, new_user(other, None), None)
        .expect("add other");
    let name = |name: String| FlockName::parse(&name).expect("flock name");
    let flock = store
        .create_flock(
            &actor,
            name(format!("Ops {n}")),
            std::slice::from_ref(&user.email),
            &[],
        )
        .expect("create flock");
    let empty = store
        .create_flock(&actor, name(format!("Empty {n}")), &[], &[])
        .expect("create flock");
    let key = |scope: ApiKeyScope, note: &str| {
        let issued = issue(store, &actor, scope, note, "test").expect("issue key");
        (issued.token, issued.record.key_id)
    };
    let reader = key(
        ApiKeyScope::Global {
            key_type: ApiKeyType::ReadOnly,
        },
        "reader",
    );
    let flock_key = key(
        ApiKeyScope::Flock {
            flock_id: flock.id.clone(),
            key_type: FlockKeyType::Admin,
        },
        FLOCK_KEY_NOTE,
    );
    Stored {
        user_id: user.id,
        other_id: other.id,
        flock: flock.id.to_string(),
        empty_flock: empty.id.to_string(),
        reader,
        flock_key,
    }
}

fn user_id(app: &TestApp, email: &str) -> u64 {
    let email = Email::parse(email).expect("email");
    app.store.user_by_email(&email).expect("user").user.id
}

pub fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let from = body.find(start).expect("start marker") + start.len();
    let to = body[from..].find(end).expect("end marker") + from;
    &body[from..to]
}

/// A security key as the store keeps one. Registering one takes a real authenticator (the
/// browser tests do that); renaming and removing it only need it stored.
pub fn security_key(id: &str, name: &str) -> WebauthnCredential {
    let coordinate = "A".repeat(43); // 32 zero bytes, base64url
    let passkey: webauthn_rs::prelude::Passkey = serde_json::from_value(json!({ "cred": {
        "cred_id": "c2VjdXJpdHkta2V5",
        "cred": {
            "type_": "ES256",
            "key": { "EC_EC2": { "curve": "SECP256R1", "x": coordinate, "y": coordinate } },
        },
        "counter": 0,
        "transports": null,
        "user_verified": true,
        "backup_eligible": false,
        "backup_state": false,
        "registration_policy": "preferred",
        "extensions": {},
        "attestation": { "data": "None", "metadata": "None" },
        "attestation_format": "none",
    }}))
    .expect("a stored passkey");
    WebauthnCredential {
        id: id.to_string(),
        name: name.to_string(),
        created: crate::two_factor::now(),
        sign_count: 0,
        kind: roost::store::CredentialKind::SecurityKey,
        passkey: passkey.into(),
    }
}
