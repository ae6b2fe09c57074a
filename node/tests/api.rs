//! The local HTTP API over a real node and a real TCP socket: the token is required, errors are one-line JSON with
//! stable codes, oversized bodies are refused before they are read, and `docs/api.md` documents exactly the routes
//! the router serves.

use wsis_node::node::{Node, NodeOptions};

mod common;
use common::http::http;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_the_token_and_answers_errors_as_one_line_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, _) = common::nodes::secretariat_dir(tmp.path(), "itu", "api test").await;
    let token = dir.api_token().to_string();
    let node = Node::start(
        dir,
        NodeOptions {
            listen: common::loopback(),
            mdns: Some(false),
            ..Default::default()
        },
    )
    .await
    .expect("start");
    let listener = wsis_node::api::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(wsis_node::api::serve(
        node.clone(),
        token.clone(),
        listener,
        std::future::pending(),
    ));

    // No token, a wrong token: 401, nothing served.
    let (status, body) = http(addr, "GET", "/v1/status", None, b"").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"code\":\"unauthorised\""), "{body}");
    let (status, _) = http(addr, "GET", "/v1/status", Some(&"0".repeat(64)), b"").await;
    assert_eq!(status, 401);

    // The status of a secretariat node.
    let (status, body) = http(addr, "GET", "/v1/status", Some(&token), b"").await;
    assert_eq!(status, 200, "{body}");
    let s: wsis_node::api::types::Status = serde_json::from_str(&body).expect("status JSON");
    assert!(s.admitted && s.secretariat);

    // Malformed id → 400 bad-id; unknown team → 404; bad JSON → 400 bad-json; a refusal → 409.
    let (status, body) = http(
        addr,
        "POST",
        "/v1/meetings/op_zz/attend",
        Some(&token),
        b"{}",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let e: wsis_node::api::types::ErrorBody = serde_json::from_str(&body).expect("error JSON");
    assert_eq!(e.code, "bad-id");
    assert_eq!(e.error.lines().count(), 1);
    let (status, body) = http(addr, "POST", "/v1/teams/C99/join", Some(&token), b"{}").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("unknown-team"));
    let (status, body) = http(addr, "POST", "/v1/orgs/admit", Some(&token), b"{not json").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bad-json"));
    let (status, body) = http(
        addr,
        "POST",
        "/v1/teams/C1/modalities",
        Some(&token),
        br#"{"text":"x"}"#,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("not-coordinator"));
    // Nothing was signed by the refused requests.
    let ops_before = s.ops;
    let (_, body) = http(addr, "GET", "/v1/status", Some(&token), b"").await;
    let s: wsis_node::api::types::Status = serde_json::from_str(&body).expect("status JSON");
    assert_eq!(s.ops, ops_before);

    // A body over the limit is refused (413) and not read.
    let big = vec![b'a'; wsis_node::api::MAX_REQUEST_BYTES + 1];
    let (status, _) = http(addr, "POST", "/v1/orgs/admit", Some(&token), &big).await;
    assert_eq!(status, 413);

    // Every route the router declares answers something other than 404-not-routed with the token.
    for route in wsis_node::api::ROUTES {
        let (method, path) = route.split_once(' ').expect("METHOD path");
        let path = path
            .replace("{team}", "C1")
            .replace("{meeting}", &format!("op_{}", "0".repeat(64)))
            .replace("{motion}", &format!("op_{}", "0".repeat(64)))
            .replace("{op}", &format!("op_{}", "0".repeat(64)))
            .replace("{doc}", &format!("doc_{}", "0".repeat(64)));
        let path = if path.starts_with("/v1/stocktake") && method == "GET" {
            format!("{path}?year=2026")
        } else {
            path
        };
        let (status, body) = http(addr, method, &path, Some(&token), b"{}").await;
        assert_ne!(status, 0, "{route}: no answer");
        assert!(
            status != 404 || body.contains("\"code\""),
            "{route}: not routed ({status} {body})"
        );
        assert_ne!(status, 405, "{route}: wrong method");
    }
    node.shutdown().await;
}

#[test]
fn docs_api_md_documents_exactly_the_routes() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md"))
        .expect("docs/api.md");
    let documented: Vec<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|l| l.strip_suffix('`'))
        .map(str::to_string)
        .collect();
    let routes: Vec<String> = wsis_node::api::ROUTES
        .iter()
        .map(|s| s.to_string())
        .collect();
    for r in &routes {
        assert!(
            documented.contains(r),
            "{r} is not documented in docs/api.md"
        );
    }
    for d in &documented {
        assert!(
            routes.contains(d),
            "docs/api.md documents {d}, which the router does not serve"
        );
    }
}
