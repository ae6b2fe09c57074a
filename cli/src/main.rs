//! `wsis`: run an organisation's node, drive it, assemble and verify the stocktaking bundle.
//!
//! Thin by design: argument parsing and output here; the work is in `wsis-node` (the node and its API) and
//! `wsis-protocol` (the bundle, the verifier, the report). Exit codes: 0 ok, 1 failure or invalid, 2 usage error.

mod bundle_dir;
mod client;
mod commands;
mod output;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// How a command failed, which decides the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Exit 2: the command line (or a value in it) is wrong.
    Usage(String),
    /// Exit 1: the command could not be done, or what it checked is invalid.
    Failed(String),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Failed(format!("{e:#}"))
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "wsis",
    version,
    about = "A node of a WSIS federation: action-line teams, meetings, annual outputs and the verifiable stocktaking.",
    after_help = "Exit codes: 0 ok, 1 failure or invalid, 2 usage error. Docs: docs/operator-guide.md, docs/cli.md."
)]
pub struct Cli {
    /// The organisation's data directory (commands that talk to a node find it through this).
    #[arg(long, global = true, env = "WSIS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The node's local API address (`wsis node`: where it listens; other commands: where to reach it, with the
    /// token in WSIS_API_TOKEN unless --data-dir is given).
    #[arg(long, global = true, env = "WSIS_API", value_name = "ADDR")]
    pub api: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create an organisation's data directory: keys, API token, signed inception, commented config.toml.
    Init {
        #[arg(long)]
        name: String,
        /// government, private-sector, civil-society, international-organisation, academia, technical-community
        #[arg(long)]
        stakeholder: String,
        /// ISO 3166-1 alpha-2 code (required for a government).
        #[arg(long)]
        country: Option<String>,
    },
    /// Create a federation (the secretariat's genesis).
    #[command(subcommand)]
    Federation(FederationCmd),
    /// Run this organisation's node (and its local API) until ctrl-c or SIGTERM.
    Node(commands::NodeArgs),
    /// This node's status.
    Status,
    /// Governance ops: show one as this node has it (auditors, scripts).
    #[command(subcommand)]
    Op(OpCmd),
    /// Organisations: admit (secretariat) and list.
    #[command(subcommand)]
    Org(OrgCmd),
    /// Multi-stakeholder teams (one per WSIS Action Line).
    #[command(subcommand)]
    Team(TeamCmd),
    /// Team meetings, the recommendation meeting and the coordinators' meeting.
    #[command(subcommand)]
    Meeting(MeetingCmd),
    /// Motions (recommendations, elections, procedure, checkpoint, report) and ballots.
    #[command(subcommand)]
    Motion(MotionCmd),
    /// Coordinators of the teams.
    #[command(subcommand)]
    Coordinator(CoordinatorCmd),
    /// A team's annual output.
    #[command(subcommand)]
    Output(DocCmd),
    /// A government's national implementation report.
    #[command(name = "national-report", subcommand)]
    NationalReport(DocCmd),
    /// The stocktaking exercise: the live view, and the Chair's bundle.
    #[command(subcommand)]
    Stocktake(StocktakeCmd),
    /// This data directory's store, with the node stopped: `check` lists every item that fails validation
    /// (what would stop the node's start), `check --quarantine` sets them aside so the node starts.
    #[command(subcommand)]
    Store(StoreCmd),
    /// Verify a stocktaking bundle offline: no node, no network.
    Verify {
        dir: PathBuf,
        /// The federation id the bundle must belong to (all 64 hex digits).
        #[arg(long)]
        federation: String,
    },
    /// The Chair's report to the UN Secretary-General.
    #[command(subcommand)]
    Report(ReportCmd),
}

#[derive(Subcommand, Debug)]
pub enum FederationCmd {
    /// Write the genesis, signed by this organisation as the convening secretariat. Prints the federation id.
    Create {
        #[arg(long)]
        name: String,
        /// JSON file: [{"code": "C1", "name": "..."}, ...]; default: the 18 WSIS Action Line teams.
        #[arg(long)]
        teams: Option<PathBuf>,
        /// Another secretariat organisation's `org.inception` file (e.g. UNESCO's, beside ITU's).
        #[arg(long = "secretariat-inception", value_name = "FILE")]
        secretariat: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum OpCmd {
    /// One op: kind, author, sequence number, and whether it is valid (and why not).
    Show { op: String },
}

#[derive(Subcommand, Debug)]
pub enum OrgCmd {
    /// Admit (accredit) an organisation whose node has published its inception. Secretariat only.
    Admit { org: String },
    /// Organisations known to this node.
    List,
}

#[derive(Subcommand, Debug)]
pub enum TeamCmd {
    List,
    Join {
        team: String,
    },
    Leave {
        team: String,
    },
    /// Set the team's coordination modalities (its coordinator).
    Modalities {
        team: String,
        text: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum MeetingCmd {
    /// Convene a meeting: team (coordinator), recommendation or coordinators (secretariat).
    Convene {
        #[arg(long)]
        kind: String,
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        year: u16,
        #[arg(long)]
        title: String,
    },
    Attend {
        meeting: String,
    },
    /// Add a paragraph to the meeting's minutes.
    Minutes {
        meeting: String,
        text: String,
    },
    /// Approve the meeting record as this node has it now (convener and attendees).
    Approve {
        meeting: String,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum MotionCmd {
    /// Propose a motion in a meeting.
    Propose(commands::ProposeArgs),
    /// Vote on a motion.
    Vote {
        motion: String,
        #[arg(long, conflicts_with = "no", required_unless_present = "no")]
        yes: bool,
        #[arg(long)]
        no: bool,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum CoordinatorCmd {
    /// Nominate a team's coordinator, citing the passed recommendation. Nominating authority only.
    Nominate {
        team: String,
        org: String,
        #[arg(long)]
        recommendation: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum DocCmd {
    /// Create a draft (outputs: --team; national reports: this government's country).
    Draft {
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        year: u16,
    },
    /// Edit a section (replace with --text, or --append), or add an activity (outputs).
    Edit {
        doc: String,
        #[arg(long)]
        section: Option<String>,
        #[arg(long, conflicts_with = "append")]
        text: Option<String>,
        #[arg(long)]
        append: Option<String>,
        #[arg(long, conflicts_with_all = ["section", "text", "append"])]
        activity: Option<String>,
    },
    /// Attest the document as this node has it now (outputs: the team's coordinator).
    Submit { doc: String },
    /// Show the document's content, heads and content hash.
    Show { doc: String },
}

#[derive(Subcommand, Debug)]
pub enum StocktakeCmd {
    /// The live stocktaking view of a year, from this node's replica.
    View {
        #[arg(long)]
        year: u16,
    },
    /// Assemble the year's signed bundle (the Chair's tool).
    Assemble {
        #[arg(long)]
        year: u16,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum StoreCmd {
    /// List every stored item that fails validation (tree, key, reason) and what is quarantined. Exit 0 if none
    /// fails, 1 if some do. The node must not be running.
    Check {
        /// Move the items that fail into the quarantine tree (kept byte for byte, never served, never replayed,
        /// never deleted), so the node starts.
        #[arg(long)]
        quarantine: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReportCmd {
    /// Render the report from a bundle, after verifying it.
    Render {
        dir: PathBuf,
        #[arg(long, value_parser = ["html", "md"])]
        format: String,
        /// The federation id to verify against (default: the one in the bundle's manifest, with a warning).
        #[arg(long)]
        federation: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
    }
}
