//! The OpenAPI description: served without a key, valid, describing every route of the
//! contract's table (`endpoints`) and every route it describes answering; the console's
//! reference page.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::Value;

use crate::endpoints::{endpoints, fixture};
use crate::helpers::*;

async fn document(app: &TestApp) -> Value {
    let answer = send(app.client.get(api_url(&app.address, "openapi.json"))).await;
    assert_eq!(answer.status, 200, "no key needed: {}", answer.text);
    assert!(answer.content_type.starts_with("application/json"));
    answer.body
}

/// Every (method, path) the document describes.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            all.push((method.to_uppercase(), path.clone(), operation.clone()));
        }
    }
    all
}

#[tokio::test]
async fn the_document_is_valid_openapi_and_describes_every_route() {
    let app = spawn_app().await;
    let fx = fixture(&app).await;
    let doc = document(&app).await;
    // It reads back as an OpenAPI document.
    let parsed: utoipa::openapi::OpenApi =
        serde_json::from_value(doc.clone()).expect("an OpenAPI document");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(parsed.info.title, "Roost API");
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let scheme = &doc["components"]["securitySchemes"]["api_key"];
    assert_eq!(scheme["type"], "apiKey");
    assert_eq!(scheme["in"], "header");
    assert_eq!(scheme["name"], "X-Canary-Auth-Token");

    let operations = operations(&doc);
    let mut ids = HashSet::new();
    for (method, path, operation) in &operations {
        let id = operation["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id.to_string()), "operationId {id} twice");
        assert!(
            operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{path}"
        );
        assert!(operation["responses"]["200"].is_object(), "{method} {path}");
        let mut names = HashSet::new();
        for param in operation["parameters"].as_array().into_iter().flatten() {
            let name = param["name"].as_str().unwrap();
            assert!(names.insert(name), "{path}: {name} twice");
            assert_eq!(param["in"], "query");
            assert!(param["schema"].is_object() && param["description"].is_string());
        }
        // Each security requirement names the declared scheme.
        for requirement in operation["security"].as_array().into_iter().flatten() {
            assert!(
                requirement.get("api_key").is_some(),
                "{path}: {requirement}"
            );
        }
    }

    // The contract's table, kept by hand in the tests: each of its routes is described, with
    // its method and its required parameters.
    for endpoint in endpoints(&fx) {
        let path = format!("/{}", endpoint.path);
        let method = endpoint.method.as_str().to_string();
        let found = operations
            .iter()
            .find(|(m, p, _)| *m == method && *p == path)
            .unwrap_or_else(|| panic!("{method} {path} is not described"));
        let required: HashSet<&str> = found.2["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|param| param["required"] == true)
            .map(|param| param["name"].as_str().unwrap())
            .collect();
        for name in endpoint.required {
            assert!(
                required.contains(name),
                "{method} {path}: {name} not described as required"
            );
        }
    }

    // Every described route is served: none answers the unknown-endpoint 404 or a 405 (asked
    // with a read-only key, so that nothing changes — `settings/api/disable` would otherwise
    // make every later answer a 403); a path the document doesn't have does.
    let reader = app.new_key("read-only").await;
    for (method, path, _) in &operations {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("{}/api/v1{path}", app.address);
        let answer = send(
            app.client
                .request(method.clone(), &url)
                .header("X-Canary-Auth-Token", &reader),
        )
        .await;
        assert_ne!(answer.status, 405, "{method} {path}");
        assert!(
            answer.body["message"] != "Unknown API endpoint.",
            "{method} {path} is described but not served"
        );
    }
    let unknown = app.get("no/such/endpoint", &[]).await;
    unknown.err(404, "Unknown API endpoint.");
    assert_eq!(
        app.get("ping", &[]).await.status,
        200,
        "API access still on"
    );
}

#[tokio::test]
async fn the_console_reference_lists_every_endpoint() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let anonymous = crate::console::Console::new(&app);
    anonymous
        .get("/api-docs")
        .await
        .redirects_to("/login?next=%2Fapi-docs");
    let user = app.console_as("ann@x.io", "user").await;
    let page = user.get("/api-docs").await;
    assert_eq!(page.status, 200);
    page.assert_contains("href=\"/api/v1/openapi.json\"");
    for (_, path, _) in operations(&doc) {
        page.assert_contains(&format!("<code>/api/v1{path}</code>"));
    }
    assert!(!page.body.contains("<script src=\"http"), "no CDN");
}
