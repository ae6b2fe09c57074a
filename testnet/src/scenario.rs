//! Scenarios: what the organisations of a testnet do, step by step, through the CLI.
//!
//! `annual_cycle` is one WSIS year as the seed describes it (`shared/seed/implementation-mechanism.txt`): teams
//! open to all, coordinators nominated on recommendations agreed at a stakeholder meeting, team meetings with
//! approved minutes, an annual output per team, national implementation reports, the coordinators' meeting
//! electing a Chair and adopting the stocktaking procedure, a checkpoint, then the Chair's bundle, verified
//! offline, and the report.

use crate::{Testnet, SYNC_DEADLINE};
use anyhow::{anyhow, bail, Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::Value;
use std::time::{Duration, Instant};
use wsis_node::api::types::{OpDone, OpInfo, TeamRow};

/// What the annual cycle does beyond the honest path.
#[derive(Debug, Clone)]
pub struct Options {
    pub year: u16,
    pub seed: u64,
    /// Teams taking part (a prefix of the 18); `None` means all.
    pub teams: Option<usize>,
    /// Nodes killed with SIGKILL mid-cycle and restarted.
    pub kill: usize,
    /// Run one phase split in two halves, then heal.
    pub partition: bool,
    /// A malicious process pushes forged and unauthorised data at every node.
    pub malicious: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            year: 2026,
            seed: 1,
            teams: None,
            kill: 0,
            partition: false,
            malicious: false,
        }
    }
}

/// What the run produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `wsis stocktake view` as printed by the Chair's node.
    pub view_text: String,
    /// `wsis verify` JSON summary.
    pub verified: Value,
    pub bundle_dir: std::path::PathBuf,
    pub report_html: std::path::PathBuf,
    /// Time from the last document edit to convergence of every node.
    pub convergence_after_last_edit: Duration,
    /// Acknowledged ops of killed nodes, all found again after restart.
    pub killed: Vec<(String, usize)>,
    /// Items the malicious process pushed, and how many every honest node refused.
    pub malicious_pushed: u64,
    /// What the malicious node did (with `Options::malicious`); check it with [`crate::malicious::check`].
    pub malicious: Option<crate::malicious::Attack>,
    pub phases: Vec<(String, Duration)>,
    /// The split of the output-drafting phase (`Options::partition`).
    pub partition: Option<crate::partition::PartitionOutcome>,
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The coordinator of `team` among the testnet's organisations: the lead facilitator if present, then the
/// co-facilitators, then a deterministic fallback among the non-governments.
fn coordinator_for(net: &Testnet, team: &str, fallback: usize) -> usize {
    let r = wsis_protocol::reference::reference();
    let line = r.action_lines.iter().find(|a| a.code == team);
    let candidates = line
        .into_iter()
        .flat_map(|l| l.lead_facilitator.iter().chain(l.co_facilitators.iter()));
    for c in candidates {
        if let Some(i) = net.index_of(c) {
            return i;
        }
    }
    let pool: Vec<usize> = (0..net.nodes.len())
        .filter(|&i| net.nodes[i].spec.country.is_none())
        .collect();
    pool.get(fallback % pool.len().max(1)).copied().unwrap_or(0)
}

