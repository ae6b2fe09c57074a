//! `wsis store check [--quarantine]`: the items of a stopped node's store that fail validation, and setting
//! them aside so the node starts. The work is in `wsis_node::store` (`check_store`, `quarantine_store`); this
//! only prints.

use super::need_dir;
use crate::output::print_json;
use crate::{Failure, StoreCmd};
use std::path::{Path, PathBuf};
use wsis_node::data_dir::DataDir;
use wsis_node::store::{check_store, quarantine_store, CheckReport, Finding, StoreOpenError};
use wsis_protocol::ids::FederationId;

/// `wsis store`.
pub(super) fn store(dir: &Option<PathBuf>, cmd: StoreCmd, json: bool) -> Result<(), Failure> {
    let StoreCmd::Check { quarantine } = cmd;
    let dir = need_dir(dir)?;
    let (db, federation) = locate(dir);
    let open_failed = |e: StoreOpenError| Failure::Failed(super::node::error_chain(&e));
    if quarantine {
        let outcome = quarantine_store(&db, federation).map_err(open_failed)?;
        if json {
            print_json(&outcome)?;
        } else {
            println!(
                "moved {} item{} into the quarantine",
                outcome.moved.len(),
                plural(outcome.moved.len())
            );
            for f in &outcome.moved {
                print_finding(f);
            }
            print_report(&outcome.after);
        }
        verdict(&outcome.after)
    } else {
        let report = check_store(&db, federation).map_err(open_failed)?;
        if json {
            print_json(&report)?;
        } else {
            print_report(&report);
        }
        verdict(&report)
    }
}

/// The database and the data directory's federation (the fallback a node's start uses too). A data directory
/// whose key files or config do not open still has its database checked, against the store's own federation.
fn locate(dir: &Path) -> (PathBuf, Option<FederationId>) {
    match DataDir::open(dir) {
        Ok(data) => (data.db_path(), data.federation()),
        Err(e) => {
            eprintln!(
                "warning: {}: {e}; checking {} against the store's own federation",
                dir.display(),
                dir.join("db").display()
            );
            (dir.join("db"), None)
        }
    }
}

/// Exit 0 when nothing fails validation (quarantined items are listed but are no longer in the way), 1 otherwise.
fn verdict(report: &CheckReport) -> Result<(), Failure> {
    if report.is_clean() {
        return Ok(());
    }
    let n = report.findings.len();
    let mut parts = Vec::new();
    if n > 0 {
        parts.push(format!(
            "{n} item{} fail{} validation (run `wsis store check --quarantine` to set {} aside)",
            plural(n),
            if n == 1 { "s" } else { "" },
            if n == 1 { "it" } else { "them" }
        ));
    }
    if !report.problems.is_empty() {
        parts.push(format!(
            "{} problem{} that quarantine cannot fix",
            report.problems.len(),
            plural(report.problems.len())
        ));
    }
    Err(Failure::Failed(parts.join("; ")))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn print_finding(f: &Finding) {
    println!("  tree {}  key {}\n    {}", f.tree, f.key, f.reason);
}

fn print_report(r: &CheckReport) {
    let c = &r.checked;
    println!(
        "checked {} ops, {} envelopes, {} index entries, {} peer records{}",
        c.ops,
        c.envelopes,
        c.index_entries,
        c.peers,
        r.federation
            .map(|f| format!(" (federation {f})"))
            .unwrap_or_default()
    );
    if r.findings.is_empty() {
        println!("no item fails validation");
    } else {
        println!(
            "{} item{} fail{} validation:",
            r.findings.len(),
            plural(r.findings.len()),
            if r.findings.len() == 1 { "s" } else { "" }
        );
        for f in &r.findings {
            print_finding(f);
        }
    }
    for p in &r.problems {
        println!("problem: {p}");
    }
    if !r.quarantined.is_empty() {
        println!(
            "quarantined (kept byte for byte, never served, never replayed): {}",
            r.quarantined.len()
        );
        for q in &r.quarantined {
            println!(
                "  {}  tree {}  key {}  {} bytes\n    {}",
                utc(q.quarantined_at_ms),
                q.tree,
                q.key,
                q.bytes,
                q.reason
            );
        }
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (days to a civil date: Howard Hinnant's algorithm).
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        // 2026-12-03T11:05:27Z
        assert_eq!(super::utc(1_796_295_927_000), "2026-12-03T11:05:27Z");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
