//! Seeded convergence of documents (trust-model case 40, document layer): the verified document engine, driven
//! in-process with no I/O, reaches the same documents whatever order envelopes and governance ops arrive in.
//!
//! A seeded simulation grows a federation with a team output draft, a team meeting record, a team charter and a
//! national report, and several organisations, each with its own governance replica and
//! [`DocumentEngine`] (a [`MemorySink`] as its store). They edit the documents concurrently, publish envelopes,
//! and sync partially with each other in random orders, while governance moves underneath: the secretariat revokes
//! members and the charter's coordinator, members leave teams, a late organisation is admitted and starts writing.
//! Some organisations misbehave: an envelope naming another organisation as author, a forged signature, tampered
//! change bytes, an Automerge equivocation (two changes with one actor and seq), writing a document one may not
//! write, and an organisation that was never admitted.
//!
//! Every op and envelope produced is then delivered to fresh engines in several orders (signing order, reversed,
//! a partition, shuffles, one through `receive_batch`), with `revalidate` after governance ops as the node does.
//! Each must reach the same governance digest, the same served envelope set (every stored envelope: authorised,
//! or unauthorised but authorised by the governance history it cites, which every engine stores whatever the
//! order), the same
//! document heads, canonical JSON and equivocation evidence; an envelope refused at one engine is stored at none;
//! every organisation's own engine, once it has everything, agrees; and an engine restored from the union of the
//! stores (a restart), or from one engine's store, agrees too. Any difference fails: the divergence this
//! simulation found (an envelope refused or stored depending on whether a revocation arrived first,
//! [`a_change_is_lost_where_its_envelope_waits_for_a_change_refused_by_a_concurrent_revocation`]) is fixed in the
//! engine; [`documents_converge_whatever_the_delivery_order_strictly`] also requires the same stored set, envelope
//! for envelope, and nothing left waiting where the reference has nothing waiting.
//!
//! 1,000 seeds (`WSIS_SEEDS=1000 cargo test -p wsis-node --test doc_convergence -- --nocapture`) are run from
//! time to time, not in CI; the last figures are in `docs/performance.md`.
//!
//! A failure prints its seed; `WSIS_SEED=<seed> cargo test -p wsis-node --test doc_convergence` replays exactly
//! that seed (session salts are seeded too). `WSIS_SEEDS=<n>` runs seeds `0..n` (the default keeps CI fast).
#![allow(clippy::unwrap_used)]

use automerge::transaction::Transactable;
use automerge::{AutoCommit, Automerge, ObjType, ReadDoc, Value, ROOT};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use wsis_node::engine::{
    canonical_json, DocumentEngine, EnvelopeStatus, Equivocation, ExportError, MemorySink, Peer,
    PublishError, ReceiveError, Received,
};
use wsis_protocol::cbor::Encoder;
use wsis_protocol::crypto::SecretKey;
use wsis_protocol::envelope::{automerge_actor, ChangeEnvelope, SignedEnvelope};
use wsis_protocol::fixture::World;
use wsis_protocol::gov::{Governance, WriteDenied};
use wsis_protocol::ids::{sha256, DocId, EnvelopeId, Hash32, OpId};
use wsis_protocol::op::{Country, DocKind, MeetingKind, OpKind, RevocableRole, SignedOp, TeamCode};

/// One organisation's node: its governance replica and its document engine.
struct Live {
    gov: Governance,
    engine: DocumentEngine,
}

struct Sim {
    rng: StdRng,
    w: World,
    /// Organisations admitted at the start (indexes into `w.orgs`; 0 and 1 are the secretariat).
    members: Vec<usize>,
    /// Admitted during the run, by the secretariat.
    late: usize,
    /// Has an inception record but is never admitted.
    outsider: usize,
    coordinator: usize,
    teams: [TeamCode; 2],
    docs: Vec<DocId>,
    /// One node per organisation, indexed like `w.orgs`.
    live: Vec<Live>,
    /// Every governance op signed during the run (the base history is `w.log`).
    ops: Vec<Vec<u8>>,
    /// Every envelope produced, valid or not, as bytes.
    envs: Vec<Vec<u8>>,
    /// Member revocations left: a few, or nobody would be left to write.
    revocations: usize,
    /// Envelopes built to be refused by every engine whatever the order (bad bytes, wrong author, outsider).
    bad: BTreeSet<[u8; 32]>,
    clock: u64,
}

const SECRETARIAT: [usize; 2] = [0, 1];

fn salt(rng: &mut StdRng) -> [u8; 16] {
    rng.gen()
}

fn engine_for(w: &World, org: usize, salt: [u8; 16]) -> DocumentEngine {
    DocumentEngine::new(
        w.federation,
        w.id(org),
        w.secret_of(org),
        MemorySink::default(),
    )
    .with_session_salt(salt)
}

