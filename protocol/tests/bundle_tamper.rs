//! The attack catalogue's bundle cases (31–38, `../shared/design/trust-model.md`). Each tampering is tried twice
//! where it makes sense: without re-signing (the manifest, `SHA256SUMS` or the signature catch it and name the
//! file) and re-sealed with the Chair's key (an attacker who holds the key: the semantic checks must still name
//! the problem).
#![allow(clippy::unwrap_used)]

mod bundle_fixture;

use bundle_fixture::{build, reseal, reseal_with, Year};
use std::collections::BTreeMap;
use wsis_protocol::bundle::{
    self, automerge_path, check_path, decode_ops, encode_ops, json_path, verify, verify_text,
    AttestedBy, ClosingError, PathError, Problem, ReplayError, GENESIS, MANIFEST, OPS, VERIFY_TXT,
    VIEW,
};
use wsis_protocol::fixture::World;
use wsis_protocol::gov::Governance;
use wsis_protocol::ids::Hash32;
use wsis_protocol::ids::{DocId, FederationId, OpId};
use wsis_protocol::op::{Attestation, OpKind, SignedOp};
use wsis_protocol::view::{Status, StocktakeView};

type Files = BTreeMap<String, Vec<u8>>;

fn good() -> (Year, Files) {
    let y = build(1, true);
    let files = y.bundle().files;
    verify(&files, &y.w.federation).unwrap();
    (y, files)
}

fn ops_of(files: &Files) -> Vec<SignedOp> {
    decode_ops(&files[OPS]).unwrap()
}

fn with_ops(files: &Files, ops: &[SignedOp]) -> Files {
    let mut f = files.clone();
    f.insert(OPS.into(), encode_ops(ops));
    f
}

fn is_seal_file(p: &str) -> bool {
    [
        bundle::MANIFEST,
        bundle::SHA256SUMS,
        bundle::SIGNATURE,
        bundle::ALLOWED_SIGNERS,
    ]
    .contains(&p)
}

#[test]
fn case_31_a_registered_submission_omitted() {
    let (y, files) = good();
    let c2 = y.c2_output;
    // Without re-signing: the manifest still lists the document.
    let mut f = files.clone();
    f.remove(&automerge_path(&c2));
    let e = verify(&f, &y.w.federation).unwrap_err();
    assert_eq!(e.file, automerge_path(&c2));
    assert_eq!(*e.problem, Problem::MissingFromBundle);
    // Re-signed without the document: the submission in the op log still attests it.
    f.remove(&json_path(&c2));
    let e = verify(&reseal(&f, y.chair_key()), &y.w.federation).unwrap_err();
    assert_eq!(e.file, automerge_path(&c2));
    assert_eq!(
        *e.problem,
        Problem::OmittedDocument(AttestedBy::Submission(y.c2_submission))
    );
    assert!(e.to_string().contains(&y.c2_submission.to_string()));
    // Re-signed without the submission op as well: later ops cite it, the replay fails.
    let ops: Vec<SignedOp> = ops_of(&f)
        .into_iter()
        .filter(|o| o.id() != y.c2_submission)
        .collect();
    let e = verify(&reseal(&with_ops(&f, &ops), y.chair_key()), &y.w.federation).unwrap_err();
    assert_eq!(e.file, OPS);
    assert!(
        matches!(&*e.problem, Problem::Replay(ReplayError::MissingParents { missing, .. }) if missing.contains(&y.c2_submission)),
        "{e}"
    );
}

