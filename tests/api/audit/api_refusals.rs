//! A refused API call (bad input; an unknown user, flock, key, session or entry; a rule; a key
//! not allowed; no key; the API turned off) leaves no entry, and neither does a read.

use reqwest::Method;

use super::api_changes::{Key, Params, nothing, token, user};
use super::world::{ADMIN, Scene, UNKNOWN_SESSION, World};
use super::{actions, audit_len, entries_after, newest_id};
use crate::helpers::*;

struct Refused {
    method: Method,
    path: &'static str,
    key: Key,
    params: Params,
    status: u16,
}

fn refused(key: Key, path: &'static str, params: Params, status: u16) -> Refused {
    Refused {
        method: Method::POST,
        path,
        key,
        params,
        status,
    }
}

/// Bad input, unknown users, flocks, keys and sessions, rules, keys not allowed, no key.
fn refusals() -> Vec<Refused> {
    use Key::*;
    let mut cases = vec![
        refused(
            Admin,
            "user/add",
            |_| vec![("access_level", "user".into())],
            400,
        ),
        refused(
            Admin,
            "user/add",
            |_| {
                vec![
                    ("email", "new@x.io".into()),
                    ("access_level", "root".into()),
                ]
            },
            400,
        ),
        refused(
            Admin,
            "user/add",
            |w| vec![("email", w.user.clone()), ("access_level", "user".into())],
            409,
        ),
        refused(
            Admin,
            "user/disable",
            |_| vec![("email", "nobody@x.io".into())],
            404,
        ),
        refused(
            Admin,
            "user/disable",
            |_| vec![("email", ADMIN.into())],
            409,
        ),
        refused(Admin, "user/remove", |_| vec![("email", ADMIN.into())], 409),
        refused(
            Admin,
            "user/edit/access_level",
            |_| vec![("email", ADMIN.into()), ("access_level", "user".into())],
            409,
        ),
        refused(Admin, "user/note/add", user, 400),
        refused(
            Admin,
            "user/password/reset",
            |_| vec![("email", "nobody@x.io".into())],
            404,
        ),
        refused(
            Admin,
            "user/flock/assign",
            |w| {
                vec![
                    ("email", w.user.clone()),
                    ("flock_id_list", UNKNOWN_FLOCK.into()),
                    ("flock_access_level", "watcher".into()),
                ]
            },
            404,
        ),
        refused(
            Admin,
            "user/flock/assign",
            |w| {
                vec![
                    ("email", w.other.clone()),
                    (
                        "flock_id_list",
                        format!("{},{UNKNOWN_FLOCK}", w.empty_flock),
                    ),
                    ("flock_access_level", "watcher".into()),
                ]
            },
            404,
        ),
        refused(
            Admin,
            "user/flock/unassign",
            |w| {
                vec![
                    ("email", w.user.clone()),
                    ("flock_id_list", w.flock.clone()),
                    ("flock_access_level", "owner".into()),
                ]
            },
            400,
        ),
        refused(Admin, "flock/create", |_| vec![("name", "".into())], 400),
        refused(
            Admin,
            "flock/create",
            |_| vec![("name", "Dev".into()), ("managers", "nobody@x.io".into())],
            404,
        ),
        refused(
            Admin,
            "flock/rename",
            |_| vec![("flock_id", UNKNOWN_FLOCK.into()), ("name", "X".into())],
            404,
        ),
        refused(
            Admin,
            "flock/delete",
            |_| vec![("flock_id", "flock:default".into())],
            409,
        ),
        refused(
            Admin,
            "flock/delete",
            |w| vec![("flock_id", w.flock.clone())],
            409,
        ),
        refused(
            Admin,
            "users/flock/assign/managers",
            |w| {
                vec![
                    ("flock_id", w.flock.clone()),
                    ("emails", "nobody@x.io".into()),
                ]
            },
            404,
        ),
        refused(
            Admin,
            "flock/auth_token/add",
            |_| vec![("flock_id", UNKNOWN_FLOCK.into()), ("note", "n".into())],
            404,
        ),
        refused(
            Admin,
            "flock/auth_token/remove",
            |_| vec![("key_id", "0123456789abcdef".into())],
            404,
        ),
        refused(
            Admin,
            "user/sessions/revoke",
            |w| {
                vec![
                    ("email", w.user.clone()),
                    ("session_id", UNKNOWN_SESSION.into()),
                ]
            },
            404,
        ),
        refused(
            Admin,
            "user/sessions/revoke",
            |w| {
                vec![
                    ("email", w.user.clone()),
                    ("session_id", "not a session".into()),
                ]
            },
            400,
        ),
        refused(
            Admin,
            "audit_trail/purge",
            |_| vec![("id", "999999".into())],
            404,
        ),
        refused(
            Admin,
            "audit_trail/purge",
            |_| vec![("id", "first".into())],
            400,
        ),
        refused(Admin, "audit_trail/purge", nothing, 400),
        // Keys whose type or flock doesn't allow the call.
        refused(Reader, "user/disable", user, 403),
        refused(
            Reader,
            "audit_trail/purge",
            |_| vec![("id", "1".into())],
            403,
        ),
        refused(Analyst, "settings/api/disable", nothing, 403),
        refused(
            Analyst,
            "flock/create",
            |_| vec![("name", "Dev".into())],
            403,
        ),
        refused(
            Flock,
            "users/flock/assign/watchers",
            |w| {
                vec![
                    ("flock_id", w.empty_flock.clone()),
                    ("emails", w.other.clone()),
                ]
            },
            403,
        ),
        refused(
            Flock,
            "user/flock/assign",
            |w| {
                vec![
                    ("email", w.other.clone()),
                    ("flock_id_list", format!("{},{}", w.flock, w.empty_flock)),
                    ("flock_access_level", "watcher".into()),
                ]
            },
            403,
        ),
        refused(Flock, "flock/create", |_| vec![("name", "Dev".into())], 403),
        refused(
            Flock,
            "audit_trail/purge",
            |_| vec![("id", "1".into())],
            403,
        ),
        // No key, or a forged one.
        refused(Nothing, "user/disable", user, 401),
        refused(Forged, "user/disable", user, 401),
        // The same name twice with different values.
        refused(
            Admin,
            "user/disable",
            |w| vec![("email", w.user.clone()), ("email", w.other.clone())],
            400,
        ),
    ];
    cases.push(Refused {
        method: Method::GET,
        ..refused(Admin, "user/disable", user, 405)
    });
    cases.push(Refused {
        method: Method::DELETE,
        ..refused(
            Admin,
            "user/note/delete",
            |_| vec![("email", "nobody@x.io".into())],
            404,
        )
    });
    cases.push(Refused {
        method: Method::DELETE,
        ..refused(
            Admin,
            "auth_token/remove",
            |_| vec![("key_id", "0123456789abcdef".into())],
            404,
        )
    });
    cases
}