/// The map `{0: header, 1: signature, 2: [changes]}` of an envelope on the wire, with no checks.
fn encode_envelope(header: &[u8], signature: &[u8], changes: &[&[u8]]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.map(3);
    e.key(0).bytes(header);
    e.key(1).bytes(signature);
    e.key(2).array(changes.len());
    for c in changes {
        e.bytes(c);
    }
    e.into_bytes()
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut w = World::wsis();
        let n = rng.gen_range(4..=6);
        let kinds = ["civil-society", "private-sector", "academia", "government"];
        let members: Vec<usize> = (0..n)
            .map(|i| {
                let country = (i == 3).then_some("KE");
                w.add_org(&format!("org{i}"), kinds[i % 4], country)
            })
            .collect();
        let late = w.add_org("Late", "civil-society", None);
        let outsider = w.add_org("Outsider", "private-sector", None);
        let teams = [w.team("C2"), w.team("C3")];
        for &m in &members {
            w.admit(m);
        }
        for &m in &members {
            w.op(
                m,
                OpKind::JoinTeam {
                    team: teams[0].clone(),
                },
            );
        }
        for &m in &members[..3] {
            w.op(
                m,
                OpKind::JoinTeam {
                    team: teams[1].clone(),
                },
            );
        }
        let coordinator = members[0];
        w.recommend_and_nominate("C3", coordinator, &members);
        let create = |w: &mut World, org: usize, kind: DocKind| {
            DocId(w.op(org, OpKind::CreateDoc { kind }).id().0)
        };
        let draft = create(
            &mut w,
            members[1],
            DocKind::OutputDraft {
                team: teams[0].clone(),
                year: 2026,
            },
        );
        let draft3 = create(
            &mut w,
            members[2],
            DocKind::OutputDraft {
                team: teams[1].clone(),
                year: 2026,
            },
        );
        let charter = create(
            &mut w,
            coordinator,
            DocKind::TeamCharter {
                team: teams[1].clone(),
            },
        );
        let report = create(
            &mut w,
            members[3],
            DocKind::NationalReport {
                country: Country::new("KE").unwrap(),
                year: 2026,
            },
        );
        // Team meetings are convened by the coordinator; its record is written by the team and the convener.
        let meeting = w.op(
            coordinator,
            OpKind::Convene {
                meeting: MeetingKind::Team(teams[1].clone()),
                year: 2026,
                title: "C3 drafting meeting".into(),
            },
        );
        let record = DocId(meeting.id().0);
        // Inceptions and bindings of organisations not admitted yet (the late one, the outsider) wait outside
        // the DAG until an Admit takes them in; everything else is in it and valid.
        for op in w.log[1..].iter().filter(|op| !w.gov.is_pending(&op.id())) {
            assert_eq!(
                w.gov.validity(&op.id()),
                Some(Ok(())),
                "seed {seed}: the base history is valid ({:?})",
                op.kind()
            );
        }
        let live = (0..w.orgs.len())
            .map(|o| Live {
                gov: w.gov.clone(),
                engine: engine_for(&w, o, salt(&mut rng)),
            })
            .collect();
        let revocations = rng.gen_range(1..=2);
        Sim {
            rng,
            w,
            members,
            late,
            outsider,
            coordinator,
            teams,
            docs: vec![draft, draft3, charter, report, record],
            live,
            ops: Vec::new(),
            envs: Vec::new(),
            revocations,
            bad: BTreeSet::new(),
            clock: 1_800_000_000_000,
        }
    }

    /// Organisation `o` signs `kind` on its own replica's heads and applies it at home, as its node would.
    fn act(&mut self, o: usize, kind: OpKind) {
        self.clock += 1_000;
        let heads = self.live[o].gov.heads();
        let op = self.w.orgs[o].sign(Some(self.w.federation), &heads, kind, self.clock);
        let l = &mut self.live[o];
        let _ = l.gov.insert(op.clone().verify().unwrap());
        l.engine.revalidate(&l.gov);
        self.ops.push(op.bytes().to_vec());
    }

    fn step(&mut self) {
        let n = self.w.orgs.len();
        let roll = self.rng.gen_range(0..100);
        let o = self.rng.gen_range(0..n);
        match roll {
            0..=64 => self.edit(o),
            65..=81 => {
                let from = self.rng.gen_range(0..n);
                self.gossip(from, o);
            }
            82..=93 => self.governance(o),
            _ => self.misbehave(o),
        }
    }

    /// A local edit of a random document, published at once or later (a burst becomes one envelope).
    fn edit(&mut self, o: usize) {
        let doc = *self.docs.choose(&mut self.rng).unwrap();
        let choice = self.rng.gen_range(0..4);
        let key = format!("k{}", self.rng.gen_range(0..5));
        let value: i64 = self.rng.gen_range(-1000..1000);
        let pos: usize = self.rng.gen();
        let text = ["WSIS ", "broadband ", "مرحبا ", "☃ ", "e\u{301} "][self.rng.gen_range(0..5)];
        let publish = self.rng.gen_bool(0.6);
        let l = &mut self.live[o];
        let edited = l.engine.edit(&doc, |tx| {
            let object = |tx: &mut automerge::transaction::Transaction<'_>, name: &str, t| match tx
                .get(ROOT, name)?
            {
                Some((Value::Object(found), id)) if found == t => Ok(id),
                _ => tx.put_object(ROOT, name, t),
            };
            match choice {
                0 => tx.put(ROOT, key, value),
                1 => {
                    let body = object(tx, "body", ObjType::Text)?;
                    let at = pos % (tx.length(&body) + 1);
                    tx.splice_text(&body, at, 0, text)
                }
                2 => {
                    let items = object(tx, "items", ObjType::List)?;
                    let len = tx.length(&items);
                    if len > 0 && value < -500 {
                        tx.delete(&items, pos % len)
                    } else {
                        tx.insert(&items, pos % (len + 1), value)
                    }
                }
                _ => {
                    let body = object(tx, "body", ObjType::Text)?;
                    let len = tx.length(&body);
                    if len > 2 {
                        tx.splice_text(&body, pos % (len - 1), 2, "")
                    } else {
                        tx.put(ROOT, "empty-body", true)
                    }
                }
            }
        });
        assert!(edited.is_ok(), "a local edit failed: {edited:?}");
        if publish {
            self.publish(o, doc);
        }
    }

    fn publish(&mut self, o: usize, doc: DocId) {
        let l = &mut self.live[o];
        match l.engine.publish(&l.gov, &doc) {
            Ok(envs) => self
                .envs
                .extend(envs.iter().map(|e: &SignedEnvelope| e.bytes().to_vec())),
            // Revoked, left the team, never a member: the node refuses to sign; the changes are discarded.
            Err(e) if matches!(e.refusal(), Some(ReceiveError::Denied(_))) => {}
            Err(e) => panic!("publish failed: {e:?}"),
        }
    }

    /// A partial sync from `from` to `to`: some of its ops, some of its stored envelopes and, sometimes, some of
    /// the envelopes circulating (bad ones included), in random order.
    fn gossip(&mut self, from: usize, to: usize) {
        let mut ops: Vec<Vec<u8>> = self.live[from]
            .gov
            .ops()
            .map(|op| op.bytes().to_vec())
            .collect();
        let mut envs: Vec<Vec<u8>> = self.live[from]
            .engine
            .sink()
            .all()
            .map(<[u8]>::to_vec)
            .collect();
        ops.shuffle(&mut self.rng);
        envs.shuffle(&mut self.rng);
        let keep_ops = self.rng.gen_range(0..=ops.len());
        let keep_envs = self.rng.gen_range(0..=envs.len());
        ops.truncate(keep_ops);
        envs.truncate(keep_envs);
        if self.rng.gen_bool(0.3) && !self.envs.is_empty() {
            for _ in 0..3 {
                let i = self.rng.gen_range(0..self.envs.len());
                envs.push(self.envs[i].clone());
            }
        }
        let ops_first = self.rng.gen_bool(0.5);
        let peer = Peer::new(&[from as u8; 8]);
        let l = &mut self.live[to];
        let deliver_ops = |l: &mut Live| {
            insert_all(&mut l.gov, ops.iter().map(|b| b.as_slice()));
            l.engine.revalidate(&l.gov);
        };
        if ops_first {
            deliver_ops(l);
        }
        for b in &envs {
            let _ = l.engine.receive(&l.gov, &peer, b);
        }
        if !ops_first {
            deliver_ops(l);
        }
    }

    fn governance(&mut self, o: usize) {
        let pick = self.rng.gen_range(0..100);
        let target = *self.members.choose(&mut self.rng).unwrap();
        let team = self.teams.choose(&mut self.rng).unwrap().clone();
        let kind = if SECRETARIAT.contains(&o) {
            match pick {
                0..=19 if self.revocations > 0 => {
                    self.revocations -= 1;
                    OpKind::RevokeRole {
                        role: RevocableRole::Member,
                        org: self.w.id(target),
                    }
                }
                20..=34 => OpKind::RevokeRole {
                    role: RevocableRole::Coordinator(self.teams[1].clone()),
                    org: self.w.id(self.coordinator),
                },
                35..=69 => OpKind::Admit {
                    org: self.w.id(self.late),
                },
                _ => OpKind::Admit {
                    org: self.w.id(target),
                },
            }
        } else {
            match pick {
                0..=24 => OpKind::LeaveTeam { team },
                _ => OpKind::JoinTeam { team },
            }
        };
        self.act(o, kind);
    }

    /// Changes made outside any engine by organisation `o` on the document as its engine has it (or on an empty
    /// one), with the actor of `salt`.
    fn outside_change(&mut self, o: usize, doc: DocId, salt: [u8; 16], value: i64) -> AutoCommit {
        let key = self.w.orgs[o].secret.public();
        let base = self.live[o]
            .engine
            .document(&doc)
            .filter(|_| self.live[o].engine.unpublished_len(&doc) == 0)
            .map(Automerge::save);
        let mut d = match base {
            Some(bytes) => AutoCommit::load(&bytes).unwrap(),
            None => AutoCommit::new(),
        };
        d.set_actor(automerge_actor(&key, &doc, &salt));
        d.put(ROOT, "contested", value).unwrap();
        d.commit();
        d
    }

    fn seal(
        &self,
        author: usize,
        signer: &SecretKey,
        doc: DocId,
        salt: [u8; 16],
        heads: Vec<OpId>,
        d: &mut AutoCommit,
    ) -> SignedEnvelope {
        let change = d.get_last_local_change().unwrap().clone();
        ChangeEnvelope::seal(
            self.w.federation,
            doc,
            self.w.id(author),
            signer,
            salt,
            heads,
            vec![change],
        )
        .unwrap()
    }

    fn misbehave(&mut self, o: usize) {
        let o = if self.rng.gen_bool(0.2) {
            self.outsider
        } else {
            o
        };
        let doc = *self.docs.choose(&mut self.rng).unwrap();
        let s = salt(&mut self.rng);
        let value = self.rng.gen_range(0..1000);
        let other = *self.members.choose(&mut self.rng).unwrap();
        let what = self.rng.gen_range(0..5);
        let heads = self.live[o].gov.heads();
        let secret = self.w.secret_of(o);
        let mut d = self.outside_change(o, doc, s, value);
        let env = self.seal(o, &secret, doc, s, heads.clone(), &mut d);
        match what {
            0 if other != o => {
                // Names another organisation as author while signing with its own key.
                let forged = self.seal(other, &secret, doc, s, heads, &mut d);
                self.bad.insert(sha256(forged.bytes()));
                self.envs.push(forged.bytes().to_vec());
            }
            1 => {
                // A forged signature over a real header and changes.
                let h = env.verified_header();
                let mut sig = h.signature().to_vec();
                let i = self.rng.gen_range(0..sig.len());
                sig[i] ^= 1 << self.rng.gen_range(0..8);
                let changes: Vec<&[u8]> = h.raw_changes().collect();
                let bytes = encode_envelope(h.header_bytes(), &sig, &changes);
                self.bad.insert(sha256(&bytes));
                self.envs.push(bytes);
            }
            2 => {
                // Tampered change bytes under a valid signature: the change no longer hashes as signed.
                let h = env.verified_header();
                let mut change = h.raw_changes().next().unwrap().to_vec();
                let i = self.rng.gen_range(0..change.len());
                change[i] ^= 0x20;
                let bytes = encode_envelope(h.header_bytes(), h.signature(), &[&change]);
                self.bad.insert(sha256(&bytes));
                self.envs.push(bytes);
            }
            3 => {
                // Automerge equivocation: a second change with the same actor and seq, both validly sealed.
                let mut twin = self.outside_change(o, doc, s, value + 1);
                let env2 = self.seal(o, &secret, doc, s, heads, &mut twin);
                for e in [&env, &env2] {
                    self.envs.push(e.bytes().to_vec());
                }
            }
            _ => {
                // Sealed directly, bypassing the engine's publish check: accepted only where the governance
                // history allows `o` to write `doc` (not at all for the outsider).
                if o == self.outsider {
                    self.bad.insert(sha256(env.bytes()));
                }
                self.envs.push(env.bytes().to_vec());
            }
        }
    }

    /// Every organisation publishes what it has not published yet.
    fn flush(&mut self) {
        for o in 0..self.w.orgs.len() {
            for doc in self.docs.clone() {
                self.publish(o, doc);
            }
        }
    }
}

