//! The running node: one organisation's replica of the federation, kept durable on disk and in sync with peers.
//!
//! [`Node`] ties the parts together. Governance ops flow like this:
//!
//! - **local**: sealed with the organisation's key (next seq, current heads; lists put in canonical form, then the
//!   signed bytes read back by the strict decoder every peer runs) → judged by [`Governance::check`] as the
//!   replay would judge it → stored and flushed → inserted into the replica → announced. What a peer would refuse
//!   is refused before anything is stored. Nothing is acknowledged before it is durable, and nothing is shown to
//!   peers before it is durable either, so a crash can never make the node reuse a sequence number a peer has seen.
//! - **remote**: bytes from a peer → strict decode and signature (protocol) → inserted into the replica
//!   (structural checks, parking of ops with missing parents, validity) → stored with every parked op it released.
//!   A peer whose ops fail decoding, signature or structural checks is penalised; enough penalties disconnect it.
//!
//! Sync is pull-based: announcements (gossipsub) and new connections trigger a `GovSince` request with this
//! node's heads; the peer answers with exactly the ops this node lacks (computed from the vector clocks), in
//! frames bounded by the sync protocol, repeating while it says `more`. Missing parents are fetched by id.
//!
//! Access control on the serving side follows the trust model: a peer bound (by a `BindNode` op) to an admitted
//! organisation may read federation data; any other peer may only fetch the genesis and push its own inception
//! and binding.
//!
//! Documents use the engine's fast paths: one [`DocumentEngine::receive_batch`] call per `GetEnvelopes` response
//! (one Automerge `apply_changes` per document instead of one per envelope; one penalty per response that held
//! rejected envelopes), and at start-up [`DocumentEngine::restore_envelopes`] with the envelopes the store has
//! already verified (no second signature check).
//!
//! # Blocking work and the runtime
//!
//! The node is meant for tokio's **multi-threaded** runtime. Engine calls that can take long — a batch receive
//! (with one group commit for the envelopes it accepts), the start-up restore, revalidation after governance
//! changes, and every store write the engine makes through [`StoreSink`] (it waits for the group-commit flush) —
//! run under [`tokio::task::block_in_place`]: the worker thread hands its other tasks (the network task, other
//! syncs, the API) to another worker and then blocks. We chose it over `spawn_blocking` because these calls
//! borrow the governance and engine guards (`spawn_blocking` needs `'static` data, i.e. owned guards of `Arc`ed
//! mutexes and a restructured `Inner`) and the caller awaits the result anyway, so a separate thread would buy
//! nothing. Nested calls (the store sink inside a batch receive) are fine: tokio treats an inner
//! `block_in_place` as a no-op. On a current-thread runtime (`block_in_place` would panic there) the same work
//! runs inline (`blocking`): correct, because nothing in it waits for the runtime (the store's writer is its
//! own thread), but the runtime's other tasks wait meanwhile.
//!
//! # Where the code is
//!
//! This file holds [`Node`] (start, local ops and edits, announcements, the event loop, shutdown); `sync` is the
//! pull client, `serve` answers peers' requests and enforces access control within each peer's `budget` (a token
//! bucket of requests and response bytes), `store_sink` is the engine's sink
//! ([`StoreSink`]), `parked_ops` bounds each peer's parked governance ops.

mod budget;
pub use budget::Served;
mod parked_ops;
mod pending;
mod refused;
mod serve;
mod store_sink;
mod sync;
#[cfg(test)]
mod tests;

use parked_ops::ParkedLedger;
pub use store_sink::StoreSink;

use crate::data_dir::DataDir;
use crate::engine::{DocumentEngine, EnvelopeSink, Peer, Received};
use crate::net::{
    Announce, ChannelId, Multiaddr, NetConfig, NetError, NetEvent, Network, PeerId, RefuseReason,
    SyncRequest, SyncResponse, Validation,
};
use crate::store::{ReplayError, Store, StoreError, StoreOpenError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Mutex, Semaphore};
use wsis_protocol::crypto::SecretKey;
use wsis_protocol::envelope::SignedEnvelope;
use wsis_protocol::gov::{CheckError, Governance, InsertError, Inserted, Invalid};
use wsis_protocol::ids::{DocId, FederationId, OpId, OrgId};
use wsis_protocol::op::{MotionKind, OpBody, OpError, OpKind, SignedOp};

