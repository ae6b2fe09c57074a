//! A realistic stocktaking year for the bundle tests: organisations of every stakeholder type, recommendation
//! meetings and nominations, team members, output drafts and national reports as real Automerge documents whose
//! content hashes are attested, an approved team meeting record, a coordinators' meeting that elects the Chair
//! and adopts the procedure, and a Checkpoint motion passed by the coordinators.
//!
//! Seeds vary the texts, which teams submit and whether the national report is contested.
#![allow(dead_code, clippy::unwrap_used)]

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ReadDoc, ROOT};
use std::collections::BTreeMap;
use wsis_protocol::bundle::{self, Bundle, Manifest, MANIFEST};
use wsis_protocol::crypto::SecretKey;
use wsis_protocol::export::content_hash_of;
use wsis_protocol::fixture::World;
use wsis_protocol::ids::Hash32;
use wsis_protocol::ids::{DocId, OpId};
use wsis_protocol::op::{
    Attestation, ChairRole, Country, DocKind, MeetingKind, MotionKind, OpKind, Procedure,
    RevocableRole, SignedOp,
};

pub const YEAR: u16 = 2026;

pub struct Year {
    pub w: World,
    /// Automerge bytes of every document, at the attested heads.
    pub docs: BTreeMap<DocId, Vec<u8>>,
    pub undesa: usize,
    pub apc: usize,
    pub kenya: usize,
    pub kenya_ca: usize,
    pub c2_output: DocId,
    pub c1_output: Option<DocId>,
    pub c2_submission: OpId,
    pub kenya_report: DocId,
    pub kenya_submission: OpId,
    pub kenya_ca_submission: Option<OpId>,
    pub meeting: OpId,
    pub coordinators_meeting: SignedOp,
    /// The checkpoint motion, if one was passed.
    pub checkpoint: Option<OpId>,
    /// An output draft that was written but never submitted.
    pub unsubmitted: DocId,
}

fn actor(n: u8) -> ActorId {
    ActorId::from([n; 16].as_slice())
}

fn text(doc: &mut AutoCommit, obj: &automerge::ObjId, key: &str, value: &str) {
    let t = doc.put_object(obj, key, ObjType::Text).unwrap();
    doc.splice_text(&t, 0, 0, value).unwrap();
}

/// An output draft: `sections` {achievements, challenges, recommendations} and `activities`.
pub fn output_doc(n: u8, achievements: &str, with_challenges: bool) -> AutoCommit {
    let mut d = AutoCommit::new().with_actor(actor(n));
    let s = d.put_object(ROOT, "sections", ObjType::Map).unwrap();
    text(&mut d, &s, "achievements", achievements);
    if with_challenges {
        text(
            &mut d,
            &s,
            "challenges",
            "Affordability of broadband in rural areas.",
        );
    }
    text(
        &mut d,
        &s,
        "recommendations",
        "Invest in community networks; share spectrum.",
    );
    let a = d.put_object(ROOT, "activities", ObjType::List).unwrap();
    d.insert(&a, 0, "Regional workshop, Nairobi").unwrap();
    d.insert(&a, 1, "Open consultation on indicators").unwrap();
    d.commit();
    // A second commit, so the document has a history.
    d.put(&s, "note", "reviewed").unwrap();
    d.commit();
    d
}

fn attest(doc: &mut AutoCommit) -> Attestation {
    Attestation {
        heads: doc.get_heads().iter().map(|h| Hash32(h.0)).collect(),
        content_hash: content_hash_of(doc).unwrap(),
    }
}