/// Inserts `ops` in order, delivering again those refused as transient (an author whose inception has not arrived
/// yet: such ops do not park) until nothing more enters, as the next syncs would. Returns those still refused so.
fn insert_all<'a>(gov: &mut Governance, ops: impl IntoIterator<Item = &'a [u8]>) -> Vec<&'a [u8]> {
    let mut pending: Vec<&[u8]> = ops.into_iter().collect();
    loop {
        let before = pending.len();
        pending.retain(|b| matches!(gov.insert_bytes(b), Err(e) if e.is_transient()));
        if pending.is_empty() || pending.len() == before {
            return pending;
        }
    }
}

/// An engine fed from nothing, as a fresh node syncing.
struct Observer {
    gov: Governance,
    engine: DocumentEngine,
    /// Envelope bytes (by hash) not stored once everything was delivered.
    refused: BTreeSet<[u8; 32]>,
    /// The result of the last delivery of each envelope, for the message of a failure.
    log: BTreeMap<[u8; 32], String>,
}

enum Item<'a> {
    Op(&'a [u8]),
    Env(&'a [u8]),
}

/// Delivers `items` in order to a fresh engine; `batch` sends each run of envelopes through `receive_batch`.
fn deliver(w: &World, salt: [u8; 16], genesis: &[u8], items: &[Item<'_>], batch: bool) -> Observer {
    let mut gov = Governance::from_genesis_bytes(genesis, &w.federation).unwrap();
    let mut engine = engine_for(w, 0, salt);
    let peer = Peer::new(b"peer");
    let mut log = BTreeMap::new();
    let mut new_ops = false;
    let mut run: Vec<&[u8]> = Vec::new();
    let mut pending_ops: Vec<&[u8]> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Item::Op(b) => {
                // Refusals (equivocating or invalid ops) are the governance simulation's concern; an op whose
                // author's inception has not arrived is refused without parking and comes again, as a sync
                // would bring it, with every later op.
                pending_ops.push(b);
                pending_ops = insert_all(&mut gov, pending_ops);
                new_ops = true;
            }
            Item::Env(b) => {
                // As the node: governance ops that arrived are applied to the documents before envelopes are.
                if new_ops {
                    engine.revalidate(&gov);
                    new_ops = false;
                }
                // Refusals are read from the final state below: a parked envelope may be refused later.
                if batch {
                    run.push(b);
                    if matches!(items.get(i + 1), Some(Item::Env(_))) {
                        continue;
                    }
                    let results = engine.receive_batch(&gov, &peer, run.iter().copied());
                    for (b, r) in run.drain(..).zip(results) {
                        log.insert(sha256(b), format!("{r:?}"));
                    }
                } else {
                    let r = engine.receive(&gov, &peer, b);
                    log.insert(sha256(b), format!("{r:?}"));
                }
            }
        }
    }
    engine.revalidate(&gov);
    // Refused: not stored once everything has arrived (never stored, or parked and then refused, or still
    // waiting for something that never comes).
    let refused = items
        .iter()
        .filter_map(|i| match i {
            Item::Env(b) => Some(*b),
            Item::Op(_) => None,
        })
        .filter(|b| {
            SignedEnvelope::from_bytes(b, w.federation).map_or(true, |e| {
                engine.envelope(&e.header().doc, &e.id()).is_none()
            })
        })
        .map(sha256)
        .collect();
    Observer {
        gov,
        engine,
        refused,
        log,
    }
}

