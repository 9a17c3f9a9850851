//! The console's flock pages: listing, creating, renaming and deleting flocks, their members and
//! their API keys, for each kind of person (admin, manager, watcher, unrelated user, anonymous).

use crate::console::{Console, Page};
use crate::helpers::*;

const ADMIN: &str = "root@x.io";
const MANAGER: &str = "mia@x.io";
const WATCHER: &str = "wes@x.io";
const OUTSIDER: &str = "olga@x.io";

/// A flock "Ops" managed by `MANAGER` and watched by `WATCHER`, a second flock "Other" they are
/// not in, and a signed-in console for each of them and for an admin.
struct Cast {
    app: TestApp,
    admin: Console,
    manager: Console,
    watcher: Console,
    ops: String,
    other: String,
}

async fn cast() -> Cast {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    let manager = app.console_as(MANAGER, "user").await;
    let watcher = app.console_as(WATCHER, "user").await;
    let ops = app.create_flock("Ops").await;
    let other = app.create_flock("Other").await;
    app.assign(MANAGER, &ops, "manager").await;
    app.assign(WATCHER, &ops, "watcher").await;
    Cast {
        app,
        admin,
        manager,
        watcher,
        ops,
        other,
    }
}

/// The secret shown on a key-created page.
pub fn secret_on(page: &Page) -> String {
    let marker = "id=\"new-key-secret\">";
    let start = page.body.find(marker).expect("secret on the page") + marker.len();
    let end = page.body[start..].find('<').expect("end of secret") + start;
    page.body[start..end].trim().to_string()
}

/// The key id shown on a key-created page.
pub fn key_id_on(page: &Page) -> String {
    let marker = "id=\"new-key-id\">";
    let start = page.body.find(marker).expect("key id on the page") + marker.len();
    let end = page.body[start..].find('<').expect("end of key id") + start;
    page.body[start..end].to_string()
}

fn flock_names(flocks: &serde_json::Value) -> Vec<String> {
    let map = flocks["flocks"].as_object().expect("flocks object");
    let mut names: Vec<String> = map
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

// ---- the list and creating flocks ----

#[tokio::test]
async fn admin_sees_every_flock_with_its_id_and_member_counts() {
    let c = cast().await;
    let page = c.admin.get("/flocks").await;
    assert_eq!(page.status, 200);
    for text in [
        "Default Flock",
        "Ops",
        "Other",
        "flock:default",
        &c.ops,
        &c.other,
    ] {
        page.assert_contains(text);
    }
    let ops_row = format!(
        "<td><code>{}</code></td>\n      <td>1</td>\n      <td>1</td>",
        c.ops
    );
    page.assert_contains(&ops_row);
    page.assert_contains("id=\"create-flock-form\"");
}

#[tokio::test]
async fn admin_creates_a_flock_and_lands_on_its_page_with_a_flash() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    admin.get("/flocks").await;
    let page = admin.post("/flocks", &[("name", "  Night shift ")]).await;
    assert_eq!(page.status, 303);
    let location = page.location.clone().expect("location");
    let id = location.strip_prefix("/flocks/").expect("flock page");
    assert!(id.starts_with("flock:") && id.len() == 6 + 32, "{id}");
    let next = admin.get(&location).await;
    next.assert_contains("Flock “Night shift” created.");
    next.assert_contains("<h1 id=\"flock-name-heading\">Night shift</h1>");
    let flocks = app.get("flocks/list", &[]).await.ok().clone();
    assert_eq!(flocks["flocks"][id], "Night shift");
}

#[tokio::test]
async fn flock_create_errors_name_the_field_keep_the_typed_value_and_change_nothing() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    admin.get("/flocks").await;
    let before = app.snapshot().await;
    let page = admin.post("/flocks", &[("name", "   ")]).await;
    assert_eq!(page.status, 400);
    page.assert_contains("Name: Flock name cannot be empty.");
    let long = "n".repeat(101);
    let page = admin.post("/flocks", &[("name", &long)]).await;
    assert_eq!(page.status, 400);
    page.assert_contains("Name: Flock name longer than maximum (100 characters).");
    page.assert_contains(&format!("value=\"{long}\""));
    page.assert_contains("id=\"create-flock-error\"");
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn non_admins_see_only_the_flocks_they_manage_or_watch() {
    let c = cast().await;
    for (console, role) in [(&c.manager, "manager"), (&c.watcher, "watcher")] {
        let page = console.get("/flocks").await;
        assert_eq!(page.status, 200);
        page.assert_contains("My flocks");
        page.assert_contains(&format!("href=\"/flocks/{}\"", c.ops));
        page.assert_contains(&format!("<span class=\"badge\">{role}</span>"));
        assert!(!page.body.contains(&c.other), "{}", page.body);
        assert!(!page.body.contains("Default Flock"), "{}", page.body);
        assert!(!page.body.contains("create-flock-form"), "{}", page.body);
    }
    let outsider = c.app.console_as(OUTSIDER, "user").await;
    let page = outsider.get("/flocks").await;
    assert_eq!(page.status, 200);
    page.assert_contains("id=\"no-flocks\"");
}

