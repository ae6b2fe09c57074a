//! An outsider's flood against a live node over loopback libp2p (issue 11 defect 1): real nodes (sled,
//! signatures, the sync protocol), attackers as raw libp2p clients with fresh identities that no member bound.
//!
//! Before the fix, every pushed `OrgInception` and `BindNode` of a never-admitted organisation entered the DAG, was
//! stored, re-announced and indexed every vector clock: 20,000 junk inceptions cost a replica about 850 MB. Now an
//! inception waits outside the DAG until a secretariat's `Admit` takes it in (a bounded, expiring pending area in
//! the replica, charged per sending peer at the node), and a peer pushing past its quota of waiting ops is
//! penalised, then banned. Figures (resident memory, CPU time of the whole test process, time) are printed;
//! nothing is asserted about time.

mod common;

use common::nodes::{admit, digest, eventually, join, start_secretariat};
use common::raw::{push_all, raw_client};
use libp2p::{Multiaddr, PeerId};
use std::time::Instant;
use wsis_protocol::limits::MAX_PENDING_OPS;
use wsis_protocol::op::{OpKind, StakeholderType, TeamCode};

/// Peer ids the attacker uses, and inceptions (each with its binding) pushed from each: 50 × 500 × 2 = 50,000 ops.
const FLOODERS: u64 = 50;
const ORGS_PER_FLOODER: u32 = 500;
/// Ops per push: well under the protocol's push limit, so only the admission rules stop this attacker.
const PER_PUSH: usize = 16;

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`), or 0 where there is none.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// User plus system CPU time of this process, in seconds (from `/proc/self/stat`, in clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

/// Pushes all of `ops` to `victim`, dialling again with a fresh identity whenever it is cut off (refused or
/// banned: a fresh peer id costs the attacker nothing). Returns the identities used.
async fn push_with_fresh_ids(boot: Multiaddr, victim: PeerId, ops: &[Vec<u8>]) -> usize {
    let (mut sent, mut identities, mut stalled) = (0, 0, 0);
    while sent < ops.len() && stalled < 3 {
        let mut client = raw_client();
        client.dial(boot.clone()).expect("dial");
        identities += 1;
        let answered = push_all(&mut client, victim, &ops[sent..], PER_PUSH).await;
        // The push that was cut off is skipped: the victim may or may not have read it.
        sent += (answered + 1) * PER_PUSH;
        stalled = if answered == 0 { stalled + 1 } else { 0 };
    }
    identities
}

/// Catalogue (issue 11 defect 1), live: 50 peer ids nobody bound push 50,000 inceptions and bindings of
/// organisations nobody admitted. The victim's DAG, store and digest do not change, what waits for admission stays
/// under its bound, every flooder is penalised; the same floods pushed in full from fresh peer ids change nothing
/// either; and afterwards an honest newcomer is still admitted and an honest
/// member's op still syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsiders_flood_of_inceptions_costs_the_victim_nothing_that_lasts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (itu, fed, boot) = start_secretariat(tmp.path()).await;
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
    eventually("APC has the secretariat's history", || async {
        digest(&apc).await == digest(&itu).await
    })
    .await;

    // The attacker's ops are made before anything is measured (signing is the attacker's cost).
    let floods: Vec<Vec<Vec<u8>>> = (0..FLOODERS)
        .map(|f| common::evil::outsider_ops(fed, 1_000_000 + f * 10_000, ORGS_PER_FLOODER))
        .collect();
    let total: usize = floods.iter().map(Vec::len).sum();
    let wire: usize = floods.iter().flatten().map(Vec::len).sum();

    let (dag_before, digest_before) = itu.with_gov(|g| (g.len(), g.digest())).await;
    let stored_before = itu.stored_ops();
    let (rss_before, cpu_before, started) = (status_kib("VmRSS:"), cpu_seconds(), Instant::now());

    // 1. Fifty peer ids at once, each from its own connection, each until the victim stops answering it.
    let mut clients: Vec<_> = (0..FLOODERS).map(|_| raw_client()).collect();
    let peers: Vec<_> = clients.iter().map(|c| *c.local_peer_id()).collect();
    for c in &mut clients {
        c.dial(boot.clone()).expect("dial");
    }
    let victim = itu.peer_id();
    let answered: usize = futures::future::join_all(
        clients
            .iter_mut()
            .zip(&floods)
            .map(|(c, ops)| push_all(c, victim, ops, PER_PUSH)),
    )
    .await
    .into_iter()
    .sum();
    let (elapsed, cpu) = (started.elapsed(), cpu_seconds() - cpu_before);
    let (rss_after, hwm) = (status_kib("VmRSS:"), status_kib("VmHWM:"));

    let (dag_after, digest_after, pending) = itu
        .with_gov(|g| (g.len(), g.digest(), g.pending_len()))
        .await;
    let net = itu.network().stats().await.expect("stats");
    let penalised = peers
        .iter()
        .filter(|p| net.peers.get(p).is_some_and(|s| s.penalties > 0))
        .count();
    let banned = peers
        .iter()
        .filter(|p| net.peers.get(p).is_some_and(|s| s.banned))
        .count();
    println!(
        "{FLOODERS} unbound peer ids pushed {total} ops ({:.1} MiB on the wire, {answered} pushes of {PER_PUSH} \
         answered) in {elapsed:?}: the victim's DAG {dag_before} -> {dag_after} ops, store {stored_before} -> {}, \
         {pending} waiting for admission; {penalised} flooders penalised, {banned} banned; process RSS \
         {rss_before} -> {rss_after} KiB (peak {hwm} KiB), CPU {cpu:.2} s",
        wire as f64 / (1024.0 * 1024.0),
        itu.stored_ops()
    );
    assert_eq!(
        dag_after, dag_before,
        "nothing of the flood entered the DAG"
    );
    assert_eq!(
        digest_after, digest_before,
        "the replayed state is the same"
    );
    assert_eq!(
        itu.stored_ops(),
        stored_before,
        "nothing of the flood was stored"
    );
    assert!(
        pending <= MAX_PENDING_OPS,
        "{pending} ops waiting for admission"
    );
    assert_eq!(
        penalised, FLOODERS as usize,
        "every flooder pushed past its quota of ops waiting for admission and was penalised"
    );
    assert!(
        answered < total / PER_PUSH,
        "the flooders were cut off before they pushed everything"
    );

    // 2. The same fifty floods again, each flooder taking a fresh peer id whenever it is cut off, until every one
    //    of the 50,000 ops has been pushed: the bans no longer limit what arrives, the pending area's bounds must.
    let (cpu_before, started) = (cpu_seconds(), Instant::now());
    let identities: usize = futures::future::join_all(
        floods
            .iter()
            .map(|ops| push_with_fresh_ids(boot.clone(), victim, ops)),
    )
    .await
    .into_iter()
    .sum();
    let (elapsed, cpu) = (started.elapsed(), cpu_seconds() - cpu_before);
    let (rss_after2, hwm2) = (status_kib("VmRSS:"), status_kib("VmHWM:"));
    let (dag_after, digest_after, pending) = itu
        .with_gov(|g| (g.len(), g.digest(), g.pending_len()))
        .await;
    println!(
        "the same {total} ops pushed in full from {identities} fresh peer ids in {elapsed:?}: the victim's DAG \
         {dag_after} ops, store {}, {pending} waiting for admission; process RSS {rss_after} -> {rss_after2} KiB \
         (peak {hwm2} KiB), CPU {cpu:.2} s",
        itu.stored_ops()
    );
    assert_eq!(
        dag_after, dag_before,
        "nothing of the flood entered the DAG"
    );
    assert_eq!(
        digest_after, digest_before,
        "the replayed state is the same"
    );
    assert_eq!(
        itu.stored_ops(),
        stored_before,
        "nothing of the flood was stored"
    );
    assert!(
        pending <= MAX_PENDING_OPS,
        "{pending} ops waiting for admission"
    );

    // The federation goes on: a newcomer is admitted, and a member's op reaches the secretariat.
    let newcomer = join(
        tmp.path(),
        "Ministry",
        StakeholderType::Government,
        Some("KE"),
        fed,
        &boot,
    )
    .await;
    admit(&itu, &newcomer).await;
    let op = apc
        .submit(OpKind::JoinTeam {
            team: TeamCode::new("C1").expect("valid"),
        })
        .await
        .expect("join a team");
    eventually("the member's op reaches the secretariat", || async {
        itu.with_gov(|g| g.contains(&op.id())).await
    })
    .await;
    for n in [&itu, &apc, &newcomer] {
        n.shutdown().await;
    }
}
