//! The fuzz corpora, replayed on stable: every file committed under `fuzz/corpus/<target>/` goes through the
//! target's body (`wsis_protocol::fuzz::<target>`), which asserts the decoder's invariants. This is how CI checks
//! the corpora (and every crash the fuzzer once found, kept there as a regression) without a nightly toolchain;
//! fuzzing for minutes is `cargo fuzz run <target>` (see README.md).
//!
//! The seeds the corpora started from are built here from real encodings (the golden federation, one op of
//! every kind, sealed envelopes of varied Automerge histories, a real bundle), and checked to be accepted by their
//! decoder, so that a corpus never silently degrades into bytes every decoder refuses.
//! `WSIS_WRITE_FUZZ_SEEDS=1 cargo test -p wsis-protocol --test fuzz_corpora` writes them into the corpora.
#![allow(clippy::unwrap_used)]

mod bundle_fixture;
mod common;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ROOT};
use common::{unwrap, Golden, T0};
use std::path::{Path, PathBuf};
use wsis_protocol::bundle::{sshsig, Manifest, MANIFEST, OPS};
use wsis_protocol::envelope::ChangeEnvelope;
use wsis_protocol::fixture::{one_of_every_kind, varied_history};
use wsis_protocol::fuzz;
use wsis_protocol::ids::{sha256, OpId};
use wsis_protocol::op::{OpKind, SignedInception, SignedOp, TeamCode};
use wsis_protocol::VerifiedHeader;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 6] = [
    ("op", fuzz::op),
    ("inception", fuzz::inception),
    ("envelope_header", fuzz::envelope_header),
    ("envelope_changes", fuzz::envelope_changes),
    ("change_ops", |d| {
        fuzz::change_ops(d);
    }),
    ("bundle", fuzz::bundle),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

#[test]
fn every_corpus_file_holds_the_decoders_invariants() {
    for (target, run) in TARGETS {
        let dir = corpus_dir(target);
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            // A failed invariant panics; name the file so it can be run with `cargo fuzz run <target> <file>`.
            let result = std::panic::catch_unwind(|| run(&data));
            assert!(
                result.is_ok(),
                "{target}: {} breaks an invariant",
                path.display()
            );
            files += 1;
        }
        assert!(files > 0, "{target}: empty corpus");
    }
}

/// One op of every kind and the golden federation's ops.
fn op_seeds() -> Vec<Vec<u8>> {
    let g = Golden::build();
    let fed = Some(g.federation);
    let team = TeamCode::new("C7.EHEALTH").unwrap();
    let leave = |seq, ts| {
        g.ngo.op(
            fed,
            seq,
            &[g.head()],
            ts,
            OpKind::LeaveTeam { team: team.clone() },
        )
    };
    let mut ops: Vec<Vec<u8>> = g.ops.iter().map(|(_, op)| op.bytes().to_vec()).collect();
    for (i, kind) in one_of_every_kind(leave(3, T0), leave(3, T0 + 1))
        .into_iter()
        .enumerate()
    {
        let op = g
            .kenya
            .op(fed, 3 + i as u64, &[g.head()], T0 + i as u64, kind);
        ops.push(op.bytes().to_vec());
    }
    ops
}

/// Signed inception records and their bodies (the target runs both decoders).
fn inception_seeds() -> Vec<Vec<u8>> {
    let g = Golden::build();
    let mut out = Vec::new();
    for org in [&g.itu, &g.unesco, &g.kenya, &g.ngo] {
        out.push(org.inception.bytes().to_vec());
        out.push(unwrap(org.inception.bytes()).0);
    }
    out
}

/// A history made with the fuzz actor, with every kind of Automerge op: what `envelope_changes` wraps.
fn fuzz_actor_history() -> AutoCommit {
    let mut d = AutoCommit::new().with_actor(ActorId::from(fuzz::actor().as_slice()));
    d.put(ROOT, "title", "WSIS").unwrap();
    let list = d.put_object(ROOT, "activities", ObjType::List).unwrap();
    for i in 0..12 {
        d.insert(&list, i, format!("activity {i}")).unwrap();
    }
    d.commit();
    let text = d.put_object(ROOT, "achievements", ObjType::Text).unwrap();
    d.splice_text(&text, 0, 0, "broadband for schools; e-health")
        .unwrap();
    d.put(ROOT, "count", automerge::ScalarValue::counter(1))
        .unwrap();
    d.commit();
    d.splice_text(&text, 3, 4, "").unwrap();
    d.increment(ROOT, "count", 3).unwrap();
    d.delete(&list, 2).unwrap();
    d.mark(
        &text,
        automerge::marks::Mark::new("bold".into(), true, 0, 4),
        automerge::marks::ExpandMark::After,
    )
    .unwrap();
    let map = d.put_object(ROOT, "meta", ObjType::Map).unwrap();
    d.put(&map, "year", 2026).unwrap();
    d.put(&map, "ok", true).unwrap();
    d.put(&map, "ratio", 0.5).unwrap();
    d.put(&map, "bytes", automerge::ScalarValue::Bytes(vec![1, 2, 3]))
        .unwrap();
    d.put(&map, "nothing", automerge::ScalarValue::Null)
        .unwrap();
    d.commit();
    d.delete(ROOT, "title").unwrap();
    d.commit();
    d
}

