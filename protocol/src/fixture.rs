//! Deterministic federations for tests, benchmarks and simulations.
//!
//! Test and example support, not production API (its keys are derived from small seeds): it is hidden from the
//! crate's documentation, and compiled into the crate rather than behind `cfg(test)` because the node's tests, the
//! doctests and the benchmarks, which are other crates, use it.
//!
//! [`Org`] is an organisation with a key derived from a seed that signs ops with the right sequence numbers;
//! [`World`] is a federation under construction: a replica plus the organisations, where every op is signed with
//! the current heads as parents (or explicit parents, to build concurrent branches) and inserted at once.
//!
//! ```
//! use wsis_protocol::fixture::World;
//! use wsis_protocol::op::OpKind;
//!
//! let mut w = World::wsis(); // ITU and UNESCO as secretariat, the 18 WSIS teams
//! let ngo = w.add_org("APC", "civil-society", None);
//! w.admit(ngo);
//! let team = w.team("C2");
//! let join = w.op(ngo, OpKind::JoinTeam { team: team.clone() });
//! assert_eq!(w.gov.validity(&join.id()), Some(Ok(())));
//! assert_eq!(w.gov.team_members(&team), vec![w.id(ngo)]);
//! ```

use crate::crypto::SecretKey;
use crate::gov::Governance;
use crate::ids::{sha256, DocId, FederationId, Hash32, OpId, OrgId};
use crate::op::{
    Attestation, ChairRole, Country, DocKind, Genesis, Inception, MeetingKind, MotionKind, OpBody,
    OpKind, Policy, Procedure, RevocableRole, SignedInception, SignedOp, StakeholderType, Team,
    TeamCode,
};
use crate::reference::wsis_teams;

/// An organisation that signs ops.
#[derive(Debug)]
pub struct Org {
    pub secret: SecretKey,
    pub inception: SignedInception,
    /// The seq of the next op this organisation signs.
    pub next_seq: u64,
}

impl Org {
    /// An organisation whose key is derived from `seed` (so the same seed gives the same OrgId).
    pub fn new(seed: u64, name: &str, stakeholder: StakeholderType, country: Option<&str>) -> Org {
        let secret = SecretKey::from_seed(&sha256(
            &[b"wsis-fixture-key".as_slice(), &seed.to_be_bytes()].concat(),
        ));
        let inception = Inception {
            name: name.to_string(),
            stakeholder,
            country: country.map(|c| Country::new(c).expect("fixture countries are valid")),
            key: secret.public(),
            created_ms: 1_700_000_000_000,
        }
        .sign(&secret);
        Org {
            secret,
            inception,
            next_seq: 1,
        }
    }

    pub fn id(&self) -> OrgId {
        self.inception.id()
    }

    /// Signs an op with the next sequence number.
    pub fn sign(
        &mut self,
        federation: Option<FederationId>,
        parents: &[OpId],
        kind: OpKind,
        timestamp_ms: u64,
    ) -> SignedOp {
        let mut parents = parents.to_vec();
        parents.sort();
        parents.dedup();
        let op = OpBody {
            federation,
            author: self.id(),
            key: self.secret.public(),
            seq: self.next_seq,
            parents,
            timestamp_ms,
            kind,
        }
        .sign(&self.secret);
        self.next_seq += 1;
        op
    }
}

/// The genesis op of a federation convened by `convener` with `secretariat` (the convener included).
pub fn genesis(
    convener: &mut Org,
    secretariat: &[SignedInception],
    name: &str,
    teams: Vec<Team>,
) -> SignedOp {
    convener.sign(
        None,
        &[],
        OpKind::Genesis(Box::new(Genesis {
            name: name.to_string(),
            secretariat: secretariat.to_vec(),
            nominating_authority: None,
            teams,
            policy: Policy::default(),
        })),
        1_700_000_000_000,
    )
}

/// A federation under construction. Organisations are referred to by their index in `orgs`.
#[derive(Debug)]
pub struct World {
    pub orgs: Vec<Org>,
    pub gov: Governance,
    pub federation: FederationId,
    /// Every op signed so far, in signing order (including ones that were refused or are invalid).
    pub log: Vec<SignedOp>,
    clock_ms: u64,
    next_seed: u64,
}

impl World {
    /// ITU (index 0, convener) and UNESCO (index 1) as secretariat; the 18 WSIS teams.
    pub fn wsis() -> World {
        World::with_teams(wsis_teams())
    }

