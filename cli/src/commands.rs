//! What each command does: [`run`] dispatches the parsed command line to one module per command family, each
//! returning [`Failure`] on error; the helpers below are what the families share (URL-safe ids, tables, the
//! one-line "done" report).

mod bundle;
mod document;
mod meeting;
mod motion;
mod node;
mod setup;
mod status;
mod store;
mod team;

pub use motion::ProposeArgs;
pub use node::NodeArgs;

use crate::client::Client;
use crate::output::print_json;
use crate::{Cli, Command, CoordinatorCmd, Failure, FederationCmd, OpCmd, ReportCmd, StocktakeCmd};
use serde_json::Value;
use std::path::{Path, PathBuf};
use wsis_node::api::types::OpDone;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
    let json = cli.json;
    let dir = cli.data_dir.clone();
    let api = cli.api.clone();
    let client = || Client::locate(dir.as_deref(), api.as_deref());
    match cli.command {
        Command::Init {
            name,
            stakeholder,
            country,
        } => setup::init(
            need_dir(&dir)?,
            name,
            &stakeholder,
            country.as_deref(),
            json,
        ),
        Command::Federation(FederationCmd::Create {
            name,
            teams,
            secretariat,
        }) => {
            setup::federation_create(need_dir(&dir)?, &name, teams.as_deref(), &secretariat, json)
        }
        Command::Node(args) => node::node(need_dir(&dir)?, api.as_deref(), args),
        Command::Status => status::status(client()?, json),
        Command::Op(OpCmd::Show { op }) => status::op_show(client()?, &op, json),
        Command::Org(cmd) => status::org(client()?, cmd, json),
        Command::Team(cmd) => team::team(client()?, cmd, json),
        Command::Meeting(cmd) => meeting::meeting(client()?, cmd, json),
        Command::Motion(cmd) => motion::motion(client()?, cmd, json),
        Command::Coordinator(CoordinatorCmd::Nominate {
            team,
            org,
            recommendation,
        }) => motion::nominate(client()?, team, org, recommendation, json),
        Command::Output(cmd) => document::document(client()?, cmd, "/v1/outputs", json),
        Command::NationalReport(cmd) => {
            document::document(client()?, cmd, "/v1/national-reports", json)
        }
        Command::Stocktake(StocktakeCmd::View { year }) => bundle::view(client()?, year, json),
        Command::Stocktake(StocktakeCmd::Assemble { year, out }) => {
            bundle::assemble(client()?, year, &out, json)
        }
        Command::Store(cmd) => store::store(&dir, cmd, json),
        Command::Verify { dir, federation } => bundle::verify(&dir, &federation, json),
        Command::Report(ReportCmd::Render {
            dir,
            format,
            federation,
            out,
        }) => bundle::render(&dir, &format, federation.as_deref(), out.as_deref()),
    }
}

fn need_dir(dir: &Option<PathBuf>) -> Result<&Path, Failure> {
    dir.as_deref()
        .ok_or_else(|| Failure::Usage("--data-dir DIR is required".into()))
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn s(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(x) => x.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn rows_of(v: &Value, f: impl Fn(&Value) -> Vec<String>) -> Vec<Vec<String>> {
    v.as_array()
        .map(|a| a.iter().map(f).collect())
        .unwrap_or_default()
}

fn print_done(done: &OpDone, verb: &str, json: bool) -> Result<(), Failure> {
    if json {
        return print_json(done);
    }
    println!("{verb}: {} ({})", done.op, done.kind);
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the async runtime: {e}")))
}

/// Ids and team codes go into URL paths: refuse anything that is not a plain token (the node checks the rest).
fn url_part(s: &str) -> Result<&str, Failure> {
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(Failure::Usage(format!(
            "`{s}` is not a valid id or team code"
        )));
    }
    Ok(s)
}