/// Builds the year. `checkpoint`: pass a closing checkpoint at the end.
pub fn build(seed: u64, checkpoint: bool) -> Year {
    let mut w = World::wsis();
    let undesa = w.add_org("UNDESA", "international-organisation", None);
    let apc = w.add_org(
        "Association for Progressive Communications",
        "civil-society",
        None,
    );
    let kenya = w.add_org("Kenya, Ministry of ICT", "government", Some("KE"));
    let kenya_ca = w.add_org(
        "Communications Authority of Kenya",
        "government",
        Some("KE"),
    );
    let uni = w.add_org("University of Nairobi", "academia", None);
    let isoc = w.add_org("Internet Society", "technical-community", None);
    let telco = w.add_org("Safaricom", "private-sector", None);
    for o in [undesa, apc, kenya, kenya_ca, uni, isoc, telco] {
        w.admit(o);
    }
    // Coordinators: ITU (C2), UNDESA (C1), UNESCO (C3), each recommended at a stakeholder meeting.
    w.recommend_and_nominate("C2", 0, &[undesa, apc, kenya]);
    w.recommend_and_nominate("C1", undesa, &[undesa, apc, kenya]);
    w.recommend_and_nominate("C3", 1, &[undesa, apc, kenya]);
    for (o, t) in [
        (0, "C2"),
        (apc, "C2"),
        (kenya, "C2"),
        (uni, "C2"),
        (telco, "C2"),
        (undesa, "C1"),
        (isoc, "C1"),
        (1, "C3"),
        (uni, "C3"),
    ] {
        w.op(o, OpKind::JoinTeam { team: w.team(t) });
    }
    // The coordinators' meeting: elects UNDESA as Chair and adopts the procedure (C1, C2, C3 expected).
    let cm = w.coordinators_meeting();
    w.pass_motion(
        &cm,
        MotionKind::Elect {
            role: ChairRole::Chair,
            org: w.id(undesa),
        },
        &[0, undesa],
    );
    w.pass_motion(
        &cm,
        MotionKind::AdoptProcedure(Procedure {
            year: YEAR,
            teams: vec![w.team("C1"), w.team("C2"), w.team("C3")],
            deadline_ms: 1_700_000_000_000 + 10_000_000_000,
            required_sections: vec![
                "achievements".into(),
                "challenges".into(),
                "recommendations".into(),
            ],
            national_reports: true,
        }),
        &[0, undesa],
    );
    let mut docs = BTreeMap::new();
    // A C2 team meeting with minutes approved by the convener and an attendee.
    let meeting = w.op(
        0,
        OpKind::Convene {
            meeting: MeetingKind::Team(w.team("C2")),
            year: YEAR,
            title: "C2 spring meeting".into(),
        },
    );
    for o in [apc, kenya] {
        w.op(
            o,
            OpKind::Attend {
                meeting: meeting.id(),
            },
        );
    }
    let mut record = AutoCommit::new().with_actor(actor(1));
    let minutes = record.put_object(ROOT, "minutes", ObjType::List).unwrap();
    for (i, (by, said)) in [
        (w.id(0), "Opened the meeting; agenda adopted."),
        (
            w.id(apc),
            "Presented the community networks survey <draft>.",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let m = record.insert_object(&minutes, i, ObjType::Map).unwrap();
        record.put(&m, "by", by.to_string()).unwrap();
        text(&mut record, &m, "text", said);
    }
    record.commit();
    let rec_att = attest(&mut record);
    docs.insert(DocId(meeting.id().0), record.save());
    for o in [0, apc] {
        w.op(
            o,
            OpKind::ApproveRecord {
                meeting: meeting.id(),
                record: rec_att.clone(),
            },
        );
    }
    // C2's output, drafted by APC and submitted by ITU.
    let draft = w.op(
        apc,
        OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: w.team("C2"),
                year: YEAR,
            },
        },
    );
    let c2_output = DocId(draft.id().0);
    let mut d = output_doc(
        2,
        &format!("Broadband reached 40 more districts (run {seed}). <script>alert(1)</script>"),
        true,
    );
    let att = attest(&mut d);
    docs.insert(c2_output, d.save());
    let c2_submission = w
        .op(
            0,
            OpKind::SubmitOutput {
                team: w.team("C2"),
                year: YEAR,
                doc: c2_output,
                attestation: att,
            },
        )
        .id();
    // C1's output (odd seeds: submitted; even seeds: missing, like C3's always is).
    let c1_draft = w.op(
        undesa,
        OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: w.team("C1"),
                year: YEAR,
            },
        },
    );
    let mut c1_output = None;
    if seed % 2 == 1 {
        let doc = DocId(c1_draft.id().0);
        let mut d = output_doc(3, "E-government services in 12 languages.", false);
        let att = attest(&mut d);
        docs.insert(doc, d.save());
        w.op(
            undesa,
            OpKind::SubmitOutput {
                team: w.team("C1"),
                year: YEAR,
                doc,
                attestation: att,
            },
        );
        c1_output = Some(doc);
    }
    // Kenya's national report, and (seeds other than 2) a concurrent one by another Kenyan government body.
    let branch = w.gov.heads();
    let ke = Country::new("KE").unwrap();
    let nr = w.op(
        kenya,
        OpKind::CreateDoc {
            kind: DocKind::NationalReport {
                country: ke,
                year: YEAR,
            },
        },
    );
    let kenya_report = DocId(nr.id().0);
    let mut nd = AutoCommit::new().with_actor(actor(4));
    let s = nd.put_object(ROOT, "sections", ObjType::Map).unwrap();
    text(&mut nd, &s, "overview", "Kenya's national ICT policy 2026.");
    text(
        &mut nd,
        &s,
        "digital inclusion",
        "4G coverage at 96% of the population.",
    );
    nd.commit();
    let att = attest(&mut nd);
    docs.insert(kenya_report, nd.save());
    let kenya_submission = w
        .op(
            kenya,
            OpKind::SubmitNationalReport {
                country: ke,
                year: YEAR,
                doc: kenya_report,
                attestation: att,
            },
        )
        .id();
    let mut kenya_ca_submission = None;
    if seed != 2 {
        let nr2 = w.op_at(
            kenya_ca,
            &branch,
            OpKind::CreateDoc {
                kind: DocKind::NationalReport {
                    country: ke,
                    year: YEAR,
                },
            },
        );
        let mut nd = AutoCommit::new().with_actor(actor(5));
        let s = nd.put_object(ROOT, "sections", ObjType::Map).unwrap();
        text(&mut nd, &s, "overview", "Spectrum and licensing report.");
        nd.commit();
        let att = attest(&mut nd);
        docs.insert(DocId(nr2.id().0), nd.save());
        kenya_ca_submission = Some(
            w.op_at(
                kenya_ca,
                &[nr2.id()],
                OpKind::SubmitNationalReport {
                    country: ke,
                    year: YEAR,
                    doc: DocId(nr2.id().0),
                    attestation: att,
                },
            )
            .id(),
        );
    }
    // A draft that is never submitted: it must not appear in the bundle.
    let unsub = w.op(
        uni,
        OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: w.team("C3"),
                year: YEAR,
            },
        },
    );
    let checkpoint = checkpoint.then(|| {
        let heads = w.gov.heads();
        w.pass_motion(&cm, MotionKind::Checkpoint { heads }, &[0, undesa])
            .id()
    });
    assert!(w.gov.invalid_ops().is_empty(), "{:?}", w.gov.invalid_ops());
    Year {
        w,
        docs,
        undesa,
        apc,
        kenya,
        kenya_ca,
        c2_output,
        c1_output,
        c2_submission,
        kenya_report,
        kenya_submission,
        kenya_ca_submission,
        meeting: meeting.id(),
        coordinators_meeting: cm,
        checkpoint,
        unsubmitted: DocId(unsub.id().0),
    }
}

