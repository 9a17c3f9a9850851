//! The password path under hostile traffic: parallel guesses run at most the limit's number of
//! argon2 computations (counted by the app's own hashing workers), a full hashing queue answers
//! "busy", locks escalate and outlive a restart, forgot-password never locks anyone out, sessions
//! live on the server, and `next` can't leave the site.

use futures_util::future::join_all;
use reqwest::Method;
use roost::auth::login_throttle::{PER_ACCOUNT, PER_CLIENT};
use roost::domain::{Email, Lock};
use roost::store::{FactorAttempt, Store};

use crate::console::{Console, PASSWORD, Page};
use crate::helpers::*;
use crate::two_factor::{code_at, enroll, now};

/// Argon2 computations the app ran while `work` ran.
async fn computations_during<F: std::future::Future>(app: &TestApp, work: F) -> (u64, F::Output) {
    let before = app.hasher.computations();
    let output = work.await;
    // A computation finishes after its answer is sent: let the workers settle.
    for _ in 0..100 {
        if app.hasher.in_flight() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    (app.hasher.computations() - before, output)
}

/// `n` posts of the form `fields(i)` to `path` at once from one browser, and the argon2
/// computations the app ran meanwhile.
async fn burst(
    app: &TestApp,
    console: &Console,
    path: &str,
    n: usize,
    fields: impl Fn(usize) -> Vec<(String, String)>,
) -> (u64, Vec<Page>) {
    computations_during(
        app,
        join_all((0..n).map(|i| {
            let fields = fields(i);
            async move {
                let fields: Vec<(&str, &str)> = fields
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                console.post(path, &fields).await
            }
        })),
    )
    .await
}

/// A login form's fields.
fn login(email: &str, password: &str) -> Vec<(String, String)> {
    vec![
        ("email".to_string(), email.to_string()),
        ("password".to_string(), password.to_string()),
    ]
}

fn statuses(pages: &[Page]) -> Vec<u16> {
    let mut statuses: Vec<u16> = pages.iter().map(|p| p.status).collect();
    statuses.sort();
    statuses
}

fn count(pages: &[Page], status: u16) -> usize {
    pages.iter().filter(|p| p.status == status).count()
}

#[tokio::test]
async fn a_hundred_parallel_wrong_passwords_for_one_account_run_at_most_the_limit_of_checks() {
    let app = spawn_app().await;
    app.user_with_password("ann@x.io", "admin").await;
    let console = Console::new(&app);
    console.get("/login").await;
    let (checks, pages) = burst(&app, &console, "/login", 100, |n| {
        login("ann@x.io", &format!("wrong password {n}"))
    })
    .await;
    assert!(
        checks <= u64::from(PER_ACCOUNT),
        "{checks} password checks ran for one account: {:?}",
        statuses(&pages)
    );
    assert_eq!(count(&pages, 401) as u64, checks, "{:?}", statuses(&pages));
    assert_eq!(count(&pages, 429) as u64, 100 - checks);
    // Now locked: the right password is refused too, without a check.
    let (checks, page) = computations_during(&app, console.login("ann@x.io", PASSWORD)).await;
    assert_eq!(page.status, 429);
    page.assert_contains("Try again in");
    assert_eq!(checks, 0);
    // The lock is kept in the store, for a restart.
    let kept = app
        .store
        .login_lock(&Email::parse("ann@x.io").unwrap())
        .unwrap()
        .expect("the lock is stored");
    assert!(kept.until > now());
}

#[tokio::test]
async fn forty_nine_wrong_guesses_then_the_right_one_never_log_in() {
    let app = spawn_app().await;
    app.user_with_password("ann@x.io", "admin").await;
    let console = Console::new(&app);
    console.get("/login").await;
    let (checks, pages) = burst(&app, &console, "/login", 49, |_| {
        login("ann@x.io", "guess guess")
    })
    .await;
    assert!(checks <= u64::from(PER_ACCOUNT), "{checks}");
    assert_eq!(count(&pages, 303), 0);
    let page = console.login("ann@x.io", PASSWORD).await;
    assert_eq!(page.status, 429, "the right password after the burst");
    console.get("/account").await.redirects_to("/login");
}

#[tokio::test]
async fn one_client_address_across_many_accounts_runs_at_most_its_limit() {
    let app = spawn_app().await;
    let console = Console::new(&app);
    console.get("/login").await;
    let (checks, pages) = burst(&app, &console, "/login", 64, |n| {
        login(&format!("nobody{n}@x.io"), "some guess")
    })
    .await;
    assert!(
        checks <= u64::from(PER_CLIENT),
        "{checks} checks from one address: {:?}",
        statuses(&pages)
    );
    assert_eq!(count(&pages, 429) as u64, 64 - checks);
}

#[tokio::test]
async fn a_new_forwarded_for_address_per_guess_does_not_multiply_account_guesses() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_in(dir, |config| {
        config.trusted_proxies =
            roost::config::TrustedProxies::parse("127.0.0.1").expect("proxies");
    })
    .await;
    app.user_with_password("ann@x.io", "admin").await;
    let console = Console::new(&app);
    console.get("/login").await;
    let (checks, pages) = computations_during(&app, async {
        join_all((0..200u32).map(|n| {
            let client = format!("198.51.{}.{}", n / 250, n % 250 + 1);
            let console = &console;
            async move {
                console
                    .post_forwarded_for(
                        "/login",
                        &[("email", "ann@x.io"), ("password", "guess guess")],
                        &client,
                    )
                    .await
            }
        }))
        .await
    })
    .await;
    assert!(checks <= u64::from(PER_ACCOUNT), "{checks}");
    assert_eq!(count(&pages, 429) as u64, 200 - checks);
}