#[tokio::test]
async fn only_admins_may_create_flocks() {
    let c = cast().await;
    let before = c.app.snapshot().await;
    for console in [&c.manager, &c.watcher] {
        console.get("/flocks").await;
        assert_eq!(
            console.post("/flocks", &[("name", "Mine")]).await.status,
            403
        );
    }
    assert_eq!(c.app.snapshot().await, before);
}

// ---- one flock ----

#[tokio::test]
async fn flock_page_shows_name_and_members_with_user_links_for_admins_only() {
    let c = cast().await;
    let manager_id = c.app.user(MANAGER).await["id"].as_u64().unwrap();
    let watcher_id = c.app.user(WATCHER).await["id"].as_u64().unwrap();
    let page = c.admin.get(&format!("/flocks/{}", c.ops)).await;
    assert_eq!(page.status, 200);
    page.assert_contains("<h1 id=\"flock-name-heading\">Ops</h1>");
    page.assert_contains(&format!("<a href=\"/users/{manager_id}\">{MANAGER}</a>"));
    page.assert_contains(&format!("<a href=\"/users/{watcher_id}\">{WATCHER}</a>"));
    for id in [
        "rename-flock-form",
        "create-flock-key-form",
        "delete-flock",
        "add-member-form",
    ] {
        page.assert_contains(&format!("id=\"{id}\""));
    }

    let page = c.manager.get(&format!("/flocks/{}", c.ops)).await;
    assert_eq!(page.status, 200);
    page.assert_contains(MANAGER);
    page.assert_contains(WATCHER);
    page.assert_contains("id=\"add-member-form\"");
    assert!(!page.body.contains("/users/"), "{}", page.body);
    for id in ["rename-flock-form", "create-flock-key-form", "delete-flock"] {
        assert!(!page.body.contains(id), "manager page has {id}");
    }

    let page = c.watcher.get(&format!("/flocks/{}", c.ops)).await;
    assert_eq!(page.status, 200);
    page.assert_contains(MANAGER);
    page.assert_contains(WATCHER);
    for id in ["add-member-form", "members/remove", "rename-flock-form"] {
        assert!(!page.body.contains(id), "watcher page has {id}");
    }
}

#[tokio::test]
async fn a_big_flock_shows_its_first_members_in_order_and_counts_the_rest() {
    let c = cast().await;
    let emails: Vec<String> = (0..250).map(|i| format!("w{i:03}@big.io")).collect();
    for email in &emails {
        c.app.add_user(email, "user").await;
    }
    c.app
        .post(
            "users/flock/assign/watchers",
            &[("flock_id", &c.ops), ("emails", &emails.join(","))],
        )
        .await
        .ok();
    let page = c.admin.get(&format!("/flocks/{}", c.ops)).await;
    assert_eq!(page.status, 200);
    // 200 watchers listed, in email order: w000 … w199; 50 more counted.
    page.assert_contains("w000@big.io");
    page.assert_contains("w199@big.io");
    assert!(
        !page.body.contains("w200@big.io"),
        "listed past the first 200"
    );
    page.assert_contains("id=\"more-watchers\"");
    page.assert_contains("… and 50 more watchers");
    assert!(!page.body.contains("id=\"more-managers\""));
    // The list of flocks counts them all.
    let list = c.admin.get("/flocks").await;
    list.assert_contains(&format!(
        "<td><code>{}</code></td>\n      <td>1</td>\n      <td>250</td>",
        c.ops
    ));
}

#[tokio::test]
async fn malformed_flock_ids_are_a_404_page_and_unknown_flocks_404_for_admins() {
    let c = cast().await;
    for path in [
        "/flocks/default",
        "/flocks/flock:xyz",
        "/flocks/flock:ABCDEF",
    ] {
        let page = c.admin.get(path).await;
        assert_eq!(page.status, 404, "{path}");
        page.assert_contains("Not found");
    }
    let page = c.admin.get(&format!("/flocks/{UNKNOWN_FLOCK}")).await;
    assert_eq!(page.status, 404);
    let page = c.manager.get(&format!("/flocks/{UNKNOWN_FLOCK}")).await;
    assert_eq!(page.status, 403, "no probing of flock ids by non-admins");
}

