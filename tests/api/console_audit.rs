//! The console's audit trail page: admins only, newest first, filters, pages, downloads.

use serde_json::Value;

use crate::console::Console;
use crate::helpers::*;

const ADMIN: &str = "root@x.io";

/// The ids of the page's rows, in page order.
fn row_ids(body: &str) -> Vec<u64> {
    body.match_indices("<tr id=\"entry-")
        .filter_map(|(at, _)| {
            let rest = &body[at + "<tr id=\"entry-".len()..];
            rest[..rest.find('"')?].parse().ok()
        })
        .collect()
}

/// `href` of the link with `id`, HTML entities undone.
fn link(body: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let at = body.find(&marker)?;
    let tag_start = body[..at].rfind("<a ")?;
    let href_at = body[tag_start..].find("href=\"")? + tag_start + "href=\"".len();
    let end = body[href_at..].find('"')? + href_at;
    Some(
        body[href_at..end]
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

#[tokio::test]
async fn only_signed_in_admins_see_the_audit_trail() {
    let app = spawn_app().await;
    let user = app.console_as("uma@x.io", "user").await;
    for path in ["/audit", "/audit/download.json", "/audit/download.csv"] {
        assert_eq!(user.get(path).await.status, 403, "{path}");
        Console::new(&app).get(path).await.redirects_to("/login");
    }
}

#[tokio::test]
async fn the_page_lists_entries_newest_first_with_actor_address_and_target() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    app.add_user("ann@x.io", "user").await;
    admin.get("/users").await;
    let ann = app.user("ann@x.io").await;
    let ann_id = ann["id"].as_u64().map(|id| id.to_string());
    // The API answers a user without its console id: find it on the list.
    let list = admin.get("/users?q=ann").await;
    let ann_path = ann_id.map_or_else(
        || {
            let at = list.body.find("href=\"/users/").expect("ann's link") + "href=\"".len();
            list.body[at..at + list.body[at..].find('"').unwrap()].to_string()
        },
        |id| format!("/users/{id}"),
    );
    admin.get(&ann_path).await;
    admin
        .post(&format!("{ann_path}/disable"), &[])
        .await
        .redirects_to(&ann_path);

    let page = admin.get("/audit").await;
    assert_eq!(page.status, 200);
    let ids = row_ids(&page.body);
    assert!(ids.windows(2).all(|pair| pair[0] > pair[1]), "{ids:?}");
    // The newest is the disable, by the admin, from loopback, about ann.
    let newest = &page.body[page.body.find("<tr id=\"entry-").unwrap()..];
    let newest = &newest[..newest.find("</tr>").unwrap()];
    for expected in [
        "<code>user_disable</code>",
        "User (ann@x.io) disabled",
        &format!("<td>{ADMIN}</td>"),
        "127.0.0.1",
        "<td>ann@x.io",
    ] {
        assert!(newest.contains(expected), "{expected}: {newest}");
    }
    // The add came through the test harness's API key, and the admin's login is there too.
    page.assert_contains("User (ann@x.io) created as user");
    page.assert_contains("API key tests (");
    page.assert_contains(&format!("User ({ADMIN}) logged in"));
    // Ann's page links to the entries about her.
    let ann_page = admin.get(&ann_path).await;
    ann_page.assert_contains("href=\"/audit?target=ann%40x.io\"");
    let about_ann = admin.get("/audit?target=ann%40x.io").await;
    assert!(
        !about_ann
            .body
            .contains(&format!("User ({ADMIN}) logged in"))
    );
    about_ann.assert_contains("User (ann@x.io) disabled");
    about_ann.assert_contains("User (ann@x.io) created as user");
}

#[tokio::test]
async fn filters_narrow_the_list_and_bad_ones_are_explained() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    for n in 0..3 {
        app.add_user(&format!("user{n}@x.io"), "user").await;
    }
    app.create_flock("Ops").await;

    let adds = admin.get("/audit?action=user_add").await;
    assert_eq!(row_ids(&adds.body).len(), 4, "root and three users");
    // An action type with a digit in it, and one the trail holds no entry of, are fine filters.
    let resets = admin.get("/audit?action=user_2fa_disable").await;
    assert_eq!(resets.status, 200);
    resets.assert_contains("No entries match these filters.");
    assert!(!adds.body.contains("Flock (Ops) created"));
    adds.assert_contains("<option value=\"flock_create\">");
    adds.assert_contains("<option value=\"user_add\" selected>");

    let by_admin = admin.get(&format!("/audit?actor={}", "ROOT%40x.io")).await;
    assert!(
        !by_admin.body.contains("API key tests ("),
        "actor filter ignores case"
    );
    by_admin.assert_contains(&format!("User ({ADMIN}) logged in"));

    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let all = row_ids(&admin.get("/audit").await.body).len();
    let dated = admin
        .get(&format!("/audit?since={today}&until={today}"))
        .await;
    assert_eq!(row_ids(&dated.body).len(), all, "everything happened today");
    let past = admin.get("/audit?until=2020-01-01").await;
    assert!(row_ids(&past.body).is_empty());
    past.assert_contains("No entries match these filters.");

    for (query, message) in [
        ("since=yesterday", "From: enter a date such as 2026-12-01."),
        (
            "since=2026-12-02&until=2026-12-01",
            "Dates: “From” is after “To”.",
        ),
        ("action=DROP%20TABLE", "Action: choose one from the list."),
        ("action=user_fly", "Action: choose one from the list."),
        ("cursor=sideways.3", "This page link is broken"),
    ] {
        let page = admin.get(&format!("/audit?{query}")).await;
        assert_eq!(page.status, 400, "{query}");
        page.assert_contains(message);
    }
}

