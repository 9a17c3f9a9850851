//! Signing in with a passkey alone, over HTTP, against a software authenticator made here: a real
//! P-256 key whose public half is stored as the user's passkey, answering the server's challenge
//! as a browser's authenticator would (authenticator data, client data, an ECDSA signature). So
//! a valid answer, a replayed one, a cloned key's counter, a missing user verification, a
//! security key, someone else's handle and the admin switch are all tried for real.

use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use roost::domain::{Email, Secret};
use roost::store::{CredentialKind, WebauthnCredential};
use serde_json::{Value, json};

use crate::audit::{actions, entries_after, newest_id};
use crate::console::{Console, PASSWORD};
use crate::helpers::*;

const ANN: &str = "ann@x.io";
const START: &str = "/login/passkey/start";
const FINISH: &str = "/login/passkey/finish";

fn b64url(bytes: &[u8]) -> String {
    openssl::base64::encode_block(bytes)
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_string()
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    hash(MessageDigest::sha256(), bytes)
        .expect("sha256")
        .to_vec()
}

/// An authenticator holding one credential for one user.
struct SoftPasskey {
    key: PKey<Private>,
    credential_id: Vec<u8>,
    /// The WebAuthn user handle it returns: the console's user id, as 16 bytes.
    user_handle: Vec<u8>,
    counter: u32,
}

impl SoftPasskey {
    fn new(user_id: u64) -> SoftPasskey {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
        let key = EcKey::generate(&group).expect("key");
        let mut credential_id = vec![0u8; 32];
        openssl::rand::rand_bytes(&mut credential_id).expect("random");
        SoftPasskey {
            key: PKey::from_ec_key(key).expect("pkey"),
            credential_id,
            user_handle: u128::from(user_id).to_be_bytes().to_vec(),
            counter: 0,
        }
    }

    /// The credential as webauthn-rs stores a registered passkey.
    /// The public key's x and y, 32 bytes each.
    fn coordinates(&self) -> (Vec<u8>, Vec<u8>) {
        let ec = self.key.ec_key().expect("ec");
        let mut ctx = BigNumContext::new().expect("ctx");
        let (mut x, mut y) = (
            openssl::bn::BigNum::new().unwrap(),
            openssl::bn::BigNum::new().unwrap(),
        );
        ec.public_key()
            .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
            .expect("coordinates");
        (x.to_vec_padded(32).unwrap(), y.to_vec_padded(32).unwrap())
    }

    fn stored(&self) -> webauthn_rs::prelude::Passkey {
        let (x, y) = self.coordinates();
        let json = json!({"cred": {
            "cred_id": b64url(&self.credential_id),
            "cred": {"type_": "ES256", "key": {"EC_EC2": {
                "curve": "SECP256R1",
                "x": x,
                "y": y,
            }}},
            "counter": 0, "transports": null, "user_verified": true,
            "backup_eligible": false, "backup_state": false,
            "registration_policy": "required",
            "extensions": {"cred_protect": "NotRequested", "hmac_create_secret": "NotRequested"},
            "attestation": {"data": "None", "metadata": "None"},
            "attestation_format": "none"
        }});
        serde_json::from_value(json).expect("a passkey")
    }

    /// Answers a registration's `options` as an authenticator that keeps the credential ('none'
    /// attestation: authenticator data with the credential's id and COSE public key).
    fn attest(&self, options: &Value, origin: &str) -> Value {
        let (x, y) = self.coordinates();
        // COSE_Key {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}.
        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        cose.extend(x);
        cose.extend([0x22, 0x58, 0x20]);
        cose.extend(y);
        let mut authenticator_data = sha256(b"localhost");
        // User present, user verified, attested credential data included; counter 0.
        authenticator_data.push(0x45);
        authenticator_data.extend([0; 4]);
        authenticator_data.extend([0; 16]);
        let length = u16::try_from(self.credential_id.len()).unwrap();
        authenticator_data.extend(length.to_be_bytes());
        authenticator_data.extend(&self.credential_id);
        authenticator_data.extend(cose);
        // {"fmt": "none", "attStmt": {}, "authData": bytes}
        let mut attestation = vec![0xa3, 0x63];
        attestation.extend(b"fmt");
        attestation.push(0x64);
        attestation.extend(b"none");
        attestation.push(0x67);
        attestation.extend(b"attStmt");
        attestation.push(0xa0);
        attestation.push(0x68);
        attestation.extend(b"authData");
        attestation.extend([0x59]);
        attestation.extend(
            u16::try_from(authenticator_data.len())
                .unwrap()
                .to_be_bytes(),
        );
        attestation.extend(authenticator_data);
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("a challenge");
        let client_data = json!({
            "type": "webauthn.create", "challenge": challenge, "origin": origin,
            "crossOrigin": false,
        })
        .to_string();
        json!({
            "id": b64url(&self.credential_id),
            "rawId": b64url(&self.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64url(&attestation),
                "clientDataJSON": b64url(client_data.as_bytes()),
            },
            "extensions": {"credProps": {"rk": true}}
        })
    }

