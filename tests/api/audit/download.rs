//! `GET audit_trail/download/json`: a zip named `canary_audit_trail.json.zip` whose one file holds
//! every entry, as fetch shows them.

use std::io::Read;

use serde_json::Value;

use super::USER;
use super::fetch::{fetch, mixed_trail};
use crate::helpers::*;

/// The download's status, content type, content disposition and body.
async fn download(app: &TestApp, params: &[(&str, &str)]) -> (u16, String, String, Vec<u8>) {
    let response = build_request(
        &app.client,
        &app.address,
        reqwest::Method::GET,
        "audit_trail/download/json",
        Auth::Header(&app.admin_token),
        params,
    )
    .send()
    .await
    .expect("download");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (content_type, disposition) = (header("content-type"), header("content-disposition"));
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("body").to_vec();
    (status, content_type, disposition, body)
}

/// The name and text of each file in the zip.
fn unzip(bytes: Vec<u8>) -> Vec<(String, String)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip file");
    (0..archive.len())
        .map(|index| {
            let mut file = archive.by_index(index).expect("a file in the zip");
            let mut text = String::new();
            file.read_to_string(&mut text).expect("utf-8 text");
            (file.name().expect("a file name").to_string(), text)
        })
        .collect()
}

#[tokio::test]
async fn download_json_is_a_zip_holding_every_entry_as_fetch_shows_it() {
    let app = spawn_app().await;
    mixed_trail(&app).await;
    app.post(
        "user/note/add",
        &[("email", "u1@x.io"), ("note", "é ünïcode \"quoted\"")],
    )
    .await
    .ok();
    let (status, content_type, disposition, body) = download(&app, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/x-zip-compressed");
    assert_eq!(
        disposition,
        "attachment; filename=\"canary_audit_trail.json.zip\""
    );
    let files = unzip(body);
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["canary_audit_trail.json"]);
    let downloaded: Value = serde_json::from_str(&files[0].1).expect("JSON");

    // The same objects as fetch, oldest first.
    let page = fetch(&app, &[("limit", "1000")]).await;
    let mut fetched = page["audit_trail"].as_array().expect("list").clone();
    assert_eq!(fetched.len() as u64, super::audit_len(&app));
    fetched.reverse();
    assert_eq!(downloaded, Value::Array(fetched));
}

#[tokio::test]
async fn download_json_renders_timestamps_in_tz_and_refuses_an_unknown_zone() {
    let app = spawn_app().await;
    app.add_user(USER, "user").await;
    let (status, _, _, body) = download(&app, &[("tz", "Asia/Kolkata")]).await;
    assert_eq!(status, 200);
    let files = unzip(body);
    let entries: Value = serde_json::from_str(&files[0].1).expect("JSON");
    let page = fetch(&app, &[("tz", "Asia/Kolkata")]).await;
    let mut fetched = page["audit_trail"].as_array().expect("list").clone();
    fetched.reverse();
    assert_eq!(entries, Value::Array(fetched));
    for entry in entries.as_array().expect("list") {
        let timestamp = entry["timestamp"].as_str().expect("timestamp");
        assert!(timestamp.ends_with(" UTC+0530"), "{timestamp}");
    }

    let (status, content_type, _, body) = download(&app, &[("tz", "Mars/Olympus")]).await;
    assert_eq!(status, 400);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({
            "result": "error",
            "message": "Parameter 'tz' is not a time zone such as 'Europe/Berlin'.",
        })
    );
}
