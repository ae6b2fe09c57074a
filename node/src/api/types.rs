//! The local API's request and response bodies. Public so the `wsis` CLI (and the testnet) deserialise exactly
//! what the node serialises; `docs/api.md` documents them and `node/tests/api.rs` keeps the two in step.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use wsis_protocol::gov::OrgInfo;

/// Every error body: a one-line message for people and a stable code for scripts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub code: String,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub org: String,
    pub name: String,
    pub stakeholder: String,
    pub country: Option<String>,
    pub federation: String,
    pub federation_name: String,
    pub peer_id: String,
    /// libp2p addresses this node listens on, each ending in `/p2p/<peer id>` (usable as `--bootstrap`).
    pub listen: Vec<String>,
    pub connected_peers: usize,
    /// Peer ids of the connected peers (sorted; `connected_peers` counts them). Absent from older nodes.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Admitted (accredited) in this node's replica; a joining node waits for this.
    pub admitted: bool,
    pub secretariat: bool,
    /// Governance ops in the replica, and those parked for missing parents.
    pub ops: usize,
    pub ops_parked: usize,
    /// Inceptions and bindings of organisations nobody admitted yet, waiting outside the DAG, and how many
    /// organisations they are from.
    pub ops_pending: usize,
    pub admission_requests: usize,
    pub ops_invalid: usize,
    /// Hex SHA-256 of the replayed governance state (equal on converged nodes).
    pub gov_digest: String,
    pub documents: usize,
    /// Hex SHA-256 over every document's id and heads (equal on converged nodes).
    pub docs_digest: String,
    pub ops_received: u64,
    pub ops_refused: u64,
    pub requests_refused: u64,
    /// Parked governance ops evicted: newcomers the parking ledger refused, and all of a banned peer's.
    #[serde(default)]
    pub ops_evicted: u64,
    /// Governance ops refused parking as newcomers (their peer past its quota of 256, or the ledger full).
    #[serde(default)]
    pub ops_parking_refused: u64,
    /// Rejected change envelopes per reason.
    pub envelopes_rejected: BTreeMap<String, u64>,
    /// Sync bytes received from and sent to peers since start.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Storage quotas and the document budget (issue 14): this organisation's usage, and the organisations
    /// nearest one of their limits. Absent from older nodes.
    #[serde(default)]
    pub quotas: QuotaStatus,
    /// Each document's use of the caps peers apply to it (issue 14). Absent from older nodes.
    #[serde(default)]
    pub limits: Vec<DocumentLimits>,
}

/// The quotas block of [`Status`]: what organisations have stored at this node against the protocol's quotas
/// (`wsis_protocol::limits::MAX_AUTHOR_DOC_BYTES` and the others).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QuotaStatus {
    /// This node's organisation.
    pub own: QuotaRow,
    /// The organisations nearest one of their limits, nearest first (at most five; this one included if it is).
    pub nearest: Vec<QuotaRow>,
}

/// One organisation's usage against its quotas, at this node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRow {
    pub org: String,
    pub name: String,
    /// Bytes of its stored envelopes over all documents, and the quota.
    pub bytes: u64,
    pub bytes_quota: u64,
    /// Its fullest document (the one nearest a per-document quota), if it wrote any.
    pub fullest_doc: Option<String>,
    /// Bytes and envelopes it stored in that document, and the quotas per document.
    pub doc_bytes: u64,
    pub doc_bytes_quota: u64,
    pub doc_envelopes: u64,
    pub doc_envelopes_quota: u64,
    /// Documents it created (valid `CreateDoc` ops), and the budget.
    pub docs_created: usize,
    pub docs_budget: usize,
    /// The largest fraction of any of these limits it uses, in parts per thousand.
    pub fill_permille: u64,
}