#[tokio::test]
async fn admin_renames_a_flock_and_errors_keep_the_typed_value() {
    let c = cast().await;
    let path = format!("/flocks/{}", c.ops);
    c.admin.get(&path).await;
    let page = c
        .admin
        .post(&format!("{path}/rename"), &[("name", "Operations")])
        .await;
    page.redirects_to(&path);
    c.admin
        .get(&path)
        .await
        .assert_contains("Flock renamed to “Operations”.");
    let flocks = c.app.get("flocks/list", &[]).await.ok().clone();
    assert_eq!(flocks["flocks"][c.ops.as_str()], "Operations");

    let before = c.app.snapshot().await;
    let long = "r".repeat(101);
    let page = c
        .admin
        .post(&format!("{path}/rename"), &[("name", &long)])
        .await;
    assert_eq!(page.status, 400);
    page.assert_contains("Name: Flock name longer than maximum (100 characters).");
    page.assert_contains(&format!("value=\"{long}\""));
    page.assert_contains("id=\"rename-flock-error\"");
    assert_eq!(c.app.snapshot().await, before);
}

// ---- deleting ----

#[tokio::test]
async fn admin_deletes_an_empty_flock_after_confirming_and_its_keys_go_with_it() {
    let c = cast().await;
    let key = c.app.new_flock_key(&c.other, "admin").await;
    let path = format!("/flocks/{}", c.other);
    let confirm = c.admin.get(&format!("{path}/delete")).await;
    assert_eq!(confirm.status, 200);
    confirm.assert_contains("id=\"delete-flock-form\"");
    confirm.assert_contains("together with its 1 API key");
    let page = c.admin.post(&format!("{path}/delete"), &[]).await;
    page.redirects_to("/flocks");
    let list = c.admin.get("/flocks").await;
    list.assert_contains("Flock “Other” deleted.");
    assert!(!list.body.contains(&c.other));
    let flocks = c.app.get("flocks/list", &[]).await.ok().clone();
    assert_eq!(flock_names(&flocks), sorted(&["Default Flock", "Ops"]));
    c.app
        .get_as(&key, "flocks/list", &[])
        .await
        .err(401, "Invalid auth_token");
}

#[tokio::test]
async fn the_default_flock_and_flocks_with_members_are_not_deleted() {
    let c = cast().await;
    let before = c.app.snapshot().await;
    for (flock, message) in [
        ("flock:default", "The default flock can't be deleted."),
        (c.ops.as_str(), "still has members"),
    ] {
        let path = format!("/flocks/{flock}");
        c.admin
            .get(&format!("{path}/delete"))
            .await
            .redirects_to(&path);
        c.admin.get(&path).await.assert_contains(message);
        c.admin
            .post(&format!("{path}/delete"), &[])
            .await
            .redirects_to(&path);
        let page = c.admin.get(&path).await;
        page.assert_contains("flash-error");
    }
    assert_eq!(c.app.snapshot().await, before);
}

// ---- flock API keys ----

#[tokio::test]
async fn admin_creates_a_flock_key_whose_secret_is_shown_once_and_works() {
    let c = cast().await;
    let path = format!("/flocks/{}", c.ops);
    c.admin.get(&path).await;
    let fields = [("auth_token_type", "read-only"), ("note", "dashboard")];
    let page = c.admin.post(&format!("{path}/keys"), &fields).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["cache-control"], "no-store");
    page.assert_contains("won't be shown again");
    let secret = secret_on(&page);
    let key_id = key_id_on(&page);
    assert!(secret.starts_with(&format!("roost_{key_id}_")), "{secret}");

    let resp = c
        .app
        .get_as(&secret, "flock/users", &[("flock_id", &c.ops)])
        .await;
    assert_eq!(strings(&resp.ok()["managers"]), sorted(&[MANAGER]));
    c.app
        .post_as(
            &secret,
            "users/flock/assign/watchers",
            &[("flock_id", &c.ops), ("emails", MANAGER)],
        )
        .await
        .err(403, KEY_NOT_ALLOWED);

    let listed = c
        .app
        .get("flock/auth_token/list", &[("flock_id", &c.ops)])
        .await;
    let keys = &listed.ok()["flock_api_keys"];
    assert_eq!(keys[0]["key_id"], key_id.as_str());
    assert_eq!(keys[0]["auth_token_type"], "read-only");
    assert_eq!(keys[0]["note"], "dashboard");
    assert_eq!(keys[0]["created_by"], ADMIN);

    let flock_page = c.admin.get(&path).await;
    flock_page.assert_contains(&key_id);
    flock_page.assert_contains("dashboard");
    assert!(!flock_page.body.contains(&secret), "secret shown again");
    let secret_part = &secret[secret.len() - 64..];
    assert!(!flock_page.body.contains(secret_part), "secret shown again");
}

