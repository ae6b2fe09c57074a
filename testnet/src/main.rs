//! `wsis-testnet`: a local WSIS federation of real node processes in one command.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Instant;
use wsis_testnet::scenario::{self, Options};
use wsis_testnet::{find_wsis, orgs, Testnet};

#[derive(Parser, Debug)]
#[command(
    name = "wsis-testnet",
    version,
    about = "A local WSIS federation of real `wsis node` processes."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Twelve organisations (ITU, UNESCO, UNDP, UNDESA, UNCTAD, WHO, FAO, two governments, APC, a company, a
    /// university) run one annual cycle; prints the verified stocktaking view.
    Demo {
        /// Where the nodes' data directories, the bundle and the report go (default: a new temporary directory).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Any number of nodes, a scenario, and faults.
    Run {
        #[arg(long, default_value_t = 12)]
        nodes: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = "annual-cycle", value_parser = ["annual-cycle"])]
        scenario: String,
        #[arg(long)]
        out: PathBuf,
        /// Kill -9 and restart this many random nodes mid-cycle.
        #[arg(long, default_value_t = 0)]
        kill: usize,
        /// Split the nodes in two halves (restarted with --block-peer for the other half) while the output
        /// drafts are written; check that the halves diverged, then heal and converge.
        #[arg(long)]
        partition: bool,
        /// Add a node that pushes forged and unauthorised data.
        #[arg(long)]
        malicious: bool,
        /// Only the first K teams take part (default: all 18).
        #[arg(long)]
        teams: Option<usize>,
        #[arg(long, default_value_t = 2026)]
        year: u16,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let (nodes, out, opts) = match cli.command {
        Cmd::Demo { out } => {
            let out = match out {
                Some(o) => o,
                None => std::env::temp_dir().join(format!("wsis-demo-{}", std::process::id())),
            };
            (12, out, Options::default())
        }
        Cmd::Run {
            nodes,
            seed,
            scenario: _,
            out,
            kill,
            partition,
            malicious,
            teams,
            year,
        } => {
            if nodes < 2 {
                bail!("--nodes must be at least 2");
            }
            if kill >= nodes {
                bail!("--kill must be smaller than --nodes (the convening secretariat is never killed)");
            }
            if teams.is_some_and(|k| !(1..=18).contains(&k)) {
                bail!("--teams must be between 1 and 18 (the WSIS action line teams)");
            }
            (
                nodes,
                out,
                Options {
                    year,
                    seed,
                    teams,
                    kill,
                    partition,
                    malicious,
                },
            )
        }
    };
    let started = Instant::now();
    let wsis = find_wsis()?;
    println!("wsis-testnet: {nodes} nodes in {}", out.display());
    let mut net = Testnet::create(wsis, out.clone(), orgs::demo(nodes))?;
    net.progress = Box::new(move |line| println!("  {line}"));
    net.launch("WSIS implementation mechanism (local testnet)")?;
    let outcome = scenario::annual_cycle(&mut net, &opts).context("the annual cycle failed")?;
    net.sample_rss();
    let malicious = match &outcome.malicious {
        Some(attack) => Some(
            wsis_testnet::malicious::check(&net, attack, opts.year)
                .context("the malicious node's items were not all rejected")?,
        ),
        None => None,
    };
    let report =
        wsis_testnet::report::write(&net, &outcome, malicious.clone(), started.elapsed(), &out)?;
    println!();
    print!("{}", outcome.view_text);
    println!();
    print!("{}", wsis_testnet::report::table(&report));
    if let Some(m) = &malicious {
        println!();
        print!("{}", m.table());
    }
    println!();
    println!(
        "bundle verified offline: {}  (wsis verify {} --federation {})",
        outcome.bundle_dir.display(),
        outcome.bundle_dir.display(),
        net.federation
    );
    println!("report: {}", outcome.report_html.display());
    println!("run report: {}", out.join("report.json").display());
    net.stop_all();
    if !report.converged {
        bail!("the nodes did not converge");
    }
    Ok(())
}
