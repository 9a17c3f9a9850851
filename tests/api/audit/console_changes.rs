//! Every console form that changes something leaves exactly one entry naming the signed-in user,
//! their address and browser, and the user and flock it was about.
//!
//! Not here: registering a security key and logging in with one (`/account/two-factor/webauthn/
//! register/*`, `/login/two-factor/webauthn/*`) are WebAuthn ceremonies that need a real
//! authenticator; `tests/api/browser.rs` drives them with Chrome's virtual one. Logging in and out,
//! the factor step, forgotten passwords and one-time links are in `logins`.

use super::world::{ADMIN, Scene, World};
use super::{Expected, entries_after, newest_id};
use crate::console::{Console, PASSWORD, Page};
use crate::two_factor::{code_at, now};

/// Who submits the form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum As {
    Admin,
    /// The scene's user: a plain user, manager of the scene's flock.
    User,
    /// A browser with no session (it has fetched the login page, so it has a CSRF token).
    Nobody,
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
    /// The flock the answer redirects to.
    RedirectedTo,
}

pub(super) type Path = fn(&Scene) -> String;
pub(super) type Fields = fn(&Scene) -> Vec<(&'static str, String)>;

struct Form {
    by: As,
    path: Path,
    fields: Fields,
    status: u16,
    action: &'static str,
    target: About,
    flock: About,
}

fn form(by: As, path: Path, fields: Fields, action: &'static str) -> Form {
    Form {
        by,
        path,
        fields,
        status: 303,
        action,
        target: About::Nobody,
        flock: About::Nobody,
    }
}

impl Form {
    fn target(self, target: About) -> Form {
        Form { target, ..self }
    }

    fn flock(self, flock: About) -> Form {
        Form { flock, ..self }
    }

    fn status(self, status: u16) -> Form {
        Form { status, ..self }
    }
}

pub(super) fn none(_: &Scene) -> Vec<(&'static str, String)> {
    Vec::new()
}

pub(super) fn off(_: &Scene) -> Vec<(&'static str, String)> {
    vec![("enabled", "off".into())]
}

pub(super) fn on(_: &Scene) -> Vec<(&'static str, String)> {
    vec![("enabled", "on".into())]
}

/// Every POST route of the console's users, flocks, API keys, settings, account, sessions and
/// security keys pages.
fn forms() -> Vec<Form> {
    use About::*;
    use As::Admin as A;
    use As::User as U;
    vec![
        form(
            A,
            |_| "/users/new".into(),
            |_| {
                vec![
                    ("email", "new@x.io".into()),
                    ("access_level", "user".into()),
                    ("note", "".into()),
                ]
            },
            "user_add",
        )
        .target(Email("new@x.io")),
        form(
            A,
            |w| format!("/users/{}/access-level", w.user_id),
            |_| vec![("access_level", "admin".into())],
            "user_edit_access_level",
        )
        .target(User),
        form(
            A,
            |w| format!("/users/{}/disable", w.user_id),
            none,
            "user_disable",
        )
        .target(User),
        form(
            A,
            |w| format!("/users/{}/enable", w.user_id),
            none,
            "user_enable",
        )
        .target(User),
        form(
            A,
            |w| format!("/users/{}/note", w.user_id),
            |_| vec![("note", "back on Monday".into())],
            "user_note_add",
        )
        .target(User),
        // An emptied note is no note.
        form(
            A,
            |w| format!("/users/{}/note", w.user_id),
            |_| vec![("note", "".into())],
            "user_note_remove",
        )
        .target(User),
        form(
            A,
            |w| format!("/users/{}/note/delete", w.user_id),
            none,
            "user_note_remove",
        )
        .target(User),
        form(
            A,
            |w| format!("/users/{}/summary-email", w.user_id),
            off,
            "user_summary_email_disable",
        )
        .target(User),
        form(
            A,
            |w| format!("/users/{}/totp/reset", w.user_id),
            none,
            "user_2fa_disable",
        )
        .target(User),
        form(
            A,
            |w| format!("/users/{}/webauthn/reset", w.user_id),
            none,
            "user_webauthn_disable",
        )
        .target(User),
        form(
            A,
            |w| format!("/users/{}/password-reset", w.user_id),
            none,
            "user_password_reset",
        )
        .target(User),
        form(
            A,
            |w| format!("/users/{}/flocks/assign", w.other_id),
            |w| vec![("flock_id", w.flock.clone()), ("role", "watcher".into())],
            "flock_assign",
        )
        .target(Other)
        .flock(Ops),
        form(
            A,
            |w| format!("/users/{}/flocks/unassign", w.user_id),
            |w| vec![("flock_id", w.flock.clone()), ("role", "manager".into())],
            "flock_unassign",
        )
        .target(User)
        .flock(Ops),
        form(
            A,
            |w| format!("/users/{}/remove", w.other_id),
            none,
            "user_remove",
        )
        .target(Other),
        form(
            A,
            |w| format!("/users/{}/sessions/end", w.user_id),
            none,
            "session_revoke",
        )
        .target(User),
        form(
            A,
            |w| format!("/users/{}/sessions/end", w.user_id),
            |w| vec![("session_id", w.other_session.clone())],
            "session_revoke",
        )
        .target(User),
        form(
            A,
            |w| format!("/users/{}/unlock", w.user_id),
            none,
            "user_unlock",
        )
        .target(User),
        form(
            A,
            |_| "/flocks".into(),
            |_| vec![("name", "Dev".into())],
            "flock_create",
        )
        .flock(RedirectedTo),
        form(
            A,
            |w| format!("/flocks/{}/rename", w.flock),
            |_| vec![("name", "Operations".into())],
            "flock_rename",
        )
        .flock(Ops),
        form(
            A,
            |w| format!("/flocks/{}/delete", w.empty_flock),
            none,
            "flock_delete",
        )
        .flock(Empty),
        form(
            A,
            |w| format!("/flocks/{}/keys", w.flock),
            |_| {
                vec![
                    ("auth_token_type", "read-only".into()),
                    ("note", "robot".into()),
                ]
            },
            "flock_api_key_add",
        )
        .flock(Ops)
        .status(200),
        form(
            A,
            |w| format!("/flocks/{}/keys/{}/revoke", w.flock, w.flock_key_id),
            none,
            "flock_api_key_remove",
        )
        .flock(Ops),
        form(
            A,
            |w| format!("/flocks/{}/members/add", w.flock),
            |w| vec![("email", w.other.clone()), ("role", "watcher".into())],
            "flock_assign",
        )
        .target(Other)
        .flock(Ops),
        form(
            A,
            |w| format!("/flocks/{}/members/remove", w.flock),
            |w| vec![("email", w.user.clone()), ("role", "manager".into())],
            "flock_unassign",
        )
        .target(User)
        .flock(Ops),
        form(
            A,
            |_| "/api-keys".into(),
            |_| {
                vec![
                    ("auth_token_type", "analyst".into()),
                    ("note", "nightly".into()),
                ]
            },
            "api_key_add",
        )
        .status(200),
        form(
            A,
            |w| format!("/api-keys/{}/revoke", w.reader_id),
            none,
            "api_key_remove",
        ),
        form(
            A,
            |_| "/settings/enforce-2fa".into(),
            on,
            "settings_2fa_enforce_enable",
        ),
        form(
            A,
            |_| "/settings/enforce-2fa".into(),
            off,
            "settings_2fa_enforce_disable",
        ),
        form(
            A,
            |_| "/settings/passwordless".into(),
            off,
            "settings_passwordless_disable",
        ),
        form(
            A,
            |_| "/settings/passwordless".into(),
            on,
            "settings_passwordless_enable",
        ),
        form(A, |_| "/settings/api".into(), off, "settings_api_disable"),
        form(A, |_| "/settings/api".into(), on, "settings_api_enable"),
        form(A, |_| "/settings/summaries".into(), none, "summaries_send"),
        // A flock's manager changes its members.
        form(
            U,
            |w| format!("/flocks/{}/members/add", w.flock),
            |w| vec![("email", w.other.clone()), ("role", "watcher".into())],
            "flock_assign",
        )
        .target(Other)
        .flock(Ops),
        form(
            U,
            |w| format!("/flocks/{}/members/remove", w.flock),
            |w| vec![("email", w.user.clone()), ("role", "manager".into())],
            "flock_unassign",
        )
        .target(User)
        .flock(Ops),
        // People's own account.
        form(
            U,
            |_| "/account/password".into(),
            |_| {
                vec![
                    ("current", PASSWORD.into()),
                    ("password", "a brand new password".into()),
                    ("confirm", "a brand new password".into()),
                ]
            },
            "user_password_change",
        )
        .target(User),
        // A wrong current password is a password guess: on the trail, and nothing changes.
        form(
            U,
            |_| "/account/password".into(),
            |_| {
                vec![
                    ("current", "not my password".into()),
                    ("password", "a brand new password".into()),
                    ("confirm", "a brand new password".into()),
                ]
            },
            "user_password_change_failed",
        )
        .target(User)
        .status(400),
        form(
            U,
            |_| "/account/summary-email".into(),
            off,
            "user_summary_email_disable",
        )
        .target(User),
        form(
            U,
            |_| "/account/sessions/end".into(),
            |w| vec![("session_id", w.other_session.clone())],
            "session_revoke",
        )
        .target(User),
        // Ending one's own session is logging out.
        form(
            U,
            |_| "/account/sessions/end".into(),
            |w| vec![("session_id", w.own_session.clone())],
            "user_logout",
        )
        .target(User),
        form(
            U,
            |_| "/account/sessions/end-others".into(),
            none,
            "session_revoke",
        )
        .target(User),
        form(
            U,
            |_| "/account/two-factor/totp".into(),
            |w| vec![("code", code_at(&w.totp_secret, now()))],
            "user_totp_enroll",
        )
        .target(User)
        .status(200),
        form(
            U,
            |_| "/account/two-factor/recovery-codes".into(),
            none,
            "user_recovery_codes_regenerate",
        )
        .target(User)
        .status(200),
        form(
            U,
            |w| format!("/account/two-factor/webauthn/{}/rename", w.credential),
            |_| vec![("name", "Travel key".into())],
            "user_webauthn_rename",
        )
        .target(User),
        form(
            U,
            |w| format!("/account/two-factor/webauthn/{}/delete", w.credential),
            none,
            "user_webauthn_remove",
        )
        .target(User),
        form(U, |_| "/logout".into(), none, "user_logout").target(User),
    ]
}

pub(super) fn console<'a>(world: &'a World, scene: &'a Scene, by: As) -> &'a Console {
    match by {
        As::Admin => &world.admin,
        As::User | As::Nobody => &scene.console,
    }
}

fn resolve(scene: &Scene, about: About, page: &Page) -> Option<String> {
    match about {
        About::Nobody => None,
        About::User => Some(scene.user.clone()),
        About::Other => Some(scene.other.clone()),
        About::Email(email) => Some(email.into()),
        About::Ops => Some(scene.flock.clone()),
        About::Empty => Some(scene.empty_flock.clone()),
        About::RedirectedTo => page
            .location
            .as_deref()
            .and_then(|l| l.strip_prefix("/flocks/"))
            .map(str::to_string),
    }
}

pub(super) async fn submit(
    world: &World,
    scene: &Scene,
    by: As,
    path: &str,
    fields: &[(&str, &str)],
) -> Page {
    match by {
        As::Nobody => {
            let browser = Console::with_headers(&world.app, super::browser_headers());
            browser.get("/login").await;
            browser.post(path, fields).await
        }
        by => console(world, scene, by).post(path, fields).await,
    }
}

#[tokio::test]
async fn every_console_form_leaves_one_entry_naming_the_user_address_browser_and_target() {
    let world = World::new().await;
    let mut failures = Vec::new();
    for form in forms() {
        let scene = world.scene().await;
        let path = (form.path)(&scene);
        let what = format!("POST {path} as {:?}", form.by);
        let fields = (form.fields)(&scene);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let before = newest_id(&world.app);
        let page = submit(&world, &scene, form.by, &path, &fields).await;
        if page.status != form.status {
            failures.push(format!(
                "{what}: expected {}, got {} {:?}",
                form.status, page.status, page.location
            ));
            continue;
        }
        let actor = if form.by == As::Admin {
            ADMIN
        } else {
            &scene.user
        };
        let expected = Expected {
            action: form.action.to_string(),
            actor: actor.to_string(),
            target: resolve(&scene, form.target, &page),
            flock: resolve(&scene, form.flock, &page),
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
