//! The malicious node: an admitted organisation whose in-process libp2p peer pushes forged and unauthorised data
//! at every honest node over the real sync protocol, and the checks that none of it took effect.
//!
//! **Choice: the malicious organisation is a member.** It is initialised with `wsis init` under the run directory,
//! pushes its own inception and node binding (which any peer may), and the convening secretariat admits it through
//! the CLI. That is the stronger test: an unadmitted peer can push nothing but its identity (every other push is
//! refused as `NotAdmitted`), while a member's pushes go through decoding, signature, structural and authority
//! checks, which is what the items below aim at.
//!
//! What it pushes to every honest node (see [`attack`]):
//! - **unauthorised but well-signed** ops by the malicious organisation, chained on its own previous ops (so they
//!   enter the DAG and must be judged invalid by every node and by the offline verifier): `Admit` of a fresh
//!   organisation (whose own inception, a valid op, is pushed too), `Nominate` of itself as coordinator citing a
//!   recommendation that names another organisation, `SubmitOutput` for a team it does not coordinate, and a
//!   `Ballot` on a motion whose electorate it is not in (when a motion exists);
//! - **forged** ops: one with a corrupted signature, one claiming ITU (node 0) as author but signed with the
//!   malicious key — refused before the DAG and penalised;
//! - an **orphan flood**: [`ORPHANS`] ops citing parents nobody has, in pushes of [`MAX_PUSH_OPS`], each past the
//!   node's per-push parking quota (8), so every push is penalised;
//! - an **oversized push**: `MAX_PUSH_OPS + 1` ops. The `Network` API encodes and size-checks every request before
//!   it leaves (`EncodeError`), so it cannot be sent through it; sending it would need a raw libp2p stream (the
//!   node's codec refuses frames over the limit before allocating, which `wsis-node`'s own tests cover). It is
//!   tried and reported as not sent.
//!
//! The orphans stay parked on the nodes that got them (nothing ever releases them), so the attack raises
//! [`Testnet::tolerated_parked`] by the number pushed: convergence then means equal digests and no more parked
//! ops than that.

use crate::{Testnet, SYNC_DEADLINE};
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wsis_node::api::types::{OpInfo, OrgRow, TeamRow};
use wsis_node::data_dir::DataDir;
use wsis_node::net::wire::MAX_PUSH_OPS;
use wsis_node::net::{Multiaddr, NetConfig, NetEvent, Network, PeerId, SyncRequest, SyncResponse};
use wsis_protocol::crypto::SecretKey;
use wsis_protocol::fixture::Org;
use wsis_protocol::gov::DocumentScope;
use wsis_protocol::gov::{Governance, Inserted};
use wsis_protocol::ids::{DocId, FederationId, Hash32, OpId, OrgId};
use wsis_protocol::limits::MAX_PARENTS;
use wsis_protocol::op::{
    Attestation, DocKind, OpBody, OpKind, SignedOp, StakeholderType, TeamCode,
};

/// Orphans pushed to every node: more than the node's per-push parking quota in every push.
pub const ORPHANS: usize = 2 * MAX_PUSH_OPS;

/// One well-signed op by the malicious organisation that no honest node may apply.
#[derive(Debug, Clone, Serialize)]
pub struct Unauthorised {
    pub op: String,
    pub what: String,
    /// Why the malicious node's own replica already judged it invalid (the protocol's reason).
    pub invalid: String,
}

/// What the malicious node did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Attack {
    /// The malicious organisation (admitted).
    pub org: String,
    /// Its peer id.
    pub peer: String,
    /// The fresh organisation it tried to admit.
    pub fresh_org: String,
    /// Unauthorised ops (they enter the DAG, invalid).
    pub unauthorised: Vec<Unauthorised>,
    /// Ids of forged ops (they must be nowhere).
    pub forged: Vec<String>,
    /// Items delivered (the peer answered the push), summed over the honest nodes.
    pub pushed: u64,
    /// Items delivered per honest node, in node order.
    pub pushed_per_node: Vec<u64>,
    /// What could not be sent, and why.
    pub not_sent: Vec<String>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The peer id at the end of a `/p2p/<id>` address.
