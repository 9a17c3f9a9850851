//! Every endpoint of `/api/v1` that changes something leaves exactly one entry naming the key,
//! the address, the browser, and the user and flock it was about. One table, one running console,
//! a fresh scene for each change.

use reqwest::Method;

use super::world::{FLOCK_KEY_NOTE, Scene, World};
use super::{
    Expected, LOCALHOST, USER, actions, admin_key_actor, entries_after, key_actor, newest_id,
};
use crate::helpers::spawn_app;

/// Who calls.
#[derive(Clone, Copy, Debug)]
pub(super) enum Key {
    /// The harness's global admin key.
    Admin,
    /// The admin key of `Ops`.
    Flock,
    /// A global read-only key.
    Reader,
    /// A global analyst key (made by the refusal table).
    Analyst,
    /// No token at all.
    Nothing,
    /// A token of the right shape that no key has, in the header.
    Forged,
}

/// The user or flock an entry is about, in terms of the world.
#[derive(Clone, Copy, Debug)]
enum About {
    Nobody,
    User,
    Other,
    Email(&'static str),
    Ops,
    Empty,
    /// The `flock_id` of the answer.
    Answered,
}

pub(super) type Params = fn(&Scene) -> Vec<(&'static str, String)>;

struct Change {
    method: Method,
    path: &'static str,
    key: Key,
    params: Params,
    action: &'static str,
    target: About,
    flock: About,
}

fn post(path: &'static str, params: Params, action: &'static str) -> Change {
    Change {
        method: Method::POST,
        path,
        key: Key::Admin,
        params,
        action,
        target: About::Nobody,
        flock: About::Nobody,
    }
}

fn delete(path: &'static str, params: Params, action: &'static str) -> Change {
    Change {
        method: Method::DELETE,
        ..post(path, params, action)
    }
}

impl Change {
    fn target(self, target: About) -> Change {
        Change { target, ..self }
    }

    fn flock(self, flock: About) -> Change {
        Change { flock, ..self }
    }

    fn key(self, key: Key) -> Change {
        Change { key, ..self }
    }
}

pub(super) fn user(w: &Scene) -> Vec<(&'static str, String)> {
    vec![("email", w.user.clone())]
}

pub(super) fn nothing(_: &Scene) -> Vec<(&'static str, String)> {
    Vec::new()
}

/// Every mutating route of `src/api/mod.rs`.
fn changes() -> Vec<Change> {
    use About::*;
    vec![
        post(
            "user/add",
            |_| {
                vec![
                    ("email", "new@x.io".into()),
                    ("access_level", "user".into()),
                    ("send_welcome_mail", "false".into()),
                ]
            },
            "user_add",
        )
        .target(Email("new@x.io")),
        post(
            "user/add",
            |_| {
                vec![
                    ("email", "welcome@x.io".into()),
                    ("access_level", "admin".into()),
                ]
            },
            "user_add",
        )
        .target(Email("welcome@x.io")),
        post(
            "user/note/add",
            |w| vec![("email", w.user.clone()), ("note", "back on Monday".into())],
            "user_note_add",
        )
        .target(User),
        post(
            "user/flock/assign",
            |w| {
                vec![
                    ("email", w.other.clone()),
                    ("flock_id_list", w.empty_flock.clone()),
                    ("flock_access_level", "watcher".into()),
                ]
            },
            "flock_assign",
        )
        .target(Other)
        .flock(Empty),
        // Several flocks at once: the entry names none of them in `flock_id`.
        post(
            "user/flock/assign",
            |w| {
                vec![
                    ("email", w.other.clone()),
                    ("flock_id_list", format!("{},{}", w.flock, w.empty_flock)),
                    ("flock_access_level", "manager".into()),
                ]
            },
            "flock_assign",
        )
        .target(Other),
        post(
            "user/flock/unassign",
            |w| {
                vec![
                    ("email", w.user.clone()),
                    ("flock_id_list", w.flock.clone()),
                    ("flock_access_level", "manager".into()),
                ]
            },
            "flock_unassign",
        )
        .target(User)
        .flock(Ops),
        // A flock's own admin key changes that flock's memberships.
        post(
            "user/flock/assign",
            |w| {
                vec![
                    ("email", w.other.clone()),
                    ("flock_id_list", w.flock.clone()),
                    ("flock_access_level", "watcher".into()),
                ]
            },
            "flock_assign",
        )
        .key(Key::Flock)
        .target(Other)
        .flock(Ops),
        post("user/disable", user, "user_disable").target(User),
        post("user/enable", user, "user_enable").target(User),
        post("user/2fa/disable", user, "user_2fa_disable").target(User),
        post("user/webauthn/disable", user, "user_webauthn_disable").target(User),
        post(
            "user/summary_email/disable",
            user,
            "user_summary_email_disable",
        )
        .target(User),
        post(
            "user/summary_email/enable",
            user,
            "user_summary_email_enable",
        )
        .target(User),
        // `user/edit` with a note sets the note; without one it records the call.
        post(
            "user/edit",
            |w| vec![("email", w.user.clone()), ("note", "edited".into())],
            "user_note_add",
        )
        .target(User),
        post("user/edit", user, "user_edit").target(User),
        post(
            "user/edit/access_level",
            |w| vec![("email", w.user.clone()), ("access_level", "admin".into())],
            "user_edit_access_level",
        )
        .target(User),
        post("user/remove", user, "user_remove").target(User),
        delete("user/note/delete", user, "user_note_remove").target(User),
        post("user/password/reset", user, "user_password_reset").target(User),
        post("user/sessions/revoke", user, "session_revoke").target(User),
        post(
            "user/sessions/revoke",
            |w| {
                vec![
                    ("email", w.user.clone()),
                    ("session_id", w.other_session.clone()),
                ]
            },
            "session_revoke",
        )
        .target(User),
        post(
            "flock/create",
            |_| vec![("name", "Dev".into())],
            "flock_create",
        )
        .flock(Answered),
        post(
            "flock/create",
            |w| {
                vec![
                    ("name", "Night shift".into()),
                    ("managers", w.other.clone()),
                    ("watchers", w.user.clone()),
                ]
            },
            "flock_create",
        )
        .flock(Answered),
        post(
            "flock/rename",
            |w| vec![("flock_id", w.flock.clone()), ("name", "Operations".into())],
            "flock_rename",
        )
        .flock(Ops),
        post(
            "flock/delete",
            |w| vec![("flock_id", w.empty_flock.clone())],
            "flock_delete",
        )
        .flock(Empty),
        post(
            "users/flock/assign/managers",
            |w| vec![("flock_id", w.flock.clone()), ("emails", w.other.clone())],
            "flock_assign_managers",
        )
        .flock(Ops),
        post(
            "users/flock/assign/watchers",
            |w| vec![("flock_id", w.flock.clone()), ("emails", w.other.clone())],
            "flock_assign_watchers",
        )
        .key(Key::Flock)
        .flock(Ops),
        post(
            "auth_token/add",
            |_| {
                vec![
                    ("auth_token_type", "analyst".into()),
                    ("note", "nightly".into()),
                ]
            },
            "api_key_add",
        ),
        delete(
            "auth_token/remove",
            |w| vec![("key_id", w.reader_id.clone())],
            "api_key_remove",
        ),
        post(
            "flock/auth_token/add",
            |w| {
                vec![
                    ("flock_id", w.empty_flock.clone()),
                    ("note", "robot".into()),
                ]
            },
            "flock_api_key_add",
        )
        .flock(Empty),
        post(
            "flock/auth_token/remove",
            |w| vec![("key_id", w.flock_key_id.clone())],
            "flock_api_key_remove",
        )
        .flock(Ops),
        // Purging up to the first entry leaves the purge's own entry.
        post(
            "audit_trail/purge",
            |_| vec![("id", "1".into())],
            "audit_trail_purge",
        ),
        // Last, as they change what the cases after them would meet: enforcement sends later
        // logins to enrollment, and with the API off nothing more can be called.
        post(
            "settings/usermanagement/globally_enforce_2fa/disable",
            nothing,
            "settings_2fa_enforce_disable",
        ),
        post(
            "settings/usermanagement/globally_enforce_2fa/enable",
            nothing,
            "settings_2fa_enforce_enable",
        ),
        post(
            "settings/usermanagement/passwordless_sign_in/disable",
            nothing,
            "settings_passwordless_disable",
        ),
        post(
            "settings/usermanagement/passwordless_sign_in/enable",
            nothing,
            "settings_passwordless_enable",
        ),
        post("settings/api/disable", nothing, "settings_api_disable"),
    ]
}

pub(super) fn token(world: &World, scene: &Scene, key: Key) -> Option<String> {
    match key {
        Key::Admin => Some(world.app.admin_token.clone()),
        Key::Flock => Some(scene.flock_key.clone()),
        Key::Reader => Some(scene.reader.clone()),
        Key::Analyst | Key::Nothing | Key::Forged => None,
    }
}

fn resolve(scene: &Scene, about: About, answer: &serde_json::Value) -> Option<String> {
    match about {
        About::Nobody => None,
        About::User => Some(scene.user.clone()),
        About::Other => Some(scene.other.clone()),
        About::Email(email) => Some(email.into()),
        About::Ops => Some(scene.flock.clone()),
        About::Empty => Some(scene.empty_flock.clone()),
        About::Answered => answer["flock_id"].as_str().map(str::to_string),
    }
}

#[tokio::test]
async fn every_api_change_leaves_one_entry_naming_the_key_address_browser_and_target() {
    let world = World::new().await;
    let mut failures = Vec::new();
    for change in changes() {
        let scene = world.scene().await;
        let what = format!("{} {} as {:?}", change.method, change.path, change.key);
        let params = (change.params)(&scene);
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let token = token(&world, &scene, change.key);
        let before = newest_id(&world.app);
        let resp = world
            .call(
                change.method.clone(),
                change.path,
                token.as_deref(),
                &params,
            )
            .await;
        if resp.status != 200 || resp.body["result"] != "success" {
            failures.push(format!("{what}: refused: {} {}", resp.status, resp.text));
            continue;
        }
        let actor = match change.key {
            Key::Flock => key_actor(FLOCK_KEY_NOTE, &scene.flock_key_id),
            _ => admin_key_actor(&world.app),
        };
        let expected = Expected {
            action: change.action.to_string(),
            actor,
            target: resolve(&scene, change.target, &resp.body),
            flock: resolve(&scene, change.flock, &resp.body),
        };
        if let Some(problem) = expected.only_mismatch(&entries_after(&world.app, before)) {
            failures.push(format!("{what}: {problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_client_sending_no_browser_headers_is_recorded_without_them() {
    let app = spawn_app().await;
    app.add_user(USER, "user").await;
    let before = newest_id(&app);
    // The harness's client sends no User-Agent and no Accept-Language.
    app.post("user/disable", &[("email", USER)]).await.ok();
    let entries = entries_after(&app, before);
    assert_eq!(actions(&entries), ["user_disable"]);
    let entry = &entries[0];
    let origin = (
        entry.ip.as_deref(),
        entry.user_agent.as_deref(),
        entry.language.as_deref(),
    );
    assert_eq!(origin, (Some(LOCALHOST), None, None));
}
