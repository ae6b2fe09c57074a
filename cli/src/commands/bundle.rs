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

pub(super) fn assemble(client: Client, year: u16, out: &Path, json: bool) -> Result<(), Failure> {
    let bundle: BundleFiles = client.post("/v1/stocktake/assemble", &AssembleRequest { year })?;
    let mut files = std::collections::BTreeMap::new();
    for (path, b64) in bundle.files {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| Failure::Failed(format!("the node sent {path} badly encoded: {e}")))?;
        files.insert(path, bytes);
    }
    crate::bundle_dir::write(out, &files).map_err(|e| Failure::Failed(e.to_string()))?;
    if json {
        return print_json(&json!({
            "out": out.display().to_string(),
            "files": files.len(),
            "federation": bundle.federation,
            "year": year,
        }));
    }
    println!(
        "wrote the {year} stocktaking bundle ({} files) to {}",
        files.len(),
        out.display()
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
