//! Golden vectors: a fixed federation built from fixed key seeds and fixed timestamps, pinned byte for byte in
//! `tests/golden/ops.txt` (one line per record: `name id hex-of-signed-bytes`).
//!
//! Ed25519 signing is deterministic, so these bytes never change unless the wire format, the signing preimage or
//! the fixture (`tests/common/mod.rs`) changes — and any such change is a protocol change that must be deliberate.
//! Other implementations can use the file to check their decoder, their ids and their signature checks.
//!
//! To regenerate the file after a deliberate change, run
//!
//! ```text
//! WSIS_BLESS=1 cargo test -p wsis-protocol --test golden
//! ```
//!
//! which rewrites `tests/golden/ops.txt` instead of comparing; review the diff and commit it.
#![allow(clippy::unwrap_used)]

mod common;

use common::Golden;
use std::fmt::Write as _;
use std::path::PathBuf;
use wsis_protocol::ids::{sha256, FederationId, OpId, OrgId};
use wsis_protocol::op::{OpKind, SignedInception, SignedOp};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ops.txt")
}

fn render(g: &Golden) -> String {
    let mut out = String::new();
    out.push_str(
        "# wsis-protocol golden vectors: `name id hex-of-signed-bytes`, one record a line.\n\
         # Built by protocol/tests/golden.rs from seeds [1;32] ITU, [2;32] UNESCO, [3;32] Kenya (KE), [4;32] an NGO.\n\
         # Regenerate after a deliberate wire change: WSIS_BLESS=1 cargo test -p wsis-protocol --test golden\n",
    );
    writeln!(out, "federation {}", g.federation).unwrap();
    for (name, org) in [
        ("inception-record-itu", &g.itu),
        ("inception-record-unesco", &g.unesco),
        ("inception-record-kenya", &g.kenya),
        ("inception-record-ngo", &g.ngo),
    ] {
        writeln!(
            out,
            "{name} {} {}",
            org.inception.id(),
            hex::encode(org.inception.bytes())
        )
        .unwrap();
    }
    for (name, op) in &g.ops {
        writeln!(out, "{name} {} {}", op.id(), hex::encode(op.bytes())).unwrap();
    }
    out
}

#[test]
fn golden_ops_match_the_checked_in_file() {
    let rendered = render(&Golden::build());
    // Building twice gives the same bytes: nothing random or clock-dependent goes into an op.
    assert_eq!(rendered, render(&Golden::build()));
    let path = golden_path();
    if std::env::var("WSIS_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, &rendered).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with WSIS_BLESS=1 to create it)",
            path.display()
        )
    });
    if rendered != expected {
        for (i, (a, b)) in rendered.lines().zip(expected.lines()).enumerate() {
            if a != b {
                let name = a.split(' ').next().unwrap_or("");
                panic!(
                    "golden vectors changed at line {} ({name}).\n got: {a}\nwant: {b}\n\
                     If the wire format changed on purpose, regenerate with WSIS_BLESS=1.",
                    i + 1
                );
            }
        }
        panic!(
            "golden vectors differ in their number of lines: got {}, want {}",
            rendered.lines().count(),
            expected.lines().count()
        );
    }
}

/// Decodes the checked-in file (not the freshly built ops) so that the file itself is known to be valid.
#[test]
fn golden_file_decodes_verifies_and_is_self_certifying() {
    // While blessing, the file is being rewritten by the other test: check what is being written instead.
    let text = if std::env::var("WSIS_BLESS").as_deref() == Ok("1") {
        render(&Golden::build())
    } else {
        std::fs::read_to_string(golden_path()).unwrap()
    };
    let mut federation = None;
    let mut seen_ops: Vec<OpId> = Vec::new();
    let mut op_count = 0;
    let mut record_count = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let parts: Vec<&str> = line.split(' ').collect();
        if parts[0] == "federation" {
            federation = Some(parts[1].parse::<FederationId>().unwrap());
            continue;
        }
        let [name, id, hex] = parts[..] else {
            panic!("malformed line {line:?}");
        };
        let bytes = hex::decode(hex).unwrap();
        if name.starts_with("inception-record-") {
            let rec = SignedInception::from_bytes(&bytes).unwrap();
            assert_eq!(id.parse::<OrgId>().unwrap().to_string(), id, "{name}");
            assert_eq!(rec.id().to_string(), id, "{name}");
            assert_eq!(rec.id().0, sha256(&bytes), "{name}");
            record_count += 1;
            continue;
        }
        let op = SignedOp::from_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(id.parse::<OpId>().unwrap().to_string(), id, "{name}");
        assert_eq!(op.id().to_string(), id, "{name}");
        assert_eq!(op.id().0, sha256(&bytes), "{name}");
        assert_eq!(op.bytes(), &bytes[..]);
        assert_eq!(op.body().encode(), op.body_bytes(), "{name} is canonical");
        // Parents come before their children in the file and the federation is the genesis hash.
        for p in op.parents() {
            assert!(seen_ops.contains(p), "{name}: parent {p} not earlier");
        }
        match op.kind() {
            OpKind::Genesis(g) => {
                assert_eq!(op_count, 0, "the genesis comes first");
                assert_eq!(Some(FederationId(op.id().0)), federation);
                assert_eq!(g.name, "WSIS golden");
                assert_eq!(g.secretariat.len(), 2);
                assert_eq!(g.teams.len(), 3);
            }
            _ => assert_eq!(op.body().federation, federation, "{name}"),
        }
        seen_ops.push(op.id());
        op_count += 1;
    }
    assert_eq!(record_count, 4);
    assert_eq!(op_count, 7);
}
