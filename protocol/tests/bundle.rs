//! The stocktaking bundle end to end: plan → assemble → verify → report, the planner's refusals, the stock tools
//! (`sha256sum -c`, `ssh-keygen -Y verify`) on a bundle written to disk, and robustness properties. The attack
//! catalogue's bundle cases (31–38) are in `bundle_tamper.rs`.
#![allow(clippy::unwrap_used)]

mod bundle_fixture;

use bundle_fixture::{build, Year, YEAR};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::process::Command;
use wsis_protocol::bundle::{
    self, check_path, verify, AssembleError, ClosingError, Problem, MANIFEST, OPS, VIEW,
};
use wsis_protocol::ids::DocId;
use wsis_protocol::ids::Hash32;
use wsis_protocol::op::{Attestation, MotionKind, OpKind};
use wsis_protocol::report::{render, Format};
use wsis_protocol::view::Status;

#[test]
fn a_complete_year_assembles_verifies_and_renders() {
    let y = build(1, true);
    let b = y.bundle();
    // The layout.
    for f in [
        "manifest.json",
        "manifest.json.sig",
        "allowed_signers",
        "SHA256SUMS",
        "VERIFY.txt",
        "gov/genesis",
        "gov/ops",
        "view/stocktake.json",
    ] {
        assert!(b.files.contains_key(f), "{f} missing");
    }
    let c2 = y.c2_output;
    assert!(b.files.contains_key(&format!("docs/{c2}.automerge")));
    assert!(b.files.contains_key(&format!("docs/{c2}.json")));
    assert!(
        b.files
            .contains_key(&format!("docs/{}.json", DocId(y.meeting.0))),
        "the approved meeting record is bundled"
    );
    assert!(
        !b.files
            .contains_key(&format!("docs/{}.json", y.unsubmitted)),
        "a draft nobody submitted is not"
    );
    // 4 submissions (C1, C2, two Kenyan reports) + 1 meeting record, two files each, plus 8 fixed files.
    assert_eq!(b.files.len(), 8 + 2 * 5);

    let v = verify(&b.files, &y.w.federation).unwrap();
    assert_eq!(v.year, YEAR);
    assert_eq!(v.manifest.header.chair, y.w.id(y.undesa));
    assert_eq!(v.manifest_hash, b.manifest_hash());
    let team = |code: &str| {
        v.view
            .teams
            .iter()
            .find(|t| t.code.as_str() == code)
            .unwrap()
    };
    assert_eq!(team("C2").output.status, Status::Submitted);
    assert_eq!(team("C1").output.status, Status::Submitted);
    assert_eq!(team("C3").output.status, Status::Missing);
    assert_eq!(v.view.national_reports[0].status, Status::Contested);
    assert_eq!(team("C2").meetings[0].record, "approved");
    // The bundled view is the one verify recomputed.
    assert_eq!(b.files[VIEW], v.view.to_canonical_json());

    for format in [Format::Html, Format::Markdown] {
        let r = render(&v, format);
        for expected in [
            "UNDESA",
            "Information and communication infrastructure",
            "Broadband reached 40 more districts",
            "Invest in community networks",
            "Regional workshop, Nairobi",
            "Opened the meeting; agenda adopted.",
            "MISSING: no output was submitted",
            "CONTESTED",
            "Spectrum and licensing report.",
            "4G coverage at 96% of the population.",
            "Items needing attention",
            "required section(s) missing or empty: challenges",
            "(section missing)",
            "Civil society",
            "Teams not expected to report this year",
            "C9: Media",
        ] {
            assert!(r.contains(expected), "{format:?} report lacks {expected:?}");
        }
        assert!(
            !r.contains("<script>"),
            "{format:?}: text from a document is escaped"
        );
        assert_eq!(r, render(&v, format), "rendering is deterministic");
    }
    let html = render(&v, Format::Html);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<style>"));
    assert!(html.contains("&lt;script&gt;"));
    assert!(html.contains("C3: Access to information and knowledge"));
}

#[test]
fn plan_without_a_passed_checkpoint_names_what_is_missing() {
    let mut y = build(0, false);
    let chair = y.w.id(y.undesa);
    let e = bundle::plan(&y.w.gov, YEAR, &chair).unwrap_err();
    assert_eq!(e, AssembleError::NoPassedCheckpoint(YEAR));
    assert!(e.to_string().contains("no checkpoint") && e.to_string().contains("2026"));
    // A checkpoint with one yes ballot of three coordinators has not passed either.
    let heads = y.w.gov.heads();
    let cm = y.coordinators_meeting.clone();
    y.w.pass_motion(&cm, MotionKind::Checkpoint { heads }, &[0]);
    assert_eq!(
        bundle::plan(&y.w.gov, YEAR, &chair).unwrap_err(),
        AssembleError::NoPassedCheckpoint(YEAR)
    );
    // Another year has no checkpoint.
    let y1 = build(1, true);
    assert_eq!(
        bundle::plan(&y1.w.gov, YEAR + 1, &chair).unwrap_err(),
        AssembleError::NoPassedCheckpoint(YEAR + 1)
    );
}