    /// Answers the challenge of `options` for `origin`, counting up (unless told to repeat the
    /// last count, as a cloned key would) and with user verification or not.
    fn answer(&mut self, options: &Value, origin: &str, verified: bool, count: bool) -> Value {
        if count {
            self.counter += 1;
        }
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("a challenge");
        let client_data = json!({
            "type": "webauthn.get", "challenge": challenge, "origin": origin, "crossOrigin": false,
        })
        .to_string();
        let mut authenticator_data = sha256(b"localhost");
        // User present, and user verified if so.
        authenticator_data.push(if verified { 0x05 } else { 0x01 });
        authenticator_data.extend_from_slice(&self.counter.to_be_bytes());
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key).expect("signer");
        signer.update(&authenticator_data).unwrap();
        signer.update(&sha256(client_data.as_bytes())).unwrap();
        let signature = signer.sign_to_vec().expect("signature");
        json!({
            "id": b64url(&self.credential_id),
            "rawId": b64url(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64url(&authenticator_data),
                "clientDataJSON": b64url(client_data.as_bytes()),
                "signature": b64url(&signature),
                "userHandle": b64url(&self.user_handle),
            },
            "extensions": {}
        })
    }
}

fn email(text: &str) -> Email {
    Email::parse(text).expect("an address")
}

fn user_id(app: &TestApp, address: &str) -> u64 {
    app.store
        .user_by_email(&email(address))
        .expect("user")
        .user
        .id
}

/// A user with `PASSWORD` and a software authenticator registered as `kind`.
async fn user_with_authenticator(
    app: &TestApp,
    address: &str,
    kind: CredentialKind,
) -> SoftPasskey {
    app.user_with_password(address, "user").await;
    let id = user_id(app, address);
    let authenticator = SoftPasskey::new(id);
    let credential = WebauthnCredential {
        id: format!("{:016x}", u64::from(authenticator.credential_id[0])),
        name: "Soft key".into(),
        created: 1,
        sign_count: 0,
        kind,
        passkey: Secret::new(authenticator.stored()),
    };
    app.store
        .add_webauthn_credential(&Actor::named("test"), id, credential, Vec::new())
        .expect("credential added");
    authenticator
}

/// A browser on the login page, with its CSRF token.
async fn at_login(app: &TestApp) -> (Console, String) {
    let console = Console::new(app);
    let page = console.get("/login").await;
    assert_eq!(page.status, 200);
    let csrf = console.csrf().expect("csrf");
    (console, csrf)
}

async fn start(console: &Console, csrf: &str) -> Value {
    let page = console
        .post_json(START, Some(csrf), &json!({"next": "/account"}))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    serde_json::from_str(&page.body).expect("options")
}

/// Starts a sign-in, answers it with `answer`, and returns the finish's status and error.
async fn sign_in(
    app: &TestApp,
    console: &Console,
    csrf: &str,
    answer: impl FnOnce(&Value, &str) -> Value,
) -> (u16, Value) {
    let options = start(console, csrf).await;
    let body = answer(&options, &app.console_url);
    let page = console.post_json(FINISH, Some(csrf), &body).await;
    let json = serde_json::from_str(&page.body).unwrap_or(Value::Null);
    (page.status, json)
}

/// A browser signed in with `passkey`'s valid answer.
async fn signed_in_with(app: &TestApp, passkey: &mut SoftPasskey) -> Console {
    let (console, csrf) = at_login(app).await;
    let (status, error) = sign_in(app, &console, &csrf, |o, origin| {
        passkey.answer(o, origin, true, true)
    })
    .await;
    assert_eq!(status, 200, "{error}");
    console
}