/// What must be equal everywhere about one document: what it holds, and what is served of it.
#[derive(Debug, PartialEq, Eq)]
struct DocView {
    heads: Vec<Hash32>,
    json: String,
    equivocations: Vec<Equivocation>,
    served: Vec<EnvelopeId>,
    digest: [u8; 32],
}

fn view(e: &DocumentEngine, docs: &BTreeSet<DocId>) -> BTreeMap<DocId, DocView> {
    // A document held with no authorised envelope is the same as one not held at all.
    let empty = canonical_json(&Automerge::new()).unwrap();
    docs.iter()
        .map(|d| {
            let json = match e.export(d) {
                Ok(j) => j,
                Err(ExportError::UnknownDocument) => empty.clone(),
                Err(err) => panic!("export of {d:?} failed: {err:?}"),
            };
            let v = DocView {
                heads: e.heads(d),
                json: String::from_utf8(json).unwrap(),
                equivocations: e.equivocations(d),
                served: e.envelope_ids(d),
                digest: e.heads_digest(d),
            };
            (*d, v)
        })
        .collect()
}

/// Compares `e` with the reference `expected` (of engine `reference`) and panics on any difference. `strict` also
/// compares the stored sets, envelope for envelope (unauthorised envelopes that are not served included).
fn compare(
    label: &str,
    e: &DocumentEngine,
    reference: &DocumentEngine,
    docs: &BTreeSet<DocId>,
    expected: &BTreeMap<DocId, DocView>,
    strict: bool,
) {
    let got = view(e, docs);
    if strict {
        for d in docs {
            assert_eq!(
                e.stored_envelope_ids(d),
                reference.stored_envelope_ids(d),
                "{label}: document {d:?}: the stored envelopes differ"
            );
        }
    }
    for d in docs {
        let (g, x) = (&got[d], &expected[d]);
        if g == x {
            continue;
        }
        let only = |a: &DocView, b: &DocView| -> Vec<EnvelopeId> {
            a.served
                .iter()
                .filter(|id| !b.served.contains(id))
                .copied()
                .collect()
        };
        let what = format!(
            "{label}: document {d:?} differs\n  here {g:?}\n  reference {x:?}\n  served only here {:?}, only in \
             the reference {:?}; envelopes waiting for changes here {}, in the reference {}",
            only(g, x),
            only(x, g),
            e.missing_changes().len(),
            reference.missing_changes().len(),
        );
        panic!("{what}");
    }
}