#[tokio::test]
async fn a_full_hashing_queue_answers_busy_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_in(dir, |config| {
        config.hash_workers = 1;
        config.hash_queue = Some(1);
    })
    .await;
    app.user_with_password("ann@x.io", "admin").await;
    let console = Console::new(&app);
    console.get("/login").await;
    let responses = join_all((0..PER_CLIENT).map(|n| {
        let email = format!("someone{n}@x.io");
        let console = &console;
        async move {
            let response = console
                .post_response("/login", &[("email", &email), ("password", "a guess")])
                .await;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            (
                status,
                retry_after,
                response.text().await.unwrap_or_default(),
            )
        }
    }))
    .await;
    let busy: Vec<_> = responses.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(
        !busy.is_empty(),
        "one worker and one queue slot must refuse some of {PER_CLIENT} parallel checks"
    );
    for (_, retry_after, body) in &busy {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert!(body.contains("busy"), "{body}");
    }
    assert!(
        responses.iter().all(|(s, _, _)| [401, 503].contains(s)),
        "{:?}",
        responses.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    // A busy answer costs no slot: the client's limit is untouched by them, and the account
    // still logs in.
    console.login("ann@x.io", PASSWORD).await.redirects_to("/");
}

#[tokio::test]
async fn a_lock_kept_before_a_restart_holds_after_it_and_an_admin_unlocks_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = Store::open(dir.path()).expect("store");
        store
            .add_user(
                &Actor::named("test"),
                roost::store::NewUser {
                    email: Email::parse("ann@x.io").unwrap(),
                    access_level: roost::domain::AccessLevel::User,
                    note: None,
                    two_factor_required: false,
                },
                None,
            )
            .expect("user");
        let id = store
            .user_by_email(&Email::parse("ann@x.io").unwrap())
            .unwrap()
            .user
            .id;
        let hash = roost::auth::passwords::hash_password(PASSWORD).unwrap();
        store
            .change_password(&Actor::named("test"), id, hash, None)
            .unwrap();
        let lock = Lock {
            until: now() + 3600,
            lockouts: 3,
            since: now() - 600,
        };
        store
            .set_login_lock(
                &Actor::named("test"),
                &Email::parse("ann@x.io").unwrap(),
                lock,
            )
            .unwrap();
    }
    let app = spawn_app_in(dir, |_| {}).await;
    let ann = Console::new(&app);
    let page = ann.login("ann@x.io", PASSWORD).await;
    assert_eq!(page.status, 429, "the lock outlived the restart");

    let admin = app.console_as("root@x.io", "admin").await;
    let id = app.user("ann@x.io").await["id"].as_u64().unwrap();
    let user_page = admin.get(&format!("/users/{id}")).await;
    user_page.assert_contains("id=\"fact-login-locked\"");
    // Without the CSRF token nothing happens.
    let refused = admin.post_raw(&format!("/users/{id}/unlock"), &[]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(ann.login("ann@x.io", PASSWORD).await.status, 429);
    // A non-admin may not unlock.
    let bob = app.console_as("bob@x.io", "user").await;
    bob.get("/account").await;
    assert_eq!(
        bob.post(&format!("/users/{id}/unlock"), &[]).await.status,
        403
    );

    admin.get(&format!("/users/{id}")).await;
    admin
        .post(&format!("/users/{id}/unlock"), &[])
        .await
        .redirects_to(&format!("/users/{id}"));
    assert!(
        !admin
            .get(&format!("/users/{id}"))
            .await
            .body
            .contains("fact-login-locked")
    );
    assert!(
        app.store
            .login_lock(&Email::parse("ann@x.io").unwrap())
            .unwrap()
            .is_none()
    );
    ann.login("ann@x.io", PASSWORD).await.redirects_to("/");
}

