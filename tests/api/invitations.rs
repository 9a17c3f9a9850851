//! Invitations end to end over HTTP: created through the API and the console, used by invitees
//! (domain refused, uses counted, expiry, revocation, 2FA enforcement after sign-up), and what
//! bad input and other callers get.

use roost::clock::Clock;
use serde_json::Value;

use crate::console::{Console, PASSWORD};
use crate::helpers::*;
use crate::two_factor::now;

fn path_of(app: &TestApp, link: &str) -> String {
    link.strip_prefix(&app.console_url)
        .expect("a link to this console")
        .to_string()
}

async fn create(app: &TestApp, params: &[(&str, &str)]) -> Value {
    app.post("invite/create", params).await.ok()["invitation"].clone()
}

/// The invitee's browser: opens the link, fills the form.
async fn join(app: &TestApp, path: &str, email: &str) -> (Console, crate::console::Page) {
    let invitee = Console::new(app);
    let form = invitee.get(path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let page = invitee
        .post(
            path,
            &[
                ("email", email),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    (invitee, page)
}

async fn listed(app: &TestApp) -> Vec<Value> {
    app.get("invites/list", &[]).await.ok()["invitations"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn an_invitation_makes_accounts_for_its_domain_until_its_uses_are_taken() {
    let app = spawn_app().await;
    let ops = app.create_flock("Ops").await;
    let invitation = create(
        &app,
        &[
            ("watcher_flocks", &ops),
            ("max_uses", "2"),
            ("email_domain", "Example.com"),
        ],
    )
    .await;
    assert_eq!(invitation["state"], "active");
    assert_eq!(invitation["email_domain"], "example.com");
    assert_eq!(invitation["access_level"], "user");
    let link = invitation["link"].as_str().unwrap().to_string();
    let path = path_of(&app, &link);
    let secret = path.rsplit('/').next().unwrap().to_string();
    // The link isn't kept: not in the list, not in the database file.
    let all = listed(&app).await;
    assert!(all[0].get("link").is_none());
    let file = std::fs::read(app.data_dir.join("roost.redb")).unwrap();
    assert!(!file.windows(secret.len()).any(|w| w == secret.as_bytes()));

    // Another domain is refused, nothing made.
    let (_, refused) = join(&app, &path, "mallory@evil.test").await;
    assert_eq!(refused.status, 400);
    refused.assert_contains("This invitation is for addresses at example.com.");
    assert_eq!(
        app.get("user/get", &[("email", "mallory@evil.test")])
            .await
            .status,
        404
    );

    // Two uses: each lands signed in, with the preset role.
    let (ann, page) = join(&app, &path, "ann@example.com").await;
    page.redirects_to("/");
    assert_eq!(ann.get("/account").await.status, 200, "signed in");
    let user = app.user("ann@example.com").await;
    assert_eq!(user["access_level"], "user");
    assert_eq!(user["watched_flocks"], serde_json::json!([ops]));
    let (_, page) = join(&app, &path, "Bob@EXAMPLE.com").await;
    page.redirects_to("/");
    // The third finds it used up.
    let third = Console::new(&app);
    assert_eq!(third.get(&path).await.status, 410);
    let all = listed(&app).await;
    assert_eq!(all[0]["state"], "used");
    let uses: Vec<&str> = all[0]["uses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(uses, ["ann@example.com", "Bob@EXAMPLE.com"]);
    // An address that has an account is refused by the next invitation too.
    let again = create(&app, &[]).await;
    let (_, page) = join(
        &app,
        &path_of(&app, again["link"].as_str().unwrap()),
        "ann@example.com",
    )
    .await;
    assert_eq!(page.status, 400);
    page.assert_contains("this address already has an account");
    // On the trail: created, two accepts (actor the invitee, the invitation named).
    let trail = app
        .get("audit_trail/fetch", &[("action_filter", "invite_accept")])
        .await;
    let text = trail.text;
    assert_eq!(text.matches("through invitation").count(), 2, "{text}");
}

#[tokio::test]
async fn an_invitation_ends_at_its_expiry_or_when_revoked() {
    let start = now();
    let clock = Clock::manual(start);
    let app = spawn_app_at(&clock).await;
    let soon = create(
        &app,
        &[("expires_at", &roost::timestamps::rfc3339(start + 3600))],
    )
    .await;
    let revoked = create(&app, &[]).await;
    let id = revoked["id"].as_str().unwrap().to_string();
    app.post("invite/revoke", &[("id", &id)]).await.ok();
    let revoked_path = path_of(&app, revoked["link"].as_str().unwrap());
    assert_eq!(Console::new(&app).get(&revoked_path).await.status, 410);
    app.post("invite/revoke", &[("id", "0123456789abcdef")])
        .await
        .err(404, "Invitation does not exist.");

    let soon_path = path_of(&app, soon["link"].as_str().unwrap());
    assert_eq!(Console::new(&app).get(&soon_path).await.status, 200);
    clock.set(start + 3600);
    let (_, page) = {
        let invitee = Console::new(&app);
        let page = invitee.get(&soon_path).await;
        (invitee, page)
    };
    assert_eq!(page.status, 410);
    let states: Vec<Value> = listed(&app)
        .await
        .iter()
        .map(|i| i["state"].clone())
        .collect();
    assert!(states.contains(&Value::from("expired")) && states.contains(&Value::from("revoked")));
}

#[tokio::test]
async fn an_admin_invitation_with_2fa_enforced_lands_on_enrollment() {
    let app = spawn_app().await;
    app.post("settings/usermanagement/globally_enforce_2fa/enable", &[])
        .await
        .ok();
    let invitation = create(&app, &[("access_level", "admin")]).await;
    let (invitee, page) = join(
        &app,
        &path_of(&app, invitation["link"].as_str().unwrap()),
        "new@x.io",
    )
    .await;
    page.redirects_to("/account/two-factor");
    // Confined there until enrolled.
    invitee
        .get("/users")
        .await
        .redirects_to("/account/two-factor");
    assert_eq!(app.user("new@x.io").await["access_level"], "admin");
    let review = app.get("access/review", &[]).await;
    let by = review.ok()["review"]["new_admins"]["admins"][0]["by"].clone();
    assert!(by.as_str().unwrap().contains("(invitation "), "{by}");
}

#[tokio::test]
async fn bad_requests_and_other_callers_create_nothing() {
    let app = spawn_app().await;
    let ops = app.create_flock("Ops").await;
    let gone = app.create_flock("Gone").await;
    app.post("flock/delete", &[("flock_id", &gone)]).await.ok();
    let past = roost::timestamps::rfc3339(now() - 10);
    let far = roost::timestamps::rfc3339(now() + 91 * 24 * 3600);
    for (params, status, message) in [
        (
            vec![("max_uses", "0")],
            400,
            "Parameter 'max_uses' must be a whole number from 1 to 1000.",
        ),
        (
            vec![("max_uses", "1001")],
            400,
            "Parameter 'max_uses' must be a whole number from 1 to 1000.",
        ),
        (
            vec![("max_uses", "two")],
            400,
            "Parameter 'max_uses' must be a whole number from 1 to 1000.",
        ),
        (
            vec![("expires_at", past.as_str())],
            400,
            "The time is in the past: give a future time, or leave it out.",
        ),
        (
            vec![("expires_at", far.as_str())],
            400,
            "Parameter 'expires_at' must be within 90 days.",
        ),
        (
            vec![("email_domain", "not a domain")],
            400,
            "Parameter 'email_domain' is not a valid domain (e.g. example.com).",
        ),
        (
            vec![("access_level", "root")],
            400,
            "Parameter 'access_level' must be 'admin' or 'user'.",
        ),
        (vec![("watcher_flocks", "flock:nope")], 400, ""),
        (
            vec![("watcher_flocks", gone.as_str())],
            404,
            "Flock does not exist.",
        ),
        (
            vec![
                ("watcher_flocks", ops.as_str()),
                ("manager_flocks", ops.as_str()),
            ],
            400,
            "",
        ),
    ] {
        let answer = app.post("invite/create", &params).await;
        if message.is_empty() {
            answer.err_status(status);
        } else {
            answer.err(status, message);
        }
    }
    assert!(listed(&app).await.is_empty());
    let reader = app.new_key("read-only").await;
    let flock_key = app.new_flock_key(&ops, "admin").await;
    for key in [&reader, &flock_key] {
        for (path, get) in [
            ("invite/create", false),
            ("invites/list", true),
            ("invite/revoke", false),
        ] {
            let answer = if get {
                app.get_as(key, path, &[]).await
            } else {
                app.post_as(key, path, &[("id", "x")]).await
            };
            assert!(
                answer.status == 401 || answer.status == 403,
                "{path}: {}",
                answer.status
            );
        }
    }
    assert!(listed(&app).await.is_empty());
    // A link that never existed.
    assert_eq!(
        Console::new(&app)
            .get(&format!("/invite/{}", "ab".repeat(32)))
            .await
            .status,
        410
    );
}

#[tokio::test]
async fn the_console_creates_lists_and_revokes_invitations() {
    let app = spawn_app().await;
    let admin = app.console_as("boss@x.io", "admin").await;
    let ops = app.create_flock("Ops").await;
    admin.get("/invitations").await;
    let page = admin
        .post(
            "/invitations",
            &[
                ("access_level", "user"),
                ("flock_id", &ops),
                ("role", "manager"),
                ("max_uses", "3"),
                ("expires", ""),
                ("email_domain", ""),
            ],
        )
        .await;
    assert_eq!(page.status, 200);
    page.assert_contains("id=\"invitation-link\"");
    let link = page
        .body
        .split("<code id=\"invitation-link\">")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap()
        .to_string();
    let (_, joined) = join(&app, &path_of(&app, &link), "carol@x.io").await;
    joined.redirects_to("/");
    assert_eq!(
        app.user("carol@x.io").await["managed_flocks"],
        serde_json::json!([ops])
    );
    let list = admin.get("/invitations").await;
    list.assert_contains("1 of 3");
    list.assert_contains("carol@x.io");
    let id = listed(&app).await[0]["id"].as_str().unwrap().to_string();
    admin
        .post(&format!("/invitations/{id}/revoke"), &[])
        .await
        .redirects_to("/invitations");
    assert_eq!(listed(&app).await[0]["state"], "revoked");
    // Bad uses: the form again with the reason, nothing created.
    let refused = admin
        .post(
            "/invitations",
            &[("access_level", "user"), ("max_uses", "0")],
        )
        .await;
    assert_eq!(refused.status, 400);
    refused.assert_contains("Uses: a whole number from 1 to 1000.");
    assert_eq!(listed(&app).await.len(), 1);
}

/// Twenty invitees at once on a link for five: exactly five accounts, the others refused, the
/// uses counted once each.
#[tokio::test]
async fn concurrent_invitees_never_exceed_the_uses() {
    let app = spawn_app().await;
    let invitation = create(&app, &[("max_uses", "5")]).await;
    let path = path_of(&app, invitation["link"].as_str().unwrap());
    let mut invitees = Vec::new();
    for n in 0..20 {
        let invitee = Console::new(&app);
        assert_eq!(invitee.get(&path).await.status, 200);
        invitees.push((invitee, format!("p{n}@x.io")));
    }
    let posts = invitees.iter().map(|(invitee, email)| {
        let path = path.clone();
        async move {
            let fields = [
                ("email", email.as_str()),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ];
            invitee.post(&path, &fields).await
        }
    });
    let pages = futures_util::future::join_all(posts).await;
    let made = pages.iter().filter(|page| page.status == 303).count();
    assert_eq!(
        made,
        5,
        "{:?}",
        pages.iter().map(|p| p.status).collect::<Vec<_>>()
    );
    assert!(
        pages
            .iter()
            .all(|page| [303, 410, 503].contains(&page.status))
    );
    let mut accounts = 0;
    for (_, email) in &invitees {
        if app.get("user/get", &[("email", email)]).await.status == 200 {
            accounts += 1;
        }
    }
    assert_eq!(accounts, 5);
    assert_eq!(listed(&app).await[0]["uses"].as_array().unwrap().len(), 5);
    assert_eq!(listed(&app).await[0]["state"], "used");
}