#[tokio::test]
async fn pages_go_older_and_back_newer_without_gaps_or_repeats() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    for n in 0..120 {
        app.add_user(&format!("user{n:03}@x.io"), "user").await;
    }
    let first = admin.get("/audit").await;
    assert!(link(&first.body, "newer-page").is_none());
    let mut pages = vec![row_ids(&first.body)];
    let mut next = link(&first.body, "older-page");
    while let Some(href) = next {
        let page = admin.get(&href).await;
        assert_eq!(page.status, 200, "{href}");
        pages.push(row_ids(&page.body));
        next = link(&page.body, "older-page");
    }
    let seen: Vec<u64> = pages.iter().flatten().copied().collect();
    assert!(pages.iter().all(|page| page.len() <= 50));
    assert!(
        seen.windows(2).all(|pair| pair[0] > pair[1]),
        "no repeats, newest first"
    );
    let newest = app
        .store
        .audit_page(&AuditFilter::default(), AuditFrom::Newest, 1)
        .unwrap();
    assert_eq!(seen.len() as u64, newest.total, "no gaps");

    // And back: from the second page, "newer" is the first page again.
    let second = admin
        .get(&format!("/audit?cursor=older.{}", pages[0].last().unwrap()))
        .await;
    let back = admin
        .get(&link(&second.body, "newer-page").expect("newer link"))
        .await;
    assert_eq!(row_ids(&back.body), pages[0]);
    // Filters survive paging.
    let adds = admin.get("/audit?action=user_add").await;
    let older = link(&adds.body, "older-page").expect("older adds");
    assert!(older.contains("action=user_add"), "{older}");
    let older_adds = admin.get(&older).await;
    assert!(!older_adds.body.contains("<code>user_login</code>"));
}

#[tokio::test]
async fn downloads_hold_every_matching_entry_as_json_and_csv() {
    let app = spawn_app().await;
    let admin = app.console_as(ADMIN, "admin").await;
    app.add_user("ann@x.io", "user").await;
    app.post(
        "user/note/add",
        &[("email", "ann@x.io"), ("note", "=1+2, \"quoted\"\nline")],
    )
    .await
    .ok();

    let all = app
        .store
        .audit_page(&AuditFilter::default(), AuditFrom::Newest, 1000)
        .unwrap()
        .entries;
    let json = admin.get("/audit/download.json").await;
    assert_eq!(json.status, 200);
    assert_eq!(json.headers["content-type"], "application/json");
    assert!(
        json.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("roost-audit-trail.json")
    );
    let entries: Vec<Value> = serde_json::from_str(&json.body).expect("json array");
    let ids: Vec<u64> = entries.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    let mut expected: Vec<u64> = all.iter().map(|e| e.id).collect();
    expected.reverse();
    assert_eq!(ids, expected, "every entry, oldest first");
    let note = entries
        .iter()
        .find(|e| e["action_type"] == "user_note_add")
        .expect("the note entry");
    assert_eq!(note["target"], "ann@x.io");
    assert_eq!(note["ip"], "127.0.0.1");
    assert!(note["time"].as_str().unwrap().ends_with('Z'));

    let csv = admin.get("/audit/download.csv?target=ann%40x.io").await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let mut lines = csv.body.split("\r\n");
    assert_eq!(
        lines.next(),
        Some("id,time,action_type,message,actor,ip,user_agent,language,flock_id,target,details")
    );
    let rows: Vec<&str> = lines.filter(|line| !line.is_empty()).collect();
    assert_eq!(rows.len(), 2, "the add and the note: {rows:?}");
    assert!(rows[0].contains(",user_add,"), "{rows:?}");
    assert!(rows[1].contains(",user_note_add,"), "{rows:?}");
    // A field a spreadsheet would run starts with a quote; quotes inside are doubled.
    assert!(!csv.body.contains(",=1+2"), "{}", csv.body);

    let bad = admin.get("/audit/download.csv?since=soon").await;
    assert_eq!(bad.status, 400);
}
