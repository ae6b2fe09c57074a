//! The run's report: a table per node and `DIR/report.json`.

use crate::scenario::Outcome;
use crate::Testnet;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use wsis_node::api::types::Status;

/// One node's line.
#[derive(Debug, Serialize)]
pub struct NodeReport {
    pub org: String,
    pub acronym: String,
    pub ops: u64,
    pub ops_invalid: u64,
    pub documents: u64,
    /// Its governance and document heads equal every other node's.
    pub converged: bool,
    /// Data it refused from peers: invalid ops and envelopes that failed the acceptance pipeline.
    pub rejected: u64,
    /// Requests it refused because the asking peer was not bound to an admitted organisation here (normal while
    /// organisations are being admitted; the malicious node's requests too).
    pub requests_refused: u64,
    /// The rejected envelopes by reason (from `wsis status`; `null` when the node did not answer).
    pub envelopes_rejected: Option<BTreeMap<String, u64>>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub peak_rss_kib: u64,
    pub kills: u32,
}

/// `report.json`.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub federation: String,
    pub nodes: Vec<NodeReport>,
    pub converged: bool,
    pub convergence_after_last_edit_ms: u128,
    pub total_ms: u128,
    pub bytes_exchanged: u64,
    pub phases: Vec<(String, u128)>,
    pub killed: Vec<(String, usize)>,
    pub malicious_pushed: u64,
    /// Per node, how the malicious node's items were rejected (with `--malicious`).
    pub malicious: Option<crate::malicious::MaliciousReport>,
    /// The split, its divergence and the healing (with `--partition`).
    pub partition: Option<crate::partition::PartitionOutcome>,
    pub bundle: String,
    pub report_html: String,
    pub verified: serde_json::Value,
}

/// Collects every node's status and writes `out/report.json`.
pub fn write(
    net: &Testnet,
    outcome: &Outcome,
    malicious: Option<crate::malicious::MaliciousReport>,
    total: Duration,
    out: &Path,
) -> Result<RunReport> {
    // A node that does not answer is reported (zeros, not converged) rather than failing the report.
    let statuses: Vec<Option<Status>> = (0..net.nodes.len())
        .map(|i| net.status_if_answering(i))
        .collect::<Result<_>>()?;
    let key = |s: &Option<Status>| {
        s.as_ref()
            .map(|s| (s.gov_digest.clone(), s.docs_digest.clone()))
    };
    let reference = statuses.first().map(key);
    let nodes: Vec<NodeReport> = net
        .nodes
        .iter()
        .zip(&statuses)
        .map(|(n, s)| NodeReport {
            org: n.org.clone(),
            acronym: n.spec.acronym.clone(),
            ops: s.as_ref().map_or(0, |s| s.ops as u64),
            ops_invalid: s.as_ref().map_or(0, |s| s.ops_invalid as u64),
            documents: s.as_ref().map_or(0, |s| s.documents as u64),
            converged: s.is_some() && Some(key(s)) == reference,
            rejected: s.as_ref().map_or(0, |s| {
                s.ops_refused + s.envelopes_rejected.values().sum::<u64>()
            }),
            requests_refused: s.as_ref().map_or(0, |s| s.requests_refused),
            envelopes_rejected: s.as_ref().map(|s| s.envelopes_rejected.clone()),
            bytes_in: s.as_ref().map_or(0, |s| s.bytes_in),
            bytes_out: s.as_ref().map_or(0, |s| s.bytes_out),
            peak_rss_kib: n.peak_rss_kib,
            kills: n.kills,
        })
        .collect();
    let report = RunReport {
        federation: net.federation.clone(),
        converged: nodes.iter().all(|n| n.converged),
        bytes_exchanged: nodes.iter().map(|n| n.bytes_out).sum(),
        nodes,
        convergence_after_last_edit_ms: outcome.convergence_after_last_edit.as_millis(),
        total_ms: total.as_millis(),
        phases: outcome
            .phases
            .iter()
            .map(|(p, d)| (p.clone(), d.as_millis()))
            .collect(),
        killed: outcome.killed.clone(),
        malicious_pushed: outcome.malicious_pushed,
        malicious,
        partition: outcome.partition.clone(),
        bundle: outcome.bundle_dir.display().to_string(),
        report_html: outcome.report_html.display().to_string(),
        verified: outcome.verified.clone(),
    };
    let path = out.join("report.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(report)
}

/// The final table.
pub fn table(r: &RunReport) -> String {
    let mut out = format!(
        "{:<8} {:>6} {:>8} {:>5} {:>10} {:>9} {:>12} {:>10} {:>9}\n",
        "NODE",
        "OPS",
        "INVALID",
        "DOCS",
        "CONVERGED",
        "REJECTED",
        "REFUSED REQ",
        "PEAK RSS",
        "KILLED"
    );
    for n in &r.nodes {
        out.push_str(&format!(
            "{:<8} {:>6} {:>8} {:>5} {:>10} {:>9} {:>12} {:>7} MiB {:>9}\n",
            n.acronym,
            n.ops,
            n.ops_invalid,
            n.documents,
            if n.converged { "yes" } else { "NO" },
            n.rejected,
            n.requests_refused,
            n.peak_rss_kib / 1024,
            n.kills
        ));
    }
    out.push_str(&format!(
        "converged {} s after the last edit; {} bytes exchanged; total {:.1} s\n",
        r.convergence_after_last_edit_ms as f64 / 1000.0,
        r.bytes_exchanged,
        r.total_ms as f64 / 1000.0
    ));
    if let Some(p) = &r.partition {
        out.push_str(&format!(
            "partition: {} | {}; {} and {} edits while split ({} documents on both sides), digests {} and {}; \
             each half converged {:.1} s after its last edit; healed (restart {:.1} s) and converged {:.1} s later\n",
            p.half_a.join(","),
            p.half_b.join(","),
            p.edits_a,
            p.edits_b,
            p.docs_edited_on_both_sides,
            p.docs_digest_a.get(..8).unwrap_or_default(),
            p.docs_digest_b.get(..8).unwrap_or_default(),
            p.split_converged_ms as f64 / 1000.0,
            p.heal_restart_ms as f64 / 1000.0,
            p.heal_converged_ms as f64 / 1000.0
        ));
    }
    out
}
