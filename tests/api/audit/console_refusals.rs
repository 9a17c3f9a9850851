//! A refused console form (bad input, a rule, not allowed, no CSRF token, no session) leaves no
//! entry, and neither does viewing a page.

use super::console_changes::{As, Fields, Path, console, none, off, submit};
use super::world::{ADMIN, UNKNOWN_SESSION, World};
use super::{actions, audit_len, browser_headers, entries_after, newest_id};
use crate::console::{Console, PASSWORD};
use crate::helpers::*;

struct Refused {
    by: As,
    path: Path,
    fields: Fields,
    /// Sent without (`None`) or with a wrong CSRF token instead of the page's.
    csrf: Csrf,
    status: u16,
}

#[derive(Clone, Copy, Debug)]
enum Csrf {
    Page,
    Missing,
    Wrong,
}

fn refused(by: As, path: Path, fields: Fields, status: u16) -> Refused {
    Refused {
        by,
        path,
        fields,
        csrf: Csrf::Page,
        status,
    }
}

/// Forms refused for their input, the rules, who sends them, or a missing session or token.
fn refusals() -> Vec<Refused> {
    use As::Admin as A;
    use As::Nobody as N;
    use As::User as U;
    let disable_user: Path = |w| format!("/users/{}/disable", w.user_id);
    let mut cases = vec![
        // Not allowed: a plain user on the admin's forms, a manager on the flock's own settings.
        refused(U, |w| format!("/users/{}/disable", w.other_id), none, 403),
        refused(U, |w| format!("/users/{}/unlock", w.other_id), none, 403),
        refused(U, |_| "/settings/api".into(), off, 403),
        refused(
            U,
            |_| "/api-keys".into(),
            |_| vec![("auth_token_type", "admin".into()), ("note", "mine".into())],
            403,
        ),
        refused(
            U,
            |_| "/flocks".into(),
            |_| vec![("name", "Mine".into())],
            403,
        ),
        refused(
            U,
            |w| format!("/flocks/{}/rename", w.flock),
            |_| vec![("name", "Mine".into())],
            403,
        ),
        refused(
            U,
            |w| format!("/flocks/{}/keys", w.flock),
            |_| vec![("auth_token_type", "admin".into()), ("note", "mine".into())],
            403,
        ),
        refused(
            U,
            |w| format!("/flocks/{}/members/add", w.empty_flock),
            |w| vec![("email", w.other.clone()), ("role", "watcher".into())],
            403,
        ),
        // Bad input.
        refused(
            A,
            |_| "/users/new".into(),
            |_| {
                vec![
                    ("email", "not an address".into()),
                    ("access_level", "user".into()),
                ]
            },
            400,
        ),
        refused(
            A,
            |_| "/users/new".into(),
            |w| vec![("email", w.user.clone()), ("access_level", "user".into())],
            400,
        ),
        refused(
            A,
            |w| format!("/users/{}/access-level", w.user_id),
            |_| vec![("access_level", "root".into())],
            303,
        ),
        refused(
            A,
            |w| format!("/users/{}/flocks/assign", w.other_id),
            |w| vec![("flock_id", w.flock.clone()), ("role", "owner".into())],
            303,
        ),
        refused(
            A,
            |w| format!("/users/{}/flocks/assign", w.other_id),
            |_| {
                vec![
                    ("flock_id", UNKNOWN_FLOCK.into()),
                    ("role", "watcher".into()),
                ]
            },
            303,
        ),
        refused(A, |_| "/flocks".into(), |_| vec![("name", "".into())], 400),
        refused(
            A,
            |_| "/api-keys".into(),
            |_| vec![("auth_token_type", "root".into()), ("note", "n".into())],
            400,
        ),
        refused(
            A,
            |w| format!("/flocks/{}/members/add", w.flock),
            |_| vec![("email", "nobody@x.io".into()), ("role", "watcher".into())],
            400,
        ),
        refused(
            A,
            |w| format!("/flocks/{}/members/remove", w.flock),
            |w| vec![("email", w.other.clone()), ("role", "watcher".into())],
            303,
        ),
        refused(
            A,
            |_| "/settings/enforce-2fa".into(),
            |_| vec![("enabled", "maybe".into())],
            400,
        ),
        refused(
            U,
            |_| "/account/password".into(),
            |_| {
                vec![
                    ("current", PASSWORD.into()),
                    ("password", "a brand new password".into()),
                    ("confirm", "another new password".into()),
                ]
            },
            400,
        ),
        refused(
            U,
            |_| "/account/summary-email".into(),
            |_| vec![("enabled", "maybe".into())],
            400,
        ),
        refused(
            U,
            |_| "/account/two-factor/totp".into(),
            |_| vec![("code", "not a code".into())],
            400,
        ),
        refused(
            U,
            |_| "/account/two-factor/webauthn/no-such-key/rename".into(),
            |_| vec![("name", "X".into())],
            303,
        ),
        refused(
            U,
            |w| format!("/account/two-factor/webauthn/{}/rename", w.credential),
            |_| vec![("name", " ".into())],
            303,
        ),
        refused(
            U,
            |_| "/account/two-factor/webauthn/no-such-key/delete".into(),
            none,
            303,
        ),
        refused(
            U,
            |_| "/account/sessions/end".into(),
            |_| vec![("session_id", "not a session".into())],
            404,
        ),
        // Unknown users, flocks, keys and sessions.
        refused(A, |_| "/users/999999/disable".into(), none, 404),
        refused(
            A,
            |w| format!("/users/{}/sessions/end", w.user_id),
            |_| vec![("session_id", UNKNOWN_SESSION.into())],
            404,
        ),
        refused(A, |_| "/api-keys/0123456789abcdef/revoke".into(), none, 303),
        refused(
            A,
            |w| format!("/flocks/{}/keys/0123456789abcdef/revoke", w.flock),
            none,
            303,
        ),
        // The rules: the last admin stays; the default flock and a flock with members stay.
        refused(A, |w| format!("/users/{}/disable", w.admin_id), none, 303),
        refused(A, |w| format!("/users/{}/remove", w.admin_id), none, 303),
        refused(
            A,
            |w| format!("/users/{}/access-level", w.admin_id),
            |_| vec![("access_level", "user".into())],
            303,
        ),
        refused(A, |_| "/flocks/flock:default/delete".into(), none, 303),
        refused(A, |w| format!("/flocks/{}/delete", w.flock), none, 303),
        // No session: sent to the login page.
        refused(N, disable_user, none, 303),
        refused(N, |_| "/logout".into(), none, 303),
        refused(N, |_| "/account/summary-email".into(), off, 303),
    ];
    for csrf in [Csrf::Missing, Csrf::Wrong] {
        cases.push(Refused {
            csrf,
            ..refused(A, disable_user, none, 403)
        });
        cases.push(Refused {
            csrf,
            ..refused(U, |_| "/logout".into(), none, 403)
        });
        cases.push(Refused {
            csrf,
            ..refused(
                N,
                |_| "/login".into(),
                |_| vec![("email", ADMIN.into()), ("password", PASSWORD.into())],
                403,
            )
        });
    }
    cases
}