#[derive(Debug, Default)]
struct Figures {
    envelopes: usize,
    served: usize,
    refused: usize,
    unauthorised: usize,
    equivocations: usize,
}

fn run_seed(seed: u64, strict: bool) -> Figures {
    let mut sim = Sim::new(seed);
    let steps = sim.rng.gen_range(120..=180);
    for _ in 0..steps {
        sim.step();
    }
    sim.flush();
    let mut rng = StdRng::seed_from_u64(seed ^ 0xd0c5);
    let genesis = sim.w.log[0].bytes().to_vec();
    let ops: Vec<Vec<u8>> = sim.w.log[1..]
        .iter()
        .map(|op| op.bytes().to_vec())
        .chain(sim.ops.iter().cloned())
        .collect();
    let envs = sim.envs.clone();

    // Delivery orders: signing order; everything reversed (envelopes first, all parked until governance
    // arrives); a partition (one half, then the other); shuffles, one of them through `receive_batch`; and
    // revocations and team departures last, after every envelope (case 29, the late revocation).
    let withdraws = |b: &[u8]| {
        SignedOp::decode(b).is_ok_and(|op| {
            matches!(
                op.kind(),
                OpKind::RevokeRole { .. } | OpKind::LeaveTeam { .. }
            )
        })
    };
    let mut observers = Vec::new();
    for round in 0..7 {
        let mut order: Vec<Item<'_>> = ops
            .iter()
            .map(|b| Item::Op(b))
            .chain(envs.iter().map(|b| Item::Env(b)))
            .collect();
        match round {
            0 => {}
            1 => order.reverse(),
            2 => {
                let (mut a, mut b): (Vec<_>, Vec<_>) =
                    order.into_iter().partition(|_| rng.gen_bool(0.5));
                a.shuffle(&mut rng);
                b.shuffle(&mut rng);
                order = a.into_iter().chain(b).collect();
            }
            6 => order.sort_by_key(|i| matches!(i, Item::Op(b) if withdraws(b))),
            _ => order.shuffle(&mut rng),
        }
        observers.push(deliver(
            &sim.w,
            salt(&mut rng),
            &genesis,
            &order,
            round == 5,
        ));
    }

    let mut docs: BTreeSet<DocId> = sim.docs.iter().copied().collect();
    for o in &observers {
        docs.extend(o.engine.documents());
    }
    let reference = &observers[0];
    let expected = view(&reference.engine, &docs);
    let check = |label: &str, e: &DocumentEngine| {
        compare(label, e, &reference.engine, &docs, &expected, strict);
    };
    let gov_digest = reference.gov.digest();
    for (round, o) in observers.iter().enumerate() {
        let label = format!("seed {seed} round {round}");
        assert_eq!(o.gov.digest(), gov_digest, "{label}: governance differs");
        check(&label, &o.engine);
        // What is refused for its bytes, its signature or its author is refused in every order.
        for b in &sim.bad {
            assert!(
                o.refused.contains(b),
                "{label}: a bad envelope was not refused"
            );
        }
    }
    // Refused outright in one order (for any reason), stored in none. An envelope that the history it cites
    // authorises is stored (as unauthorised, if ops outside that history refuse it) in every order, whether those
    // ops came before it or after, so what is refused outright is refused everywhere.
    let stored: BTreeMap<EnvelopeId, usize> = observers
        .iter()
        .enumerate()
        .flat_map(|(round, o)| {
            docs.iter()
                .flat_map(|d| o.engine.stored_envelope_ids(d))
                .map(move |id| (id, round))
        })
        .collect();
    for (round, o) in observers.iter().enumerate() {
        for b in &envs {
            let outcome = o.log.get(&sha256(b)).map_or("-", String::as_str);
            if !outcome.starts_with("Err") {
                continue;
            }
            if let Ok(env) = SignedEnvelope::from_bytes(b, sim.w.federation) {
                assert!(
                    !stored.contains_key(&env.id()),
                    "seed {seed}: {:?} is refused in round {round} ({outcome}) and stored in round {}",
                    env.id(),
                    stored[&env.id()]
                );
            }
        }
    }

    // Every organisation's own node, once it has everything, agrees.
    let mut live = std::mem::take(&mut sim.live);
    for (org, l) in live.iter_mut().enumerate() {
        insert_all(&mut l.gov, ops.iter().map(|b| b.as_slice()));
        l.engine.revalidate(&l.gov);
        let peer = Peer::new(b"everyone");
        for b in &envs {
            let _ = l.engine.receive(&l.gov, &peer, b);
        }
        l.engine.revalidate(&l.gov);
        let label = format!("seed {seed}: org {org}'s own node after a full sync");
        assert_eq!(l.gov.digest(), gov_digest, "{label}: governance differs");
        check(&label, &l.engine);
    }

    // A restart. From one engine's store (in reverse): exactly that engine's documents (the same stored envelopes
    // and governance give the same documents). From the union of every store: the
    // reference's.
    for (round, o) in observers.iter().enumerate() {
        let mut stored: Vec<&[u8]> = o.engine.sink().all().collect();
        stored.reverse();
        let mut restarted = engine_for(&sim.w, 1, salt(&mut rng));
        let report = restarted.restore(&o.gov, stored);
        assert_eq!(report.rejected, 0, "seed {seed}: stored envelopes verify");
        let mine = view(&o.engine, &docs);
        compare(
            &format!("seed {seed}: round {round}'s engine restarted from its store"),
            &restarted,
            &o.engine,
            &docs,
            &mine,
            true,
        );
    }
    let mut union: Vec<Vec<u8>> = observers
        .iter()
        .flat_map(|o| o.engine.sink().all().map(<[u8]>::to_vec))
        .chain(
            live.iter()
                .flat_map(|l| l.engine.sink().all().map(<[u8]>::to_vec)),
        )
        .collect();
    union.sort();
    union.dedup();
    union.shuffle(&mut rng);
    let mut restarted = engine_for(&sim.w, 1, salt(&mut rng));
    let report = restarted.restore(&reference.gov, &union);
    assert_eq!(report.rejected, 0, "seed {seed}: stored envelopes verify");
    let label = format!("seed {seed}: an engine restored from the union of the stores");
    check(&label, &restarted);

    let f = Figures {
        envelopes: envs.len(),
        served: expected.values().map(|v| v.served.len()).sum(),
        refused: reference.refused.len(),
        // Stored as unauthorised (a revocation they do not cite, arrived before or after them).
        unauthorised: observers
            .iter()
            .map(|o| {
                docs.iter()
                    .map(|d| {
                        o.engine
                            .stored_envelope_ids(d)
                            .iter()
                            .filter(|id| {
                                matches!(
                                    o.engine.envelope_status(d, id),
                                    Some(EnvelopeStatus::Unauthorised(_))
                                )
                            })
                            .count()
                    })
                    .sum::<usize>()
            })
            .max()
            .unwrap_or(0),
        equivocations: expected.values().map(|v| v.equivocations.len()).sum(),
    };
    // A floor against a generator that stopped exercising the engine, not a target (a seed whose revocations
    // leave few writers is legitimate: seeds 371 and 390 serve 3 and 2 envelopes); `run_seeds` checks the
    // average.
    assert!(
        f.envelopes >= 10 && f.refused >= 1,
        "seed {seed}: the simulation is too weak to test much: {f:?}"
    );
    eprintln!("seed {seed}: {f:?}");
    f
}

