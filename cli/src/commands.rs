//! What each command does: one function per command family, all returning [`Failure`] on error.

use crate::client::{Client, API_ADDR_FILE};
use crate::output::{print_json, print_table};
use crate::{
    Cli, Command, CoordinatorCmd, DocCmd, Failure, FederationCmd, MeetingCmd, MotionCmd, OpCmd,
    OrgCmd, ReportCmd, StocktakeCmd, TeamCmd,
};
use anyhow::Context;
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use wsis_node::api::types::*;
use wsis_node::data_dir::{DataDir, InitOptions};
use wsis_protocol::ids::FederationId;
use wsis_protocol::op::{Country, StakeholderType};

/// `wsis node`.
#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// libp2p listen address (repeatable; default: the config's).
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// A peer to connect to, with `/p2p/<peer id>` (repeatable; added to the config's).
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<String>,
    /// Join this federation: fetch its genesis from a bootstrap peer, check its hash, publish this
    /// organisation's inception and binding, and wait for admission.
    #[arg(long, value_name = "ID")]
    pub federation: Option<String>,
    /// Discover peers on the local network with mDNS (default: the config's).
    #[arg(long)]
    pub mdns: Option<bool>,
    /// Never connect to this node and refuse its connections (repeatable; added to the config's
    /// `blocked_peers`).
    #[arg(long, value_name = "PEER_ID")]
    pub block_peer: Vec<String>,
    /// Log format: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