#[tokio::test]
async fn flock_key_form_errors_keep_the_typed_values_and_create_nothing() {
    let c = cast().await;
    let path = format!("/flocks/{}", c.ops);
    c.admin.get(&path).await;
    let before = c.app.snapshot().await;
    let fields = [("auth_token_type", "analyst"), ("note", "typed note")];
    let page = c.admin.post(&format!("{path}/keys"), &fields).await;
    assert_eq!(page.status, 400);
    page.assert_contains("Type: choose admin or read-only.");
    page.assert_contains("value=\"typed note\"");
    let long = "x".repeat(10_001);
    let fields = [("auth_token_type", "admin"), ("note", long.as_str())];
    let page = c.admin.post(&format!("{path}/keys"), &fields).await;
    assert_eq!(page.status, 400);
    page.assert_contains("Note: Note longer than maximum (10000 characters).");
    page.assert_contains("<option value=\"admin\" selected>");
    assert_eq!(c.app.snapshot().await, before);
}

#[tokio::test]
async fn admin_revokes_a_flock_key_only_through_its_own_flock() {
    let c = cast().await;
    let key = c.app.add_flock_key(&c.ops, "admin").await;
    let key_id = key["key_id"].as_str().unwrap().to_string();
    let token = token_of(&key);

    c.admin.get("/flocks").await;
    let wrong = format!("/flocks/{}/keys/{key_id}/revoke", c.other);
    c.admin
        .post(&wrong, &[])
        .await
        .redirects_to(&format!("/flocks/{}", c.other));
    c.admin
        .get(&format!("/flocks/{}", c.other))
        .await
        .assert_contains("This flock has no API key");
    c.app
        .get_as(&token, "flock/users", &[("flock_id", &c.ops)])
        .await
        .ok();

    let path = format!("/flocks/{}", c.ops);
    c.admin
        .post(&format!("{path}/keys/{key_id}/revoke"), &[])
        .await
        .redirects_to(&path);
    c.admin
        .get(&path)
        .await
        .assert_contains(&format!("API key {key_id} revoked."));
    c.app
        .get_as(&token, "flock/users", &[("flock_id", &c.ops)])
        .await
        .err(401, "Invalid auth_token");
    let listed = c
        .app
        .get("flock/auth_token/list", &[("flock_id", &c.ops)])
        .await;
    assert_eq!(listed.ok()["flock_api_keys"], serde_json::json!([]));
}

// ---- members ----

#[tokio::test]
async fn manager_adds_changes_and_removes_members_of_their_flock() {
    let c = cast().await;
    c.app.add_user("new@x.io", "user").await;
    let path = format!("/flocks/{}", c.ops);
    c.manager.get(&path).await;
    let add = format!("{path}/members/add");
    let remove = format!("{path}/members/remove");

    c.manager
        .post(&add, &[("email", " New@X.io "), ("role", "watcher")])
        .await
        .redirects_to(&path);
    c.manager
        .get(&path)
        .await
        .assert_contains("new@x.io added as watcher.");
    assert_eq!(
        c.app.flock_users(&c.ops).await,
        (sorted(&[MANAGER]), sorted(&["new@x.io", WATCHER]))
    );

    c.manager
        .post(&add, &[("email", "new@x.io"), ("role", "manager")])
        .await
        .redirects_to(&path);
    c.manager
        .get(&path)
        .await
        .assert_contains("new@x.io is now a manager here (was a watcher).");
    assert_eq!(
        c.app.flock_users(&c.ops).await,
        (sorted(&["new@x.io", MANAGER]), sorted(&[WATCHER]))
    );

    c.manager
        .post(&remove, &[("email", "new@x.io"), ("role", "manager")])
        .await
        .redirects_to(&path);
    c.manager
        .get(&path)
        .await
        .assert_contains("new@x.io removed as manager.");
    assert_eq!(
        c.app.flock_users(&c.ops).await,
        (sorted(&[MANAGER]), sorted(&[WATCHER]))
    );
    assert_eq!(
        c.app.user("new@x.io").await["managed_flocks"],
        serde_json::json!([])
    );

    // Removing a role the user does not hold: an error flash, nothing changed.
    let before = c.app.snapshot().await;
    c.manager
        .post(&remove, &[("email", WATCHER), ("role", "manager")])
        .await
        .redirects_to(&path);
    c.manager
        .get(&path)
        .await
        .assert_contains(&format!("{WATCHER} is not a manager of this flock."));
    assert_eq!(c.app.snapshot().await, before);
}

