//! The committed OpenAPI document matches the code, and the served one matches both.

use crate::harness::{Backend, Server, Site, root};

fn rendered() -> String {
    serde_json::to_string_pretty(&keymint::openapi_document()).unwrap() + "\n"
}

#[test]
fn committed_openapi_matches_the_code() {
    let path = root().join("openapi/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered(),
        "openapi/openapi.json is stale: run `cargo run -q -- openapi > openapi/openapi.json` and commit it"
    );
}

#[test]
fn every_route_is_documented() {
    let doc = serde_json::to_value(keymint::openapi_document()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/me",
        "/login",
        "/oauth/authorize",
        "/oauth/consent",
        "/oauth/userinfo",
        "/oauth/logout",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(p), "{p} has no OpenAPI entry");
    }
    assert_eq!(doc["openapi"], "3.1.0");
    // Every schema a path or another schema refers to is in the document (an unresolved
    // reference makes clients and fuzzers skip parts of the API).
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let prefix = "#/components/schemas/";
    for (i, _) in text.match_indices(prefix) {
        let name: String = text[i + prefix.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            schemas.contains_key(&name),
            "unresolved reference to {name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_document_and_swagger_ui() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    let served: serde_json::Value = s.get("/openapi.json", None).await.json().await.unwrap();
    assert_eq!(
        served,
        serde_json::to_value(keymint::openapi_document()).unwrap()
    );
    let r = s.get("/docs/", None).await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(r.text().await.unwrap().contains("swagger-ui"));
    s.stop().await;
}
