//! `wsis init` and `wsis federation create`: an organisation's data directory, and a federation's genesis.

use super::runtime;
use crate::output::print_json;
use crate::Failure;
use anyhow::Context;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use wsis_node::data_dir::{DataDir, InitOptions};
use wsis_protocol::op::{Country, StakeholderType};

pub(super) fn init(
    dir: &Path,
    name: String,
    stakeholder: &str,
    country: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    let stakeholder = StakeholderType::from_str(stakeholder).map_err(|_| {
        Failure::Usage(format!(
            "unknown stakeholder type `{stakeholder}` (government, private-sector, civil-society, \
             international-organisation, academia, technical-community)"
        ))
    })?;
    let country = country
        .map(|c| Country::new(c).map_err(|e| Failure::Usage(format!("--country {c}: {e}"))))
        .transpose()?;
    let data = DataDir::init(
        dir,
        InitOptions {
            name,
            stakeholder,
            country,
        },
    )
    .map_err(|e| Failure::Failed(format!("{e}")))?;
    if json {
        return print_json(&json!({
            "org": data.org_id().to_string(),
            "data_dir": dir.display().to_string(),
        }));
    }
    println!("created {}", dir.display());
    println!("organisation id: {}", data.org_id());
    println!(
        "next: a secretariat creates the federation (`wsis federation create`), or start your node with \
         `wsis node --data-dir {} --federation ID --bootstrap ADDR` and ask a secretariat to admit you",
        dir.display()
    );
    Ok(())
}

pub(super) fn federation_create(
    dir: &Path,
    name: &str,
    teams: Option<&Path>,
    secretariat: &[PathBuf],
    json: bool,
) -> Result<(), Failure> {
    let mut data =
        DataDir::open(dir).map_err(|e| Failure::Failed(format!("{}: {e}", dir.display())))?;
    let teams = match teams {
        None => wsis_protocol::reference::wsis_teams(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            #[derive(serde::Deserialize)]
            struct TeamIn {
                code: String,
                name: String,
            }
            let list: Vec<TeamIn> = serde_json::from_str(&text).map_err(|e| {
                Failure::Usage(format!(
                    "{}: expected [{{\"code\": \"C1\", \"name\": \"...\"}}, ...]: {e}",
                    path.display()
                ))
            })?;
            list.into_iter()
                .map(|t| {
                    Ok(wsis_protocol::op::Team {
                        code: wsis_protocol::op::TeamCode::new(&t.code)
                            .map_err(|e| Failure::Usage(format!("team `{}`: {e}", t.code)))?,
                        name: t.name,
                    })
                })
                .collect::<Result<Vec<_>, Failure>>()?
        }
    };
    let mut others = Vec::new();
    for path in secretariat {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let rec = wsis_protocol::op::SignedInception::from_bytes(&bytes).map_err(|e| {
            Failure::Failed(format!(
                "{} is not a valid org.inception: {e}",
                path.display()
            ))
        })?;
        others.push(rec);
    }
    let fed = runtime()?
        .block_on(wsis_node::node::create_federation(
            &mut data, name, teams, others,
        ))
        .map_err(|e| Failure::Failed(format!("{e}")))?;
    if json {
        return print_json(&json!({ "federation": fed.to_string() }));
    }
    println!("{fed}");
    Ok(())
}