/// Ops in one `Ops` response page at most (the page bound, `MAX_PAGE_BYTES`, bounds their bytes).
const MAX_OPS_PER_RESPONSE: usize = 2_000;
/// Ids in one `GetOps` request at most (the request frame is 64 KiB).
const MAX_IDS_PER_REQUEST: usize = 1_000;
/// Op ids a `GovSince` names (heads and nearest ancestors, `Governance::have_summary`): 4 KiB of the 64 KiB
/// request frame.
const GOV_HAVE_IDS: usize = 128;
/// Rounds of `GovSince` / `GetOps` in one sync with one peer before giving up until the next trigger.
const MAX_SYNC_ROUNDS: usize = 64;
/// Syncs running at once (each with a different peer).
const MAX_CONCURRENT_SYNCS: usize = 8;
/// Ops in one push that may wait for missing parents before the push counts as an orphan flood (penalised).
const MAX_PARKED_PER_PUSH: usize = 8;
/// Peers remembered as introduced at most (past it, identities are pushed again, which is harmless).
const MAX_INTRODUCED_PEERS: usize = 4_096;
/// Peers asked per anti-entropy round at most (chosen at random among the connected ones).
const ANTI_ENTROPY_FANOUT: usize = 4;
/// How often connected peers are asked for what this node lacks, whatever the gossip said.
const ANTI_ENTROPY_INTERVAL: Duration = Duration::from_secs(5);

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("cannot open the store")]
    Store(#[from] StoreOpenError),
    /// The text names `wsis store check` (see [`crate::store::damaged_at_start`]); the store error is in it, so
    /// it is not also a source (the chain would repeat it).
    #[error("{}", crate::store::damaged_at_start(.error, .data_dir))]
    Damaged {
        error: StoreError,
        /// The data directory, so the advice names the exact command to run.
        data_dir: std::path::PathBuf,
    },
    #[error(
        "the store holds no genesis: create a federation, or join an existing federation (its id and a bootstrap address)"
    )]
    NoGenesis,
    #[error("the stored genesis is not valid")]
    BadGenesis(#[source] InsertError),
    #[error("this data directory belongs to federation {found}, not {expected}")]
    WrongFederation {
        found: FederationId,
        expected: FederationId,
    },
    #[error("invalid address `{0}`")]
    Address(String),
    #[error("invalid peer id `{0}` in blocked_peers")]
    PeerId(String),
    #[error("cannot start networking")]
    Net(#[from] NetError),
    #[error("could not fetch the genesis of {0} from any bootstrap peer")]
    GenesisUnavailable(FederationId),
    #[error("cannot write the federation id to the data directory")]
    Bind(#[source] crate::data_dir::BindError),
    #[error("cannot publish this organisation's identity: {0}")]
    Identity(String),
}

/// A store failure at start-up, naming the data directory in its advice.
fn damaged(dir: &DataDir) -> impl Fn(StoreError) -> StartError {
    let data_dir = dir.path().to_path_buf();
    move |error| StartError::Damaged {
        error,
        data_dir: data_dir.clone(),
    }
}

/// Why a local op was not accepted. Whatever the reason, nothing of the op was stored, applied or sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The strict decoder every peer runs refuses the op (an empty name, an oversized field, …): a peer would
    /// refuse it and penalise this node, so it is never stored. The local API answers 400.
    #[error("every peer would refuse this op: {0}")]
    Malformed(OpError),
    /// The replay would store the op without effect, for this reason ([`Node::submit_checked`] only). The local
    /// API answers 409 with the reason's code.
    #[error("refused by the governance rules: {0}")]
    Invalid(Invalid),
    /// The replica's structural checks refuse the op (API 409).
    #[error("the op was refused: {0}")]
    Refused(#[from] InsertError),
    /// The op would wait for parents this replica lacks (cannot happen for an op built on its own heads).
    #[error("the op cites {} parents this node does not have", .0.len())]
    Parked(Vec<OpId>),
    #[error("the op was not durably stored")]
    Store(#[from] StoreError),
}

/// How the node starts.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Listen addresses; empty means the data directory's config.
    pub listen: Vec<Multiaddr>,
    /// Bootstrap peers (with `/p2p/<id>`), in addition to the config's.
    pub bootstrap: Vec<Multiaddr>,
    /// mDNS discovery; `None` means the config's setting.
    pub mdns: Option<bool>,
    /// Peers never connected to, in addition to the config's `blocked_peers` (see [`NetConfig::blocked_peers`]).
    pub blocked_peers: Vec<PeerId>,
    /// Join this federation: fetch its genesis from a bootstrap peer and check its hash.
    pub join: Option<FederationId>,
}

/// Counters an operator (and the testnet) reads.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct NodeStats {
    /// Ops received from peers that were refused (bad bytes, bad signature, structural failure).
    pub ops_refused: u64,
    /// Ops received from peers that were new and entered the DAG.
    pub ops_received: u64,
    /// Requests from peers that were refused for lack of admission.
    pub requests_refused: u64,
    /// Parked ops evicted from the replica: newcomers refused by the parked-op ledger (counted in
    /// `ops_parking_refused` too), and all of a banned peer's.
    pub ops_evicted: u64,
    /// Parked ops refused as newcomers: their peer was past its parking quota, or the ledger was full.
    pub ops_parking_refused: u64,
}

/// Runs blocking work from async code: under [`tokio::task::block_in_place`] on a multi-threaded runtime, inline
/// otherwise (see the module docs).
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The node's documents.
pub type Engine = DocumentEngine<StoreSink>;

/// Why a document operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    #[error("edit failed: {0}")]
    Edit(#[from] crate::engine::EditError),
    #[error("publish failed: {0}")]
    Publish(#[from] crate::engine::PublishError),
}

struct Inner {
    org: OrgId,
    /// Locked after `gov` when both are needed.
    docs: Mutex<Engine>,
    inception: wsis_protocol::op::SignedInception,
    org_key: SecretKey,
    store: Store,
    net: Network,
    gov: Mutex<Governance>,
    stats: std::sync::Mutex<NodeStats>,
    syncs: Semaphore,
    /// Peers with a sync running, and whether another was asked for meanwhile: a burst of announcements queues
    /// one more sync, not many, and none is lost because the running sync was already past its document.
    syncing: std::sync::Mutex<HashMap<PeerId, bool>>,
    /// Peers this (admitted) node has pushed its inception and binding to; cleared for a peer when a sync fails.
    introduced: std::sync::Mutex<std::collections::HashSet<PeerId>>,
    /// Which peer parked which governance ops.
    parked_by: std::sync::Mutex<ParkedLedger>,
    /// Which peer made the replica hold which ops of organisations not yet admitted.
    pending_by: std::sync::Mutex<pending::PendingLedger>,
    /// Ops and envelopes refused from peers: skipped, not penalised again, when a later sync brings them again.
    refused_ops: std::sync::Mutex<refused::RefusedIds<OpId>>,
    refused_envelopes: std::sync::Mutex<refused::RefusedIds<wsis_protocol::ids::EnvelopeId>>,
    /// What each peer may still cost this node in requests and response bytes (see `budget`).
    budgets: std::sync::Mutex<budget::Budgets>,
}

/// A running node. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("org", &self.inner.org)
            .finish_non_exhaustive()
    }
}