#[test]
fn case_32_an_unregistered_or_forged_submission_added() {
    let (y, files) = good();
    // A draft nobody submitted, added with a re-signed manifest.
    let mut d = bundle_fixture::output_doc(9, "Padding the record.", true);
    let mut f = files.clone();
    f.insert(automerge_path(&y.unsubmitted), d.save());
    f.insert(
        json_path(&y.unsubmitted),
        wsis_protocol::export::canonical_json(&d).unwrap(),
    );
    let e = verify(&reseal(&f, y.chair_key()), &y.w.federation).unwrap_err();
    assert_eq!(e.file, automerge_path(&y.unsubmitted));
    assert_eq!(*e.problem, Problem::Unregistered);
    // Without re-signing: not in the manifest.
    let e = verify(&f, &y.w.federation).unwrap_err();
    assert_eq!(*e.problem, Problem::NotInManifest);

    // A forged submission: the C3 output "submitted" by a member who is not its coordinator, after the closing
    // point, with its document.
    let mut w = y.w;
    let closing: Vec<OpId> = w.gov.heads();
    let uni = w
        .orgs
        .iter()
        .position(|o| o.inception.body().name == "University of Nairobi")
        .unwrap();
    let att = Attestation {
        heads: d.get_heads().iter().map(|h| Hash32(h.0)).collect(),
        content_hash: wsis_protocol::export::content_hash_of(&d).unwrap(),
    };
    let forged = w.sign_at(
        uni,
        &closing,
        OpKind::SubmitOutput {
            team: w.team("C3"),
            year: bundle_fixture::YEAR,
            doc: y.unsubmitted,
            attestation: att.clone(),
        },
    );
    let mut ops = ops_of(&f);
    ops.push(forged.clone());
    let e = verify(
        &reseal(&with_ops(&f, &ops), &w.orgs[y.undesa].secret),
        &w.federation,
    )
    .unwrap_err();
    assert_eq!(e.file, OPS);
    assert_eq!(*e.problem, Problem::BeyondClosingPoint(forged.id()));

    // A submission claiming to be ITU's (the C3... C2 coordinator) but signed with another key: refused.
    let mut body = forged.body().clone();
    body.author = w.id(0);
    let impostor = body.sign(&w.orgs[uni].secret);
    let mut ops = ops_of(&f);
    ops.push(impostor);
    let e = verify(
        &reseal(&with_ops(&f, &ops), &w.orgs[y.undesa].secret),
        &w.federation,
    )
    .unwrap_err();
    assert_eq!(e.file, OPS);
    assert!(
        matches!(*e.problem, Problem::Replay(ReplayError::Refused { .. })),
        "{e}"
    );
}

#[test]
fn case_33_one_byte_changed_in_any_file_names_the_file() {
    let (y, files) = good();
    for path in files.keys() {
        for at in [0, files[path].len() / 2, files[path].len() - 1] {
            let mut f = files.clone();
            f.get_mut(path).unwrap()[at] ^= 0x01;
            let e = verify(&f, &y.w.federation).unwrap_err();
            assert_eq!(&e.file, path, "byte {at}: {e}");
            // The Chair (or whoever holds the key) re-seals the edited content: the deeper checks name the file.
            if !is_seal_file(path) {
                let e = verify(&reseal(&f, y.chair_key()), &y.w.federation).unwrap_err();
                assert_eq!(&e.file, path, "byte {at}, re-sealed: {e}");
            }
        }
    }
}

fn view_of(y: &Year, files: &Files) -> StocktakeView {
    verify(files, &y.w.federation).unwrap().view
}

#[test]
fn case_34_the_view_edited() {
    let (y, files) = good();
    type Edit = Box<dyn Fn(&mut StocktakeView)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "a status",
            Box::new(|v| {
                let c3 = v
                    .teams
                    .iter_mut()
                    .find(|t| t.code.as_str() == "C3")
                    .unwrap();
                assert_eq!(c3.output.status, Status::Missing);
                c3.output.status = Status::Submitted;
            }),
        ),
        ("an order", Box::new(|v| v.teams.swap(0, 1))),
        (
            "a dropped contested",
            Box::new(|v| {
                let nr = &mut v.national_reports[0];
                assert_eq!(nr.status, Status::Contested);
                nr.status = Status::Submitted;
                nr.submission.contested_with.clear();
            }),
        ),
        (
            "a summary count",
            Box::new(|v| v.summary.outputs_missing = 0),
        ),
    ];
    for (what, edit) in edits {
        let mut v = view_of(&y, &files);
        edit(&mut v);
        let mut f = files.clone();
        f.insert(VIEW.into(), v.to_canonical_json());
        assert_ne!(f[VIEW], files[VIEW], "{what}");
        let e = verify(&f, &y.w.federation).unwrap_err();
        assert_eq!(
            (e.file.as_str(), &*e.problem),
            (VIEW, &Problem::ManifestMismatch),
            "{what}"
        );
        let e = verify(&reseal(&f, y.chair_key()), &y.w.federation).unwrap_err();
        assert_eq!(e.file, VIEW, "{what}");
        assert!(
            matches!(*e.problem, Problem::ViewMismatch(_)),
            "{what}: {e}"
        );
    }
}