#[tokio::test]
async fn a_refused_console_form_leaves_no_entry() {
    let world = World::new().await;
    let scene = world.scene().await;
    let mut failures = Vec::new();
    for case in refusals() {
        let path = (case.path)(&scene);
        let what = format!(
            "POST {path} as {:?} with {:?} CSRF token",
            case.by, case.csrf
        );
        let fields = (case.fields)(&scene);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let before = (audit_len(&world.app), newest_id(&world.app));
        let page = match case.csrf {
            Csrf::Page => submit(&world, &scene, case.by, &path, &fields).await,
            Csrf::Missing | Csrf::Wrong => {
                let mut all = fields.clone();
                if let Csrf::Wrong = case.csrf {
                    all.push(("csrf_token", "0000"));
                }
                match case.by {
                    As::Nobody => {
                        let browser = Console::with_headers(&world.app, browser_headers());
                        browser.get("/login").await;
                        browser.post_raw(&path, &all).await
                    }
                    by => console(&world, &scene, by).post_raw(&path, &all).await,
                }
            }
        };
        if page.status != case.status {
            failures.push(format!(
                "{what}: expected {}, got {}",
                case.status, page.status
            ));
        }
        let after = (audit_len(&world.app), newest_id(&world.app));
        if after != before {
            let entries = entries_after(&world.app, before.1);
            failures.push(format!("{what}: left {:?}", actions(&entries)));
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
async fn viewing_console_pages_leaves_no_entry() {
    let world = World::new().await;
    let scene = world.scene().await;
    let w = &scene;
    let pages: Vec<(As, String)> = vec![
        (As::Admin, "/".into()),
        (As::Admin, "/users".into()),
        (As::Admin, "/users?q=ann".into()),
        (As::Admin, "/users/new".into()),
        (As::Admin, format!("/users/{}", w.user_id)),
        (As::Admin, format!("/users/{}/remove", w.other_id)),
        (As::Admin, "/flocks".into()),
        (As::Admin, format!("/flocks/{}", w.flock)),
        (As::Admin, format!("/flocks/{}/delete", w.empty_flock)),
        (As::Admin, "/api-keys".into()),
        (As::Admin, "/settings".into()),
        (As::Admin, "/account".into()),
        (As::Admin, "/account/two-factor".into()),
        (As::User, "/".into()),
        (As::User, "/account".into()),
        (As::User, "/account/two-factor".into()),
        (As::User, "/flocks".into()),
        (As::User, format!("/flocks/{}", w.flock)),
        (As::Nobody, "/login".into()),
        (As::Nobody, "/forgot-password".into()),
        (As::Nobody, "/login/two-factor".into()),
        (As::Nobody, "/account".into()),
    ];
    let nobody = Console::with_headers(&world.app, browser_headers());
    let before = (audit_len(&world.app), newest_id(&world.app));
    for (by, path) in pages {
        let page = match by {
            As::Nobody => nobody.get(&path).await,
            by => console(&world, &scene, by).get(&path).await,
        };
        assert!(page.status < 400, "GET {path} as {by:?}: {}", page.status);
        assert_eq!(
            (audit_len(&world.app), newest_id(&world.app)),
            before,
            "GET {path} as {by:?} left {:?}",
            actions(&entries_after(&world.app, before.1))
        );
    }
}