    pub fn with_teams(teams: Vec<Team>) -> World {
        let mut itu = Org::new(1, "ITU", StakeholderType::InternationalOrganisation, None);
        let unesco = Org::new(
            2,
            "UNESCO",
            StakeholderType::InternationalOrganisation,
            None,
        );
        let secretariat = [itu.inception.clone(), unesco.inception.clone()];
        let g = genesis(&mut itu, &secretariat, "WSIS test federation", teams);
        let gov = Governance::new(g.clone().verify().expect("fixture genesis verifies"))
            .expect("fixture genesis");
        World {
            federation: gov.federation_id(),
            orgs: vec![itu, unesco],
            gov,
            log: vec![g],
            clock_ms: 1_700_000_000_000,
            next_seed: 100,
        }
    }

    pub fn id(&self, org: usize) -> OrgId {
        self.orgs[org].id()
    }

    /// A copy of organisation `org`'s key (for a node or engine acting as it; `SecretKey` is not `Clone`).
    pub fn secret_of(&self, org: usize) -> SecretKey {
        SecretKey::from_seed(&self.orgs[org].secret.to_seed())
    }

    pub fn team(&self, code: &str) -> TeamCode {
        TeamCode::new(code).expect("fixture team codes are valid")
    }

    /// Creates an organisation and publishes its inception; returns its index.
    pub fn add_org(&mut self, name: &str, stakeholder: &str, country: Option<&str>) -> usize {
        let st: StakeholderType = stakeholder
            .parse()
            .expect("fixture stakeholder types are valid");
        let org = Org::new(self.next_seed, name, st, country);
        self.next_seed += 1;
        self.orgs.push(org);
        let i = self.orgs.len() - 1;
        let rec = self.orgs[i].inception.clone();
        self.op(i, OpKind::OrgInception(rec));
        i
    }

    /// The secretariat (ITU) admits an organisation.
    pub fn admit(&mut self, org: usize) -> SignedOp {
        let id = self.id(org);
        self.op(0, OpKind::Admit { org: id })
    }

    /// Signs with the replica's current heads as parents, inserts, returns the op.
    pub fn op(&mut self, org: usize, kind: OpKind) -> SignedOp {
        let parents = self.gov.parents_for(&self.id(org), &kind);
        self.op_at(org, &parents, kind)
    }

    /// Signs with explicit parents (to build concurrent branches), inserts, returns the op.
    pub fn op_at(&mut self, org: usize, parents: &[OpId], kind: OpKind) -> SignedOp {
        let op = self.sign_at(org, parents, kind);
        // Refusals are part of what tests look at; they inspect `gov` afterwards.
        let _ = self
            .gov
            .insert(op.clone().verify().expect("fixture ops verify"));
        op
    }

    /// Signs without inserting.
    pub fn sign_at(&mut self, org: usize, parents: &[OpId], kind: OpKind) -> SignedOp {
        self.clock_ms += 1_000;
        let op = self.orgs[org].sign(Some(self.federation), parents, kind, self.clock_ms);
        self.log.push(op.clone());
        op
    }
}

/// Multi-step procedures of the mechanism, as the tests and simulations need them.
impl World {
    /// A recommendation meeting convened by ITU where `voters` attend and vote yes on recommending `org` for
    /// `team`, then ITU nominates. Returns (motion, nomination).
    pub fn recommend_and_nominate(
        &mut self,
        team: &str,
        org: usize,
        voters: &[usize],
    ) -> (SignedOp, SignedOp) {
        use crate::op::{MeetingKind, MotionKind};
        let team = self.team(team);
        let meeting = self.op(
            0,
            OpKind::Convene {
                meeting: MeetingKind::Recommendation,
                year: 2026,
                title: format!("Recommendation for {team}"),
            },
        );
        for &v in voters {
            self.op(
                v,
                OpKind::Attend {
                    meeting: meeting.id(),
                },
            );
        }
        let target = self.id(org);
        let motion = self.op(
            0,
            OpKind::Motion {
                meeting: meeting.id(),
                motion: MotionKind::Recommend {
                    team: team.clone(),
                    org: target,
                },
            },
        );
        for &v in voters {
            self.op(
                v,
                OpKind::Ballot {
                    motion: motion.id(),
                    yes: true,
                },
            );
        }
        let nomination = self.op(
            0,
            OpKind::Nominate {
                team,
                org: target,
                recommendation: motion.id(),
            },
        );
        (motion, nomination)
    }

    /// A coordinators' meeting convened by ITU; returns the Convene op.
    pub fn coordinators_meeting(&mut self) -> SignedOp {
        self.op(
            0,
            OpKind::Convene {
                meeting: crate::op::MeetingKind::Coordinators,
                year: 2026,
                title: "Meeting of the coordinators".into(),
            },
        )
    }

    /// A motion in `meeting` proposed by ITU, with yes-ballots from `voters`. Returns the motion.
    pub fn pass_motion(
        &mut self,
        meeting: &SignedOp,
        motion: crate::op::MotionKind,
        voters: &[usize],
    ) -> SignedOp {
        let m = self.op(
            0,
            OpKind::Motion {
                meeting: meeting.id(),
                motion,
            },
        );
        for &v in voters {
            self.op(
                v,
                OpKind::Ballot {
                    motion: m.id(),
                    yes: true,
                },
            );
        }
        m
    }
}