#[test]
fn case_35_a_checkpoint_without_a_majority_of_coordinators() {
    let (y, files) = good();
    let cp = y.checkpoint.unwrap();
    let is_ballot =
        |o: &SignedOp| matches!(o.kind(), OpKind::Ballot { motion, .. } if *motion == cp);
    let ops = ops_of(&files);
    assert_eq!(ops.iter().filter(|o| is_ballot(o)).count(), 2);
    // Drop the later of the two yes ballots (the first is its parent): 1 of 3 coordinators is not a majority.
    let last = ops.iter().rev().find(|o| is_ballot(o)).unwrap().id();
    let fewer: Vec<SignedOp> = ops.into_iter().filter(|o| o.id() != last).collect();
    let e = verify(
        &reseal(&with_ops(&files, &fewer), y.chair_key()),
        &y.w.federation,
    )
    .unwrap_err();
    assert_eq!(e.file, OPS);
    assert_eq!(
        *e.problem,
        Problem::Closing(ClosingError::NotPassed {
            motion: cp,
            yes: 1,
            electorate: 3
        })
    );
    assert!(e
        .to_string()
        .contains("did not pass: 1 yes ballot(s) from an electorate of 3"));
}

#[test]
fn case_36_a_chair_who_was_not_chair_at_the_checkpoint() {
    let (y, files) = good();
    let itu = &y.w.orgs[0];
    // ITU signs a bundle naming itself as Chair (and rewrites VERIFY.txt to match).
    let forge = |chair: wsis_protocol::ids::OrgId| {
        let mut f = files.clone();
        let mut header = bundle::Manifest::parse(&files[MANIFEST]).unwrap().header;
        header.chair = chair;
        header.chair_key = itu.secret.public();
        f.insert(VERIFY_TXT.into(), verify_text(&header).into_bytes());
        reseal_with(&f, &itu.secret, |h| *h = header)
    };
    let e = verify(&forge(y.w.id(0)), &y.w.federation).unwrap_err();
    assert_eq!(e.file, MANIFEST);
    assert_eq!(
        *e.problem,
        Problem::NotChair {
            manifest: y.w.id(0),
            chair: y.w.id(y.undesa)
        }
    );
    // ITU names the real Chair but signs with its own key.
    let e = verify(&forge(y.w.id(y.undesa)), &y.w.federation).unwrap_err();
    assert_eq!(e.file, MANIFEST);
    assert_eq!(*e.problem, Problem::ChairKey(y.w.id(y.undesa)));
    // And the planner refuses anyone but the Chair at the checkpoint.
    assert!(matches!(
        bundle::plan(&y.w.gov, bundle_fixture::YEAR, &y.w.id(y.apc)),
        Err(bundle::AssembleError::NotChair { .. })
    ));
}

#[test]
fn case_37_the_wrong_federation_also_a_short_prefix_match() {
    let (y, files) = good();
    let fed = y.w.federation;
    let mut near = fed;
    near.0[31] ^= 1;
    for pinned in [FederationId([0; 32]), near] {
        let e = verify(&files, &pinned).unwrap_err();
        assert_eq!(e.file, MANIFEST);
        assert!(
            matches!(*e.problem, Problem::ManifestFederation { .. }),
            "{e}"
        );
    }
    // The short display form is not an id and cannot be pinned.
    assert!(format!("{fed:#}").parse::<FederationId>().is_err());
    assert!(fed.to_string()[..20].parse::<FederationId>().is_err());
    // A genesis from another federation, the manifest still naming the pinned one and re-signed.
    let other = World::with_teams(wsis_protocol::reference::wsis_teams()[..3].to_vec());
    assert_ne!(other.federation, fed);
    let mut f = files.clone();
    f.insert(GENESIS.into(), other.gov.genesis().bytes().to_vec());
    let e = verify(&reseal(&f, y.chair_key()), &fed).unwrap_err();
    assert_eq!(e.file, GENESIS);
    assert!(matches!(*e.problem, Problem::Genesis(_)), "{e}");
    let _ = Governance::from_genesis_bytes(other.gov.genesis().bytes(), &other.federation).unwrap();
}

