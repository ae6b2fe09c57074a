//! `wsis meeting`: convene, attend, minute and approve meetings, and list them.

use super::document::print_doc;
use super::{print_done, rows_of, s, url_part, yes_no};
use crate::client::Client;
use crate::output::{print_json, print_table};
use crate::{Failure, MeetingCmd};
use serde_json::{json, Value};
use wsis_node::api::types::{ConveneRequest, DocView, MinutesRequest, OpDone};

pub(super) fn meeting(client: Client, cmd: MeetingCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        MeetingCmd::Convene {
            kind,
            team,
            year,
            title,
        } => {
            let done: OpDone = client.post(
                "/v1/meetings",
                &ConveneRequest {
                    kind,
                    team,
                    year,
                    title,
                },
            )?;
            print_done(&done, "convened meeting", json)
        }
        MeetingCmd::Attend { meeting } => {
            let done: OpDone = client.post(
                &format!("/v1/meetings/{}/attend", url_part(&meeting)?),
                &json!({}),
            )?;
            print_done(&done, "attending", json)
        }
        MeetingCmd::Minutes { meeting, text } => {
            let view: DocView = client.post(
                &format!("/v1/meetings/{}/minutes", url_part(&meeting)?),
                &MinutesRequest { text },
            )?;
            print_doc(&view, json)
        }
        MeetingCmd::Approve { meeting } => {
            let done: OpDone = client.post(
                &format!("/v1/meetings/{}/approve", url_part(&meeting)?),
                &json!({}),
            )?;
            print_done(&done, "approved the record", json)
        }
        MeetingCmd::List => {
            let v: Value = client.get("/v1/meetings")?;
            if json {
                return print_json(&v);
            }
            let rows = rows_of(&v, |m| {
                vec![
                    s(m, "title"),
                    match &m["kind"] {
                        Value::Object(o) => o
                            .iter()
                            .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or("")))
                            .collect::<Vec<_>>()
                            .join(" "),
                        other => other.as_str().unwrap_or("").to_string(),
                    },
                    s(m, "year"),
                    m["attendees"].as_array().map_or(0, Vec::len).to_string(),
                    yes_no(!m["approved_record"].is_null()).to_string(),
                    s(m, "id"),
                ]
            });
            print_table(
                &["TITLE", "KIND", "YEAR", "ATTENDEES", "APPROVED", "ID"],
                rows,
            );
            Ok(())
        }
    }
}