/// One document's use of the caps a peer applies to it (`protocol/src/limits.rs`), in `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocumentLimits {
    pub doc: String,
    /// Ops of the stored envelopes, this node's unpublished ops, and the cap per document.
    pub ops: u64,
    pub unpublished_ops: u64,
    pub max_ops: u64,
    /// Automerge actors in the document and the cap; this organisation's actors and the cap per author.
    pub actors: usize,
    pub max_actors: usize,
    pub own_actors: usize,
    pub max_own_actors: usize,
    /// Authors excluded from the document for an equivocation.
    pub excluded_authors: usize,
}

/// `GET /v1/ops/{op}`: one governance op as this node has it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpInfo {
    pub op: String,
    pub kind: String,
    pub author: String,
    pub seq: u64,
    /// `null` when valid, else why it has no effect.
    pub invalid: Option<String>,
}

/// `GET /v1/orgs`: one row per organisation whose inception this node holds, as the replica sees it.
pub type OrgRow = OrgInfo;

/// `POST /v1/orgs/admit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdmitRequest {
    pub org: String,
}

/// What a command that signed a governance op returns: the op's id (a meeting, motion or document id where the
/// op creates one).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpDone {
    pub op: String,
    pub kind: String,
}

/// `GET /v1/teams`: one row per team.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamRow {
    pub code: String,
    pub name: String,
    pub coordinator: Option<String>,
    pub coordinator_name: Option<String>,
    pub contested_with: Vec<String>,
    pub members: Vec<String>,
    pub modalities: Option<String>,
}

/// `POST /v1/teams/{team}/modalities`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModalitiesRequest {
    pub text: String,
}

/// `POST /v1/meetings`: `kind` is `team` (with `team`), `recommendation` or `coordinators`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConveneRequest {
    pub kind: String,
    #[serde(default)]
    pub team: Option<String>,
    pub year: u16,
    pub title: String,
}

/// `POST /v1/meetings/{id}/minutes`: appends a paragraph to the meeting record, signed by this organisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MinutesRequest {
    pub text: String,
}

/// `POST /v1/motions`. `motion.kind`: `recommend` (team, org), `elect` (role: chair|co-chair, org),
/// `adopt-procedure` (year, teams, deadline_ms, sections, national_reports), `checkpoint` (this node's current
/// governance heads), `adopt-report` (year, manifest_hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MotionRequest {
    pub meeting: String,
    pub motion: MotionSpec,
}

/// The motion being proposed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum MotionSpec {
    Recommend {
        team: String,
        org: String,
    },
    Elect {
        role: String,
        org: String,
    },
    AdoptProcedure {
        year: u16,
        #[serde(default)]
        teams: Vec<String>,
        #[serde(default)]
        deadline_ms: u64,
        #[serde(default)]
        sections: Vec<String>,
        #[serde(default)]
        national_reports: bool,
    },
    Checkpoint,
    AdoptReport {
        year: u16,
        manifest_hash: String,
    },
}

/// `POST /v1/motions/{id}/vote`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VoteRequest {
    pub yes: bool,
}

/// `POST /v1/coordinators`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NominateRequest {
    pub team: String,
    pub org: String,
    pub recommendation: String,
}

/// `POST /v1/outputs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputDraftRequest {
    pub team: String,
    pub year: u16,
}

/// `POST /v1/national-reports` (the country is the government's own).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NationalReportRequest {
    pub year: u16,
}

/// `POST /v1/docs/{doc}/edit`: set or append to a section's text, or add an activity (outputs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EditRequest {
    #[serde(default)]
    pub section: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub append: Option<String>,
    #[serde(default)]
    pub activity: Option<String>,
}

/// A document as this node has it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocView {
    pub doc: String,
    pub scope: serde_json::Value,
    pub creator: String,
    pub heads: Vec<String>,
    pub content_hash: String,
    pub content: serde_json::Value,
}

/// `POST /v1/stocktake/assemble`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssembleRequest {
    pub year: u16,
}

/// The assembled bundle: relative path → base64 bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleFiles {
    pub federation: String,
    pub year: u16,
    pub files: BTreeMap<String, String>,
}