#[tokio::test]
async fn a_refused_api_call_leaves_no_entry() {
    let world = World::new().await;
    let scene = world.scene().await;
    let analyst = world.app.new_key("analyst").await;
    let mut failures = Failures::default();
    for case in refusals() {
        let what = format!("{} {} as {:?}", case.method, case.path, case.key);
        let params = (case.params)(&scene);
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (len, newest) = (audit_len(&world.app), newest_id(&world.app));
        let resp = match case.key {
            Key::Analyst => {
                world
                    .call(case.method.clone(), case.path, Some(&analyst), &params)
                    .await
            }
            Key::Forged => {
                let forged = "roost_0123456789abcdef_0123456789abcdef0123456789abcdef";
                let request = build_request(
                    &world.api,
                    &world.app.address,
                    case.method.clone(),
                    case.path,
                    Auth::Header(forged),
                    &params,
                );
                send(request).await
            }
            key => {
                let token = token(&world, &scene, key);
                world
                    .call(case.method.clone(), case.path, token.as_deref(), &params)
                    .await
            }
        };
        failures.check(what.clone(), &resp, case.status, None);
        let after = (audit_len(&world.app), newest_id(&world.app));
        if after != (len, newest) {
            let entries = entries_after(&world.app, newest);
            failures.0.push(format!(
                "{what}: left {:?} (length {len} -> {})",
                actions(&entries),
                after.0
            ));
        }
    }
    failures.assert_none();
}

#[tokio::test]
async fn while_the_api_is_off_calls_are_refused_without_an_entry() {
    let app = spawn_app().await;
    app.add_user("ann@x.io", "user").await;
    app.post("settings/api/disable", &[]).await.ok_bare();
    let before = (audit_len(&app), newest_id(&app));
    let resp = app.post("user/disable", &[("email", "ann@x.io")]).await;
    resp.err(403, "API access is disabled");
    let path = "settings/usermanagement/globally_enforce_2fa/enable";
    app.post(path, &[]).await.err(403, "API access is disabled");
    assert_eq!((audit_len(&app), newest_id(&app)), before);
}

/// Every read-only route of `src/api/mod.rs`.
fn reads(w: &Scene) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    vec![
        ("ping", vec![]),
        ("settings", vec![]),
        ("mail/queue", vec![]),
        ("user/get", vec![("email", w.user.clone())]),
        ("user/auth", vec![("email", w.user.clone())]),
        ("users/list", vec![]),
        ("users/list", vec![("limit", "1".into())]),
        ("users/filter", vec![("filter_str", "ann".into())]),
        ("flocks/list", vec![]),
        ("flocks/list", vec![("email", w.user.clone())]),
        ("flock/users", vec![("flock_id", w.flock.clone())]),
        ("auth_token/list", vec![]),
        ("flock/auth_token/list", vec![("flock_id", w.flock.clone())]),
        ("user/sessions", vec![("email", w.user.clone())]),
        ("audit_trail/fetch", vec![]),
        (
            "audit_trail/fetch",
            vec![("limit", "2".into()), ("tz", "Europe/Berlin".into())],
        ),
        ("audit_trail/download/json", vec![]),
    ]
}

#[tokio::test]
async fn reading_through_the_api_leaves_no_entry() {
    let world = World::new().await;
    let scene = world.scene().await;
    let before = (audit_len(&world.app), newest_id(&world.app));
    let token = Some(world.app.admin_token.as_str());
    for (path, params) in reads(&scene) {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = world.call(Method::GET, path, token, &params).await;
        assert_eq!(resp.status, 200, "GET {path}: {}", resp.text);
        assert_eq!(
            (audit_len(&world.app), newest_id(&world.app)),
            before,
            "GET {path} left {:?}",
            actions(&entries_after(&world.app, before.1))
        );
    }
}
