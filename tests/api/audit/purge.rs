//! `POST audit_trail/purge`: deletes the entry and every older one, says how many, and records
//! itself; an id the trail doesn't hold is refused and deletes nothing.

use serde_json::json;

use super::fetch::{mixed_trail, stored_ids, walk};
use super::{Expected, admin_key_actor, audit_len, probe_client};
use crate::helpers::*;

/// Purges up to `id` as the admin key, from the tests' browser.
async fn purge(app: &TestApp, id: &str) -> Resp {
    let request = build_request(
        &probe_client(),
        &app.address,
        reqwest::Method::POST,
        "audit_trail/purge",
        Auth::Param(&app.admin_token),
        &[("id", id)],
    );
    send(request).await
}

#[tokio::test]
async fn purge_deletes_the_entry_and_every_older_one_and_records_itself() {
    let app = spawn_app().await;
    mixed_trail(&app).await;
    let all = stored_ids(&app, &AuditFilter::default());
    let cut = all[3];
    let purged = all.len() - 3;
    purge(&app, &cut.to_string())
        .await
        .ok_msg(&format!("{purged} logs purged successfully"));

    let now = stored_ids(&app, &AuditFilter::default());
    assert_eq!(now.len(), 4, "{now:?}");
    assert_eq!(now[1..], all[..3], "the newer entries stay");
    assert!(now[0] > all[0], "the purge is the newest entry");
    assert_eq!(audit_len(&app), 4);
    let entry = &app
        .store
        .audit_page(&AuditFilter::default(), AuditFrom::Newest, 1)
        .expect("audit page")
        .entries[0];
    let expected = Expected::new("audit_trail_purge", &admin_key_actor(&app));
    assert_eq!(expected.mismatch(entry), None);
    assert_eq!(
        entry.message,
        format!("Successfully purged {purged} logs before id:{cut}")
    );
    assert_eq!(entry.details, json!({ "purged": purged, "up_to_id": cut }));
    // What is left still pages consistently.
    walk(&app, &[], 3, &now).await;
    walk(&app, &[], 1, &now).await;
}

#[tokio::test]
async fn purging_up_to_the_newest_entry_leaves_only_the_purge() {
    let app = spawn_app().await;
    mixed_trail(&app).await;
    let all = stored_ids(&app, &AuditFilter::default());
    purge(&app, &all[0].to_string())
        .await
        .ok_msg(&format!("{} logs purged successfully", all.len()));
    let now = stored_ids(&app, &AuditFilter::default());
    assert_eq!(now, [all[0] + 1]);
    let page = super::fetch::fetch(&app, &[]).await;
    assert_eq!(page["audit_trail"][0]["action_type"], "audit_trail_purge");
    assert_eq!(page["page_count"], 1);
}

#[tokio::test]
async fn purging_an_id_the_trail_does_not_hold_is_refused_and_deletes_nothing() {
    let app = spawn_app().await;
    mixed_trail(&app).await;
    let all = stored_ids(&app, &AuditFilter::default());
    // Purge the oldest few, so that their ids are gone.
    let gone = all[all.len() - 3];
    purge(&app, &gone.to_string())
        .await
        .ok_msg("3 logs purged successfully");
    let kept = stored_ids(&app, &AuditFilter::default());
    let not_found = "Audit trail entry does not exist.";
    let bad = "Parameter 'id' must be the id of an audit trail entry.";
    let newest = kept[0];
    let cases = [
        (gone.to_string(), 404, Some(not_found)),
        ("0".to_string(), 404, Some(not_found)),
        ((newest + 1).to_string(), 404, Some(not_found)),
        ((newest + 1000).to_string(), 404, Some(not_found)),
        ("abc".to_string(), 400, Some(bad)),
        ("-1".to_string(), 400, Some(bad)),
        ("".to_string(), 400, None),
    ];
    let mut failures = Failures::default();
    for (id, status, message) in &cases {
        let resp = purge(&app, id).await;
        failures.check(format!("id={id:?}"), &resp, *status, *message);
    }
    let resp = app.post("audit_trail/purge", &[]).await;
    failures.check("no id".into(), &resp, 400, Some(&missing("id")));
    failures.assert_none();
    assert_eq!(stored_ids(&app, &AuditFilter::default()), kept);
}