impl Year {
    pub fn chair_key(&self) -> &SecretKey {
        &self.w.orgs[self.undesa].secret
    }

    /// plan → documents at the planned heads → assemble, as the node does.
    pub fn bundle(&self) -> Bundle {
        let plan = bundle::plan(&self.w.gov, YEAR, &self.w.id(self.undesa)).unwrap();
        let docs: BTreeMap<DocId, Vec<u8>> = plan
            .documents()
            .keys()
            .map(|d| (*d, self.docs[d].clone()))
            .collect();
        bundle::assemble(&plan, self.chair_key(), &docs).unwrap()
    }
}

/// The bundle fixture's year, plus a C3 output draft submitted twice, concurrently, across a change of
/// coordinator — the one way governance lets two submissions of one document both stand: the secretariat revokes
/// UNESCO as C3's coordinator and the University of Nairobi is nominated and submits `second`, while UNESCO,
/// not having seen the revocation, submits `first`; a passed checkpoint over UNESCO's submission (and not the
/// revocation) finalises it. Neither supersedes the other, so both are attested (contested). A closing checkpoint
/// covers all of it. Returns the year and the draft.
pub fn contested_year(attestations: [Attestation; 2]) -> (Year, DocId) {
    let mut y = build(1, false);
    // UNESCO is the fixture's second secretariat organisation; the University, a C3 member, is added after the
    // Communications Authority of Kenya.
    let (unesco, uni) = (1, y.kenya_ca + 1);
    let c3 = y.w.team("C3");
    let [first, second] = attestations;
    let submit = |doc, attestation| OpKind::SubmitOutput {
        team: c3.clone(),
        year: YEAR,
        doc,
        attestation,
    };
    let draft = y.w.op(
        unesco,
        OpKind::CreateDoc {
            kind: DocKind::OutputDraft {
                team: y.w.team("C3"),
                year: YEAR,
            },
        },
    );
    let doc = DocId(draft.id().0);
    let before_handover = y.w.gov.heads();
    y.w.op(
        0,
        OpKind::RevokeRole {
            role: RevocableRole::Coordinator(y.w.team("C3")),
            org: y.w.id(unesco),
        },
    );
    y.w.recommend_and_nominate("C3", uni, &[y.undesa, y.apc, y.kenya]);
    let by_uni = y.w.op(uni, submit(doc, second));
    let by_unesco = y.w.op_at(unesco, &before_handover, submit(doc, first));
    let cm = y.coordinators_meeting.clone();
    y.w.pass_motion(
        &cm,
        MotionKind::Checkpoint {
            heads: vec![by_unesco.id()],
        },
        &[0, y.undesa],
    );
    for s in [&by_uni, &by_unesco] {
        assert_eq!(y.w.gov.validity(&s.id()), Some(Ok(())));
    }
    let heads = y.w.gov.heads();
    y.w.pass_motion(&cm, MotionKind::Checkpoint { heads }, &[0, y.undesa]);
    (y, doc)
}