#[tokio::test]
async fn admin_adds_and_removes_members_of_any_flock() {
    let c = cast().await;
    let path = format!("/flocks/{}", c.other);
    c.admin.get(&path).await;
    c.admin
        .post(
            &format!("{path}/members/add"),
            &[("email", WATCHER), ("role", "manager")],
        )
        .await
        .redirects_to(&path);
    assert_eq!(
        c.app.flock_users(&c.other).await,
        (sorted(&[WATCHER]), vec![])
    );
    c.admin
        .post(
            &format!("{path}/members/remove"),
            &[("email", WATCHER), ("role", "manager")],
        )
        .await
        .redirects_to(&path);
    assert_eq!(c.app.flock_users(&c.other).await, (vec![], vec![]));
}

#[tokio::test]
async fn member_form_errors_name_the_field_keep_the_typed_values_and_change_nothing() {
    let c = cast().await;
    let path = format!("/flocks/{}", c.ops);
    c.manager.get(&path).await;
    let before = c.app.snapshot().await;
    let add = format!("{path}/members/add");
    for (fields, error) in [
        (
            [("email", "not-an-email"), ("role", "watcher")],
            "Email: enter a valid email address.",
        ),
        (
            [("email", "ghost@x.io"), ("role", "manager")],
            "Email: no user has this address.",
        ),
        (
            [("email", "ghost@x.io"), ("role", "owner")],
            "Role: choose manager or watcher.",
        ),
    ] {
        let page = c.manager.post(&add, &fields).await;
        assert_eq!(page.status, 400, "{fields:?}");
        page.assert_contains(error);
        page.assert_contains(&format!("value=\"{}\"", fields[0].1));
        page.assert_contains("id=\"add-member-error\"");
    }
    let page = c
        .manager
        .post(&add, &[("email", "ghost@x.io"), ("role", "manager")])
        .await;
    page.assert_contains("<option value=\"manager\" selected>");
    c.manager
        .post(
            &format!("{path}/members/remove"),
            &[("email", "ghost@x.io"), ("role", "watcher")],
        )
        .await
        .redirects_to(&path);
    c.manager
        .get(&path)
        .await
        .assert_contains("No user has the address ghost@x.io.");
    assert_eq!(c.app.snapshot().await, before);
}

#[tokio::test]
async fn a_manager_who_removes_themselves_is_sent_back_to_their_flocks() {
    let c = cast().await;
    let path = format!("/flocks/{}", c.ops);
    c.manager.get(&path).await;
    c.manager
        .post(
            &format!("{path}/members/remove"),
            &[("email", MANAGER), ("role", "manager")],
        )
        .await
        .redirects_to("/flocks");
    c.manager
        .get("/flocks")
        .await
        .assert_contains(&format!("{MANAGER} removed as manager."));
    assert_eq!(c.manager.get(&path).await.status, 403);
}

// ---- permissions ----

/// Every POST of a flock page, with fields that would succeed for an admin.
fn flock_posts(flock: &str, key_id: &str) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    vec![
        (format!("/flocks/{flock}/rename"), vec![("name", "Renamed")]),
        (format!("/flocks/{flock}/delete"), vec![]),
        (
            format!("/flocks/{flock}/keys"),
            vec![("auth_token_type", "admin"), ("note", "n")],
        ),
        (format!("/flocks/{flock}/keys/{key_id}/revoke"), vec![]),
        (
            format!("/flocks/{flock}/members/add"),
            vec![("email", OUTSIDER), ("role", "watcher")],
        ),
        (
            format!("/flocks/{flock}/members/remove"),
            vec![("email", WATCHER), ("role", "watcher")],
        ),
    ]
}