fn peer_of(address: &str) -> Result<PeerId> {
    address
        .rsplit("/p2p/")
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow!("no peer id in {address}"))
}

/// The malicious organisation's signer, with its local replica of the federation.
struct Signer {
    fed: FederationId,
    org: OrgId,
    key: SecretKey,
    seq: u64,
    last: OpId,
}

impl Signer {
    fn body(&self, seq: u64, parents: Vec<OpId>, kind: OpKind) -> OpBody {
        OpBody {
            federation: Some(self.fed),
            author: self.org,
            key: self.key.public(),
            seq,
            parents,
            timestamp_ms: now_ms(),
            kind,
        }
    }

    /// Signs the next op in the organisation's chain and applies it to the local replica, returning it with the
    /// replica's verdict (`None`: valid).
    fn next(&mut self, gov: &mut Governance, kind: OpKind) -> Result<(SignedOp, Option<String>)> {
        let parents = gov.parents_after(Some(self.last));
        self.seq += 1;
        let op = self.body(self.seq, parents, kind).sign(&self.key);
        self.last = op.id();
        let verdict = match gov.insert(op.clone().verify()?)? {
            Inserted::Applied { valid: true, .. } => None,
            Inserted::Applied { .. } => Some(
                gov.validity(&op.id())
                    .and_then(Result::err)
                    .map_or_else(|| "invalid".to_string(), |w| w.to_string()),
            ),
            other => bail!("the malicious replica did not apply its own op: {other:?}"),
        };
        Ok((op, verdict))
    }
}

/// Creates the malicious organisation, has the secretariat admit it, and pushes forged and unauthorised data at
/// every honest node from an in-process libp2p peer. Returns what it did; `pushed` counts delivered items.
pub fn attack(net: &Testnet, seed: u64) -> Result<Attack> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the malicious node's runtime")?;
    let dir = net.root.join("malicious");
    let crate::Initialised { org: org_text } = net.run_as(
        &dir,
        &[
            "init".into(),
            "--name".into(),
            "Mallory Holdings".into(),
            "--stakeholder".into(),
            "private-sector".into(),
        ],
    )?;
    let data = DataDir::open(&dir).context("opening the malicious data directory")?;
    let fed: FederationId = net
        .federation
        .parse()
        .map_err(|e| anyhow!("federation id {}: {e}", net.federation))?;
    let addresses: Vec<String> = net
        .nodes
        .iter()
        .map(|n| {
            n.address
                .clone()
                .ok_or_else(|| anyhow!("{} has no address", n.spec.acronym))
        })
        .collect::<Result<_>>()?;
    let peers: Vec<PeerId> = addresses
        .iter()
        .map(|a| peer_of(a))
        .collect::<Result<_>>()?;

    // The in-process peer; inbound requests (honest nodes syncing with it) are refused as busy.
    let network = runtime.block_on(async {
        let mut config = NetConfig::new(*data.node_key_seed(), fed);
        config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse::<Multiaddr>()?];
        config.bootstrap = addresses
            .iter()
            .map(|a| a.parse::<Multiaddr>().map_err(|e| anyhow!("{a}: {e}")))
            .collect::<Result<_>>()?;
        let (network, mut events) = Network::new(config)?;
        let responder = network.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let NetEvent::InboundRequest { channel_id, .. } = event {
                    let _ = responder
                        .respond(
                            channel_id,
                            SyncResponse::Refused {
                                reason: wsis_node::net::RefuseReason::Busy,
                            },
                        )
                        .await;
                }
            }
        });
        anyhow::Ok(network)
    })?;
    let result = run_attack(net, &runtime, &network, &data, fed, &peers, &org_text, seed);
    runtime.block_on(async {
        let _ = network.shutdown().await;
    });
    result
}