/// Runs the seeds of `WSIS_SEED` (one) or `0..WSIS_SEEDS` (default `default`), all of them even after a failure,
/// and reports every failing seed.
fn run_seeds(default: u64, strict: bool) {
    let seeds: Vec<u64> = match std::env::var("WSIS_SEED") {
        Ok(s) => vec![s.parse().expect("WSIS_SEED is a number")],
        Err(_) => {
            let n: u64 = std::env::var("WSIS_SEEDS")
                .ok()
                .map(|s| s.parse().expect("WSIS_SEEDS is a number"))
                .unwrap_or(default);
            (0..n).collect()
        }
    };
    let started = std::time::Instant::now();
    let mut failed = Vec::new();
    let mut total = Figures::default();
    for &seed in &seeds {
        match std::panic::catch_unwind(|| run_seed(seed, strict)) {
            Ok(f) => {
                total.envelopes += f.envelopes;
                total.served += f.served;
                total.refused += f.refused;
                total.unauthorised += f.unauthorised;
                total.equivocations += f.equivocations;
            }
            Err(_) => {
                eprintln!(
                    "document convergence failed for seed {seed}; replay with WSIS_SEED={seed}"
                );
                failed.push(seed);
            }
        }
    }
    eprintln!(
        "{} seeds, {} failed, {:.1} s; over all seeds: {total:?}",
        seeds.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failed.is_empty(),
        "document convergence failed for seeds {failed:?}; replay one with WSIS_SEED=<seed>"
    );
    // Over several seeds the simulation must serve envelopes, invalidate stored ones (a revocation arriving after
    // the envelopes) and see equivocations, or it no longer tests what it claims to.
    if seeds.len() >= 8 {
        assert!(
            total.served >= 5 * seeds.len() && total.unauthorised > 0 && total.equivocations > 0,
            "the simulation is too weak to test much: {total:?}"
        );
    }
}

