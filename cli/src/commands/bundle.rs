//! The stocktaking bundle: `wsis stocktake` (view, assemble), `wsis verify` (offline) and `wsis report render`.

use crate::client::Client;
use crate::output::print_json;
use crate::Failure;
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::Path;
use wsis_node::api::types::{AssembleRequest, BundleFiles};

/// `wsis stocktake view`.
pub(super) fn view(client: Client, year: u16, json: bool) -> Result<(), Failure> {
    let v: Value = client.get(&format!("/v1/stocktake?year={year}"))?;
    if json {
        return print_json(&v);
    }
    crate::output::print_view(&v);
    Ok(())
}

/// `wsis stocktake assemble`: the node plans and signs the bundle; it is verified here, against the federation
/// the node names, before it is written, and the closing point the node chose is said (the latest passed
/// checkpoint of the year the node knows, with every ballot on it).
pub(super) fn assemble(client: Client, year: u16, out: &Path, json: bool) -> Result<(), Failure> {
    let bundle: BundleFiles = client.post("/v1/stocktake/assemble", &AssembleRequest { year })?;
    let mut files = std::collections::BTreeMap::new();
    for (path, b64) in bundle.files {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| Failure::Failed(format!("the node sent {path} badly encoded: {e}")))?;
        files.insert(path, bytes);
    }
    let federation: wsis_protocol::ids::FederationId = bundle.federation.parse().map_err(|_| {
        Failure::Failed(format!(
            "the node named federation {:?}, not a federation id",
            bundle.federation
        ))
    })?;
    let verified = wsis_protocol::bundle::verify(&files, &federation).map_err(|e| {
        Failure::Failed(format!(
            "the node's bundle does not verify, nothing written: {e}"
        ))
    })?;
    let closing = &verified.closing;
    crate::bundle_dir::write(out, &files).map_err(|e| Failure::Failed(e.to_string()))?;
    if json {
        return print_json(&json!({
            "out": out.display().to_string(),
            "files": files.len(),
            "federation": bundle.federation,
            "year": year,
            "closing_checkpoint": closing.checkpoint.to_string(),
            "closing_meeting": closing.meeting.to_string(),
            "closing_ballots": closing.ballots.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
            "closing_tally": crate::bundle_dir::closing_tally(closing),
        }));
    }
    println!(
        "wrote the {year} stocktaking bundle ({} files) to {}",
        files.len(),
        out.display()
    );
    println!(
        "closed by checkpoint {} (the latest passed for {year} this node knows), with all {} ballot(s) on it: {}",
        closing.checkpoint,
        closing.ballots.len(),
        crate::bundle_dir::closing_tally(closing)
    );
    println!(
        "check it offline: wsis verify {} --federation {}",
        out.display(),
        bundle.federation
    );
    Ok(())
}

pub(super) fn verify(dir: &Path, federation: &str, json: bool) -> Result<(), Failure> {
    let verified = crate::bundle_dir::verify_dir(dir, federation)?;
    if json {
        return print_json(&verified);
    }
    println!("OK: {}", dir.display());
    for line in verified
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("  {k}: {v}"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    {
        println!("{line}");
    }
    Ok(())
}

pub(super) fn render(
    dir: &Path,
    format: &str,
    federation: Option<&str>,
    out: Option<&Path>,
) -> Result<(), Failure> {
    let text = crate::bundle_dir::render_dir(dir, federation, format)?;
    match out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| Failure::Failed(format!("cannot write {}: {e}", path.display()))),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