#[tokio::test]
async fn ten_forgot_password_requests_never_lock_the_account_and_send_at_most_three_mails() {
    let app = spawn_app().await;
    app.user_with_password("ann@x.io", "admin").await;
    let console = Console::new(&app);
    console.get("/forgot-password").await;
    for _ in 0..10 {
        let page = console
            .post("/forgot-password", &[("email", "ann@x.io")])
            .await;
        assert_eq!(page.status, 200, "always the same answer");
        page.assert_contains("id=\"forgot-sent\"");
    }
    // The mails go out in the background: wait for them, then count.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mails = app.outbox().await;
    assert_eq!(
        mails.len(),
        3,
        "the per-account limit of forgot-password mails"
    );
    console.login("ann@x.io", PASSWORD).await.redirects_to("/");
}

#[tokio::test]
async fn changing_the_password_checks_the_current_one_under_the_login_limits() {
    let app = spawn_app().await;
    let console = app.console_as("ann@x.io", "user").await;
    console.get("/account").await;
    let (checks, pages) = burst(&app, &console, "/account/password", 30, |n| {
        vec![
            ("current".to_string(), format!("not it {n}")),
            ("password".to_string(), "a brand new password".to_string()),
            ("confirm".to_string(), "a brand new password".to_string()),
        ]
    })
    .await;
    assert!(checks <= u64::from(PER_ACCOUNT), "{checks}");
    assert_eq!(count(&pages, 429) as u64, 30 - checks);
    // The right current password is refused while the account is locked.
    let page = console
        .post(
            "/account/password",
            &[
                ("current", PASSWORD),
                ("password", "a brand new password"),
                ("confirm", "a brand new password"),
            ],
        )
        .await;
    assert_eq!(page.status, 429);
    page.assert_contains("Try again in");
    // The session itself goes on; the password is unchanged.
    assert_eq!(console.get("/account").await.status, 200);
    let other = Console::new(&app);
    assert_eq!(other.login("ann@x.io", PASSWORD).await.status, 429);
}

// ---- sessions on the server ----

#[tokio::test]
async fn after_logout_a_copied_cookie_is_refused() {
    let app = spawn_app().await;
    let console = app.console_as("ann@x.io", "admin").await;
    assert_eq!(console.get("/users").await.status, 200);
    let cookie = console.session_cookie().expect("session cookie");

    let thief = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let stolen = thief
        .get(format!("{}/users", app.address))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stolen.status(),
        200,
        "the copy works while the session lives"
    );

    console.get("/account").await;
    console.post("/logout", &[]).await.redirects_to("/login");
    let stolen = thief
        .get(format!("{}/users", app.address))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 303, "the copy is refused after logout");
    let id = app.user("ann@x.io").await["id"].as_u64().unwrap();
    assert!(app.store.sessions_of(id).unwrap().is_empty());
}