/// One op of every kind there is, and of each variant of the roles, meetings, motions and documents they carry,
/// with fixed contents: the corpus of round-trip and mutation tests. `Evidence` carries `first` and `second`.
pub fn one_of_every_kind(first: SignedOp, second: SignedOp) -> Vec<OpKind> {
    let team = TeamCode::new("C7.EHEALTH").expect("a valid team code");
    let a = OpId([1; 32]);
    let b = OpId([2; 32]);
    let att = Attestation {
        heads: vec![Hash32([1; 32]), Hash32([5; 32])],
        content_hash: Hash32([7; 32]),
    };
    vec![
        OpKind::Motion {
            meeting: a,
            motion: MotionKind::Elect {
                role: ChairRole::Chair,
                org: OrgId([4; 32]),
            },
        },
        OpKind::Admit {
            org: OrgId([3; 32]),
        },
        OpKind::BindNode {
            peer_id: vec![0, 36, 8, 1],
        },
        OpKind::JoinTeam { team: team.clone() },
        OpKind::LeaveTeam { team: team.clone() },
        OpKind::Convene {
            meeting: MeetingKind::Team(team.clone()),
            year: 2026,
            title: "First".into(),
        },
        OpKind::Convene {
            meeting: MeetingKind::Coordinators,
            year: 2026,
            title: "Coordinators".into(),
        },
        OpKind::Attend { meeting: a },
        OpKind::Motion {
            meeting: a,
            motion: MotionKind::Recommend {
                team: team.clone(),
                org: OrgId([4; 32]),
            },
        },
        OpKind::Motion {
            meeting: a,
            motion: MotionKind::Elect {
                role: ChairRole::CoChair,
                org: OrgId([4; 32]),
            },
        },
        OpKind::Motion {
            meeting: a,
            motion: MotionKind::AdoptProcedure(Procedure {
                year: 2026,
                teams: vec![TeamCode::new("C1").expect("a valid code"), team.clone()],
                deadline_ms: 99,
                required_sections: vec!["achievements".into()],
                national_reports: true,
            }),
        },
        OpKind::Motion {
            meeting: a,
            motion: MotionKind::Checkpoint { heads: vec![a, b] },
        },
        OpKind::Motion {
            meeting: a,
            motion: MotionKind::AdoptReport {
                year: 2026,
                manifest_hash: Hash32([8; 32]),
            },
        },
        OpKind::Ballot {
            motion: b,
            yes: true,
        },
        OpKind::Nominate {
            team: team.clone(),
            org: OrgId([4; 32]),
            recommendation: b,
        },
        OpKind::RevokeRole {
            role: RevocableRole::Member,
            org: OrgId([4; 32]),
        },
        OpKind::RevokeRole {
            role: RevocableRole::Coordinator(team.clone()),
            org: OrgId([4; 32]),
        },
        OpKind::SetModalities {
            team: team.clone(),
            text: "We meet quarterly.".into(),
        },
        OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: team.clone(),
                year: 2026,
            },
        },
        OpKind::CreateDoc {
            kind: DocKind::NationalReport {
                country: Country::new("KE").expect("a valid code"),
                year: 2026,
            },
        },
        OpKind::CreateDoc {
            kind: DocKind::TeamCharter { team: team.clone() },
        },
        OpKind::ApproveRecord {
            meeting: a,
            record: att.clone(),
        },
        OpKind::SubmitOutput {
            team: team.clone(),
            year: 2026,
            doc: DocId([6; 32]),
            attestation: att.clone(),
        },
        OpKind::SubmitNationalReport {
            country: Country::new("BR").expect("a valid code"),
            year: 2026,
            doc: DocId([6; 32]),
            attestation: att,
        },
        OpKind::Evidence {
            first: Box::new(first),
            second: Box::new(second),
        },
    ]
}

