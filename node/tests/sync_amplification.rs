//! Issue 14, defect 5 against live nodes over loopback (real libp2p, real sled, real signatures): an admitted
//! member floods a victim with tiny `GetEnvelopes { have: [] }`, `GovSince { heads: [] }` and `DocDigests` requests
//! (42 bytes each pulled up to 16 MiB before the fix). The victim serves the attacker at most its budget, the
//! victim's peak RSS is printed, and an honest member still converges with the victim.
//!
//! No assertion is about time: the byte bound is computed from the time the attack actually took (a slow machine
//! only makes the bound looser), and every wait has a generous deadline that only detects a hang.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use automerge::transaction::Transactable;
use rand::{Rng, SeedableRng};
use wsis_node::net::{RefuseReason, ServeBudget, SyncRequest, SyncResponse, MAX_PAGE_BYTES};
use wsis_protocol::ids::DocId;
use wsis_protocol::op::{DocKind, OpKind, StakeholderType, TeamCode};

mod common;

use common::nodes::{admit, eventually, join, start_secretariat};

/// The test process's peak resident set (`VmHWM`), in KiB; 0 where `/proc` does not say.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time of the test process so far (user + system), in seconds, assuming the usual 100 clock ticks per
/// second; 0 where `/proc` does not say.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The fields after the command name (which is in parentheses and may hold spaces).
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