#[allow(clippy::too_many_arguments)]
fn run_attack(
    net: &Testnet,
    runtime: &tokio::runtime::Runtime,
    network: &Network,
    data: &DataDir,
    fed: FederationId,
    peers: &[PeerId],
    org_text: &str,
    seed: u64,
) -> Result<Attack> {
    let org = data.org_id();
    let key = SecretKey::from_seed(&data.org_key().to_seed());
    let mut attack = Attack {
        org: org_text.to_string(),
        peer: network.local_peer_id().to_string(),
        pushed_per_node: vec![0; peers.len()],
        ..Default::default()
    };
    let request = |peer: PeerId, req: SyncRequest| {
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), network.request(peer, &req)).await
        })
    };

    // 1. The genesis, then the malicious organisation's inception and binding, pushed to every node.
    let started = Instant::now();
    let genesis = loop {
        match request(peers[0], SyncRequest::Hello { federation: fed }) {
            Ok(Ok(SyncResponse::Genesis(bytes))) => break bytes,
            other => {
                if started.elapsed() > SYNC_DEADLINE {
                    bail!("the secretariat never sent the genesis: {other:?}");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    let mut gov =
        Governance::from_genesis_bytes(&genesis, &fed).map_err(|e| anyhow!("the genesis: {e}"))?;
    let genesis_id = gov.genesis().id();
    let mut signer = Signer {
        fed,
        org,
        key,
        seq: 0,
        last: genesis_id,
    };
    let inception = signer
        .body(
            1,
            vec![genesis_id],
            OpKind::OrgInception(data.inception().clone()),
        )
        .sign(&signer.key);
    let binding = signer
        .body(
            2,
            vec![inception.id()],
            OpKind::BindNode {
                peer_id: network.local_peer_id().to_bytes(),
            },
        )
        .sign(&signer.key);
    signer.seq = 2;
    signer.last = binding.id();
    let identity = vec![inception.bytes().to_vec(), binding.bytes().to_vec()];
    for &p in peers {
        let _ = request(
            p,
            SyncRequest::Push {
                ops: identity.clone(),
            },
        );
    }
    net.cli_retry(0, &["org", "admit", org_text])
        .context("the secretariat admitting the malicious organisation")?;
    (net.progress)(&format!(
        "malicious organisation {org_text} admitted; its peer is {}",
        network.local_peer_id()
    ));

    // 2. Wait until every node serves it (it knows the admission), then fetch the DAG into the local replica.
    for (i, &p) in peers.iter().enumerate() {
        let started = Instant::now();
        loop {
            let heads = gov.heads();
            match request(p, SyncRequest::GovSince { heads }) {
                Ok(Ok(SyncResponse::Ops { ops, .. })) => {
                    for op in ops {
                        let _ = gov.insert_bytes(&op);
                    }
                    if gov.is_member(&org) {
                        break;
                    }
                }
                _ => {
                    // Maybe the node has not got the identity yet (it relays only to admitted peers).
                    let _ = request(
                        p,
                        SyncRequest::Push {
                            ops: identity.clone(),
                        },
                    );
                }
            }
            if started.elapsed() > SYNC_DEADLINE {
                bail!(
                    "{} never served the admitted malicious peer",
                    net.nodes[i].spec.acronym
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // Everything node 0 has, page after page.
    for _ in 0..64 {
        let heads = gov.heads();
        match request(peers[0], SyncRequest::GovSince { heads }) {
            Ok(Ok(SyncResponse::Ops { ops, more })) => {
                let n = ops.len();
                for op in ops {
                    let _ = gov.insert_bytes(&op);
                }
                if !more || n == 0 {
                    break;
                }
            }
            other => bail!("fetching the DAG from the secretariat: {other:?}"),
        }
    }
    if !gov.is_member(&org) {
        bail!("the malicious organisation's replica does not show its admission");
    }

    // 3. Unauthorised but well-signed ops.
    let mut unauthorised: Vec<(SignedOp, String)> = Vec::new();
    let mut valid_extras: Vec<SignedOp> = Vec::new();
    let mut fresh = Org::new(
        seed.wrapping_mul(7919).wrapping_add(17),
        "Unvetted Trading Co",
        StakeholderType::PrivateSector,
        None,
    );
    attack.fresh_org = fresh.id().to_string();
    let fresh_inception = fresh.sign(
        Some(fed),
        &gov.heads()
            .into_iter()
            .take(MAX_PARENTS)
            .collect::<Vec<_>>(),
        OpKind::OrgInception(fresh.inception.clone()),
        now_ms(),
    );
    if let Ok(v) = fresh_inception.clone().verify() {
        let _ = gov.insert(v);
    }
    valid_extras.push(fresh_inception);
    let mut push_unauthorised = |gov: &mut Governance, kind: OpKind, what: String| -> Result<()> {
        let (op, verdict) = signer.next(gov, kind)?;
        attack.unauthorised.push(Unauthorised {
            op: op.id().to_string(),
            what,
            invalid: verdict.clone().unwrap_or_else(|| "VALID".into()),
        });
        unauthorised.push((op, verdict.unwrap_or_default()));
        Ok(())
    };
    push_unauthorised(
        &mut gov,
        OpKind::Admit { org: fresh.id() },
        "admission of a fresh organisation by a non-secretariat".into(),
    )?;
    let teams: Vec<TeamCode> = gov.federation().teams.keys().cloned().collect();
    let team = teams
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("the federation has no teams"))?;
    // A passed recommendation (of someone else), else any op id: either way none recommends this org.
    let recommendation = gov
        .motions()
        .into_iter()
        .find(|m| m.passed)
        .map_or(genesis_id, |m| m.id);
    push_unauthorised(
        &mut gov,
        OpKind::Nominate {
            team: team.clone(),
            org,
            recommendation,
        },
        format!("self-nomination as coordinator of {team} without a recommendation"),
    )?;
    let year = gov
        .documents()
        .into_iter()
        .filter_map(|d| gov.document(&d))
        .find_map(|info| match info.scope {
            DocumentScope::Created(DocKind::OutputDraft { team: t, year }) => {
                Some((info.id, t, year))
            }
            _ => None,
        });
    match year {
        Some((doc, t, year)) => push_unauthorised(
            &mut gov,
            OpKind::SubmitOutput {
                team: t.clone(),
                year,
                doc,
                attestation: Attestation {
                    heads: vec![],
                    content_hash: Hash32([0xee; 32]),
                },
            },
            format!("submission of {t}'s {year} output by a non-coordinator"),
        )?,
        None => push_unauthorised(
            &mut gov,
            OpKind::SubmitOutput {
                team: team.clone(),
                year: 2026,
                doc: DocId(genesis_id.0),
                attestation: Attestation {
                    heads: vec![],
                    content_hash: Hash32([0xee; 32]),
                },
            },
            format!("submission of a {team} output (no draft exists yet) by a non-coordinator"),
        )?,
    }
    let motion = gov.motions().into_iter().find(|m| {
        gov.electorate(&m.id)
            .is_some_and(|electorate| !electorate.contains(&org))
    });
    match motion {
        Some(m) => push_unauthorised(
            &mut gov,
            OpKind::Ballot {
                motion: m.id,
                yes: true,
            },
            format!("a ballot on {} from outside its electorate", m.summary),
        )?,
        None => attack
            .not_sent
            .push("ballot: no motion existed at the time of the attack".into()),
    }

    // 4. Forged ops: a corrupted signature; ITU's authorship with the malicious key.
    let heads: Vec<OpId> = gov.heads().into_iter().take(MAX_PARENTS).collect();
    let mut corrupted = signer
        .body(
            signer.seq + 1000,
            heads.clone(),
            OpKind::JoinTeam { team: team.clone() },
        )
        .sign(&signer.key)
        .bytes()
        .to_vec();
    let n = corrupted.len();
    corrupted[n - 5] ^= 0x01;
    let itu: OrgId = net.nodes[0]
        .org
        .parse()
        .map_err(|e| anyhow!("org id {}: {e}", net.nodes[0].org))?;
    let mut impostor = signer.body(1_000_000, heads, OpKind::Admit { org: fresh.id() });
    impostor.author = itu;
    let impostor = impostor.sign(&signer.key);
    attack.forged.push(
        SignedOp::decode(&corrupted)
            .map(|o| o.id().to_string())
            .unwrap_or_else(|_| "undecodable".into()),
    );
    attack.forged.push(impostor.id().to_string());
    let forged = vec![corrupted, impostor.bytes().to_vec()];

    // 5. The orphan flood.
    let orphans: Vec<Vec<u8>> = (0..ORPHANS)
        .map(|i| {
            let mut ghost = Org::new(
                seed.wrapping_mul(1_000_003).wrapping_add(i as u64),
                "Ghost",
                StakeholderType::Academia,
                None,
            );
            let mut missing = [0u8; 32];
            missing[..8].copy_from_slice(&seed.to_be_bytes());
            missing[8..16].copy_from_slice(&(i as u64).to_be_bytes());
            missing[31] = 0x0f;
            ghost
                .sign(
                    Some(fed),
                    &[OpId(missing)],
                    OpKind::OrgInception(ghost.inception.clone()),
                    now_ms(),
                )
                .bytes()
                .to_vec()
        })
        .collect();
    net.tolerated_parked.fetch_add(ORPHANS, Ordering::SeqCst);

    // 6. Push everything at every honest node: valid-but-unauthorised first (no penalty), then the forged ops and
    // the flood (penalised). A push the node answers counts its items as delivered.
    let mut batches: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut first: Vec<Vec<u8>> = valid_extras.iter().map(|o| o.bytes().to_vec()).collect();
    first.extend(unauthorised.iter().map(|(o, _)| o.bytes().to_vec()));
    batches.push(first);
    batches.push(forged);
    for chunk in orphans.chunks(MAX_PUSH_OPS) {
        batches.push(chunk.to_vec());
    }
    for (i, &p) in peers.iter().enumerate() {
        for batch in &batches {
            let n = batch.len() as u64;
            match request(p, SyncRequest::Push { ops: batch.clone() }) {
                Ok(Ok(SyncResponse::Ack { .. })) => attack.pushed_per_node[i] += n,
                Ok(Ok(other)) => {
                    // Delivered and refused as a whole: still items the node rejected.
                    attack.pushed_per_node[i] += n;
                    attack.not_sent.push(format!(
                        "{}: a push of {n} answered {other:?}",
                        net.nodes[i].spec.acronym
                    ));
                }
                Ok(Err(e)) => attack
                    .not_sent
                    .push(format!("{}: a push of {n}: {e}", net.nodes[i].spec.acronym)),
                Err(_) => attack.not_sent.push(format!(
                    "{}: a push of {n} timed out",
                    net.nodes[i].spec.acronym
                )),
            }
        }
    }
    // 7. The oversized push: refused by the Network API before it is sent.
    let oversized = SyncRequest::Push {
        ops: orphans.iter().take(MAX_PUSH_OPS + 1).cloned().collect(),
    };
    match request(peers[0], oversized) {
        Ok(Err(e)) => attack.not_sent.push(format!(
            "oversized push ({} ops): refused by the Network API before sending: {e}",
            MAX_PUSH_OPS + 1
        )),
        other => attack.not_sent.push(format!(
            "oversized push ({} ops): unexpectedly sent: {other:?}",
            MAX_PUSH_OPS + 1
        )),
    }
    attack.pushed = attack.pushed_per_node.iter().sum();
    Ok(attack)
}

/// What one honest node shows of the attack.
#[derive(Debug, Clone, Serialize)]
pub struct NodeVerdict {
    pub acronym: String,
    /// Ops it refused from peers (forged, orphans past the cap are parked, not refused).
    pub ops_refused: u64,
    pub requests_refused: u64,
    pub ops_invalid: u64,
    /// The malicious org's unauthorised ops it holds as invalid (all of them, or the check fails).
    pub unauthorised_invalid: usize,
    /// Forged ops it holds (must be 0).
    pub forged_present: usize,
}

/// The per-node verdicts.
#[derive(Debug, Clone, Serialize)]
pub struct MaliciousReport {
    pub org: String,
    pub fresh_org: String,
    pub pushed: u64,
    pub nodes: Vec<NodeVerdict>,
    /// The unauthorised ops, each invalid on every node.
    pub unauthorised: Vec<Unauthorised>,
    /// The forged ops, on no node.
    pub forged: Vec<String>,
    pub not_sent: Vec<String>,
}

impl MaliciousReport {
    /// A few lines for the binary.
    pub fn table(&self) -> String {
        let mut out = format!(
            "malicious org {}: {} items pushed; every item rejected on every node\n{:<8} {:>11} {:>10} {:>8} {:>13} {:>7}\n",
            self.org, self.pushed, "NODE", "OPS REFUSED", "REQ REFUSED", "INVALID", "UNAUTH INVAL.", "FORGED"
        );
        for n in &self.nodes {
            out.push_str(&format!(
                "{:<8} {:>11} {:>10} {:>8} {:>13} {:>7}\n",
                n.acronym,
                n.ops_refused,
                n.requests_refused,
                n.ops_invalid,
                n.unauthorised_invalid,
                n.forged_present
            ));
        }
        for u in &self.unauthorised {
            out.push_str(&format!(
                "invalid everywhere: {} ({}): {}\n",
                u.op, u.what, u.invalid
            ));
        }
        for f in &self.forged {
            out.push_str(&format!("forged, refused everywhere: {f}\n"));
        }
        for s in &self.not_sent {
            out.push_str(&format!("not sent: {s}\n"));
        }
        out
    }
}

/// Checks on every honest node that nothing the malicious node pushed took effect: forged ops absent and refused,
/// unauthorised ops present but invalid, the malicious org coordinates no team, the fresh org is not a member, and
/// nothing of the malicious org is in the stocktaking view. Fails naming the node and the item otherwise.
pub fn check(net: &Testnet, attack: &Attack, year: u16) -> Result<MaliciousReport> {
    let mut nodes = Vec::new();
    for i in 0..net.nodes.len() {
        let who = net.nodes[i].spec.acronym.clone();
        let status = net.status(i)?;
        let mut unauthorised_invalid = 0;
        for u in &attack.unauthorised {
            let shown: OpInfo = net.cli_as(i, &["op", "show", &u.op]).with_context(|| {
                format!("{who} lacks the unauthorised op {} ({})", u.op, u.what)
            })?;
            if shown.invalid.is_none() {
                bail!("{who} applied the unauthorised op {} ({})", u.op, u.what);
            }
            unauthorised_invalid += 1;
        }
        let mut forged_present = 0;
        for f in &attack.forged {
            if net.cli(i, &["op", "show", f]).is_ok() {
                forged_present += 1;
            }
        }
        if forged_present > 0 {
            bail!("{who} holds {forged_present} forged op(s)");
        }
        let teams: Vec<TeamRow> = net.cli_as(i, &["team", "list"])?;
        for t in &teams {
            if t.coordinator.as_deref() == Some(attack.org.as_str()) {
                bail!("{who}: the malicious org coordinates {:?}", t.code);
            }
        }
        let orgs: Vec<OrgRow> = net.cli_as(i, &["org", "list"])?;
        for o in &orgs {
            if o.id.to_string() == attack.fresh_org && o.member {
                bail!("{who}: the fresh org was admitted by the malicious org");
            }
        }
        let view = net.cli(i, &["stocktake", "view", "--year", &year.to_string()])?;
        if view.to_string().contains(&attack.org) {
            bail!("{who}: the malicious org appears in the stocktaking view");
        }
        if status.ops_refused == 0 {
            bail!("{who} refused no op (the forged ones should have been)");
        }
        if (status.ops_invalid as u64) < attack.unauthorised.len() as u64 {
            bail!("{who} holds fewer invalid ops than the malicious org pushed");
        }
        nodes.push(NodeVerdict {
            acronym: who,
            ops_refused: status.ops_refused,
            requests_refused: status.requests_refused,
            ops_invalid: status.ops_invalid as u64,
            unauthorised_invalid,
            forged_present,
        });
    }
    Ok(MaliciousReport {
        org: attack.org.clone(),
        fresh_org: attack.fresh_org.clone(),
        pushed: attack.pushed,
        nodes,
        unauthorised: attack.unauthorised.clone(),
        forged: attack.forged.clone(),
        not_sent: attack.not_sent.clone(),
    })
}
