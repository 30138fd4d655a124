//! The OpenAPI document: served, valid, and every operation it lists is
//! routed to its handler (the routes and the document come from one list,
//! `routes!` in each domain's `api_routes`).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::TestApp;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .into_iter()
                .filter(|m| item.get(*m).is_some())
                .map(move |m| (m.to_owned(), path.clone()))
        })
        .collect()
}

/// Every `"$ref"` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_served_document_is_valid_openapi_3_1_and_each_operation_reaches_its_handler() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();

    // Valid: it reads back as an OpenAPI document, version 3.1.
    let typed: utoipa::openapi::OpenApi = serde_json::from_str(&text).expect("an OpenAPI document");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(typed.info.title, "test-executor");

    // Each documented operation is routed: its handler answers (a status
    // of its own, with a body), never the router's empty 404 or its 405.
    let documented = documented(&doc);
    assert!(documented.len() >= 23, "too few operations: {documented:?}");
    for (method, path) in &documented {
        let url = app.url(&path.replace("{id}", "999999").replace("{name}", "nobody"));
        let request = match method.as_str() {
            "get" => app.client.get(&url),
            "delete" => app.client.delete(&url),
            "post" => app.client.post(&url).json(&serde_json::json!({})),
            "patch" => app.client.patch(&url).json(&serde_json::json!({})),
            "put" => app
                .client
                .put(&url)
                .header("content-type", "application/octet-stream")
                .body(Vec::new()),
            other => panic!("unexpected method {other} {path}"),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            status != 405 && !(status == 404 && body.is_empty()),
            "{method} {path}: not routed ({status})"
        );
    }

    // Every operation answers something and every reference resolves.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let responses = op["responses"].as_object();
                assert!(
                    responses.is_some_and(|r| !r.is_empty()),
                    "{method} {path} documents no response"
                );
            }
        }
    }
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for reference in found {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {reference}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{reference} does not resolve"
        );
    }

    // The run's own fields are described from its type.
    let run = &doc["components"]["schemas"]["RunJson"]["properties"];
    for field in ["id", "status", "summary", "timings_ms", "environment_id"] {
        assert!(run.get(field).is_some(), "RunJson lacks {field}: {run}");
    }
    let status = &doc["components"]["schemas"]["RunStatus"]["enum"];
    assert!(
        status.as_array().unwrap().contains(&"timed_out".into()),
        "{status}"
    );
    // Operator calls say how they are authorised.
    assert_eq!(
        doc["paths"]["/api/v1/environments/{id}"]["patch"]["security"][0]["operator_token"],
        serde_json::json!([])
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["operator_token"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let page = app.get("/api/docs/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page loads nothing from elsewhere: {html}"
    );
    let init = app.get("/api/docs/swagger-initializer.js").await;
    assert_eq!(init.status(), 200);
    assert!(init.text().await.unwrap().contains("/api/v1/openapi.json"));
}