fn parse_addrs(list: &[String]) -> Result<Vec<Multiaddr>, StartError> {
    list.iter()
        .map(|s| s.parse().map_err(|_| StartError::Address(s.clone())))
        .collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Writes a new federation's genesis into a data directory's store, signed by its organisation (which becomes
/// the convening secretariat, together with the `other_secretariat` inceptions). Returns the federation id.
pub async fn create_federation(
    dir: &mut DataDir,
    name: &str,
    teams: Vec<wsis_protocol::op::Team>,
    other_secretariat: Vec<wsis_protocol::op::SignedInception>,
) -> Result<FederationId, StartError> {
    let store = Store::open(dir.db_path())?;
    if store.federation().is_some() || dir.federation().is_some() {
        let found = store
            .federation()
            .or(dir.federation())
            .unwrap_or(FederationId([0; 32]));
        return Err(StartError::WrongFederation {
            found,
            expected: found,
        });
    }
    let mut secretariat = vec![dir.inception().clone()];
    secretariat.extend(other_secretariat);
    let genesis = OpBody {
        federation: None,
        author: dir.org_id(),
        key: dir.org_key().public(),
        seq: 1,
        parents: vec![],
        timestamp_ms: now_ms(),
        kind: OpKind::Genesis(Box::new(wsis_protocol::op::Genesis {
            name: name.to_string(),
            secretariat,
            nominating_authority: None,
            teams,
            policy: wsis_protocol::op::Policy::default(),
        })),
    }
    // Sealed: a genesis every peer's decoder accepts (a name, distinct team codes, …) or none at all.
    .seal(dir.org_key())
    .map_err(|e| StartError::BadGenesis(e.into()))?;
    let fed = FederationId(genesis.id().0);
    store.put_op(&genesis).await.map_err(damaged(dir))?;
    store.bind_federation(fed).await.map_err(damaged(dir))?;
    dir.bind_federation(fed).map_err(StartError::Bind)?;
    Ok(fed)
}

impl Node {
    /// Opens the data directory's store, replays it (every op verified again on load), starts networking and the
    /// sync loop. With `options.join`, an empty store first fetches the genesis from a bootstrap peer.
    pub async fn start(mut dir: DataDir, options: NodeOptions) -> Result<Node, StartError> {
        let store = Store::open(dir.db_path())?;
        let config = dir.config().clone();
        let listen = if options.listen.is_empty() {
            parse_addrs(&config.listen)?
        } else {
            options.listen.clone()
        };
        let mut bootstrap = parse_addrs(&config.bootstrap)?;
        bootstrap.extend(options.bootstrap.iter().cloned());
        let mdns = options.mdns.unwrap_or(config.mdns);
        let mut blocked_peers = config
            .blocked_peers
            .iter()
            .map(|s| s.parse().map_err(|_| StartError::PeerId(s.clone())))
            .collect::<Result<Vec<PeerId>, _>>()?;
        blocked_peers.extend(options.blocked_peers.iter().copied());

        let stored = store.load_ops().map_err(damaged(&dir))?;
        let federation = match (
            stored.is_empty(),
            options.join,
            store.federation().or(dir.federation()),
        ) {
            (false, Some(want), Some(have)) if want != have => {
                return Err(StartError::WrongFederation {
                    found: have,
                    expected: want,
                })
            }
            (_, _, Some(have)) => have,
            (true, Some(want), None) => want,
            _ => return Err(StartError::NoGenesis),
        };

        let mut net_config = NetConfig::new(*dir.node_key_seed(), federation);
        net_config.listen = listen;
        net_config.bootstrap = bootstrap;
        net_config.blocked_peers = blocked_peers;
        net_config.mdns = mdns;
        // Until the event loop runs, peers' requests are answered "no genesis" at once (see `fetch_genesis`).
        net_config.serve_from_start = false;
        let serve_budget = net_config.serve_budget;
        let (net, events) = Network::new(net_config)?;

        let mut gov = if stored.is_empty() {
            let genesis = fetch_genesis(&net, federation).await?;
            store.put_op(&genesis).await.map_err(damaged(&dir))?;
            store
                .bind_federation(federation)
                .await
                .map_err(damaged(&dir))?;
            Governance::new(
                genesis
                    .verify()
                    .map_err(|e| StartError::BadGenesis(e.into()))?,
            )
            .map_err(StartError::BadGenesis)?
        } else {
            replay_store(stored, federation)?
        };
        // This organisation's own ops waiting for its admission are never dropped: signing them again would be
        // an equivocation.
        gov.keep_pending_of(dir.org_id());
        if dir.federation().is_none() {
            dir.bind_federation(federation).map_err(StartError::Bind)?;
        }
        let org_key = SecretKey::from_seed(&dir.org_key().to_seed());
        let mut engine = DocumentEngine::new(
            federation,
            dir.org_id(),
            SecretKey::from_seed(&dir.org_key().to_seed()),
            StoreSink::new(store.clone()),
        );
        // The store verifies every envelope as it loads it (strict decode, signature, key = hash), so the engine
        // takes them as verified rather than checking each signature again. Loading and restoring every document
        // can take long: block in place (see the module docs).
        let restored = blocking(|| {
            store
                .load_envelopes()
                .map(|stored| engine.restore_envelopes(&gov, stored))
        })
        .map_err(damaged(&dir))?;
        tracing::info!(?restored, "documents restored from the store");
        let node = Node {
            inner: Arc::new(Inner {
                org: dir.org_id(),
                docs: Mutex::new(engine),
                inception: dir.inception().clone(),
                org_key,
                store,
                net,
                gov: Mutex::new(gov),
                stats: Default::default(),
                syncs: Semaphore::new(MAX_CONCURRENT_SYNCS),
                syncing: Default::default(),
                introduced: Default::default(),
                parked_by: Default::default(),
                pending_by: Default::default(),
                refused_ops: Default::default(),
                refused_envelopes: Default::default(),
                budgets: std::sync::Mutex::new(budget::Budgets::new(serve_budget)),
            }),
        };
        node.ensure_identity().await.map_err(|e| match e {
            SubmitError::Store(e) => damaged(&dir)(e),
            SubmitError::Refused(e) => StartError::BadGenesis(e),
            other => StartError::Identity(other.to_string()),
        })?;
        tokio::spawn(node.clone().event_loop(events));
        node.inner.net.serve().await?;
        tokio::spawn(node.clone().anti_entropy());
        Ok(node)
    }

    /// Publishes this organisation's inception (unless it is a secretariat organisation, incepted in the genesis)
    /// and the binding of this node's peer id, if the replica does not have them yet.
    async fn ensure_identity(&self) -> Result<(), SubmitError> {
        let me = self.inner.org;
        let peer = self.peer_id().to_bytes();
        let (incepted, bound) = {
            let gov = self.inner.gov.lock().await;
            let incepted = gov.federation().secretariat.contains(&me) || gov.last_seq(&me) > 0;
            // In the DAG, or waiting outside it for this organisation's admission.
            let bound = gov.ops().chain(gov.pending_of(&me)).any(|op| {
                op.author() == me
                    && matches!(op.kind(), OpKind::BindNode { peer_id } if *peer_id == peer)
            });
            (incepted, bound)
        };
        if !incepted {
            self.submit(OpKind::OrgInception(self.inner.inception.clone()))
                .await?;
        }
        if !bound {
            self.submit(OpKind::BindNode { peer_id: peer }).await?;
        }
        Ok(())
    }

    pub fn org(&self) -> OrgId {
        self.inner.org
    }

    /// The organisation's signing key, for the Chair's bundle ([`crate::chair`]).
    pub(crate) fn org_key(&self) -> &SecretKey {
        &self.inner.org_key
    }

    pub fn network(&self) -> &Network {
        &self.inner.net
    }

    pub fn peer_id(&self) -> PeerId {
        self.inner.net.local_peer_id()
    }

    pub fn stats(&self) -> NodeStats {
        self.inner
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Governance ops in the store: what a restart replays (equal to the replica's op count, parked ops aside).
    pub fn stored_ops(&self) -> usize {
        self.inner.store.op_count()
    }

    /// Runs `f` on the governance replica.
    pub async fn with_gov<R>(&self, f: impl FnOnce(&Governance) -> R) -> R {
        f(&*self.inner.gov.lock().await)
    }

    /// Signs a governance op as this organisation, stores it durably, applies it and announces it. Returns the
    /// op once it is durable.
    ///
    /// The op is made exactly as a peer will judge it (see `Node::sign_store_apply`): an op a peer's decoder or
    /// structural checks would refuse is refused here and nothing is stored. An op the replay would merely mark
    /// invalid is still signed (peers store such ops without penalty); [`Node::submit_checked`] refuses those too.
    pub async fn submit(&self, kind: OpKind) -> Result<SignedOp, SubmitError> {
        self.sign_store_apply(kind, false).await
    }

    /// Like [`Node::submit`], but an op the replay would mark invalid (the author lacks the role, the team is
    /// unknown, …) is refused too, with the replay's reason, and nothing is signed into the DAG, stored or sent.
    /// The local API uses this, so a refused command changes nothing.
    pub async fn submit_checked(&self, kind: OpKind) -> Result<SignedOp, SubmitError> {
        self.sign_store_apply(kind, true).await
    }

    /// The one path of every op this node signs: seal (canonical form, then the peers' strict decoder on the
    /// signed bytes) → verify → [`Governance::check`] (the replay's structural checks and evaluation, without
    /// inserting) → store durably → insert → announce. Any refusal before the store leaves nothing behind: the
    /// op was never stored, applied or sent, and its sequence number is free again.
    async fn sign_store_apply(
        &self,
        kind: OpKind,
        refuse_invalid: bool,
    ) -> Result<SignedOp, SubmitError> {
        let mut gov = self.inner.gov.lock().await;
        let parents = gov.parents_for(&self.inner.org, &kind);
        let mut kind = kind;
        if let OpKind::Motion {
            motion: MotionKind::Checkpoint { heads },
            ..
        } = &mut kind
        {
            // A checkpoint finalises its own causal history: it names exactly its parents (at most MAX_PARENTS,
            // however many heads there are), so every head it names is in its history by construction.
            *heads = parents.clone();
        }
        let op = OpBody {
            federation: Some(gov.federation_id()),
            author: self.inner.org,
            key: self.inner.org_key.public(),
            seq: gov.last_seq(&self.inner.org) + 1,
            parents,
            timestamp_ms: now_ms(),
            kind,
        }
        .seal(&self.inner.org_key)
        .map_err(SubmitError::Malformed)?;
        let verified = op.clone().verify().map_err(SubmitError::Malformed)?;
        match gov.check(&verified) {
            Ok(()) => {}
            Err(CheckError::Invalid(why)) if refuse_invalid => {
                return Err(SubmitError::Invalid(why))
            }
            // Peers store it too, without effect and without penalising anyone.
            Err(CheckError::Invalid(_)) => {}
            Err(CheckError::Refused(e)) => return Err(SubmitError::Refused(e)),
            Err(CheckError::Parked { missing }) => return Err(SubmitError::Parked(missing)),
            // This organisation's inception or binding, waiting outside the DAG for its admission: stored, and
            // offered to peers by `push_identity` until a secretariat admits it.
            Err(CheckError::Pending) => {}
        }
        // Durable before it is visible to anyone (see the module docs).
        self.inner.store.put_op(&op).await?;
        // What the op lets in (an `Admit` carries in the organisation's held inception and bindings) is stored too.
        let released: Vec<SignedOp> = match gov.insert(verified)? {
            Inserted::Applied { released, .. } => released
                .iter()
                .filter_map(|id| gov.get(id).cloned())
                .collect(),
            _ => Vec::new(),
        };
        for r in &released {
            if let Err(e) = self.inner.store.put_op(r).await {
                tracing::error!(error = %e, "cannot store an op this node's op let in; it will be fetched again");
            }
        }
        if let Ok(mut l) = self.inner.pending_by.lock() {
            l.release(&released.iter().map(|r| r.id()).collect::<Vec<_>>());
        }
        let heads = gov.heads();
        drop(gov);
        if matches!(
            op.kind(),
            OpKind::RevokeRole { .. } | OpKind::LeaveTeam { .. } | OpKind::Admit { .. }
        ) {
            self.revalidate_documents().await;
        }
        self.announce(heads).await;
        Ok(op)
    }

    /// Runs `f` on the governance replica and the document engine together.
    pub async fn with_docs<R>(&self, f: impl FnOnce(&Governance, &Engine) -> R) -> R {
        let gov = self.inner.gov.lock().await;
        let docs = self.inner.docs.lock().await;
        f(&gov, &docs)
    }

    /// Edits a document locally (an Automerge transaction). The change is visible here at once and leaves the node
    /// with the next [`Node::publish`].
    pub async fn edit<O>(
        &self,
        doc: &DocId,
        f: impl FnOnce(
            &mut automerge::transaction::Transaction<'_>,
        ) -> Result<O, automerge::AutomergeError>,
    ) -> Result<O, DocError> {
        Ok(self.inner.docs.lock().await.edit(doc, f)?)
    }

    /// Signs every unpublished local change of `doc` into (usually) one envelope, stores it durably and announces
    /// it. Returns the number of envelopes published.
    pub async fn publish(&self, doc: &DocId) -> Result<usize, DocError> {
        let (envs, gov_heads, heads) = {
            let gov = self.inner.gov.lock().await;
            let mut docs = self.inner.docs.lock().await;
            let envs = docs.publish(&gov, doc)?;
            (envs.len(), gov.heads(), docs.envelope_heads(doc))
        };
        if envs > 0 {
            self.announce_with(gov_heads, vec![(*doc, heads)]).await;
        }
        Ok(envs)
    }

    async fn announce(&self, gov_heads: Vec<OpId>) {
        self.announce_with(gov_heads, vec![]).await
    }

    async fn announce_with(
        &self,
        gov_heads: Vec<OpId>,
        docs: Vec<(DocId, Vec<wsis_protocol::ids::EnvelopeId>)>,
    ) {
        let docs = docs
            .into_iter()
            .map(|(d, h)| (d, h.into_iter().take(64).collect()))
            .take(crate::net::wire::MAX_ANNOUNCE_DOCS)
            .collect();
        let msg = Announce {
            gov_heads: gov_heads
                .into_iter()
                .take(wsis_protocol::limits::MAX_HEADS)
                .collect(),
            docs,
        };
        if let Err(e) = self.inner.net.announce(&msg).await {
            // No subscribed peer yet: they will pull on connect and through anti-entropy.
            tracing::debug!(error = %e, "announcement not published");
        }
    }

    /// New governance ops can authorise parked envelopes or withdraw authority from stored ones (a late
    /// revocation): re-run authorisation and rebuild what changed.
    async fn revalidate_documents(&self) {
        let gov = self.inner.gov.lock().await;
        let mut docs = self.inner.docs.lock().await;
        // Re-authorises every stored envelope and may rebuild documents: block in place (see the module docs).
        let report = blocking(|| docs.revalidate(&gov));
        if report != Default::default() {
            tracing::info!(?report, "documents revalidated after governance changes");
        }
    }

    async fn event_loop(self, mut events: mpsc::Receiver<NetEvent>) {
        while let Some(event) = events.recv().await {
            match event {
                NetEvent::InboundRequest {
                    peer,
                    request,
                    channel_id,
                } => {
                    let node = self.clone();
                    tokio::spawn(async move { node.serve(peer, request, channel_id).await });
                }
                NetEvent::Announcement {
                    peer,
                    msg,
                    message_id,
                    ..
                } => {
                    let known = {
                        let gov = self.inner.gov.lock().await;
                        let docs = self.inner.docs.lock().await;
                        msg.gov_heads.iter().all(|h| gov.contains(h))
                            && msg
                                .docs
                                .iter()
                                .all(|(d, hs)| hs.iter().all(|h| docs.envelope(d, h).is_some()))
                    };
                    let _ = self
                        .inner
                        .net
                        .validate_announcement(message_id, peer, Validation::Accept)
                        .await;
                    if !known {
                        self.schedule_sync(peer);
                    }
                }
                NetEvent::PeerConnected { peer, .. } => self.schedule_sync(peer),
                NetEvent::PeerBanned { peer } => {
                    // Its parked ops and envelopes would hold parking room (and memory) for nothing; an honest
                    // op among them is fetched again, in order, from someone else.
                    let ids = self
                        .inner
                        .parked_by
                        .lock()
                        .map(|mut l| l.forget(&peer))
                        .unwrap_or_default();
                    let held = self
                        .inner
                        .pending_by
                        .lock()
                        .map(|mut l| l.forget(&peer))
                        .unwrap_or_default();
                    let evicted = {
                        let mut gov = self.inner.gov.lock().await;
                        gov.evict_parked(&ids) + gov.evict_pending(&held)
                    };
                    if let Ok(mut s) = self.inner.stats.lock() {
                        s.ops_evicted += evicted as u64;
                    }
                    if evicted > 0 {
                        tracing::info!(%peer, evicted, "banned peer's parked ops evicted");
                    }
                    let dropped = self
                        .inner
                        .docs
                        .lock()
                        .await
                        .forget_peer(&Peer::new(&peer.to_bytes()));
                    tracing::info!(%peer, dropped, "banned peer's parked envelopes dropped");
                }
                _ => {}
            }
        }
    }

    /// Runs until ctrl-c or SIGTERM, then shuts down gracefully (connections closed; every acknowledged write is
    /// already flushed).
    pub async fn run_until_signal(&self) -> std::io::Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        self.shutdown().await;
        Ok(())
    }

    /// Stops networking. The store flushes every acknowledged write before its acknowledgement, so there is
    /// nothing else to save.
    pub async fn shutdown(&self) {
        let _ = self.inner.net.shutdown().await;
    }
}

/// Rebuilds the replica from the store, in topological order (no parking), checking the genesis hash.
fn replay_store(stored: Vec<SignedOp>, federation: FederationId) -> Result<Governance, StartError> {
    let (gov, refused) = crate::store::replay_ops(stored, federation).map_err(|e| match e {
        ReplayError::NoGenesis => StartError::NoGenesis,
        ReplayError::WrongGenesis { found } => StartError::WrongFederation {
            found,
            expected: federation,
        },
        ReplayError::BadGenesis(e) => StartError::BadGenesis(e),
    })?;
    for (op, why) in refused {
        tracing::warn!(%op, error = %why, "a stored op is refused by the replay");
    }
    Ok(gov)
}

/// How long a newcomer gives up on fetching the genesis after (no bootstrap peer and no other peer had it).
const GENESIS_FETCH_DEADLINE: Duration = Duration::from_secs(120);
/// How long one peer has to answer a newcomer's `Hello`: short, because a peer that has the genesis answers at
/// once and one that has none says so at once (`NoGenesis`); a peer that says nothing is asked again next round.
const GENESIS_ASK_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between two rounds of asking.
const GENESIS_ROUND_PAUSE: Duration = Duration::from_millis(500);
/// Connected peers other than the bootstrap peers asked at once in one round.
const GENESIS_FANOUT: usize = 16;

/// Fetches the genesis of `federation`: each round asks the bootstrap peers first, all at once (dialled if not
/// connected yet: they are the peers the operator named), then up to [`GENESIS_FANOUT`] other connected peers
/// at once, each with [`GENESIS_ASK_TIMEOUT`]. Other newcomers joining at the same time answer `NoGenesis` at
/// once (their network does not serve before their application runs), so a crowd of newcomers never makes one
/// of them wait for timeouts. The first answer whose bytes hash to `federation` wins; a wrong genesis is
/// penalised.
async fn fetch_genesis(net: &Network, federation: FederationId) -> Result<SignedOp, StartError> {
    let bootstrap = net.bootstrap_peers().to_vec();
    let give_up = tokio::time::Instant::now() + GENESIS_FETCH_DEADLINE;
    loop {
        if let Some(op) = ask_genesis(net, federation, &bootstrap).await {
            return Ok(op);
        }
        let others: Vec<PeerId> = net
            .connected_peers()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !bootstrap.contains(p))
            .take(GENESIS_FANOUT)
            .collect();
        if let Some(op) = ask_genesis(net, federation, &others).await {
            return Ok(op);
        }
        if tokio::time::Instant::now() >= give_up {
            return Err(StartError::GenesisUnavailable(federation));
        }
        tokio::time::sleep(GENESIS_ROUND_PAUSE).await;
    }
}

/// Asks `peers` for the genesis at once; the first that answers with the genesis of `federation` wins.
async fn ask_genesis(
    net: &Network,
    federation: FederationId,
    peers: &[PeerId],
) -> Option<SignedOp> {
    use futures::stream::{FuturesUnordered, StreamExt};
    let hello = SyncRequest::Hello { federation };
    let mut asks: FuturesUnordered<_> = peers
        .iter()
        .map(|&peer| {
            let hello = &hello;
            async move {
                let answer =
                    tokio::time::timeout(GENESIS_ASK_TIMEOUT, net.request(peer, hello)).await;
                (peer, answer)
            }
        })
        .collect();
    while let Some((peer, answer)) = asks.next().await {
        match answer {
            Ok(Ok(SyncResponse::Genesis(bytes))) => {
                match SignedOp::from_bytes(&bytes) {
                    // All 32 bytes: a genesis matching on a prefix is another federation.
                    Ok(op) if FederationId(op.id().0) == federation => return Some(op),
                    _ => {
                        let _ = net.penalise(peer, "wrong genesis").await;
                    }
                }
            }
            Ok(Ok(other)) => {
                tracing::debug!(%peer, response = other.kind_name(), "no genesis from this peer")
            }
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "genesis request failed"),
            Err(_) => tracing::debug!(%peer, "genesis request timed out"),
        }
    }
    None
}
