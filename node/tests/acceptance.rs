//! One acceptance path (issue 10): what this node signs has passed the checks a peer applies. Through the local
//! API of a real node with a real peer: a procedure whose teams were typed out of order and twice is stored in
//! canonical form and accepted by the peer without a penalty; a meeting with an empty title is refused with the
//! decoder's reason (400); ops the replay refuses get 409 with the rule's stable code; nothing refused is stored;
//! the node restarts cleanly from its data directory afterwards.

use wsis_node::api::types::{ErrorBody, OpDone};
use wsis_node::data_dir::DataDir;
use wsis_node::node::{Node, NodeOptions};
use wsis_protocol::op::{MotionKind, OpKind, StakeholderType, TeamCode};

mod common;

use common::http::{call as http, serve_api};
use common::nodes::{address_of, admit, eventually, join, secretariat_dir};

/// (ops in the store, ops in the replica).
async fn counts(node: &Node) -> (usize, usize) {
    (node.stored_ops(), node.with_gov(|g| g.len()).await)
}

/// A refusal: the status and code expected, one line of reason, and nothing stored or applied.
async fn assert_refused(
    node: &Node,
    addr: std::net::SocketAddr,
    token: &str,
    (method, path, body): (&str, &str, &str),
    (status, code): (u16, &str),
) -> ErrorBody {
    let before = counts(node).await;
    let (got, text) = http(addr, method, path, token, body).await;
    assert_eq!(got, status, "{method} {path} {body}: {text}");
    let e: ErrorBody = serde_json::from_str(&text).expect("a JSON error");
    assert_eq!(e.code, code, "{method} {path} {body}: {text}");
    assert_eq!(e.error.lines().count(), 1, "{text}");
    assert_eq!(
        counts(node).await,
        before,
        "{method} {path}: nothing stored or applied"
    );
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_this_node_signs_passes_the_checks_a_peer_applies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, _fed) = secretariat_dir(tmp.path(), "itu", "acceptance").await;
    let token = dir.api_token().to_string();
    let options = NodeOptions {
        listen: common::loopback(),
        mdns: Some(false),
        ..Default::default()
    };
    let itu = Node::start(dir, options.clone()).await.expect("start");
    let boot = address_of(&itu).await;
    let fed = itu.with_gov(|g| g.federation_id()).await;
    let apc = join(
        tmp.path(),
        "APC",
        StakeholderType::CivilSociety,
        None,
        fed,
        &boot,
    )
    .await;
    admit(&itu, &apc).await;
    let (addr, stop, api) = serve_api(&itu, &token).await;

    // (a) A coordinators' meeting, and the procedure with its teams typed out of order and one twice.
    let (status, body) = http(
        addr,
        "POST",
        "/v1/meetings",
        &token,
        r#"{"kind":"coordinators","year":2026,"title":"Coordinators 2026"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let meeting: OpDone = serde_json::from_str(&body).expect("op");
    let (status, body) = http(
        addr,
        "POST",
        "/v1/motions",
        &token,
        &format!(
            r#"{{"meeting":"{}","motion":{{"kind":"adopt-procedure","year":2026,"teams":["C7.EGOV","C7.EBUS","C7.EGOV"],"sections":["challenges","achievements","challenges"]}}}}"#,
            meeting.op
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let procedure: OpDone = serde_json::from_str(&body).expect("op");
    let id: wsis_protocol::ids::OpId = procedure.op.parse().expect("op id");
    let stored = itu
        .with_gov(|g| g.get(&id).map(|op| op.kind().clone()))
        .await
        .expect("the procedure is in the replica");
    let team = |c: &str| TeamCode::new(c).expect("valid");
    match stored {
        OpKind::Motion {
            motion: MotionKind::AdoptProcedure(p),
            ..
        } => {
            assert_eq!(
                p.teams,
                vec![team("C7.EBUS"), team("C7.EGOV")],
                "sorted, unique"
            );
            assert_eq!(p.required_sections, vec!["challenges", "achievements"]);
        }
        other => panic!("{other:?}"),
    }
    // The peer receives it, accepts it (valid, in its DAG), and has not penalised the secretariat.
    eventually("the peer has the procedure", || async {
        apc.with_gov(|g| g.validity(&id) == Some(Ok(()))).await
    })
    .await;
    assert_eq!(apc.stats().ops_refused, 0, "{:?}", apc.stats());
    let penalties = apc
        .network()
        .stats()
        .await
        .expect("stats")
        .peers
        .get(&itu.peer_id())
        .map_or(0, |p| p.penalties);
    assert_eq!(penalties, 0, "the peer penalised the secretariat");

    // (b) An empty title: every peer's decoder refuses it, so the API does, with the decoder's reason.
    for title in ["", "  "] {
        let e = assert_refused(
            &itu,
            addr,
            &token,
            (
                "POST",
                "/v1/meetings",
                &format!(r#"{{"kind":"coordinators","year":2026,"title":"{title}"}}"#),
            ),
            (400, "malformed"),
        )
        .await;
        assert!(e.error.contains("a name must not be empty"), "{}", e.error);
    }
    // An empty section name too.
    assert_refused(
        &itu,
        addr,
        &token,
        (
            "POST",
            "/v1/motions",
            &format!(
                r#"{{"meeting":"{}","motion":{{"kind":"adopt-procedure","year":2027,"sections":[""]}}}}"#,
                meeting.op
            ),
        ),
        (400, "malformed"),
    )
    .await;

    // (c) Ops the replay refuses: 409 with the rule's code, nothing stored.
    let attend = format!("/v1/meetings/{}/attend", meeting.op);
    let (status, body) = http(addr, "POST", &attend, &token, "{}").await;
    assert_eq!(status, 200, "{body}");
    assert_refused(
        &itu,
        addr,
        &token,
        ("POST", &attend, "{}"),
        (409, "duplicate"),
    )
    .await;
    // The coordinators' electorate is the coordinators at its convening: none, so the secretariat cannot vote.
    assert_refused(
        &itu,
        addr,
        &token,
        (
            "POST",
            &format!("/v1/motions/{}/vote", procedure.op),
            r#"{"yes":true}"#,
        ),
        (409, "not-in-electorate"),
    )
    .await;
    assert_refused(
        &itu,
        addr,
        &token,
        ("POST", "/v1/teams/C1/modalities", r#"{"text":"Monthly."}"#),
        (409, "not-coordinator"),
    )
    .await;
    assert_refused(
        &itu,
        addr,
        &token,
        (
            "POST",
            "/v1/meetings",
            r#"{"kind":"team","team":"C1","year":2026,"title":"C1 meeting"}"#,
        ),
        (409, "not-coordinator"),
    )
    .await;
    // A nomination citing a motion that is not a passed recommendation.
    assert_refused(
        &itu,
        addr,
        &token,
        (
            "POST",
            "/v1/coordinators",
            &format!(
                r#"{{"team":"C1","org":"{}","recommendation":"{}"}}"#,
                apc.org(),
                procedure.op
            ),
        ),
        (409, "motion-not-passed"),
    )
    .await;
    // Admitting a secretariat organisation (this one): the rules say admission does not apply to it.
    assert_refused(
        &itu,
        addr,
        &token,
        (
            "POST",
            "/v1/orgs/admit",
            &format!(r#"{{"org":"{}"}}"#, itu.org()),
        ),
        (409, "not-applicable"),
    )
    .await;
    // Joining a team twice is accepted by the rules but would change nothing: refused before signing.
    let (status, body) = http(addr, "POST", "/v1/teams/C2/join", &token, "{}").await;
    assert_eq!(status, 200, "{body}");
    assert_refused(
        &itu,
        addr,
        &token,
        ("POST", "/v1/teams/C2/join", "{}"),
        (409, "already"),
    )
    .await;
    // An id that does not exist is still a 404.
    assert_refused(
        &itu,
        addr,
        &token,
        (
            "POST",
            &format!("/v1/meetings/op_{}/attend", "0".repeat(64)),
            "{}",
        ),
        (404, "unknown-meeting"),
    )
    .await;
    eventually("the peer has the attendance", || async {
        apc.with_gov(|g| g.len()).await == itu.with_gov(|g| g.len()).await
    })
    .await;
    assert_eq!(apc.stats().ops_refused, 0, "{:?}", apc.stats());

    // (d) The secretariat restarts cleanly from its data directory, with every op it acknowledged.
    let before = counts(&itu).await;
    let digest = itu.with_gov(|g| g.digest()).await;
    let _ = stop.send(());
    let _ = api.await;
    itu.shutdown().await;
    drop(itu);
    let dir = DataDir::open(tmp.path().join("itu")).expect("reopen");
    let itu = Node::start(dir, options).await.expect("restart");
    assert_eq!(counts(&itu).await, before);
    assert_eq!(itu.with_gov(|g| g.digest()).await, digest);
    assert_eq!(itu.with_gov(|g| g.invalid_ops().len()).await, 0);
    for n in [&itu, &apc] {
        n.shutdown().await;
    }
}