/// Requests of each kind the attacker sends, and how many it keeps in flight at once (as many as the victim
/// keeps pending for one peer: more are refused at once and would not reach the budget).
const REQUESTS_PER_KIND: usize = 96;
const IN_FLIGHT: usize = wsis_node::net::MAX_PENDING_INBOUND_PER_PEER;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue14_case_5_a_member_flooding_sync_requests_gets_its_budget_and_an_honest_peer_converges(
) {
    let tmp = tempfile::tempdir().unwrap();
    let (victim, fed, boot) = start_secretariat(tmp.path()).await;
    // The attacker's bucket at the victim cannot exist before this instant.
    let t0 = Instant::now();
    let attacker = join(
        tmp.path(),
        "APC",
        StakeholderType::CivilSociety,
        None,
        fed,
        &boot,
    )
    .await;
    admit(&victim, &attacker).await;
    let c2 = TeamCode::new("C2").unwrap();
    victim
        .submit(OpKind::JoinTeam { team: c2.clone() })
        .await
        .unwrap();
    let draft = victim
        .submit(OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: c2.clone(),
                year: 2026,
            },
        })
        .await
        .unwrap();
    let doc = DocId(draft.id().0);
    // About 2.4 MB of text that compresses badly, in four envelopes: more than two pages.
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for i in 0..4 {
        let text: String = (0..600_000)
            .map(|_| rng.sample(rand::distributions::Alphanumeric) as char)
            .collect();
        victim
            .edit(&doc, |tx| {
                tx.put(automerge::ROOT, format!("section{i}"), text)?;
                Ok(())
            })
            .await
            .unwrap();
        victim.publish(&doc).await.unwrap();
    }
    let doc_bytes: usize = victim
        .with_docs(|_, d| {
            d.envelopes_missing_from(&doc, &[])
                .iter()
                .map(|e| e.bytes().len())
                .sum()
        })
        .await;
    eventually("the attacker knows the document", || async {
        attacker.with_gov(|g| g.document(&doc).is_some()).await
    })
    .await;

    let victim_peer = victim.peer_id();
    let rss_before = peak_rss_kib();
    let cpu_before = cpu_secs();
    let attack_start = Instant::now();
    let requests: Vec<SyncRequest> = (0..REQUESTS_PER_KIND)
        .flat_map(|_| {
            [
                SyncRequest::GetEnvelopes { doc, have: vec![] },
                SyncRequest::GovSince { heads: vec![] },
                SyncRequest::DocDigests { after: None },
            ]
        })
        .collect();
    let (mut answered, mut busy, mut failed, mut received) = (0usize, 0usize, 0usize, 0usize);
    let mut first_error = None;
    for chunk in requests.chunks(IN_FLIGHT) {
        let replies = futures::future::join_all(
            chunk
                .iter()
                .map(|r| attacker.network().request(victim_peer, r)),
        )
        .await;
        for reply in replies {
            match reply {
                Ok(SyncResponse::Refused {
                    reason: RefuseReason::Busy,
                }) => busy += 1,
                Ok(SyncResponse::Envelopes { envelopes, more }) => {
                    let bytes: usize = envelopes.iter().map(Vec::len).sum();
                    assert!(
                        bytes <= MAX_PAGE_BYTES || envelopes.len() == 1,
                        "a page of {bytes} bytes"
                    );
                    assert!(more, "the document is more than one page");
                    received += bytes;
                    answered += 1;
                }
                Ok(SyncResponse::Ops { ops, .. }) => {
                    received += ops.iter().map(Vec::len).sum::<usize>();
                    answered += 1;
                }
                Ok(_) => answered += 1,
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert(e.to_string());
                }
            }
        }
    }
    let attack_secs = attack_start.elapsed().as_secs_f64();
    let since_t0 = t0.elapsed().as_secs_f64();
    let rss_after = peak_rss_kib();
    let cpu = cpu_secs() - cpu_before;
    let served = victim.served_to(&attacker.peer_id());
    let net = victim.network().stats().await.unwrap();
    let wire_out = net
        .peers
        .get(&attacker.peer_id())
        .map_or(0, |p| p.bytes_out);
    let budget = ServeBudget::default();
    let bound = budget.byte_burst as f64 + budget.bytes_per_sec as f64 * since_t0;
    let unbounded = REQUESTS_PER_KIND * doc_bytes.min(16 * 1024 * 1024);
    println!(
        "issue14 case 5: {} requests of 3 kinds in {attack_secs:.2} s: {answered} answered, {busy} busy, {failed} failed (first: {first_error:?}); \
         attacker received {:.1} MiB; victim charged {:.1} MiB to it ({} requests answered, {} delayed, {} refused), \
         sent it {:.1} MiB on the wire; budget bound {:.1} MiB; without paging and budget the GetEnvelopes alone \
         would have pulled {:.1} MiB; document {:.1} MiB; peak RSS of the test process (three nodes) {} -> {} KiB; \
         CPU time of the test process during the attack {cpu:.2} s",
        requests.len(),
        received as f64 / 1048576.0,
        served.bytes as f64 / 1048576.0,
        served.requests,
        served.delayed,
        served.refused,
        wire_out as f64 / 1048576.0,
        bound / 1048576.0,
        unbounded as f64 / 1048576.0,
        doc_bytes as f64 / 1048576.0,
        rss_before,
        rss_after,
    );
    assert!(
        (served.bytes as f64) <= bound,
        "the attacker was charged {} bytes, over its budget {bound}",
        served.bytes
    );
    assert!(
        (received as f64) <= bound,
        "the attacker received {received} bytes, over its budget {bound}"
    );
    assert!(
        busy + failed > 0 || served.delayed > 0,
        "a flood of {} requests is slowed down or refused",
        requests.len()
    );
    assert!(
        answered > 0,
        "the attacker is still served within its budget"
    );

    // An honest member joins after the attack, pulls the document and writes to it; the victim takes its edit.
    let honest = join(
        tmp.path(),
        "Kenya",
        StakeholderType::Government,
        Some("KE"),
        fed,
        &boot,
    )
    .await;
    admit(&victim, &honest).await;
    honest
        .submit(OpKind::JoinTeam { team: c2.clone() })
        .await
        .unwrap();
    eventually("the honest member pulls the whole document", || async {
        let a = victim.with_docs(|_, d| d.heads(&doc)).await;
        let b = honest.with_docs(|_, d| d.heads(&doc)).await;
        !a.is_empty() && a == b
    })
    .await;
    eventually("the honest member is in the team everywhere", || async {
        victim.with_gov(|g| g.team_members(&c2).len() == 2).await
    })
    .await;
    honest
        .edit(&doc, |tx| {
            tx.put(automerge::ROOT, "kenya", "community networks")?;
            Ok(())
        })
        .await
        .unwrap();
    honest.publish(&doc).await.unwrap();
    eventually("the victim and the honest member converge", || async {
        let a = victim
            .with_docs(|_, d| (d.export(&doc).ok(), d.heads(&doc)))
            .await;
        let b = honest
            .with_docs(|_, d| (d.export(&doc).ok(), d.heads(&doc)))
            .await;
        a.0.is_some() && a == b && a.1.len() == 1
    })
    .await;
    let honest_served = victim.served_to(&honest.peer_id());
    assert_eq!(
        honest_served.refused, 0,
        "the honest member is never refused: {honest_served:?}"
    );
    for n in [&victim, &attacker, &honest] {
        n.shutdown().await;
    }
}