/// Envelopes sealed for the fuzz federation: each change alone and the whole batch.
fn envelope_seeds() -> Vec<Vec<u8>> {
    let changes: Vec<automerge::Change> = fuzz_actor_history().get_changes(&[]);
    let seal = |changes: Vec<automerge::Change>| {
        ChangeEnvelope::seal(
            fuzz::FEDERATION,
            fuzz::DOC,
            fuzz::AUTHOR,
            &fuzz::key(),
            fuzz::SALT,
            vec![OpId([0x11; 32])],
            changes,
        )
        .unwrap()
        .bytes()
        .to_vec()
    };
    let mut out: Vec<Vec<u8>> = changes.iter().map(|c| seal(vec![c.clone()])).collect();
    out.push(seal(changes));
    out
}

/// Raw change chunks: the fuzz actor's (which pass both stages) and a varied history's by other actors (which
/// exercise the column counter against Automerge).
fn change_seeds() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = fuzz_actor_history()
        .get_changes(&[])
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    out.extend(
        varied_history()
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().to_vec()),
    );
    out
}

/// What `change_ops` starts from: the fuzz actor's changes (canonical, so the equality is checked on each) and
/// op bombs by the fuzz actor within and past the caps (stage 1 counts them without expanding).
fn change_ops_seeds() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let canonical: Vec<Vec<u8>> = fuzz_actor_history()
        .get_changes(&[])
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    let bombs = [1, 3, 1000, 1 << 20, 1 << 40]
        .iter()
        .map(|&n| wsis_protocol::fixture::op_bomb_change(fuzz::actor(), 1, n, 0))
        .collect();
    (canonical, bombs)
}

/// A real bundle's `manifest.json` and `gov/ops`, and an SSHSIG by the fuzz key, each behind its selector byte.
fn bundle_seeds() -> Vec<Vec<u8>> {
    let files = bundle_fixture::build(1, true).bundle().files;
    let prefixed = |selector: u8, bytes: &[u8]| [&[selector][..], bytes].concat();
    vec![
        prefixed(0, &files[MANIFEST]),
        prefixed(1, &files[OPS]),
        prefixed(
            2,
            sshsig::sign(&fuzz::key(), fuzz::SSHSIG_MESSAGE).as_bytes(),
        ),
    ]
}

#[test]
fn the_seeds_are_accepted_and_hold_the_invariants() {
    let ops = op_seeds();
    for op in &ops {
        SignedOp::from_bytes(op).unwrap();
        fuzz::op(op);
    }
    let inceptions = inception_seeds();
    for rec in inceptions.iter().step_by(2) {
        SignedInception::from_bytes(rec).unwrap();
    }
    inceptions.iter().for_each(|i| fuzz::inception(i));
    let envelopes = envelope_seeds();
    for env in &envelopes {
        let h = VerifiedHeader::from_bytes(env, fuzz::FEDERATION).unwrap();
        h.parse_changes().unwrap();
        fuzz::envelope_header(env);
    }
    let changes = change_seeds();
    changes.iter().for_each(|c| fuzz::envelope_changes(c));
    let (canonical, bombs) = change_ops_seeds();
    for c in &canonical {
        assert!(
            fuzz::change_ops(c),
            "the equality is checked on a real change"
        );
    }
    bombs.iter().for_each(|b| {
        fuzz::change_ops(b);
    });
    let change_ops = [canonical, bombs].concat();
    let bundle = bundle_seeds();
    Manifest::parse(&bundle[0][1..]).unwrap();
    wsis_protocol::bundle::decode_ops(&bundle[1][1..]).unwrap();
    sshsig::verify(&bundle[2][1..], fuzz::SSHSIG_MESSAGE, &fuzz::key().public()).unwrap();
    bundle.iter().for_each(|b| fuzz::bundle(b));

    if std::env::var_os("WSIS_WRITE_FUZZ_SEEDS").is_some() {
        for (target, seeds) in [
            ("op", ops),
            ("inception", inceptions),
            ("envelope_header", envelopes),
            ("envelope_changes", changes),
            ("change_ops", change_ops),
            ("bundle", bundle),
        ] {
            let dir = corpus_dir(target);
            std::fs::create_dir_all(&dir).unwrap();
            for seed in seeds {
                // libFuzzer names corpus files by their SHA-1; any unique name does, the content's hash here.
                let name = hex::encode(&sha256(&seed)[..20]);
                std::fs::write(dir.join(format!("seed-{name}")), seed).unwrap();
            }
        }
    }
}