#[test]
fn documents_converge_whatever_the_delivery_order_with_revocations_and_bad_envelopes() {
    run_seeds(8, false);
}

/// The same simulation, also requiring every engine to store exactly the same envelopes (unauthorised ones
/// included), not only to serve the same ones and hold the same documents.
#[test]
fn documents_converge_whatever_the_delivery_order_strictly() {
    run_seeds(8, true);
}

/// The divergence the simulation found, minimised from its seeds 7 and 13, now fixed in the engine. Acme writes
/// the C2 draft and is revoked concurrently (the revocation is not in the history its envelope cites). APC
/// received Acme's envelope before the revocation and published one envelope with two changes: its own first
/// edit, independent of Acme's, and a second on top of Acme's. Kenya has the revocation first. It used to refuse
/// Acme's envelope, so APC's waited there for Acme's change for ever and APC's own first edit, valid everywhere,
/// was in APC's document and never in Kenya's. Kenya now stores Acme's envelope as unauthorised, as APC holds it
/// after the revocation, serves it, and penalises nobody.
#[test]
fn a_change_is_lost_where_its_envelope_waits_for_a_change_refused_by_a_concurrent_revocation() {
    let mut w = World::wsis();
    let (apc, acme, kenya) = (
        w.add_org("APC", "civil-society", None),
        w.add_org("Acme", "private-sector", None),
        w.add_org("Kenya", "government", Some("KE")),
    );
    for o in [apc, acme, kenya] {
        w.admit(o);
        w.op(o, OpKind::JoinTeam { team: w.team("C2") });
    }
    let kind = DocKind::OutputDraft {
        team: w.team("C2"),
        year: 2026,
    };
    let doc = DocId(w.op(apc, OpKind::CreateDoc { kind }).id().0);
    let before = w.gov.clone();
    let (mut a, mut b, mut c) = (
        engine_for(&w, apc, [1; 16]),
        engine_for(&w, acme, [2; 16]),
        engine_for(&w, kenya, [3; 16]),
    );
    b.edit(&doc, |tx| tx.put(ROOT, "acme", "budget")).unwrap();
    let from_acme = b.publish(&before, &doc).unwrap().remove(0);
    // Acme is revoked; its envelope cites the heads before the revocation.
    w.op(
        0,
        OpKind::RevokeRole {
            role: RevocableRole::Member,
            org: w.id(acme),
        },
    );
    let after = w.gov.clone();

    // APC, not yet aware of the revocation: its own edit, Acme's envelope, an edit on top of both, one envelope.
    a.edit(&doc, |tx| tx.put(ROOT, "apc", "broadband")).unwrap();
    let r = a.receive(&before, &Peer::new(b"acme"), from_acme.bytes());
    assert!(matches!(r, Ok(Received::Accepted(_))), "{r:?}");
    a.edit(&doc, |tx| tx.put(ROOT, "acme", "revised")).unwrap();
    let from_apc = a.publish(&before, &doc).unwrap().remove(0);
    assert_eq!(from_apc.changes().len(), 2);
    // Then the revocation reaches APC: Acme's change and the edit on top of it go; APC's first edit stays.
    a.revalidate(&after);
    assert_eq!(a.export(&doc).unwrap(), br#"{"apc":"broadband"}"#);

    // Kenya has the revocation first. Acme's envelope is not refused (that would depend on the order): it is
    // stored as unauthorised, as at APC, and nobody is to blame for it (no error, so no penalty and nothing in
    // the node's memory of refused envelopes). APC's then has what it depends on.
    let r = c.receive(&after, &Peer::new(b"acme"), from_acme.bytes());
    assert!(matches!(r, Ok(Received::Accepted(_))), "{r:?}");
    assert!(matches!(
        c.envelope_status(&doc, &from_acme.id()),
        Some(EnvelopeStatus::Unauthorised(
            WriteDenied::RevokedConcurrently
        ))
    ));
    let r = c.receive(&after, &Peer::new(b"apc"), from_apc.bytes());
    assert!(matches!(r, Ok(Received::Accepted(_))), "{r:?}");
    c.revalidate(&after);
    assert_eq!(c.parked_len(), 0);

    // The same envelopes and governance: the same document, the same stored and served envelopes and digest.
    assert_eq!(c.export(&doc).unwrap(), a.export(&doc).unwrap());
    assert_eq!(c.stored_envelope_ids(&doc), a.stored_envelope_ids(&doc));
    assert_eq!(c.envelope_ids(&doc), a.envelope_ids(&doc));
    assert_eq!(c.heads_digest(&doc), a.heads_digest(&doc));

    // A fourth node that never saw Acme's envelope gets both from Kenya, which serves the unauthorised one too
    // (the receiver judges it itself): APC's edit is not left waiting for a change nobody serves.
    let mut d = engine_for(&w, kenya, [4; 16]);
    let served: Vec<Vec<u8>> = c
        .envelopes_missing_from(&doc, &[])
        .into_iter()
        .map(|e| e.bytes().to_vec())
        .collect();
    assert_eq!(served.len(), 2);
    for r in d.receive_batch(&after, &Peer::new(b"kenya"), &served) {
        assert!(matches!(r, Ok(Received::Accepted(_))), "{r:?}");
    }
    assert_eq!(d.parked_len(), 0);
    assert_eq!(d.export(&doc).unwrap(), br#"{"apc":"broadband"}"#);
    assert_eq!(d.heads_digest(&doc), a.heads_digest(&doc));

    // What stays refused outright: a write its author may not make even at the heads it cites. The outsider
    // below was never a member; that is the sender's fault whatever the order.
    let outsider = w.add_org("Outsider", "civil-society", None);
    let mut e = engine_for(&w, outsider, [5; 16]);
    e.edit(&doc, |tx| tx.put(ROOT, "outsider", 1)).unwrap();
    let refused = e.publish(&w.gov, &doc);
    assert!(
        matches!(
            refused.as_ref().err().and_then(PublishError::refusal),
            Some(ReceiveError::Denied(WriteDenied::NotMember))
        ),
        "{refused:?}"
    );
    // Nor is a write by Acme once it knows of its revocation: it cites heads that hold the revocation, so it is
    // not a member by the history it cites (`NotMember`), the same refusal at every node (its own node refuses to
    // publish it).
    b.revalidate(&after);
    b.edit(&doc, |tx| tx.put(ROOT, "acme", "again")).unwrap();
    let refused = b.publish(&after, &doc);
    assert!(
        matches!(
            refused.as_ref().err().and_then(PublishError::refusal),
            Some(ReceiveError::Denied(WriteDenied::NotMember))
        ),
        "{refused:?}"
    );
}
