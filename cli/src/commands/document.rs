//! `wsis output` and `wsis national-report`: draft, edit, submit and show a document.

use super::{print_done, url_part};
use crate::client::Client;
use crate::output::print_json;
use crate::{DocCmd, Failure};
use serde_json::json;
use wsis_node::api::types::{
    DocView, EditRequest, NationalReportRequest, OpDone, OutputDraftRequest,
};

pub(super) fn document(client: Client, cmd: DocCmd, base: &str, json: bool) -> Result<(), Failure> {
    match cmd {
        DocCmd::Draft { team, year } => {
            let done: OpDone = if base == "/v1/outputs" {
                let team =
                    team.ok_or_else(|| Failure::Usage("an output draft needs --team".into()))?;
                client.post(base, &OutputDraftRequest { team, year })?
            } else {
                if team.is_some() {
                    return Err(Failure::Usage(
                        "a national report is for this government's own country; drop --team"
                            .into(),
                    ));
                }
                client.post(base, &NationalReportRequest { year })?
            };
            if json {
                return print_json(
                    &json!({ "doc": done.op.replacen("op_", "doc_", 1), "op": done.op }),
                );
            }
            println!("draft created: {}", done.op.replacen("op_", "doc_", 1));
            Ok(())
        }
        DocCmd::Edit {
            doc,
            section,
            text,
            append,
            activity,
        } => {
            if activity.is_none() && (section.is_none() || (text.is_none() && append.is_none())) {
                return Err(Failure::Usage(
                    "say what to change: --section NAME with --text or --append, or --activity TEXT".into(),
                ));
            }
            let view: DocView = client.post(
                &format!("/v1/docs/{}/edit", url_part(&doc)?),
                &EditRequest {
                    section,
                    text,
                    append,
                    activity,
                },
            )?;
            print_doc(&view, json)
        }
        DocCmd::Submit { doc } => {
            let done: OpDone =
                client.post(&format!("{base}/{}/submit", url_part(&doc)?), &json!({}))?;
            print_done(&done, "submitted", json)
        }
        DocCmd::Show { doc } => {
            let view: DocView = client.get(&format!("/v1/docs/{}", url_part(&doc)?))?;
            print_doc(&view, json)
        }
    }
}

pub(super) fn print_doc(view: &DocView, json: bool) -> Result<(), Failure> {
    if json {
        return print_json(view);
    }
    println!("document      {}", view.doc);
    println!("heads         {}", view.heads.join(", "));
    println!("content hash  {}", view.content_hash);
    println!(
        "{}",
        serde_json::to_string_pretty(&view.content).unwrap_or_default()
    );
    Ok(())
}