#[tokio::test]
async fn people_see_their_sessions_and_end_the_others() {
    let app = spawn_app().await;
    let laptop = app.console_as("ann@x.io", "user").await;
    let phone = Console::new(&app);
    phone.login("ann@x.io", PASSWORD).await.redirects_to("/");
    let page = laptop.get("/account").await;
    assert_eq!(
        page.body.matches("id=\"end-session-").count(),
        2,
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("id=\"this-session\"").count(), 1);

    laptop
        .post("/account/sessions/end-others", &[])
        .await
        .redirects_to("/account#sessions");
    phone.get("/account").await.redirects_to("/login");
    let page = laptop.get("/account").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches("id=\"end-session-").count(), 1);

    // Ending one other session by its id, and an id that names nothing.
    phone.login("ann@x.io", PASSWORD).await.redirects_to("/");
    let id = app.user("ann@x.io").await["id"].as_u64().unwrap();
    let page = laptop.get("/account").await;
    let laptops = current_session_id(&page);
    let sessions = app.store.sessions_of(id).unwrap();
    assert_eq!(sessions.len(), 2);
    let phones = sessions
        .iter()
        .map(|s| s.public_id().to_string())
        .find(|public| *public != laptops)
        .unwrap();
    laptop.get("/account").await;
    let unknown = laptop
        .post(
            "/account/sessions/end",
            &[("session_id", "0123456789abcdef")],
        )
        .await;
    assert_eq!(unknown.status, 404);
    laptop.get("/account").await;
    let garbage = laptop
        .post("/account/sessions/end", &[("session_id", "<script>")])
        .await;
    assert_eq!(garbage.status, 404);
    laptop.get("/account").await;
    laptop
        .post("/account/sessions/end", &[("session_id", &phones)])
        .await;
    let left = app.store.sessions_of(id).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].public_id(), laptops);
    phone.get("/account").await.redirects_to("/login");
    // Ending one's own current session is a logout.
    laptop.get("/account").await;
    laptop
        .post("/account/sessions/end", &[("session_id", &laptops)])
        .await
        .redirects_to("/login");
    laptop.get("/account").await.redirects_to("/login");
    assert!(app.store.sessions_of(id).unwrap().is_empty());
}

/// The public id of the session a page was asked for with (the row marked "this one").
fn current_session_id(page: &Page) -> String {
    let marker = page
        .body
        .find("id=\"this-session\"")
        .expect("a row marked as this session");
    let row = page.body[..marker]
        .rfind("id=\"session-")
        .expect("the row's id")
        + "id=\"session-".len();
    page.body[row..row + 16].to_string()
}

#[tokio::test]
async fn admins_see_a_users_sessions_and_end_them() {
    let app = spawn_app().await;
    let admin = app.console_as("root@x.io", "admin").await;
    let bob = app.console_as("bob@x.io", "user").await;
    let id = app.user("bob@x.io").await["id"].as_u64().unwrap();
    let page = admin.get(&format!("/users/{id}")).await;
    assert_eq!(page.body.matches("id=\"end-session-").count(), 1);
    page.assert_contains("127.0.0.1");
    // Bob may not end his own sessions through the admin form, nor see the page.
    bob.get("/account").await;
    assert_eq!(
        bob.post(&format!("/users/{id}/sessions/end"), &[])
            .await
            .status,
        403
    );
    admin.get(&format!("/users/{id}")).await;
    admin
        .post(&format!("/users/{id}/sessions/end"), &[])
        .await
        .redirects_to(&format!("/users/{id}#sessions"));
    bob.get("/account").await.redirects_to("/login");
    admin
        .get(&format!("/users/{id}"))
        .await
        .assert_contains("id=\"no-sessions\"");
}