/// Runs one annual cycle on a launched testnet.
pub fn annual_cycle(net: &mut Testnet, opts: &Options) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let year = opts.year.to_string();
    let n = net.nodes.len();
    let sec = 0usize;
    let rows: Vec<TeamRow> = net.cli_as(sec, &["team", "list"])?;
    let mut teams: Vec<String> = rows.into_iter().map(|t| t.code).collect();
    if let Some(k) = opts.teams {
        teams.truncate(k);
    }
    let coordinators: Vec<usize> = teams
        .iter()
        .enumerate()
        .map(|(k, t)| coordinator_for(net, t, k))
        .collect();
    // Each team: its coordinator and up to two more members, drawn with the seed.
    let members: Vec<Vec<usize>> = coordinators
        .iter()
        .map(|&c| {
            let mut others: Vec<usize> = (0..n).filter(|&i| i != c).collect();
            others.shuffle(&mut rng);
            std::iter::once(c)
                .chain(others.into_iter().take(2))
                .collect()
        })
        .collect();
    let mut phase_start = Instant::now();
    let mut phase = |name: &str, net: &Testnet, outcome: &mut Outcome| {
        let took = phase_start.elapsed();
        (net.progress)(&format!("[{:>6.1}s] {name}", took.as_secs_f64()));
        outcome.phases.push((name.to_string(), took));
        phase_start = Instant::now();
    };

    // 1. Teams are open to all admitted stakeholders (seed point 1).
    let mut jobs = Vec::new();
    for (k, team) in teams.iter().enumerate() {
        for &m in &members[k] {
            jobs.push((m, s(&["team", "join", team])));
        }
    }
    net.par_retry(&jobs)?;
    phase("teams joined", net, &mut outcome);

    // 2. The recommendation meeting (point 3): every organisation attends, one Recommend motion per team, votes.
    let rec = net.cli(
        sec,
        &[
            "meeting",
            "convene",
            "--kind",
            "recommendation",
            "--year",
            &year,
            "--title",
            "Stakeholder meeting on the recommendation of coordinators",
        ],
    )?;
    let rec = op_of(&rec)?;
    let jobs: Vec<_> = (0..n)
        .map(|i| (i, s(&["meeting", "attend", &rec])))
        .collect();
    net.par_retry(&jobs)?;
    net.wait_converged(SYNC_DEADLINE)?;
    let mut motions = Vec::new();
    for (k, team) in teams.iter().enumerate() {
        let org = net.nodes[coordinators[k]].org.clone();
        let m = net.cli_retry(
            sec,
            &[
                "motion",
                "propose",
                "--meeting",
                &rec,
                "--kind",
                "recommend",
                "--team",
                team,
                "--org",
                &org,
            ],
        )?;
        motions.push(op_of(&m)?);
    }
    let mut jobs = Vec::new();
    for i in 0..n {
        for m in &motions {
            jobs.push((i, s(&["motion", "vote", m, "--yes"])));
        }
    }
    net.par_retry(&jobs)?;
    // Nominations by the nominating authority (the secretariat), citing the passed recommendation.
    for (k, team) in teams.iter().enumerate() {
        let org = net.nodes[coordinators[k]].org.clone();
        net.cli_retry(
            sec,
            &[
                "coordinator",
                "nominate",
                team,
                &org,
                "--recommendation",
                &motions[k],
            ],
        )?;
    }
    net.wait_converged(SYNC_DEADLINE)?;
    phase("coordinators recommended and nominated", net, &mut outcome);

    // 3. Team meetings (point 2): the coordinator convenes, members attend, three organisations write the
    // minutes at the same time, everyone approves the converged record.
    let jobs: Vec<_> = teams
        .iter()
        .enumerate()
        .map(|(k, team)| {
            (
                coordinators[k],
                s(&[
                    "meeting",
                    "convene",
                    "--kind",
                    "team",
                    "--team",
                    team,
                    "--year",
                    &year,
                    "--title",
                    &format!("{team} annual team meeting"),
                ]),
            )
        })
        .collect();
    let meetings: Vec<String> = net
        .par_retry(&jobs)?
        .iter()
        .map(op_of)
        .collect::<Result<_>>()?;
    let mut jobs = Vec::new();
    for (k, m) in meetings.iter().enumerate() {
        for &i in &members[k] {
            jobs.push((i, s(&["meeting", "attend", m])));
        }
    }
    net.par_retry(&jobs)?;
    let mut jobs = Vec::new();
    for (k, m) in meetings.iter().enumerate() {
        for &i in &members[k] {
            let text = format!(
                "{} reported on its {} activities for {} and proposed next steps.",
                net.nodes[i].spec.acronym, teams[k], opts.year
            );
            jobs.push((i, s(&["meeting", "minutes", m, &text])));
        }
    }
    net.par_retry(&jobs)?;
    net.wait_converged(SYNC_DEADLINE)?;
    let mut jobs = Vec::new();
    for (k, m) in meetings.iter().enumerate() {
        for &i in &members[k] {
            jobs.push((i, s(&["meeting", "approve", m])));
        }
    }
    net.par_retry(&jobs)?;
    phase(
        "team meetings held, minutes written concurrently and approved",
        net,
        &mut outcome,
    );

    // 4. Annual outputs (point 6): the coordinator drafts, two organisations write it concurrently.
    let jobs: Vec<_> = teams
        .iter()
        .enumerate()
        .map(|(k, team)| {
            (
                coordinators[k],
                s(&["output", "draft", "--team", team, "--year", &year]),
            )
        })
        .collect();
    let drafts: Vec<String> = net
        .par_retry(&jobs)?
        .iter()
        .map(doc_of)
        .collect::<Result<_>>()?;
    net.wait_converged(SYNC_DEADLINE)?;
    // Fault: the drafts are written in two halves that cannot reach each other (see `crate::partition`).
    let split = if opts.partition {
        Some(crate::partition::split(net)?)
    } else {
        None
    };
    let mut jobs = Vec::new();
    for (k, d) in drafts.iter().enumerate() {
        let c = coordinators[k];
        let co_author = crate::partition::co_author(&members[k], split.as_ref()).unwrap_or(c);
        let team = &teams[k];
        jobs.push((
            c,
            s(&["output", "edit", d, "--section", "achievements", "--text",
                &format!("{team}: multi-stakeholder activities delivered in {year}; meeting records approved.")]),
        ));
        jobs.push((
            c,
            s(&[
                "output",
                "edit",
                d,
                "--section",
                "recommendations",
                "--text",
                &format!(
                    "{team}: continue the work programme and report progress at the next Forum."
                ),
            ]),
        ));
        jobs.push((
            co_author,
            s(&[
                "output",
                "edit",
                d,
                "--section",
                "challenges",
                "--text",
                &format!(
                    "{team}: funding and participation from developing countries remain limited."
                ),
            ]),
        ));
        jobs.push((
            co_author,
            s(&[
                "output",
                "edit",
                d,
                "--activity",
                &format!(
                    "{} hosted a {team} session",
                    net.nodes[co_author].spec.acronym
                ),
            ]),
        ));
    }
    // Interleave so both authors of one document edit at the same time.
    jobs.sort_by_key(|(i, a)| (a[1].clone(), *i));
    net.par_retry(&jobs)?;
    let last_edit = Instant::now();
    phase(
        "output drafts written concurrently by two organisations each",
        net,
        &mut outcome,
    );
    if let Some(split) = &split {
        outcome.partition = Some(crate::partition::check_and_heal(net, split, &jobs)?);
        phase(
            "partition: halves diverged, healed and converged",
            net,
            &mut outcome,
        );
    }

    // Fault: kill -9 some nodes mid-cycle, restart them; nothing they acknowledged may be lost.
    if opts.kill > 0 {
        let mut candidates: Vec<usize> = (1..n).collect();
        candidates.shuffle(&mut rng);
        for &i in candidates.iter().take(opts.kill) {
            let pause = Duration::from_millis(rng.gen_range(100..1000));
            net.kill(i)?;
            (net.progress)(&format!(
                "killed {} with SIGKILL",
                net.nodes[i].spec.acronym
            ));
            std::thread::sleep(pause);
            net.start_node(i)?;
            let acked: Vec<String> = net
                .acked
                .lock()
                .map_err(|_| anyhow!("poisoned"))?
                .iter()
                .filter(|(node, _)| *node == i)
                .map(|(_, op)| op.clone())
                .collect();
            for op in &acked {
                let shown: OpInfo = net.cli_as(i, &["op", "show", op]).with_context(|| {
                    format!(
                        "{} lost acknowledged op {op} after kill -9",
                        net.nodes[i].spec.acronym
                    )
                })?;
                if shown.op != *op {
                    bail!("{} answered for the wrong op", net.nodes[i].spec.acronym);
                }
            }
            outcome
                .killed
                .push((net.nodes[i].spec.acronym.clone(), acked.len()));
            (net.progress)(&format!(
                "restarted {}: all {} acknowledged ops present",
                net.nodes[i].spec.acronym,
                acked.len()
            ));
        }
        phase("killed nodes restarted", net, &mut outcome);
    }
    outcome.convergence_after_last_edit = {
        let waited = net.wait_converged(SYNC_DEADLINE)?;
        last_edit.elapsed().max(waited)
    };
    // Fault: a malicious member pushes forged and unauthorised data at every node (after the kills, so every
    // node's refusal counters, which live in memory, still show it at the end), then the cycle goes on.
    if opts.malicious {
        let attack = crate::malicious::attack(net, opts.seed)?;
        outcome.malicious_pushed = attack.pushed;
        outcome.malicious = Some(attack);
        phase(
            "malicious node pushed forged and unauthorised data",
            net,
            &mut outcome,
        );
    }
    let jobs: Vec<_> = drafts
        .iter()
        .enumerate()
        .map(|(k, d)| (coordinators[k], s(&["output", "submit", d])))
        .collect();
    net.par_retry(&jobs)?;
    phase("outputs submitted by the coordinators", net, &mut outcome);

    // 5. National implementation reports (point 7) by every government.
    let governments: Vec<usize> = (0..n)
        .filter(|&i| net.nodes[i].spec.country.is_some())
        .collect();
    let jobs: Vec<_> = governments
        .iter()
        .map(|&g| (g, s(&["national-report", "draft", "--year", &year])))
        .collect();
    let reports: Vec<String> = net
        .par_retry(&jobs)?
        .iter()
        .map(doc_of)
        .collect::<Result<_>>()?;
    let mut jobs = Vec::new();
    for (g, d) in governments.iter().zip(&reports) {
        let name = net.nodes[*g].spec.name.clone();
        jobs.push((
            *g,
            s(&[
                "national-report",
                "edit",
                d,
                "--section",
                "summary",
                "--text",
                &format!("{name}: national implementation of the WSIS outcomes in {year}."),
            ]),
        ));
        jobs.push((
            *g,
            s(&[
                "national-report",
                "edit",
                d,
                "--section",
                "achievements",
                "--text",
                "Broadband coverage extended; e-government services expanded.",
            ]),
        ));
    }
    net.par_retry(&jobs)?;
    let jobs: Vec<_> = governments
        .iter()
        .zip(&reports)
        .map(|(g, d)| (*g, s(&["national-report", "submit", d])))
        .collect();
    net.par_retry(&jobs)?;
    net.wait_converged(SYNC_DEADLINE)?;
    phase("national reports submitted", net, &mut outcome);

    // 6. The coordinators' meeting (point 5): elects the Chair, adopts the procedure, closes with a checkpoint.
    let chair = net
        .index_of("UNESCO")
        .filter(|i| coordinators.contains(i))
        .unwrap_or(coordinators[0]);
    let mut voters: Vec<usize> = coordinators.clone();
    voters.sort();
    voters.dedup();
    let cm = net.cli(
        sec,
        &[
            "meeting",
            "convene",
            "--kind",
            "coordinators",
            "--year",
            &year,
            "--title",
            &format!("Meeting of the WSIS Action Line coordinators {year}"),
        ],
    )?;
    let cm = op_of(&cm)?;
    let jobs: Vec<_> = voters
        .iter()
        .map(|&i| (i, s(&["meeting", "attend", &cm])))
        .collect();
    net.par_retry(&jobs)?;
    net.wait_converged(SYNC_DEADLINE)?;
    let chair_org = net.nodes[chair].org.clone();
    let elect = op_of(&net.cli_retry(
        sec,
        &[
            "motion",
            "propose",
            "--meeting",
            &cm,
            "--kind",
            "elect",
            "--role",
            "chair",
            "--org",
            &chair_org,
        ],
    )?)?;
    let mut procedure_args = s(&[
        "motion",
        "propose",
        "--meeting",
        &cm,
        "--kind",
        "procedure",
        "--year",
        &year,
        "--national-reports",
    ]);
    for t in &teams {
        procedure_args.push("--expect-team".into());
        procedure_args.push(t.clone());
    }
    let procedure_args: Vec<&str> = procedure_args.iter().map(String::as_str).collect();
    let procedure = op_of(&net.cli_retry(sec, &procedure_args)?)?;
    let mut jobs = Vec::new();
    for &i in &voters {
        jobs.push((i, s(&["motion", "vote", &elect, "--yes"])));
        jobs.push((i, s(&["motion", "vote", &procedure, "--yes"])));
    }
    net.par_retry(&jobs)?;
    net.wait_converged(SYNC_DEADLINE)?;
    let checkpoint = op_of(&net.cli_retry(
        sec,
        &[
            "motion",
            "propose",
            "--meeting",
            &cm,
            "--kind",
            "checkpoint",
        ],
    )?)?;
    let jobs: Vec<_> = voters
        .iter()
        .map(|&i| (i, s(&["motion", "vote", &checkpoint, "--yes"])))
        .collect();
    net.par_retry(&jobs)?;
    net.wait_converged(SYNC_DEADLINE)?;
    phase(
        "coordinators' meeting: Chair elected, procedure adopted, checkpoint passed",
        net,
        &mut outcome,
    );

    // 7. The Chair's bundle, verified offline, and the report (point 7).
    outcome.bundle_dir = net.root.join("bundle");
    let bundle = outcome.bundle_dir.display().to_string();
    net.cli_retry(
        chair,
        &["stocktake", "assemble", "--year", &year, "--out", &bundle],
    )?;
    outcome.verified = net.cli(
        chair,
        &["verify", &bundle, "--federation", &net.federation.clone()],
    )?;
    outcome.report_html = net.root.join("report.html");
    net.cli_text(
        chair,
        &[
            "report",
            "render",
            &bundle,
            "--format",
            "html",
            "--federation",
            &net.federation.clone(),
            "--out",
            &outcome.report_html.display().to_string(),
        ],
    )?;
    outcome.view_text = net.cli_text(chair, &["stocktake", "view", "--year", &year])?;
    phase(
        "bundle assembled by the Chair, verified offline, report rendered",
        net,
        &mut outcome,
    );
    Ok(outcome)
}

/// The op a command signed (the API's [`OpDone`]).
fn op_of(v: &Value) -> Result<String> {
    let done =
        OpDone::deserialize(v).with_context(|| format!("the command printed no op id: {v}"))?;
    Ok(done.op)
}

/// What `wsis output draft` and `wsis national-report draft` print (the CLI's own output: the new document's id
/// beside the op that created it).
#[derive(Deserialize)]
struct Drafted {
    doc: String,
}

fn doc_of(v: &Value) -> Result<String> {
    let drafted = Drafted::deserialize(v)
        .with_context(|| format!("the command printed no document id: {v}"))?;
    Ok(drafted.doc)
}
