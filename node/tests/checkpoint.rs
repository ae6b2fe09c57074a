//! Issue 11, defect 2, against a live node over loopback: heads pushed by a peer cannot stop this node's
//! checkpoint. A member pushes 70 inceptions that each cite only the genesis — more heads than any op can cite —
//! and the secretariat node then tables a checkpoint through its normal signing path: the checkpoint names exactly
//! its own parents (at most `MAX_PARENTS`, its own history first), so the replay holds it valid.

use wsis_node::net::{SyncRequest, SyncResponse};
use wsis_protocol::limits::MAX_PARENTS;
use wsis_protocol::op::{MeetingKind, MotionKind, OpKind, StakeholderType};

mod common;

use common::nodes::{admit, join, start_secretariat};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_heads_do_not_stop_a_live_nodes_checkpoint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, fed, boot) = start_secretariat(tmp.path()).await;
    let member = join(
        tmp.path(),
        "Mallory Inc",
        StakeholderType::PrivateSector,
        None,
        fed,
        &boot,
    )
    .await;
    admit(&itu, &member).await;
    let meeting = itu
        .submit_checked(OpKind::Convene {
            meeting: MeetingKind::Coordinators,
            year: 2026,
            title: "Coordinators".into(),
        })
        .await
        .expect("convened");

    let genesis = itu.with_gov(|g| g.genesis().id()).await;
    let inflation: Vec<Vec<u8>> = (0..70u64)
        .map(|i| {
            let mut ghost = wsis_protocol::fixture::Org::new(
                7000 + i,
                &format!("Ghost {i}"),
                StakeholderType::Academia,
                None,
            );
            ghost
                .sign(
                    Some(fed),
                    &[genesis],
                    OpKind::OrgInception(ghost.inception.clone()),
                    0,
                )
                .bytes()
                .to_vec()
        })
        .collect();
    for chunk in inflation.chunks(16) {
        let reply = member
            .network()
            .request(
                itu.peer_id(),
                &SyncRequest::Push {
                    ops: chunk.to_vec(),
                },
            )
            .await;
        // Whether the node takes such inceptions into its DAG or not, the checkpoint below must be valid.
        assert!(matches!(reply, Ok(SyncResponse::Ack { .. })), "{reply:?}");
    }
    let all_heads = itu.with_gov(|g| g.heads()).await;
    let heads = all_heads.len();

    let checkpoint = itu
        .submit_checked(OpKind::Motion {
            meeting: meeting.id(),
            // What the API builds (every current head); the node replaces them with the op's own parents.
            motion: MotionKind::Checkpoint { heads: all_heads },
        })
        .await
        .expect("the checkpoint is valid however many heads there are");
    let OpKind::Motion {
        motion: MotionKind::Checkpoint { heads: named },
        ..
    } = checkpoint.kind()
    else {
        panic!("a checkpoint motion");
    };
    assert_eq!(
        named.as_slice(),
        checkpoint.parents(),
        "it names its parents"
    );
    assert!(named.len() <= MAX_PARENTS);
    assert!(
        itu.with_gov(|g| g.in_history_of(&meeting.id(), named))
            .await,
        "its own history comes first"
    );
    assert_eq!(
        itu.with_gov(|g| g.validity(&checkpoint.id())).await,
        Some(Ok(()))
    );
    eprintln!("{heads} heads before the checkpoint, {} named", named.len());
    itu.shutdown().await;
    member.shutdown().await;
}
