//! The partition fault of the annual cycle: the federation is split in two halves (real processes restarted
//! with `--block-peer` for the other half, see [`Testnet::partition`]) while the output drafts are written, so
//! each document is edited on both sides of the split where its team allows; the run then checks that the halves
//! really diverged (no link across, different document digests), heals and waits for convergence.

use crate::{Testnet, SYNC_DEADLINE};
use anyhow::{bail, Result};
use serde::Serialize;
use std::time::{Duration, Instant};

/// The two halves of a split: `a` holds node 0 (the convening secretariat).
#[derive(Debug, Clone)]
pub struct Split {
    pub a: Vec<usize>,
    pub b: Vec<usize>,
}

impl Split {
    /// The first `ceil(n / 2)` nodes against the rest.
    pub fn halves(n: usize) -> Split {
        let cut = n.div_ceil(2);
        Split {
            a: (0..cut).collect(),
            b: (cut..n).collect(),
        }
    }

    fn side(&self, i: usize) -> bool {
        self.a.contains(&i)
    }
}

/// What the split looked like, for the run's report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PartitionOutcome {
    /// Acronyms of each half.
    pub half_a: Vec<String>,
    pub half_b: Vec<String>,
    /// Document edits made in each half while split.
    pub edits_a: usize,
    pub edits_b: usize,
    /// Documents edited in both halves (concurrent edits merged at healing).
    pub docs_edited_on_both_sides: usize,
    /// Each half's document digest once it had converged on its own (they differ).
    pub docs_digest_a: String,
    pub docs_digest_b: String,
    /// Governance ops each half had while split.
    pub ops_a: u64,
    pub ops_b: u64,
    /// Time for each half to converge on its own after the last edit.
    pub split_converged_ms: u128,
    /// Time from the end of the split (nodes restarted without blocks) to convergence of every node.
    pub heal_converged_ms: u128,
    /// Time to restart every node without blocks.
    pub heal_restart_ms: u128,
}

/// Restarts the nodes as two halves (see [`Split::halves`]) and checks that no link crosses the split.
pub fn split(net: &mut Testnet) -> Result<Split> {
    let split = Split::halves(net.nodes.len());
    net.partition(&split.a, &split.b)?;
    check_no_link_across(net, &split)?;
    (net.progress)(&format!(
        "partitioned: {} | {}",
        acronyms(net, &split.a).join(" "),
        acronyms(net, &split.b).join(" ")
    ));
    Ok(split)
}

/// The second author of a document whose team is `members` (its coordinator first): while split, a member on
/// the other side of the coordinator when the team has one, so the document is written in both halves;
/// otherwise the team's second member.
pub fn co_author(members: &[usize], split: Option<&Split>) -> Option<usize> {
    let c = *members.first()?;
    split
        .and_then(|s| members.iter().copied().find(|&m| s.side(m) != s.side(c)))
        .or_else(|| members.get(1).copied())
}

/// After the edits made while split (`jobs`: node and CLI arguments, `output edit DOC …`): waits until each half
/// has converged on its own, fails loudly unless the halves differ and no link crosses the split, then heals and
/// waits until every node has converged.
pub fn check_and_heal(
    net: &mut Testnet,
    split: &Split,
    jobs: &[(usize, Vec<String>)],
) -> Result<PartitionOutcome> {
    let mut out = PartitionOutcome {
        half_a: acronyms(net, &split.a),
        half_b: acronyms(net, &split.b),
        ..Default::default()
    };
    let mut docs_a = std::collections::BTreeSet::new();
    let mut docs_b = std::collections::BTreeSet::new();
    for (i, args) in jobs {
        let doc = args.get(2).cloned().unwrap_or_default();
        if split.side(*i) {
            out.edits_a += 1;
            docs_a.insert(doc);
        } else {
            out.edits_b += 1;
            docs_b.insert(doc);
        }
    }
    out.docs_edited_on_both_sides = docs_a.intersection(&docs_b).count();
    if out.edits_a == 0 || out.edits_b == 0 {
        bail!(
            "partition: edits in half A {}, in half B {}: the teams' members are all on one side; run with more teams",
            out.edits_a,
            out.edits_b
        );
    }

    let started = Instant::now();
    net.wait_converged_among(&split.a, SYNC_DEADLINE)?;
    net.wait_converged_among(&split.b, SYNC_DEADLINE)?;
    out.split_converged_ms = started.elapsed().as_millis();
    let a = net.status(split.a[0])?;
    let b = net.status(split.b[0])?;
    out.docs_digest_a = a.docs_digest;
    out.docs_digest_b = b.docs_digest;
    out.ops_a = a.ops as u64;
    out.ops_b = b.ops as u64;
    check_no_link_across(net, split)?;
    if out.docs_digest_a.is_empty() || out.docs_digest_a == out.docs_digest_b {
        bail!(
            "partition did not work: both halves have document digest {} after {} + {} edits made apart",
            out.docs_digest_a,
            out.edits_a,
            out.edits_b
        );
    }
    (net.progress)(&format!(
        "split: {} edits in A, {} in B ({} documents on both sides); docs digests A {} ≠ B {}",
        out.edits_a,
        out.edits_b,
        out.docs_edited_on_both_sides,
        short(&out.docs_digest_a),
        short(&out.docs_digest_b)
    ));

    let started = Instant::now();
    net.heal()?;
    out.heal_restart_ms = started.elapsed().as_millis();
    let started = Instant::now();
    net.wait_converged(SYNC_DEADLINE)?;
    out.heal_converged_ms = started.elapsed().as_millis();
    (net.progress)(&format!(
        "healed: every node restarted without blocks in {:.1}s, converged {:.1}s later",
        Duration::from_millis(out.heal_restart_ms as u64).as_secs_f64(),
        Duration::from_millis(out.heal_converged_ms as u64).as_secs_f64()
    ));
    Ok(out)
}

/// Fails unless every node runs and none is connected to a node of the other half.
fn check_no_link_across(net: &Testnet, split: &Split) -> Result<()> {
    for (half, other) in [(&split.a, &split.b), (&split.b, &split.a)] {
        let other_ids: Vec<String> = other
            .iter()
            .filter_map(|&j| net.nodes[j].peer_id.clone())
            .collect();
        for &i in half {
            let across: Vec<String> = net
                .connected_peers(i)?
                .into_iter()
                .filter(|p| other_ids.contains(p))
                .collect();
            if !across.is_empty() {
                bail!(
                    "partition did not work: {} is connected to {} of the other half",
                    net.nodes[i].spec.acronym,
                    across.join(", ")
                );
            }
        }
    }
    Ok(())
}

fn acronyms(net: &Testnet, which: &[usize]) -> Vec<String> {
    which
        .iter()
        .map(|&i| net.nodes[i].spec.acronym.clone())
        .collect()
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}
