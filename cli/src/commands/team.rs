//! `wsis team`: list the teams, join or leave one, set a team's modalities (its coordinator).

use super::{print_done, url_part};
use crate::client::Client;
use crate::output::{print_json, print_table};
use crate::{Failure, TeamCmd};
use serde_json::json;
use wsis_node::api::types::{ModalitiesRequest, OpDone, TeamRow};

pub(super) fn team(client: Client, cmd: TeamCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        TeamCmd::List => {
            let teams: Vec<TeamRow> = client.get("/v1/teams")?;
            if json {
                return print_json(&teams);
            }
            let rows = teams
                .iter()
                .map(|t| {
                    vec![
                        t.code.clone(),
                        t.name.clone(),
                        match (&t.coordinator_name, t.contested_with.is_empty()) {
                            (Some(n), true) => n.clone(),
                            (Some(n), false) => format!("{n} (contested)"),
                            (None, _) => "-".into(),
                        },
                        t.members.len().to_string(),
                    ]
                })
                .collect();
            print_table(&["TEAM", "NAME", "COORDINATOR", "MEMBERS"], rows);
            Ok(())
        }
        TeamCmd::Join { team } => {
            let done: OpDone =
                client.post(&format!("/v1/teams/{}/join", url_part(&team)?), &json!({}))?;
            print_done(&done, "joined", json)
        }
        TeamCmd::Leave { team } => {
            let done: OpDone =
                client.post(&format!("/v1/teams/{}/leave", url_part(&team)?), &json!({}))?;
            print_done(&done, "left", json)
        }
        TeamCmd::Modalities { team, text } => {
            let done: OpDone = client.post(
                &format!("/v1/teams/{}/modalities", url_part(&team)?),
                &ModalitiesRequest { text },
            )?;
            print_done(&done, "modalities set", json)
        }
    }
}