#[tokio::test]
async fn manager_is_refused_admin_actions_and_other_flocks() {
    let c = cast().await;
    c.app.add_user(OUTSIDER, "user").await;
    c.app.assign(WATCHER, &c.other, "watcher").await;
    let ops_key = c.app.add_flock_key(&c.ops, "admin").await;
    let other_key = c.app.add_flock_key(&c.other, "admin").await;
    let before = c.app.snapshot().await;
    c.manager.get(&format!("/flocks/{}", c.ops)).await;

    let ops_key_id = ops_key["key_id"].as_str().unwrap();
    for (path, fields) in flock_posts(&c.ops, ops_key_id)
        .into_iter()
        .filter(|(path, _)| !path.contains("/members/"))
    {
        let page = c.manager.post(&path, &fields).await;
        assert_eq!(page.status, 403, "{path}");
        page.assert_contains("Not allowed");
    }
    let delete = format!("/flocks/{}/delete", c.ops);
    assert_eq!(c.manager.get(&delete).await.status, 403);

    let other_key_id = other_key["key_id"].as_str().unwrap();
    assert_eq!(
        c.manager.get(&format!("/flocks/{}", c.other)).await.status,
        403
    );
    for (path, fields) in flock_posts(&c.other, other_key_id) {
        assert_eq!(c.manager.post(&path, &fields).await.status, 403, "{path}");
    }
    assert_eq!(c.app.snapshot().await, before);
}

#[tokio::test]
async fn watcher_may_only_view() {
    let c = cast().await;
    c.app.add_user(OUTSIDER, "user").await;
    let key = c.app.add_flock_key(&c.ops, "admin").await;
    let before = c.app.snapshot().await;
    let path = format!("/flocks/{}", c.ops);
    assert_eq!(c.watcher.get(&path).await.status, 200);
    for (post, fields) in flock_posts(&c.ops, key["key_id"].as_str().unwrap()) {
        let page = c.watcher.post(&post, &fields).await;
        assert_eq!(page.status, 403, "{post}");
    }
    assert_eq!(c.watcher.get(&format!("{path}/delete")).await.status, 403);
    assert_eq!(c.app.snapshot().await, before);
}

#[tokio::test]
async fn unrelated_users_get_a_403_page() {
    let c = cast().await;
    let outsider = c.app.console_as(OUTSIDER, "user").await;
    let before = c.app.snapshot().await;
    for flock in [c.ops.as_str(), "flock:default", UNKNOWN_FLOCK] {
        let page = outsider.get(&format!("/flocks/{flock}")).await;
        assert_eq!(page.status, 403, "{flock}");
        page.assert_contains("You are not allowed to see this page.");
    }
    for (path, fields) in flock_posts(&c.ops, "0000000000000000") {
        assert_eq!(outsider.post(&path, &fields).await.status, 403, "{path}");
    }
    assert_eq!(c.app.snapshot().await, before);
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_the_login_page() {
    let c = cast().await;
    let anonymous = Console::new(&c.app);
    let flock_page = format!("/flocks/{}", c.ops);
    for path in ["/flocks", flock_page.as_str()] {
        let page = anonymous.get(path).await;
        page.redirects_to("/login");
        assert!(page.location.unwrap().contains("next=%2Fflocks"));
    }
    let before = c.app.snapshot().await;
    anonymous.get("/login").await;
    anonymous
        .post("/flocks", &[("name", "Sneaky")])
        .await
        .redirects_to("/login");
    for (path, fields) in flock_posts(&c.ops, "0000000000000000") {
        anonymous.post(&path, &fields).await.redirects_to("/login");
    }
    assert_eq!(c.app.snapshot().await, before);
}

#[tokio::test]
async fn flock_forms_without_a_csrf_token_are_refused_and_change_nothing() {
    let c = cast().await;
    c.app.add_user(OUTSIDER, "user").await;
    let key = c.app.add_flock_key(&c.other, "admin").await;
    c.admin.get("/flocks").await;
    let before = c.app.snapshot().await;
    let mut posts = flock_posts(&c.other, key["key_id"].as_str().unwrap());
    posts.push(("/flocks".to_string(), vec![("name", "Forged")]));
    for (path, fields) in posts {
        let page = c.admin.post_raw(&path, &fields).await;
        assert_eq!(page.status, 403, "{path}");
        page.assert_contains("Form expired");
    }
    for (path, _) in flock_posts(&c.ops, "x") {
        let forged = [
            ("csrf_token", "0000"),
            ("email", WATCHER),
            ("role", "watcher"),
        ];
        assert_eq!(
            c.manager.post_raw(&path, &forged).await.status,
            403,
            "{path}"
        );
    }
    assert_eq!(c.app.snapshot().await, before);
}