/// Minimal unsigned LEB128, as Automerge writes it.
fn uleb(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Minimal signed LEB128, as Automerge writes it.
fn sleb(mut v: i64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if (v == 0 && b & 0x40 == 0) || (v == -1 && b & 0x40 != 0) {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A change chunk by `actor` with sequence number `seq` whose columns say "`put ROOT.k = null`, `n` times", each
/// op with `preds` predecessor references: a few dozen bytes for any `n` (the op bomb). Its checksum is right, so
/// only a count of what it expands into refuses it.
pub fn op_bomb_change(actor: [u8; 16], seq: u64, n: u64, preds: u64) -> Vec<u8> {
    // Column specifications: id << 4 | type (string 5, boolean 4, integer 2, value metadata 6, group 0).
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let run = |value: u64| {
        let mut c = Vec::new();
        sleb(n, &mut c);
        uleb(value, &mut c);
        c
    };
    let mut key = Vec::new(); // the run holds one string
    sleb(n, &mut key);
    uleb(1, &mut key);
    key.push(b'k');
    let mut insert = Vec::new(); // boolean: n times false
    uleb(n as u64, &mut insert);
    let columns: [(u32, Vec<u8>); 5] = [
        ((1 << 4) | 5, key),
        ((3 << 4) | 4, insert),
        ((4 << 4) | 2, run(1)), // action: set
        ((5 << 4) | 6, run(0)), // value: null
        ((7 << 4), run(preds)),
    ];
    let mut data = Vec::new();
    uleb(0, &mut data); // deps
    uleb(16, &mut data);
    data.extend_from_slice(&actor);
    uleb(seq, &mut data);
    uleb(1, &mut data); // start op
    sleb(0, &mut data); // time
    uleb(0, &mut data); // message
    uleb(0, &mut data); // other actors
    uleb(columns.len() as u64, &mut data);
    for (spec, bytes) in &columns {
        uleb(u64::from(*spec), &mut data);
        uleb(bytes.len() as u64, &mut data);
    }
    for (_, bytes) in &columns {
        data.extend_from_slice(bytes);
    }
    let mut chunk = vec![1u8]; // change chunk
    uleb(data.len() as u64, &mut chunk);
    chunk.extend_from_slice(&data);
    let hash = sha256(&chunk);
    let mut bytes = vec![0x85, 0x6f, 0x4a, 0x83];
    bytes.extend_from_slice(&hash[..4]);
    bytes.extend_from_slice(&chunk);
    bytes
}

/// A document chunk (what `Automerge::save` writes) whose op column claims `n` ops in a few bytes.
pub fn document_bomb(n: u64) -> Vec<u8> {
    // One run of `n` equal values in the action column (id 4, integer): a signed count, then the value.
    let mut ops_col = Vec::new();
    sleb(i64::try_from(n).unwrap_or(i64::MAX), &mut ops_col);
    uleb(1, &mut ops_col);
    let mut data = Vec::new();
    uleb(0, &mut data); // actors
    uleb(0, &mut data); // heads
    uleb(0, &mut data); // change columns
    uleb(1, &mut data); // op columns
    uleb((4 << 4) | 2, &mut data);
    uleb(ops_col.len() as u64, &mut data);
    data.extend_from_slice(&ops_col);
    let mut bytes = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 0]; // document chunk (type 0)
    uleb(data.len() as u64, &mut bytes);
    bytes.extend_from_slice(&data);
    bytes
}

/// A document whose history has every kind of op: map puts, nested objects, list inserts, text, deletes,
/// counters, marks, and a second actor editing concurrently.
pub fn varied_history() -> automerge::AutoCommit {
    use automerge::transaction::Transactable;
    let mut a =
        automerge::AutoCommit::new().with_actor(automerge::ActorId::from(b"actor-a".as_slice()));
    a.put(automerge::ROOT, "title", "WSIS")
        .expect("a fixed edit applies");
    let list = a
        .put_object(automerge::ROOT, "minutes", automerge::ObjType::List)
        .expect("a fixed edit applies");
    for i in 0..40 {
        a.insert(&list, i, format!("paragraph {i}"))
            .expect("a fixed edit applies");
    }
    a.commit();
    let text = a
        .put_object(automerge::ROOT, "sections", automerge::ObjType::Text)
        .expect("a fixed edit applies");
    a.splice_text(&text, 0, 0, "Achievements: broadband for schools")
        .expect("a fixed edit applies");
    a.put(automerge::ROOT, "count", automerge::ScalarValue::counter(1))
        .expect("a fixed edit applies");
    a.commit();
    let mut b = a
        .fork()
        .with_actor(automerge::ActorId::from(b"actor-b".as_slice()));
    b.splice_text(&text, 5, 3, "")
        .expect("a fixed edit applies");
    b.increment(automerge::ROOT, "count", 5)
        .expect("a fixed edit applies");
    b.delete(&list, 3).expect("a fixed edit applies");
    b.mark(
        &text,
        automerge::marks::Mark::new("bold".into(), true, 0, 4),
        automerge::marks::ExpandMark::After,
    )
    .expect("a fixed edit applies");
    b.commit();
    a.put(automerge::ROOT, "title", "WSIS+20")
        .expect("a fixed edit applies");
    for i in 0..300 {
        a.put(automerge::ROOT, format!("k{}", i % 7).as_str(), i)
            .expect("a fixed edit applies");
    }
    a.commit();
    a.merge(&mut b).expect("a fixed edit applies");
    a.put(automerge::ROOT, "after-merge", true)
        .expect("a fixed edit applies");
    a.commit();
    a
}
