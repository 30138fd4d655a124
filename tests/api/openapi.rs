//! The OpenAPI document: served, valid, and listing every route of the
//! JSON API (read from the routers' source, so a new route without its
//! `#[utoipa::path]` fails here).

use std::{collections::BTreeSet, path::Path};

use serde_json::Value;

use crate::helpers::TestApp;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The body of `fn name` in `text`: from its `{` to the matching `}`.
fn body_of<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = text.find(&format!("fn {name}("))?;
    let open = start + text[start..].find('{')?;
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[open..open + i + 1]);
                }
            }
            _ => {}
        }
    }
    None
}

/// `(method, path)` of every `.route("path", get(..).post(..))` in `body`.
fn routes_in(body: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let quote = rest.find('"').unwrap();
        let end = quote + 1 + rest[quote + 1..].find('"').unwrap();
        let path = &rest[quote + 1..end];
        // The method router: up to the `)` closing `.route(`.
        let mut depth = 1;
        let mut close = end;
        for (i, c) in rest[end..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        close = end + i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let methods = &rest[end..close];
        let mut any = false;
        for method in METHODS {
            let called = methods.match_indices(&format!("{method}(")).any(|(i, _)| {
                i == 0 || !methods[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if called {
                found.push((method.to_owned(), format!("/api/v1{path}")));
                any = true;
            }
        }
        assert!(any, "no method found in the route {path:?}: {methods}");
    }
    found
}

/// Every route of the JSON API: the `api_routes` of each module that
/// `routes.rs` merges into the `/api/v1` router.
fn api_routes() -> BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let routes_rs = std::fs::read_to_string(src.join("routes.rs")).unwrap();
    let traced = body_of(&routes_rs, "traced").expect("fn traced in routes.rs");
    let api = &traced[..traced
        .find("let pages")
        .expect("the pages router after the API's")];
    let mut all = BTreeSet::new();
    let mut rest = api;
    while let Some(at) = rest.find("::api_routes()") {
        let module = rest[..at]
            .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
            .next()
            .unwrap();
        let file = [
            src.join(module).join("mod.rs"),
            src.join(format!("{module}.rs")),
        ]
        .into_iter()
        .find(|f| f.exists())
        .unwrap_or_else(|| panic!("no source for module {module}"));
        let text = std::fs::read_to_string(&file).unwrap();
        let body = body_of(&text, "api_routes").unwrap();
        let routes = routes_in(body);
        assert!(!routes.is_empty(), "{module}::api_routes has no routes");
        all.extend(routes);
        rest = &rest[at + 1..];
    }
    all
}

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

#[test]
fn the_route_reader_finds_multi_line_method_routers() {
    let body = r#"{
        axum::Router::new()
            .route("/a", get(api::list))
            .route(
                "/a/{id}",
                post(api::create).patch(api::update).delete(api::delete),
            )
    }"#;
    let routes = routes_in(body);
    let expected = [
        ("get", "/api/v1/a"),
        ("post", "/api/v1/a/{id}"),
        ("patch", "/api/v1/a/{id}"),
        ("delete", "/api/v1/a/{id}"),
    ]
    .map(|(m, p)| (m.to_owned(), p.to_owned()));
    assert_eq!(routes, expected);
}

#[tokio::test]
async fn every_json_route_is_in_the_served_document_and_it_is_valid_openapi_3_1() {
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

    // Every route of the JSON API is documented, and nothing else.
    let routed = api_routes();
    assert!(routed.len() >= 14, "too few routes read: {routed:?}");
    let documented = documented(&doc);
    let missing: Vec<_> = routed.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the OpenAPI document: {missing:?}"
    );
    let stale: Vec<_> = documented.difference(&routed).collect();
    assert!(stale.is_empty(), "documented but not routed: {stale:?}");

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