#[test]
fn plan_refuses_a_caller_who_is_not_the_chair_and_a_wrong_key() {
    let y = build(1, true);
    let e = bundle::plan(&y.w.gov, YEAR, &y.w.id(0)).unwrap_err();
    assert_eq!(
        e,
        AssembleError::NotChair {
            caller: y.w.id(0),
            chair: y.w.id(y.undesa)
        }
    );
    let plan = bundle::plan(&y.w.gov, YEAR, &y.w.id(y.undesa)).unwrap();
    assert_eq!(
        bundle::assemble(&plan, &y.w.orgs[0].secret, &y.docs).unwrap_err(),
        AssembleError::WrongKey
    );
}

#[test]
fn plan_refuses_submissions_the_checkpoint_does_not_cover() {
    let mut y = build(1, true);
    // ITU resubmits C2's output after the checkpoint: a new checkpoint is needed before the bundle.
    let late = y.w.op(
        0,
        OpKind::SubmitOutput {
            team: y.w.team("C2"),
            year: YEAR,
            doc: y.c2_output,
            attestation: Attestation {
                heads: vec![Hash32([1; 32])],
                content_hash: Hash32([2; 32]),
            },
        },
    );
    match bundle::plan(&y.w.gov, YEAR, &y.w.id(y.undesa)).unwrap_err() {
        AssembleError::UncoveredSubmissions {
            ops, checkpoint, ..
        } => {
            assert_eq!(ops, vec![late.id()]);
            assert_eq!(Some(checkpoint), y.checkpoint);
        }
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn plan_needs_a_procedure_in_the_checkpoint_history() {
    // Rebuild a year whose checkpoint passes in a coordinators' meeting with no procedure for the year: use
    // another year's checkpoint motion in the same meeting (the meeting is for 2026, so none closes 2027).
    let y = build(1, true);
    let e = bundle::plan(&y.w.gov, 2027, &y.w.id(y.undesa)).unwrap_err();
    assert_eq!(e, AssembleError::NoPassedCheckpoint(2027));
    // ClosingError::NoProcedure is what a 2026 checkpoint without a procedure reports.
    assert!(ClosingError::NoProcedure(2026)
        .to_string()
        .contains("no stocktaking procedure for 2026"));
}

#[test]
fn assemble_refuses_missing_unplanned_and_non_matching_documents() {
    let y = build(1, true);
    let plan = bundle::plan(&y.w.gov, YEAR, &y.w.id(y.undesa)).unwrap();
    let key = y.chair_key();
    let mut docs: BTreeMap<DocId, Vec<u8>> = plan
        .documents()
        .keys()
        .map(|d| (*d, y.docs[d].clone()))
        .collect();
    let full = docs.clone();
    docs.remove(&y.c2_output);
    assert_eq!(
        bundle::assemble(&plan, key, &docs).unwrap_err(),
        AssembleError::MissingDocument(y.c2_output)
    );
    let mut docs = full.clone();
    docs.insert(y.unsubmitted, vec![]);
    assert_eq!(
        bundle::assemble(&plan, key, &docs).unwrap_err(),
        AssembleError::UnplannedDocument(y.unsubmitted)
    );
    // The C2 document replaced by the Kenyan report: heads and hash do not match the attestation.
    let mut docs = full;
    docs.insert(y.c2_output, y.docs[&y.kenya_report].clone());
    assert!(matches!(
        bundle::assemble(&plan, key, &docs).unwrap_err(),
        AssembleError::Document { doc, .. } if doc == y.c2_output
    ));
}

#[test]
fn check_path_accepts_bundle_paths_and_refuses_escapes() {
    for ok in [
        "manifest.json",
        "gov/ops",
        "docs/doc_ab12.automerge",
        "a/b-c_d.e",
    ] {
        assert_eq!(check_path(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        "/etc/passwd",
        "../x",
        "a/../b",
        "a/./b",
        "a//b",
        "a/",
        ".",
        "..",
        "a\\b",
        "a b",
        "-rf",
        "a/-x",
        "é",
        "a\0b",
    ] {
        assert!(check_path(bad).is_err(), "{bad:?} accepted");
    }
    assert!(check_path(&"a".repeat(256)).is_err());
}

/// The stock tools accept a good bundle written to disk, and refuse it once the manifest is edited.
#[test]
fn stock_tools_verify_a_bundle_on_disk() {
    let y = build(1, true);
    let b = y.bundle();
    let dir = tempfile::tempdir().unwrap();
    for (p, bytes) in &b.files {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    let verify_txt = String::from_utf8(b.files["VERIFY.txt"].clone()).unwrap();
    let ssh_line = verify_txt
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("ssh-keygen -Y verify"))
        .unwrap()
        .to_string();
    assert!(verify_txt.contains("sha256sum -c SHA256SUMS"));
    assert!(verify_txt.contains(&format!("wsis verify . --federation {}", y.w.federation)));
    let run = |cmd: &str| {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let sums = run("/usr/bin/sha256sum -c SHA256SUMS");
    assert!(
        sums.status.success(),
        "{}",
        String::from_utf8_lossy(&sums.stdout)
    );
    let sig = run(&format!("/usr/bin/{ssh_line}"));
    assert!(
        sig.status.success(),
        "{}{}",
        String::from_utf8_lossy(&sig.stdout),
        String::from_utf8_lossy(&sig.stderr)
    );
    assert!(String::from_utf8_lossy(&sig.stdout)
        .contains("Good \"wsis/v1/bundle-manifest\" signature for chair"));

    // Edit the manifest (the year 2026 → 2027): both tools refuse.
    let mut m = b.files[MANIFEST].clone();
    let at = m.windows(4).position(|w| w == b"2026").unwrap();
    m[at + 3] = b'7';
    std::fs::write(dir.path().join(MANIFEST), &m).unwrap();
    assert!(!run("/usr/bin/sha256sum -c SHA256SUMS").status.success());
    assert!(!run(&format!("/usr/bin/{ssh_line}")).status.success());
}

#[test]
fn verify_accepts_what_assemble_makes_for_several_seeds() {
    for seed in 0..5 {
        let y = build(seed, true);
        let b = y.bundle();
        let v = verify(&b.files, &y.w.federation).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(
            v.view
                .teams
                .iter()
                .find(|t| t.code.as_str() == "C1")
                .unwrap()
                .output
                .status,
            if seed % 2 == 1 {
                Status::Submitted
            } else {
                Status::Missing
            },
            "seed {seed}"
        );
        assert_eq!(
            v.view.national_reports[0].status,
            if seed == 2 {
                Status::Submitted
            } else {
                Status::Contested
            },
            "seed {seed}"
        );
        // Assembling twice gives the same bundle.
        assert_eq!(b, y.bundle(), "seed {seed}");
    }
}

fn good() -> (Year, BTreeMap<String, Vec<u8>>) {
    let y = build(1, true);
    let files = y.bundle().files;
    (y, files)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Garbage in any file, or as the whole bundle, is an error, never a panic.
    #[test]
    fn garbage_bundles_never_panic(
        files in proptest::collection::btree_map("[a-zA-Z0-9./_-]{0,20}", proptest::collection::vec(any::<u8>(), 0..200), 0..8)
    ) {
        let fed = wsis_protocol::ids::FederationId([7; 32]);
        prop_assert!(verify(&files, &fed).is_err());
    }
}

#[test]
fn mutated_files_are_errors_not_panics_even_when_resealed() {
    let (y, files) = good();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(7);
    use rand::Rng;
    for (path, bytes) in &files {
        if bytes.is_empty() {
            continue;
        }
        for _ in 0..6 {
            let mut f = files.clone();
            let b = f.get_mut(path).unwrap();
            let i = rng.gen_range(0..b.len());
            b[i] = rng.gen();
            if *b == files[path] {
                continue;
            }
            assert!(verify(&f, &y.w.federation).is_err(), "{path} byte {i}");
            if !bundle_fixture_seal_file(path) {
                let resealed = bundle_fixture::reseal(&f, y.chair_key());
                let e = verify(&resealed, &y.w.federation).unwrap_err();
                assert_eq!(&e.file, path, "{e}");
            }
        }
    }
    // Truncated op logs too.
    let ops = &files[OPS];
    for cut in [1, 3, 4, 5, ops.len() / 2, ops.len() - 1] {
        let mut f = files.clone();
        f.insert(OPS.into(), ops[..cut].to_vec());
        let e = verify(&bundle_fixture::reseal(&f, y.chair_key()), &y.w.federation).unwrap_err();
        assert_eq!(e.file, OPS, "{e}");
        assert!(
            matches!(*e.problem, Problem::OpsFile(_) | Problem::Replay(_)),
            "{e}"
        );
    }
}

fn bundle_fixture_seal_file(path: &str) -> bool {
    [
        bundle::MANIFEST,
        bundle::SHA256SUMS,
        bundle::SIGNATURE,
        bundle::ALLOWED_SIGNERS,
    ]
    .contains(&path)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The bundle's own parsers never panic on garbage.
    #[test]
    fn bundle_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let key = wsis_protocol::crypto::SecretKey::from_seed(&[1; 32]).public();
        let _ = bundle::Manifest::parse(&bytes);
        let _ = bundle::decode_ops(&bytes);
        prop_assert!(bundle::sshsig::verify(&bytes, b"m", &key).is_err());
    }
}
