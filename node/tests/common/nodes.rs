//! Whole nodes over loopback TCP: a secretariat that creates the federation, organisations that join through it
//! and are admitted, and polling with a generous deadline, so a slow machine only makes a test slower, never
//! flaky.

use std::time::Duration;
use wsis_node::data_dir::DataDir;
use wsis_node::net::Multiaddr;
use wsis_node::node::{create_federation, Node, NodeOptions};
use wsis_protocol::ids::FederationId;
use wsis_protocol::op::{OpKind, StakeholderType};

use super::{init, loopback};

/// How long a wait may take before the test fails: generous, no assertion is about time.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// The node's first loopback listen address, with its peer id, once it listens.
pub async fn address_of(node: &Node) -> Multiaddr {
    let start = tokio::time::Instant::now();
    loop {
        let addrs = node.network().listen_addrs().await.expect("net running");
        if let Some(a) = addrs
            .into_iter()
            .find(|a| a.to_string().contains("127.0.0.1"))
        {
            return format!("{a}/p2p/{}", node.peer_id())
                .parse()
                .expect("valid");
        }
        assert!(start.elapsed() < DEADLINE, "node never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` until it holds, failing with `what` at the deadline.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The data directory `root/dir_name` of the secretariat (ITU), holding the genesis of a federation called
/// `federation` with the reference teams; not started, so the caller can read its API token first.
pub async fn secretariat_dir(
    root: &std::path::Path,
    dir_name: &str,
    federation: &str,
) -> (DataDir, FederationId) {
    let mut dir = init(
        root,
        dir_name,
        StakeholderType::InternationalOrganisation,
        None,
    );
    let fed = create_federation(
        &mut dir,
        federation,
        wsis_protocol::reference::wsis_teams(),
        vec![],
    )
    .await
    .expect("genesis");
    (dir, fed)
}

/// The secretariat's node, started on loopback, with its federation and its address to bootstrap from.
pub async fn start_secretariat(root: &std::path::Path) -> (Node, FederationId, Multiaddr) {
    let (dir, fed) = secretariat_dir(root, "ITU", "WSIS test").await;
    let node = Node::start(
        dir,
        NodeOptions {
            listen: loopback(),
            ..Default::default()
        },
    )
    .await
    .expect("start");
    let addr = address_of(&node).await;
    (node, fed, addr)
}

/// A new organisation's node, joining `fed` through `boot`.
pub async fn join(
    root: &std::path::Path,
    name: &str,
    st: StakeholderType,
    country: Option<&str>,
    fed: FederationId,
    boot: &Multiaddr,
) -> Node {
    let dir = init(root, name, st, country);
    Node::start(
        dir,
        NodeOptions {
            listen: loopback(),
            bootstrap: vec![boot.clone()],
            join: Some(fed),
            ..Default::default()
        },
    )
    .await
    .expect("join")
}

/// The secretariat admits `newcomer` once its inception has arrived by push; returns once the newcomer knows.
pub async fn admit(secretariat: &Node, newcomer: &Node) {
    let org = newcomer.org();
    eventually("the inception reaches the secretariat", || async {
        secretariat.with_gov(|g| g.org(&org).is_some()).await
    })
    .await;
    secretariat
        .submit(OpKind::Admit { org })
        .await
        .expect("admit");
    eventually("the newcomer learns it was admitted", || async {
        newcomer.with_gov(|g| g.is_member(&org)).await
    })
    .await;
}

/// The node's governance digest: equal digests mean the same replayed state.
pub async fn digest(n: &Node) -> [u8; 32] {
    n.with_gov(|g| g.digest()).await
}