#[tokio::test]
async fn a_passkey_signs_its_owner_in_in_one_step() {
    let app = spawn_app().await;
    let mut passkey = user_with_authenticator(&app, ANN, CredentialKind::Passkey).await;
    let (console, csrf) = at_login(&app).await;
    let page = console.get("/login").await;
    page.assert_contains("id=\"passkey-login\"");
    page.assert_contains("/static/webauthn.js");
    let cookie_before = console.session_cookie();

    // A modal prompt for any passkey of this site, verified.
    let options = start(&console, &csrf).await;
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert_eq!(options["publicKey"]["rpId"], "localhost");
    assert!(options.get("mediation").is_none_or(Value::is_null));
    assert!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );
    let before = newest_id(&app);
    let answer = passkey.answer(&options, &app.console_url, true, true);
    let done = console.post_json(FINISH, Some(&csrf), &answer).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        serde_json::from_str::<Value>(&done.body).unwrap(),
        json!({"next": "/account"})
    );
    // Signed in: a new session cookie, the account page, the login on the trail.
    assert_ne!(console.session_cookie(), cookie_before, "rotated at login");
    console.get("/account").await.assert_contains(ANN);
    let trail = entries_after(&app, before);
    assert_eq!(actions(&trail), ["user_login"], "{trail:?}");
    assert_eq!(trail[0].details["method"], "passkey");
    assert_eq!(trail[0].target.as_deref(), Some(ANN));
    let stored = app.store.user_by_email(&email(ANN)).unwrap().user;
    assert!(stored.last_login.is_some());
    assert_eq!(stored.webauthn_credentials[0].sign_count, 1);

    // The same answer again (a replay) is for a challenge that is gone: refused.
    let (console2, csrf2) = at_login(&app).await;
    start(&console2, &csrf2).await;
    let replayed = console2.post_json(FINISH, Some(&csrf2), &answer).await;
    assert_eq!(replayed.status, 401, "{}", replayed.body);
    // A fresh answer that doesn't count up is a cloned key's: refused, counter kept.
    let (status, _) = sign_in(&app, &console2, &csrf2, |options, origin| {
        passkey.answer(options, origin, true, false)
    })
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        app.store
            .user_by_email(&email(ANN))
            .unwrap()
            .user
            .webauthn_credentials[0]
            .sign_count,
        1
    );
    console2.get("/account").await.redirects_to("/login");

    // It ends like any session: logout, and disabling the user.
    console.get("/account").await;
    console.post("/logout", &[]).await.redirects_to("/login");
    console.get("/account").await.redirects_to("/login");
    let (console, csrf) = at_login(&app).await;
    let (status, _) = sign_in(&app, &console, &csrf, |options, origin| {
        passkey.answer(options, origin, true, true)
    })
    .await;
    assert_eq!(status, 200);
    app.post("user/disable", &[("email", ANN)]).await.ok();
    console.get("/account").await.redirects_to("/login");
    // A disabled account's passkey verifies but signs nobody in.
    let before = newest_id(&app);
    let (console, csrf) = at_login(&app).await;
    let (status, error) = sign_in(&app, &console, &csrf, |options, origin| {
        passkey.answer(options, origin, true, true)
    })
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        error["error"],
        "This account is disabled. Ask an administrator to enable it."
    );
    let trail = entries_after(&app, before);
    assert_eq!(actions(&trail), ["user_login_disabled"]);
    console.get("/account").await.redirects_to("/login");
}