/// Re-seals edited content with `key` and the manifest header edited by `edit`: what an attacker holding that key
/// can do.
pub fn reseal_with(
    files: &BTreeMap<String, Vec<u8>>,
    key: &SecretKey,
    edit: impl FnOnce(&mut bundle::ManifestHeader),
) -> BTreeMap<String, Vec<u8>> {
    let mut header = Manifest::parse(&files[MANIFEST]).unwrap().header;
    edit(&mut header);
    let content: BTreeMap<String, Vec<u8>> = files
        .iter()
        .filter(|(p, _)| {
            ![
                bundle::MANIFEST,
                bundle::SHA256SUMS,
                bundle::SIGNATURE,
                bundle::ALLOWED_SIGNERS,
            ]
            .contains(&p.as_str())
        })
        .map(|(p, b)| (p.clone(), b.clone()))
        .collect();
    bundle::seal(&header, content, key).unwrap().files
}

pub fn reseal(files: &BTreeMap<String, Vec<u8>>, key: &SecretKey) -> BTreeMap<String, Vec<u8>> {
    reseal_with(files, key, |_| {})
}

/// Reads a document's text at a path, for assertions.
pub fn read_text(doc: &AutoCommit, path: &[&str]) -> Option<String> {
    let mut obj = ROOT;
    for (i, p) in path.iter().enumerate() {
        let (v, id) = doc.get(&obj, *p).ok()??;
        if i + 1 == path.len() {
            return match v {
                automerge::Value::Object(ObjType::Text) => doc.text(&id).ok(),
                other => Some(other.to_string()),
            };
        }
        obj = id;
    }
    None
}