#[tokio::test]
async fn user_sessions_api_lists_and_revokes() {
    let app = spawn_app().await;
    app.user_with_password("ann@x.io", "user").await;
    let one = Console::new(&app);
    one.login("ann@x.io", PASSWORD).await.redirects_to("/");
    let two = Console::new(&app);
    two.login("ann@x.io", PASSWORD).await.redirects_to("/");

    let body = app
        .get("user/sessions", &[("email", "ann@x.io")])
        .await
        .ok()
        .clone();
    let sessions = body["sessions"].as_array().expect("sessions").clone();
    assert_eq!(sessions.len(), 2);
    for session in &sessions {
        let fields: Vec<&str> = session
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields, ["created", "id", "ip", "last_seen", "user_agent"]);
        assert_eq!(session["ip"], "127.0.0.1");
        assert_eq!(session["id"].as_str().unwrap().len(), 16);
    }
    let first = sessions[0]["id"].as_str().unwrap().to_string();

    // Bad input: each a clear error, nothing ended.
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, &'a str);
    let cases: [Case; 5] = [
        (&[], 400, "Missing required parameter 'email'."),
        (
            &[("email", "not-an-email")],
            400,
            "Parameter 'email' is not a valid email address.",
        ),
        (&[("email", "nobody@x.io")], 404, USER_DOES_NOT_EXIST),
        (
            &[("email", "ann@x.io"), ("session_id", "xyz")],
            400,
            "Parameter 'session_id' is not a valid session id.",
        ),
        (
            &[("email", "ann@x.io"), ("session_id", "0123456789abcdef")],
            404,
            "Session does not exist.",
        ),
    ];
    for (params, status, message) in cases {
        app.post("user/sessions/revoke", params)
            .await
            .err(status, message);
    }
    app.get("user/sessions", &[("email", "nobody@x.io")])
        .await
        .err(404, USER_DOES_NOT_EXIST);
    assert_eq!(
        app.get("user/sessions", &[("email", "ann@x.io")])
            .await
            .ok()["sessions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    app.post(
        "user/sessions/revoke",
        &[("email", "ann@x.io"), ("session_id", &first)],
    )
    .await
    .ok_msg_with("1 session of user ann@x.io revoked.", 1);
    app.post("user/sessions/revoke", &[("email", "ann@x.io")])
        .await
        .ok_msg_with("1 session of user ann@x.io revoked.", 1);
    one.get("/account").await.redirects_to("/login");
    two.get("/account").await.redirects_to("/login");
    app.post("user/sessions/revoke", &[("email", "ann@x.io")])
        .await
        .ok_msg_with("0 sessions of user ann@x.io revoked.", 0);

    // Read-only, analyst and flock keys: 403 (the endpoint table checks every kind too).
    let read_only = app.new_key("read-only").await;
    app.call(
        Method::GET,
        "user/sessions",
        Auth::Param(&read_only),
        &[("email", "ann@x.io")],
    )
    .await
    .err(403, KEY_NOT_ALLOWED);
}

impl Resp {
    #[track_caller]
    fn ok_msg_with(&self, msg: &str, revoked: u64) {
        assert_eq!(
            self.body,
            serde_json::json!({"result": "success", "msg": msg, "revoked": revoked}),
            "{self:?}"
        );
    }
}

#[tokio::test]
async fn every_safety_event_deletes_the_users_sessions() {
    let app = spawn_app().await;
    app.user_with_password("root@x.io", "admin").await;
    let events: [(&str, &[(&str, &str)]); 6] = [
        ("user/disable", &[]),
        ("user/edit/access_level", &[("access_level", "user")]),
        ("user/2fa/disable", &[]),
        ("user/webauthn/disable", &[]),
        ("user/sessions/revoke", &[]),
        ("user/remove", &[]),
    ];
    for (action, extra) in events {
        let email = format!("{}@x.io", action.replace('/', "-"));
        let console = app.console_as(&email, "admin").await;
        let id = app.user(&email).await["id"].as_u64().unwrap();
        assert_eq!(app.store.sessions_of(id).unwrap().len(), 1);
        let mut params = vec![("email", email.as_str())];
        params.extend_from_slice(extra);
        app.post(action, &params).await.ok();
        assert!(
            app.store.sessions_of(id).unwrap().is_empty(),
            "{action} left a session"
        );
        console.get("/account").await.redirects_to("/login");
    }

    // A password change ends the other sessions and keeps the one that made it.
    let laptop = app.console_as("pat@x.io", "user").await;
    let phone = Console::new(&app);
    phone.login("pat@x.io", PASSWORD).await.redirects_to("/");
    laptop.get("/account").await;
    laptop
        .post(
            "/account/password",
            &[
                ("current", PASSWORD),
                ("password", "another long password"),
                ("confirm", "another long password"),
            ],
        )
        .await
        .redirects_to("/account");
    assert_eq!(laptop.get("/account").await.status, 200);
    phone.get("/account").await.redirects_to("/login");
    let id = app.user("pat@x.io").await["id"].as_u64().unwrap();
    assert_eq!(app.store.sessions_of(id).unwrap().len(), 1);
}