#[test]
fn case_38_an_extra_file_a_missing_file_a_path_with_dot_dot() {
    let (y, files) = good();
    let key = y.chair_key();
    // An extra file.
    let mut f = files.clone();
    f.insert("notes.txt".into(), b"hello".to_vec());
    let e = verify(&f, &y.w.federation).unwrap_err();
    assert_eq!(
        (e.file.as_str(), *e.problem),
        ("notes.txt", Problem::NotInManifest)
    );
    let e = verify(&reseal(&f, key), &y.w.federation).unwrap_err();
    assert_eq!(
        (e.file.as_str(), *e.problem),
        ("notes.txt", Problem::Unexpected)
    );
    // A document file of an unknown shape.
    let mut f = files.clone();
    f.insert(format!("docs/{}.txt", DocId([1; 32])), b"x".to_vec());
    let e = verify(&reseal(&f, key), &y.w.federation).unwrap_err();
    assert_eq!(*e.problem, Problem::Unexpected);
    // A missing file.
    for missing in [VIEW, OPS, GENESIS, VERIFY_TXT] {
        let mut f = files.clone();
        f.remove(missing);
        let e = verify(&f, &y.w.federation).unwrap_err();
        assert_eq!(
            (e.file.as_str(), *e.problem),
            (missing, Problem::MissingFromBundle)
        );
        let e = verify(&reseal(&f, key), &y.w.federation).unwrap_err();
        assert_eq!((e.file.as_str(), *e.problem), (missing, Problem::Missing));
    }
    for seal in [
        bundle::SIGNATURE,
        bundle::ALLOWED_SIGNERS,
        bundle::SHA256SUMS,
        MANIFEST,
    ] {
        let mut f = files.clone();
        f.remove(seal);
        let e = verify(&f, &y.w.federation).unwrap_err();
        assert_eq!((e.file.as_str(), *e.problem), (seal, Problem::Missing));
    }
    // Paths that escape the directory or are not plain.
    for bad in [
        "../evil",
        "docs/../manifest.json",
        "/etc/passwd",
        "docs//x",
        "docs/./x",
    ] {
        let mut f = files.clone();
        f.insert(bad.into(), vec![]);
        let e = verify(&f, &y.w.federation).unwrap_err();
        assert_eq!(e.file, bad);
        assert!(matches!(*e.problem, Problem::Path(_)), "{bad}: {e}");
    }
    assert_eq!(check_path("../x"), Err(PathError::DotComponent));
    assert_eq!(check_path("/x"), Err(PathError::Absolute));
    // Symlinks cannot be represented in a bundle map: the CLI refuses them when reading the directory.
}

#[test]
fn a_document_whose_bytes_do_not_load_is_an_error_not_a_panic() {
    let (y, files) = good();
    let p = automerge_path(&y.c2_output);
    for junk in [vec![], vec![0x85, 0x6f, 0x4a, 0x83], vec![0xff; 1000]] {
        let mut f = files.clone();
        f.insert(p.clone(), junk);
        let e = verify(&reseal(&f, y.chair_key()), &y.w.federation).unwrap_err();
        assert_eq!(e.file, p);
        assert!(matches!(*e.problem, Problem::Document(_)), "{e}");
    }
    // The document of another submission in its place: heads do not match.
    let mut f = files.clone();
    f.insert(p.clone(), files[&automerge_path(&y.kenya_report)].clone());
    let e = verify(&reseal(&f, y.chair_key()), &y.w.federation).unwrap_err();
    assert_eq!(e.file, p);
}