/// `wsis motion propose`.
#[derive(clap::Args, Debug)]
pub struct ProposeArgs {
    /// The meeting the motion is proposed in.
    #[arg(long)]
    pub meeting: String,
    /// recommend, elect, procedure, checkpoint, adopt-report
    #[arg(long)]
    pub kind: String,
    /// recommend: the team.
    #[arg(long)]
    pub team: Option<String>,
    /// recommend, elect: the organisation.
    #[arg(long)]
    pub org: Option<String>,
    /// elect: chair or co-chair.
    #[arg(long, default_value = "chair")]
    pub role: String,
    /// procedure, adopt-report: the year.
    #[arg(long)]
    pub year: Option<u16>,
    /// procedure: teams expected to submit (repeatable; default: every team).
    #[arg(long = "expect-team")]
    pub teams: Vec<String>,
    /// procedure: deadline (informational; later submissions are shown as late), milliseconds since the epoch.
    /// Default: the end of the year (31 December, 23:59:59.999 UTC).
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// procedure: required sections (repeatable; default: achievements, challenges, recommendations).
    #[arg(long = "section")]
    pub sections: Vec<String>,
    /// procedure: national implementation reports are part of the exercise.
    #[arg(long)]
    pub national_reports: bool,
    /// adopt-report: SHA-256 of the bundle's manifest.json.
    #[arg(long)]
    pub manifest_hash: Option<String>,
}

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
        } => init(
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
        }) => federation_create(need_dir(&dir)?, &name, teams.as_deref(), &secretariat, json),
        Command::Node(args) => node(need_dir(&dir)?, api.as_deref(), args),
        Command::Status => {
            let s: Status = client()?.get("/v1/status")?;
            if json {
                return print_json(&s);
            }
            println!("organisation  {} ({})", s.name, s.org);
            println!(
                "stakeholder   {}{}",
                s.stakeholder,
                s.country.map(|c| format!(", {c}")).unwrap_or_default()
            );
            println!("federation    {} ({})", s.federation_name, s.federation);
            println!(
                "admitted      {}{}",
                yes_no(s.admitted),
                if s.secretariat { " (secretariat)" } else { "" }
            );
            println!("peer id       {}", s.peer_id);
            for a in &s.listen {
                println!("listening     {a}");
            }
            println!("peers         {} connected", s.connected_peers);
            println!(
                "governance    {} ops ({} invalid, {} waiting for parents), digest {}",
                s.ops,
                s.ops_invalid,
                s.ops_parked,
                &s.gov_digest[..16]
            );
            println!(
                "documents     {}, digest {}",
                s.documents,
                &s.docs_digest[..16]
            );
            println!(
                "refused       {} ops, {} requests, {} envelopes; {} parked ops evicted",
                s.ops_refused,
                s.requests_refused,
                s.envelopes_rejected.values().sum::<u64>(),
                s.ops_evicted
            );
            Ok(())
        }
        Command::Op(OpCmd::Show { op }) => {
            let info: OpInfo = client()?.get(&format!("/v1/ops/{}", url_part(&op)?))?;
            if json {
                return print_json(&info);
            }
            println!("op       {}", info.op);
            println!("kind     {}", info.kind);
            println!("author   {} (seq {})", info.author, info.seq);
            println!(
                "valid    {}",
                info.invalid
                    .map_or_else(|| "yes".to_string(), |w| format!("no: {w}"))
            );
            Ok(())
        }
        Command::Org(OrgCmd::Admit { org }) => {
            let done: OpDone = client()?.post("/v1/orgs/admit", &AdmitRequest { org })?;
            print_done(&done, "admitted", json)
        }
        Command::Org(OrgCmd::List) => {
            let v: Value = client()?.get("/v1/orgs")?;
            if json {
                return print_json(&v);
            }
            let rows = rows_of(&v, |o| {
                vec![
                    s(o, "name"),
                    s(o, "stakeholder"),
                    s(o, "country"),
                    if o["secretariat"] == true {
                        "secretariat".into()
                    } else if o["member"] == true {
                        "member".into()
                    } else {
                        "pending admission".into()
                    },
                    s(o, "id"),
                ]
            });
            print_table(&["NAME", "STAKEHOLDER", "COUNTRY", "STATUS", "ID"], rows);
            Ok(())
        }
        Command::Team(cmd) => team(client()?, cmd, json),
        Command::Meeting(cmd) => meeting(client()?, cmd, json),
        Command::Motion(cmd) => motion(client()?, cmd, json),
        Command::Coordinator(CoordinatorCmd::Nominate {
            team,
            org,
            recommendation,
        }) => {
            let done: OpDone = client()?.post(
                "/v1/coordinators",
                &NominateRequest {
                    team,
                    org,
                    recommendation,
                },
            )?;
            print_done(&done, "nominated", json)
        }
        Command::Output(cmd) => document(client()?, cmd, "/v1/outputs", json),
        Command::NationalReport(cmd) => document(client()?, cmd, "/v1/national-reports", json),
        Command::Stocktake(StocktakeCmd::View { year }) => {
            let v: Value = client()?.get(&format!("/v1/stocktake?year={year}"))?;
            if json {
                return print_json(&v);
            }
            crate::output::print_view(&v);
            Ok(())
        }
        Command::Stocktake(StocktakeCmd::Assemble { year, out }) => {
            assemble(client()?, year, &out, json)
        }
        Command::Verify { dir, federation } => verify(&dir, &federation, json),
        Command::Report(ReportCmd::Render {
            dir,
            format,
            federation,
            out,
        }) => render(&dir, &format, federation.as_deref(), out.as_deref()),
    }
}

