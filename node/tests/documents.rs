//! Documents through the local HTTP API of a real node: edits are held to the content schema (an unknown section
//! is a 400 naming the document's sections, and nothing is written), and a write this organisation may no longer
//! make is refused by the engine's publish with the reason a peer would give (409), nothing stored, the edit
//! rolled back.

use wsis_node::api::types::{DocView, ErrorBody, OpDone};
use wsis_node::node::{Node, NodeOptions};

mod common;
use common::http::{call as http, serve_api};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_edits_follow_the_schema_and_a_refused_publish_answers_409_and_rolls_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, _) = common::nodes::secretariat_dir(tmp.path(), "itu", "documents test").await;
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
    let (addr, _stop, _api) = serve_api(&node, &token).await;
    let ok = |(status, body): (u16, String)| {
        assert_eq!(status, 200, "{body}");
        body
    };

    ok(http(addr, "POST", "/v1/teams/C2/join", &token, "{}").await);
    let draft: OpDone = serde_json::from_str(&ok(http(
        addr,
        "POST",
        "/v1/outputs",
        &token,
        r#"{"team":"C2","year":2026}"#,
    )
    .await))
    .expect("op JSON");
    let doc = draft.op.replacen("op_", "doc_", 1);
    let edit = format!("/v1/docs/{doc}/edit");

    // The schema's sections exist from the creator's first change; a section it does not have is a 400 that
    // names the ones it has, and nothing is written.
    let view: DocView = serde_json::from_str(&ok(http(
        addr,
        "GET",
        &format!("/v1/docs/{doc}"),
        &token,
        "",
    )
    .await))
    .expect("doc JSON");
    assert_eq!(
        view.content,
        serde_json::json!({"activities": [], "sections": {"achievements": "", "challenges": "", "recommendations": ""}})
    );
    let (status, body) = http(
        addr,
        "POST",
        &edit,
        &token,
        r#"{"section":"lessons","text":"x"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let e: ErrorBody = serde_json::from_str(&body).expect("error JSON");
    assert_eq!(e.code, "unknown-section");
    assert!(
        e.error
            .contains("achievements, challenges, recommendations"),
        "{}",
        e.error
    );
    let written: DocView = serde_json::from_str(&ok(http(
        addr,
        "POST",
        &edit,
        &token,
        r#"{"section":"achievements","text":"Broadband in 40 villages."}"#,
    )
    .await))
    .expect("doc JSON");
    assert_eq!(
        written.content["sections"]["achievements"],
        "Broadband in 40 villages."
    );

    // Out of the team, this organisation may not write the draft, and — nobody else having built on it — its
    // unattested writing leaves with it (a LeaveTeam counts against every envelope that does not cite it,
    // docs/protocol.md §9.6): the draft has no sections left to write, and nothing is written.
    ok(http(addr, "POST", "/v1/teams/C2/leave", &token, "{}").await);
    let (status, body) = http(
        addr,
        "POST",
        &edit,
        &token,
        r#"{"section":"achievements","text":"Overwritten."}"#,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let e: ErrorBody = serde_json::from_str(&body).expect("error JSON");
    assert_eq!(e.code, "not-synced", "{}", e.error);
    let after: DocView = serde_json::from_str(&ok(http(
        addr,
        "GET",
        &format!("/v1/docs/{doc}"),
        &token,
        "",
    )
    .await))
    .expect("doc JSON");
    assert!(
        !after.content.to_string().contains("Broadband"),
        "{}",
        after.content
    );
    assert!(after.heads.is_empty(), "{:?}", after.heads);
}