#[tokio::test]
async fn only_a_verified_passkey_of_the_user_it_names_signs_in() {
    let app = spawn_app().await;
    let mut key = user_with_authenticator(&app, "sk@x.io", CredentialKind::SecurityKey).await;
    let mut passkey = user_with_authenticator(&app, ANN, CredentialKind::Passkey).await;
    let bob = user_id(&app, "sk@x.io");
    let (console, csrf) = at_login(&app).await;
    let before = newest_id(&app);
    let refused = "This passkey was not accepted. Use another, or log in with your password.";

    // A security key is a second factor only, even with a valid signature.
    let (status, error) = sign_in(&app, &console, &csrf, |o, origin| {
        key.answer(o, origin, true, true)
    })
    .await;
    assert_eq!((status, error["error"].as_str()), (401, Some(refused)));
    // Without user verification a passkey is one factor: refused.
    let (status, _) = sign_in(&app, &console, &csrf, |o, origin| {
        passkey.answer(o, origin, false, true)
    })
    .await;
    assert_eq!(status, 401);
    // Ann's key claiming to be Bob's: Bob has no such passkey.
    let (status, _) = sign_in(&app, &console, &csrf, |o, origin| {
        let mut answer = passkey.answer(o, origin, true, true);
        answer["response"]["userHandle"] = json!(b64url(&u128::from(bob).to_be_bytes()));
        answer
    })
    .await;
    assert_eq!(status, 401);
    // Answered for another site.
    let (status, _) = sign_in(&app, &console, &csrf, |o, _| {
        passkey.answer(o, "http://evil.example", true, true)
    })
    .await;
    assert_eq!(status, 401);
    // A handle that names nobody here, and one that isn't a console user's at all.
    for handle in [u128::from(u64::MAX - 7), u128::MAX] {
        let (status, _) = sign_in(&app, &console, &csrf, |o, origin| {
            let mut answer = passkey.answer(o, origin, true, true);
            answer["response"]["userHandle"] = json!(b64url(&handle.to_be_bytes()));
            answer
        })
        .await;
        assert_eq!(status, 401);
    }
    // Each failure is on the trail, with whom it named; nobody signed in.
    let trail = entries_after(&app, before);
    assert_eq!(actions(&trail), ["user_login_failed"; 6], "{trail:?}");
    let targets: Vec<_> = trail.iter().map(|e| e.target.clone().unwrap()).collect();
    assert_eq!(
        targets,
        [
            "sk@x.io",
            ANN,
            "sk@x.io",
            ANN,
            "unknown passkey",
            "unknown passkey"
        ]
    );
    assert!(trail.iter().all(|e| e.details["method"] == "passkey"));
    console.get("/account").await.redirects_to("/login");
    // The real answer still works afterwards.
    let (status, _) = sign_in(&app, &console, &csrf, |o, origin| {
        passkey.answer(o, origin, true, true)
    })
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_admin_switch_forbids_passkey_sign_in_even_mid_ceremony() {
    let app = spawn_app().await;
    let mut passkey = user_with_authenticator(&app, ANN, CredentialKind::Passkey).await;
    let (console, csrf) = at_login(&app).await;
    let options = start(&console, &csrf).await;
    let before = newest_id(&app);
    app.post("settings/usermanagement/passwordless_sign_in/disable", &[])
        .await
        .ok();
    assert_eq!(
        app.get("settings", &[]).await.ok()["settings"]["passwordless_sign_in"],
        false
    );
    let forbidden =
        "Signing in with a passkey alone is turned off on this console. Log in with your password.";
    // The ceremony begun before the switch is refused at its finish.
    let answer = passkey.answer(&options, &app.console_url, true, true);
    let page = console.post_json(FINISH, Some(&csrf), &answer).await;
    assert_eq!(page.status, 403);
    page.assert_contains(forbidden);
    // No new one starts; the login page no longer offers it.
    let page = console.post_json(START, Some(&csrf), &json!({})).await;
    assert_eq!(page.status, 403);
    page.assert_contains(forbidden);
    let login = console.get("/login").await;
    assert!(!login.body.contains("passkey-login"));
    console.get("/account").await.redirects_to("/login");
    let trail = entries_after(&app, before);
    assert_eq!(actions(&trail), ["settings_passwordless_disable"]);
    assert_eq!(trail[0].actor, crate::audit::admin_key_actor(&app));

    // The passkey still serves as a second factor: the password, then the passkey.
    app.post("settings/usermanagement/passwordless_sign_in/enable", &[])
        .await
        .ok_bare();
    signed_in_with(&app, &mut passkey).await;

    // From the Settings page too, CSRF-protected; only admins.
    let admin = app.console_as("boss@x.io", "admin").await;
    let page = admin.get("/settings").await;
    page.assert_contains("<strong id=\"passwordless-state\">allowed</strong>");
    let raw = admin
        .post_raw("/settings/passwordless", &[("enabled", "off")])
        .await;
    assert_eq!(raw.status, 403);
    admin
        .post("/settings/passwordless", &[("enabled", "sideways")])
        .await
        .assert_contains("The setting must be turned");
    admin
        .post("/settings/passwordless", &[("enabled", "off")])
        .await
        .redirects_to("/settings");
    admin
        .get("/settings")
        .await
        .assert_contains("<strong id=\"passwordless-state\">forbidden</strong>");
    let user = app.console_as("cy@x.io", "user").await;
    user.get("/account").await;
    let page = user
        .post("/settings/passwordless", &[("enabled", "on")])
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(
        app.get("settings", &[]).await.ok()["settings"]["passwordless_sign_in"],
        false
    );
}

#[tokio::test]
async fn failed_passkey_sign_ins_are_throttled_per_address_and_never_lock_the_account() {
    let app = spawn_app().await;
    let mut passkey = user_with_authenticator(&app, ANN, CredentialKind::Passkey).await;
    let (console, csrf) = at_login(&app).await;
    let before = newest_id(&app);
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let (status, _) = sign_in(&app, &console, &csrf, |o, origin| {
            passkey.answer(o, origin, false, true)
        })
        .await;
        statuses.push(status);
    }
    assert_eq!(statuses[..20], [401; 20]);
    assert_eq!(statuses[20..], [429; 5]);
    // Count what ran: twenty checks, twenty entries; the refused ones checked nothing.
    let trail = entries_after(&app, before);
    assert_eq!(actions(&trail), ["user_login_failed"; 20]);
    // Starting ceremonies has a limit of its own (each is kept in memory): 30 a minute.
    for _ in 0..5 {
        start(&console, &csrf).await;
    }
    let page = console.post_json(START, Some(&csrf), &json!({})).await;
    assert_eq!(page.status, 429, "{}", page.body);
    page.assert_contains("Too many passkey sign-ins started from your address. Try again in");
    // The address's limit is the login form's too...
    let page = console
        .post("/login", &[("email", ANN), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, 429);
    // ...but no account was charged: nothing locked, neither the login nor the factor step.
    let review = app.get("access/review", &[]).await;
    let locked = &review.ok()["review"]["locked_recently"];
    assert_eq!(locked["total"], 0, "{locked}");
    let user = app.store.user_by_email(&email(ANN)).unwrap().user;
    assert_eq!((user.factor_failures, user.factor_locked_until), (0, 0));
}

#[tokio::test]
async fn bad_passkey_requests_get_clear_errors_and_change_nothing() {
    let app = spawn_app().await;
    let mut passkey = user_with_authenticator(&app, ANN, CredentialKind::Passkey).await;
    let (console, csrf) = at_login(&app).await;
    let before = newest_id(&app);
    // No CSRF header.
    let options = start(&console, &csrf).await;
    let answer = passkey.answer(&options, &app.console_url, true, true);
    assert_eq!(console.post_json(START, None, &json!({})).await.status, 403);
    assert_eq!(console.post_json(FINISH, None, &answer).await.status, 403);
    // The answer still works once, with the header: the refused posts didn't use the ceremony.
    let page = console.post_json(FINISH, Some(&csrf), &answer).await;
    assert_eq!(page.status, 200, "{}", page.body);
    // Finishing without a ceremony (a fresh browser, or one whose ceremony was used).
    let (fresh, fresh_csrf) = at_login(&app).await;
    let page = fresh.post_json(FINISH, Some(&fresh_csrf), &answer).await;
    assert_eq!(page.status, 400);
    page.assert_contains("The sign-in expired. Start again.");
    // Not JSON, the wrong JSON, control characters, a huge body.
    let (anon, token) = at_login(&app).await;
    for body in [
        "not json".to_string(),
        json!({"id": 1}).to_string(),
        json!({"id": "\u{0}\u{7}", "rawId": "\u{1b}[2J", "type": "public-key",
            "response": {"authenticatorData": "\u{0}", "clientDataJSON": "\n", "signature": "",
            "userHandle": "\u{0}"}, "extensions": {}})
        .to_string(),
    ] {
        start(&anon, &token).await;
        let page = anon.post_raw_json(FINISH, &token, body.clone()).await;
        assert_eq!(page.status, 400, "{body}: {}", page.body);
        assert!(page.body.starts_with("{\"error\":"), "{}", page.body);
    }
    let huge = format!("{{\"id\": \"{}\"}}", "A".repeat(100_000));
    let page = anon.post_raw_json(FINISH, &token, huge).await;
    assert_eq!(page.status, 413, "{}", page.body);
    // An unparsable answer is refused before any check: nothing on the trail but the login.
    let trail = entries_after(&app, before);
    assert_eq!(actions(&trail), ["user_login"]);
}

#[tokio::test]
async fn registering_a_passkey_asks_for_a_discoverable_verified_credential() {
    let app = spawn_app().await;
    let console = app.console_as(ANN, "user").await;
    let page = console.get("/account/two-factor").await;
    page.assert_contains("id=\"passkey-register\"");
    page.assert_contains("id=\"webauthn-register\"");
    let csrf = console.csrf().expect("csrf");
    let start = "/account/two-factor/webauthn/register/start";
    let page = console
        .post_json(
            start,
            Some(&csrf),
            &json!({"name": "Phone", "kind": "passkey"}),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let options: Value = serde_json::from_str(&page.body).unwrap();
    let selection = &options["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["requireResidentKey"], true);
    assert_eq!(selection["userVerification"], "required");
    // A security key isn't asked to be kept on the authenticator.
    let page = console
        .post_json(
            start,
            Some(&csrf),
            &json!({"name": "Desk", "kind": "security_key"}),
        )
        .await;
    let options: Value = serde_json::from_str(&page.body).unwrap();
    assert_ne!(
        options["publicKey"]["authenticatorSelection"]["residentKey"],
        "required"
    );
    // The browser saying the authenticator didn't keep it: refused as a passkey.
    console
        .post_json(
            start,
            Some(&csrf),
            &json!({"name": "Old key", "kind": "passkey"}),
        )
        .await;
    let finish = "/account/two-factor/webauthn/register/finish";
    let answer = json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": {"attestationObject": "AAAA", "clientDataJSON": "AAAA"},
        "extensions": {"credProps": {"rk": false}}
    });
    let page = console.post_json(finish, Some(&csrf), &answer).await;
    assert_eq!(page.status, 400);
    page.assert_contains("This authenticator can't keep a passkey.");
    // Bad kinds and names.
    for (body, message) in [
        (
            json!({"kind": "fingerprint"}),
            "Kind: 'security_key' or 'passkey'.",
        ),
        (json!({"kind": 7}), "The request could not be read."),
        (
            json!({"name": "a\u{7}b", "kind": "passkey"}),
            "Name: no control characters.",
        ),
        (
            json!({"name": "x".repeat(65), "kind": "passkey"}),
            "Name: at most 64 characters.",
        ),
    ] {
        let page = console.post_json(start, Some(&csrf), &body).await;
        assert_eq!(page.status, 400, "{body}");
        page.assert_contains(message);
    }
    let user = app.store.user_by_email(&email(ANN)).unwrap().user;
    assert!(user.webauthn_credentials.is_empty());
}

#[tokio::test]
async fn a_password_is_given_up_only_for_a_passkey_and_with_the_current_password() {
    let app = spawn_app().await;
    // Without a passkey: not offered, and refused.
    let plain = app.console_as("plain@x.io", "user").await;
    let page = plain.get("/account").await;
    assert!(!page.body.contains("remove-password"));
    let page = plain
        .post("/account/password/remove", &[("current", PASSWORD)])
        .await;
    assert_eq!(page.status, 400);
    page.assert_contains("That is your last way to sign in");
    Console::new(&app)
        .login("plain@x.io", PASSWORD)
        .await
        .redirects_to("/");

    let mut passkey = user_with_authenticator(&app, ANN, CredentialKind::Passkey).await;
    let other = signed_in_with(&app, &mut passkey).await;
    let page = other.get("/account").await;
    page.assert_contains("id=\"remove-password\"");
    // CSRF-less, a wrong current password, the switch off: refused, the password kept.
    let raw = other
        .post_raw("/account/password/remove", &[("current", PASSWORD)])
        .await;
    assert_eq!(raw.status, 403);
    let page = other
        .post("/account/password/remove", &[("current", "not it at all")])
        .await;
    assert_eq!(page.status, 400);
    page.assert_contains("Current password: it is not your current password.");
    app.post("settings/usermanagement/passwordless_sign_in/disable", &[])
        .await
        .ok();
    let page = other
        .post("/account/password/remove", &[("current", PASSWORD)])
        .await;
    assert_eq!(page.status, 400);
    page.assert_contains("you keep your password");
    assert!(
        app.store
            .user_by_email(&email(ANN))
            .unwrap()
            .user
            .password_hash
            .is_some()
    );
    app.post("settings/usermanagement/passwordless_sign_in/enable", &[])
        .await
        .ok_bare();

    // Given up: every other session ends; the password logs nobody in; the passkey does.
    let elsewhere = signed_in_with(&app, &mut passkey).await;
    let before_removal = newest_id(&app);
    other
        .post("/account/password/remove", &[("current", PASSWORD)])
        .await
        .redirects_to("/account");
    let page = other.get("/account").await;
    page.assert_contains("You no longer have a password");
    page.assert_contains("id=\"no-password\"");
    elsewhere.get("/account").await.redirects_to("/login");
    let trail = entries_after(&app, before_removal);
    assert_eq!(actions(&trail), ["user_password_remove"]);
    assert_eq!(trail[0].details["other_sessions_ended"], 1);
    let page = Console::new(&app).login(ANN, PASSWORD).await;
    assert_eq!(page.status, 401);
    // Forbidding passwordless sign-in now strands Ann: the admin is told, by name.
    let admin = app.console_as("boss@x.io", "admin").await;
    admin.get("/settings").await;
    admin
        .post("/settings/passwordless", &[("enabled", "off")])
        .await
        .redirects_to("/settings");
    admin.get("/settings").await.assert_contains(
        "1 user has no password and can&#39;t sign in now: ann@x.io. Send them a password reset",
    );
    let answer = app
        .post("settings/usermanagement/passwordless_sign_in/enable", &[])
        .await;
    answer.ok_bare();
    // The last passkey of a user without a password can't be removed by them.
    let id = app
        .store
        .user_by_email(&email(ANN))
        .unwrap()
        .user
        .webauthn_credentials[0]
        .id
        .clone();
    other.get("/account/two-factor").await;
    other
        .post(&format!("/account/two-factor/webauthn/{id}/delete"), &[])
        .await
        .redirects_to("/account/two-factor");
    other
        .get("/account/two-factor")
        .await
        .assert_contains("That is your last way to sign in");
    assert_eq!(
        app.store
            .user_by_email(&email(ANN))
            .unwrap()
            .user
            .webauthn_credentials
            .len(),
        1
    );
    // The admin's reset: the passkeys go, a set-password link brings them back.
    app.post("user/webauthn/disable", &[("email", ANN)])
        .await
        .ok();
    other.get("/account").await.redirects_to("/login");
    app.post("user/password/reset", &[("email", ANN)])
        .await
        .ok();
    app.wait_for_mail_queue().await;
    let mail = app.outbox().await.pop().expect("the reset mail");
    let unfolded = mail.replace("=\r\n", "");
    let start = unfolded.find("/reset/").expect("a reset link");
    let path: String = unfolded[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
        .collect();
    let back = Console::new(&app);
    back.get(&path).await;
    let fresh = "a fresh and long password";
    back.post(&path, &[("password", fresh), ("confirm", fresh)])
        .await
        .redirects_to("/");
    back.get("/account").await.assert_contains(ANN);
}

#[tokio::test]
async fn passkey_sign_ins_are_counted_by_outcome() {
    use crate::metrics::{TOKEN, sample, scrape, with_token};
    let app = with_token().await;
    let mut passkey = user_with_authenticator(&app, ANN, CredentialKind::Passkey).await;
    let (console, csrf) = at_login(&app).await;
    let (status, _) = sign_in(&app, &console, &csrf, |o, origin| {
        passkey.answer(o, origin, false, true)
    })
    .await;
    assert_eq!(status, 401);
    signed_in_with(&app, &mut passkey).await;
    let (_, _, text) = scrape(&app, &app.address, Some(TOKEN)).await;
    let logins = "roost_logins_total";
    for outcome in ["verified", "rejected"] {
        let labels = [("step", "passkey"), ("outcome", outcome)];
        assert_eq!(sample(&text, logins, &labels), 1.0, "{outcome}");
    }
    assert!(!text.contains(ANN), "an email in the metrics");
}

/// A registration over HTTP end to end: the passkey is stored as one and signs its owner in; the
/// same credential can't be registered to another account (nor twice to this one).
#[tokio::test]
async fn a_passkey_registered_over_http_signs_in_and_its_id_is_one_accounts() {
    let app = spawn_app().await;
    let console = app.console_as(ANN, "user").await;
    console.get("/account/two-factor").await;
    let csrf = console.csrf().expect("csrf");
    let start = "/account/two-factor/webauthn/register/start";
    let finish = "/account/two-factor/webauthn/register/finish";
    let mut passkey = SoftPasskey::new(user_id(&app, ANN));
    let page = console
        .post_json(
            start,
            Some(&csrf),
            &json!({"name": "Soft", "kind": "passkey"}),
        )
        .await;
    let options: Value = serde_json::from_str(&page.body).unwrap();
    let page = console
        .post_json(
            finish,
            Some(&csrf),
            &passkey.attest(&options, &app.console_url),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let done: Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(done["recovery_codes"].as_array().map(Vec::len), Some(10));
    let stored = app.store.user_by_email(&email(ANN)).unwrap().user;
    assert_eq!(stored.webauthn_credentials.len(), 1);
    assert_eq!(stored.webauthn_credentials[0].kind, CredentialKind::Passkey);
    assert_eq!(stored.webauthn_credentials[0].name, "Soft");
    signed_in_with(&app, &mut passkey).await;

    // The same credential id, registered by Bob (or by Ann again): refused, nothing stored.
    let bob = app.console_as("bob@x.io", "user").await;
    bob.get("/account/two-factor").await;
    let bob_csrf = bob.csrf().expect("csrf");
    let mut copy = SoftPasskey::new(user_id(&app, "bob@x.io"));
    copy.credential_id = passkey.credential_id.clone();
    let before = newest_id(&app);
    let taken = "registered already, to this account or another";
    for (who, csrf, kind, status, message) in [
        (&bob, &bob_csrf, "passkey", 409, taken),
        (&bob, &bob_csrf, "security_key", 409, taken),
        // Ann's own is excluded from her ceremony: webauthn-rs refuses it before the store.
        (&console, &csrf, "passkey", 400, "could not be verified"),
    ] {
        let page = who
            .post_json(start, Some(csrf), &json!({"name": "Copy", "kind": kind}))
            .await;
        let options: Value = serde_json::from_str(&page.body).unwrap();
        let page = who
            .post_json(finish, Some(csrf), &copy.attest(&options, &app.console_url))
            .await;
        assert_eq!(page.status, status, "{kind}: {}", page.body);
        page.assert_contains(message);
    }
    assert!(
        app.store
            .user_by_email(&email("bob@x.io"))
            .unwrap()
            .user
            .webauthn_credentials
            .is_empty()
    );
    assert_eq!(
        app.store
            .user_by_email(&email(ANN))
            .unwrap()
            .user
            .webauthn_credentials
            .len(),
        1
    );
    crate::audit::assert_nothing_after(&app, before);
}

/// A passkey (its kind, its counter) and the passwordless switch move with an export: the
/// imported console signs its owner in with it, and refuses a clone of the last answer.
#[tokio::test]
async fn a_passkey_moves_with_an_export_and_signs_in_on_the_new_console() {
    let app = spawn_app().await;
    let mut passkey = user_with_authenticator(&app, ANN, CredentialKind::Passkey).await;
    signed_in_with(&app, &mut passkey).await;
    app.post("settings/usermanagement/passwordless_sign_in/disable", &[])
        .await
        .ok();
    let (sandbox, file, _) = crate::export::exported(&app);
    let target = crate::export::data_dir_with_secrets_key_of(&app);
    let output = crate::export::import(&sandbox, &file, target.path());
    assert!(output.status.success(), "{}", output.stderr);
    drop(app);

    let moved = spawn_app_in(target, |_| {}).await;
    let stored = moved.store.user_by_email(&email(ANN)).unwrap().user;
    assert_eq!(stored.webauthn_credentials[0].kind, CredentialKind::Passkey);
    assert_eq!(stored.webauthn_credentials[0].sign_count, 1);
    assert_eq!(
        moved.get("settings", &[]).await.ok()["settings"]["passwordless_sign_in"],
        false
    );
    moved
        .post("settings/usermanagement/passwordless_sign_in/enable", &[])
        .await
        .ok_bare();
    let (console, csrf) = at_login(&moved).await;
    let (status, _) = sign_in(&moved, &console, &csrf, |o, origin| {
        passkey.answer(o, origin, true, false)
    })
    .await;
    assert_eq!(status, 401, "the counter moved with it");
    let (status, _) = sign_in(&moved, &console, &csrf, |o, origin| {
        passkey.answer(o, origin, true, true)
    })
    .await;
    assert_eq!(status, 200);
    console.get("/account").await.assert_contains(ANN);
}

/// Renaming keeps the rules of registering: no control characters, at most 64 characters.
#[tokio::test]
async fn a_key_is_renamed_under_the_rules_it_was_named_by() {
    let app = spawn_app().await;
    let mut passkey = user_with_authenticator(&app, ANN, CredentialKind::Passkey).await;
    let console = signed_in_with(&app, &mut passkey).await;
    console.get("/account/two-factor").await;
    let id = app
        .store
        .user_by_email(&email(ANN))
        .unwrap()
        .user
        .webauthn_credentials[0]
        .id
        .clone();
    let path = format!("/account/two-factor/webauthn/{id}/rename");
    for (name, message) in [
        ("a\u{7}b", "Name: no control characters."),
        ("line\nbreak", "Name: no control characters."),
        (&"x".repeat(65)[..], "Name: at most 64 characters."),
        ("   ", "Name: 1 to 64 characters."),
    ] {
        console
            .post(&path, &[("name", name)])
            .await
            .redirects_to("/account/two-factor");
        console
            .get("/account/two-factor")
            .await
            .assert_contains(message);
    }
    let stored = app.store.user_by_email(&email(ANN)).unwrap().user;
    assert_eq!(stored.webauthn_credentials[0].name, "Soft key");
    console
        .post(&path, &[("name", "Laptop")])
        .await
        .redirects_to("/account/two-factor");
    let stored = app.store.user_by_email(&email(ANN)).unwrap().user;
    assert_eq!(stored.webauthn_credentials[0].name, "Laptop");
}