/// Milliseconds since the epoch at the end of `year` (UTC): the start of the next year minus one.
fn end_of_year_ms(year: u16) -> u64 {
    // Days from 1970-01-01 to 1 January of `year + 1`, counting leap years (Gregorian).
    let next = u64::from(year) + 1;
    let leaps = |y: u64| y / 4 - y / 100 + y / 400;
    let days = (next - 1970) * 365 + (leaps(next - 1) - leaps(1969));
    (days * 86_400_000).saturating_sub(1)
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

fn init(
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

fn federation_create(
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

fn node(dir: &Path, api: Option<&str>, args: NodeArgs) -> Result<(), Failure> {
    init_logging(&args.log_format);
    let data =
        DataDir::open(dir).map_err(|e| Failure::Failed(format!("{}: {e}", dir.display())))?;
    let api_addr: std::net::SocketAddr = match api {
        Some(a) => a.parse().map_err(|_| {
            Failure::Usage(format!(
                "--api {a}: expected HOST:PORT, e.g. 127.0.0.1:7300"
            ))
        })?,
        None => data.config().api_addr,
    };
    let parse = |list: &[String], what: &str| -> Result<Vec<wsis_node::net::Multiaddr>, Failure> {
        list.iter()
            .map(|a| {
                a.parse()
                    .map_err(|_| Failure::Usage(format!("{what} {a}: not a multiaddr")))
            })
            .collect()
    };
    let join = args
        .federation
        .as_deref()
        .map(|f| {
            FederationId::from_str(f.trim()).map_err(|_| {
                Failure::Usage(format!(
                    "--federation {f}: expected fed_ followed by 64 hex digits"
                ))
            })
        })
        .transpose()?;
    let blocked_peers = args
        .block_peer
        .iter()
        .map(|p| {
            p.trim().parse::<wsis_node::net::PeerId>().map_err(|_| {
                Failure::Usage(format!(
                    "--block-peer {p}: not a peer id (expected a libp2p peer id such as 12D3KooW…, as `wsis status` prints it)"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = wsis_node::node::NodeOptions {
        listen: parse(&args.listen, "--listen")?,
        bootstrap: parse(&args.bootstrap, "--bootstrap")?,
        mdns: args.mdns,
        blocked_peers,
        join,
    };
    let token = data.api_token().to_string();
    let addr_file = dir.join(API_ADDR_FILE);
    runtime()?.block_on(async move {
        let node = wsis_node::node::Node::start(data, options)
            .await
            .map_err(|e| Failure::Failed(error_chain(&e)))?;
        let listener = wsis_node::api::bind(api_addr).await.map_err(|e| {
            Failure::Failed(format!("cannot listen on {api_addr} for the API: {e}"))
        })?;
        let bound = listener
            .local_addr()
            .map_err(|e| Failure::Failed(e.to_string()))?;
        write_atomically(&addr_file, format!("{bound}\n").as_bytes())
            .map_err(|e| Failure::Failed(format!("cannot write {}: {e}", addr_file.display())))?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(wsis_node::api::serve(
            node.clone(),
            token,
            listener,
            async {
                let _ = stop_rx.await;
            },
        ));
        tracing::info!(org = %node.org(), peer = %node.peer_id(), api = %bound, "node running");
        let watcher = tokio::spawn(announce_admission(node.clone()));
        let result = node.run_until_signal().await;
        watcher.abort();
        let _ = stop_tx.send(());
        let _ = server.await;
        node.shutdown().await;
        let _ = std::fs::remove_file(&addr_file);
        result.map_err(|e| Failure::Failed(format!("signal handling failed: {e}")))
    })
}

/// Logs once when this organisation is admitted (a joining node waits for a secretariat).
async fn announce_admission(node: wsis_node::node::Node) {
    let me = node.org();
    let mut waited = false;
    loop {
        if node.with_gov(|g| g.is_member(&me)).await {
            if waited {
                tracing::info!(org = %me, "admitted to the federation");
            }
            return;
        }
        if !waited {
            tracing::info!(org = %me, "waiting for admission: a secretariat organisation runs `wsis org admit {me}`");
            waited = true;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WSIS_LOG")
        // libp2p's crates log under their own targets (libp2p_gossipsub, yamux, …): at 50 nodes gossipsub's
        // "send queue full" warnings alone wrote hundreds of MB per node and saturated the machine.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                "info,libp2p=warn,libp2p_gossipsub=error,libp2p_swarm=warn,yamux=error,multistream_select=error",
            )
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn team(client: Client, cmd: TeamCmd, json: bool) -> Result<(), Failure> {
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

fn meeting(client: Client, cmd: MeetingCmd, json: bool) -> Result<(), Failure> {
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

fn motion(client: Client, cmd: MotionCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        MotionCmd::Propose(a) => {
            let need = |v: Option<String>, flag: &str| {
                v.ok_or_else(|| Failure::Usage(format!("--kind {} needs {flag}", a.kind)))
            };
            let motion = match a.kind.as_str() {
                "recommend" => MotionSpec::Recommend {
                    team: need(a.team.clone(), "--team")?,
                    org: need(a.org.clone(), "--org")?,
                },
                "elect" => MotionSpec::Elect {
                    role: a.role.clone(),
                    org: need(a.org.clone(), "--org")?,
                },
                "procedure" => MotionSpec::AdoptProcedure {
                    year: a.year.ok_or_else(|| Failure::Usage("--kind procedure needs --year".into()))?,
                    teams: a.teams.clone(),
                    deadline_ms: a
                        .deadline_ms
                        .unwrap_or_else(|| end_of_year_ms(a.year.unwrap_or(1970))),
                    sections: if a.sections.is_empty() {
                        wsis_node::api::OUTPUT_SECTIONS.iter().map(|s| s.to_string()).collect()
                    } else {
                        a.sections.clone()
                    },
                    national_reports: a.national_reports,
                },
                "checkpoint" => MotionSpec::Checkpoint,
                "adopt-report" => MotionSpec::AdoptReport {
                    year: a
                        .year
                        .ok_or_else(|| Failure::Usage("--kind adopt-report needs --year".into()))?,
                    manifest_hash: need(a.manifest_hash.clone(), "--manifest-hash")?,
                },
                other => {
                    return Err(Failure::Usage(format!(
                        "unknown motion kind `{other}` (recommend, elect, procedure, checkpoint, adopt-report)"
                    )))
                }
            };
            let done: OpDone = client.post(
                "/v1/motions",
                &MotionRequest {
                    meeting: a.meeting,
                    motion,
                },
            )?;
            print_done(&done, "proposed motion", json)
        }
        MotionCmd::Vote { motion, yes, no } => {
            let _ = no;
            let done: OpDone = client.post(
                &format!("/v1/motions/{}/vote", url_part(&motion)?),
                &VoteRequest { yes },
            )?;
            print_done(&done, if yes { "voted yes" } else { "voted no" }, json)
        }
        MotionCmd::List => {
            let v: Value = client.get("/v1/motions")?;
            if json {
                return print_json(&v);
            }
            let rows = rows_of(&v, |m| {
                vec![
                    s(m, "summary"),
                    format!("{}/{}", s(m, "yes"), s(m, "electorate")),
                    s(m, "no"),
                    yes_no(m["passed"] == true).to_string(),
                    s(m, "id"),
                ]
            });
            print_table(&["MOTION", "YES/ELECTORATE", "NO", "PASSED", "ID"], rows);
            Ok(())
        }
    }
}

fn document(client: Client, cmd: DocCmd, base: &str, json: bool) -> Result<(), Failure> {
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

fn print_doc(view: &DocView, json: bool) -> Result<(), Failure> {
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

fn assemble(client: Client, year: u16, out: &Path, json: bool) -> Result<(), Failure> {
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

fn verify(dir: &Path, federation: &str, json: bool) -> Result<(), Failure> {
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

fn render(
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

#[cfg(test)]
mod tests {
    #[test]
    fn end_of_year_is_the_last_millisecond_of_31_december() {
        // 2027-01-01T00:00:00Z is 1798761600 s after the epoch; 2024 is a leap year (1735689600 for 2025-01-01).
        assert_eq!(super::end_of_year_ms(2026), 1_798_761_600_000 - 1);
        assert_eq!(super::end_of_year_ms(2024), 1_735_689_600_000 - 1);
        assert_eq!(super::end_of_year_ms(1970), 31_536_000_000 - 1);
    }
}