#[tokio::test]
async fn repeated_factor_lockouts_grow() {
    let app = spawn_app().await;
    let console = app.console_as("ann@x.io", "user").await;
    let (secret, _) = enroll(&console, now()).await;
    let step = Console::new(&app);
    step.login("ann@x.io", PASSWORD)
        .await
        .redirects_to("/login/two-factor");
    step.get("/login/two-factor").await;
    let wrong = if code_at(&secret, now()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        step.post("/login/two-factor", &[("code", wrong)]).await;
    }
    let id = app.user("ann@x.io").await["id"].as_u64().unwrap();
    let first = app.store.user_by_id(id).unwrap();
    assert_eq!(first.factor_lockouts, 1);
    let first_lock = first.factor_locked_until - now();
    assert!((55..=60).contains(&first_lock), "{first_lock}");
    // The next series of wrong codes, once the lock is over (time passed in, as the store
    // takes it): the lock doubles.
    let later = first.factor_locked_until + 1;
    let reject = |_: &str| None;
    for _ in 0..5 {
        app.store
            .check_second_factor(
                &Actor::named("test"),
                id,
                FactorAttempt::Totp(&reject),
                later,
            )
            .unwrap();
    }
    let second = app.store.user_by_id(id).unwrap();
    assert_eq!(second.factor_lockouts, 2);
    assert_eq!(second.factor_locked_until - later, 120);
    // An admin's unlock lifts it and forgets the series.
    app.store
        .unlock_account(&Actor::named("test"), &UserRef::Id(id))
        .unwrap();
    let unlocked = app.store.user_by_id(id).unwrap();
    assert_eq!(
        (unlocked.factor_lockouts, unlocked.factor_locked_until),
        (0, 0)
    );
    step.post(
        "/login/two-factor",
        &[("code", &code_at(&secret, now() + 30))],
    )
    .await
    .redirects_to("/");
}

// ---- next ----

#[tokio::test]
async fn hostile_next_values_land_on_a_same_site_path_and_never_fail() {
    let app = spawn_app().await;
    app.user_with_password("ann@x.io", "admin").await;
    let long = format!("/{}", "a".repeat(5000));
    let hostile = [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "/\u{b}/evil.example",
        "/\0/evil.example",
        "//evil.example",
        "/\\evil.example",
        "\\/evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        " /users",
        "/users\r\nSet-Cookie: x=1",
        long.as_str(),
    ];
    for next in hostile {
        let console = Console::new(&app);
        console.get("/login").await;
        let page = console
            .post(
                "/login",
                &[
                    ("email", "ann@x.io"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "{next:?}");
        assert_eq!(page.location.as_deref(), Some("/"), "{next:?}");
        // The login form echoes it back as `/` too.
        let form = console
            .get(&format!(
                "/login?next={}",
                roost::web::error::encode_query_value(next)
            ))
            .await;
        assert!(form.status < 500);
    }
    // A same-site path is kept, encoded.
    let console = Console::new(&app);
    console.get("/login").await;
    let page = console
        .post(
            "/login",
            &[
                ("email", "ann@x.io"),
                ("password", PASSWORD),
                ("next", "/users?q=ü"),
            ],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/users?q=%C3%BC"));
}

#[tokio::test]
async fn a_long_next_through_the_factor_step_keeps_the_cookie_small() {
    let app = spawn_app().await;
    let console = app.console_as("ann@x.io", "user").await;
    let (secret, _) = enroll(&console, now()).await;
    let step = Console::new(&app);
    step.get("/login").await;
    let next = format!("/account?{}", "x".repeat(5000));
    step.post(
        "/login",
        &[
            ("email", "ann@x.io"),
            ("password", PASSWORD),
            ("next", &next),
        ],
    )
    .await
    .redirects_to("/login/two-factor");
    let cookie = step.session_cookie().expect("cookie");
    assert!(cookie.len() < 2000, "cookie of {} bytes", cookie.len());
    step.get("/login/two-factor").await;
    let page = step
        .post(
            "/login/two-factor",
            &[("code", &code_at(&secret, now() + 30))],
        )
        .await;
    page.redirects_to("/");
}
