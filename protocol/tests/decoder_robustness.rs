//! Catalogue case 39 for the op and inception decoders: random bytes and random mutations (bit flips, truncation,
//! insertion, deletion, overwrites) of valid signed ops, inception records and a genesis go into
//! `SignedOp::decode`, `SignedOp::from_bytes` and `SignedInception::from_bytes`. Nothing may panic, and whatever
//! decodes must be canonical: re-encoding it gives back exactly the bytes that were decoded (one encoding per
//! value, so one id per value).
#![allow(clippy::unwrap_used)]

mod common;

use common::{item, unwrap, wrap, Golden, T0};
use proptest::prelude::*;
use proptest::sample::Index;
use std::process::Command;
use std::sync::OnceLock;
use wsis_protocol::cbor::Encoder;
use wsis_protocol::fixture::one_of_every_kind;
use wsis_protocol::ids::{OpId, OrgId};
use wsis_protocol::limits::MAX_OP_BYTES;
use wsis_protocol::op::{MotionKind, OpError, OpKind, SignedInception, SignedOp, TeamCode};

/// Valid signed records to mutate: the golden federation plus one op of every other kind.
struct Corpus {
    ops: Vec<Vec<u8>>,
    inceptions: Vec<Vec<u8>>,
}

fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
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
        let kinds = one_of_every_kind(leave(3, T0), leave(3, T0 + 1));
        let mut ops: Vec<Vec<u8>> = g.ops.iter().map(|(_, op)| op.bytes().to_vec()).collect();
        for (i, kind) in kinds.into_iter().enumerate() {
            let op = g
                .kenya
                .op(fed, 3 + i as u64, &[g.head()], T0 + i as u64, kind);
            ops.push(op.bytes().to_vec());
        }
        let inceptions = [&g.itu, &g.unesco, &g.kenya, &g.ngo]
            .iter()
            .map(|o| o.inception.bytes().to_vec())
            .collect();
        Corpus { ops, inceptions }
    })
}

/// The canonical encoding of an inception record's body, written here from the documented schema (the crate's
/// own encoder is private): decoding and re-encoding must give the bytes that were signed.
fn encode_inception_body(rec: &SignedInception) -> Vec<u8> {
    let b = rec.body();
    let mut e = Encoder::new();
    e.map(5 + b.country.is_some() as usize);
    e.key(0).u64(1);
    e.key(1).text(&b.name);
    e.key(2).u64(b.stakeholder as u64);
    if let Some(c) = b.country {
        e.key(3).text(c.as_str());
    }
    e.key(4).bytes(b.key.as_bytes());
    e.key(5).u64(b.created_ms);
    e.into_bytes()
}

fn check_inception_canonical(rec: &SignedInception) {
    let (body, sig) = unwrap(rec.bytes());
    assert_eq!(encode_inception_body(rec), body, "inception not canonical");
    assert_eq!(wrap(&body, &sig), rec.bytes());
    assert_eq!(rec.id(), OrgId::of_bytes(rec.bytes()));
}

/// Strictly ascending: sets encoded as lists have exactly one order.
fn ascending<T: Ord + std::fmt::Debug>(items: &[T], what: &str) {
    assert!(
        items.windows(2).all(|w| w[0] < w[1]),
        "{what} not strictly ascending: {items:?}"
    );
}

fn check_op_canonical(op: &SignedOp) {
    assert_eq!(
        op.body().encode(),
        op.body_bytes(),
        "op body not canonical: {op:?}"
    );
    assert_eq!(wrap(op.body_bytes(), op.signature()), op.bytes());
    assert_eq!(op.id(), OpId::of_bytes(op.bytes()));
    // The encoder writes lists in the order given, so re-encoding alone can't tell a reordered set: check the
    // order of every set-valued field.
    ascending(op.parents(), "parents");
    match op.kind() {
        OpKind::Genesis(g) => g.secretariat.iter().for_each(check_inception_canonical),
        OpKind::OrgInception(rec) => check_inception_canonical(rec),
        OpKind::Evidence { first, second } => {
            check_op_canonical(first);
            check_op_canonical(second);
        }
        OpKind::Motion {
            motion: MotionKind::Checkpoint { heads },
            ..
        } => ascending(heads, "checkpoint heads"),
        OpKind::Motion {
            motion: MotionKind::AdoptProcedure(p),
            ..
        } => ascending(&p.teams, "procedure teams"),
        OpKind::ApproveRecord {
            record: attestation,
            ..
        }
        | OpKind::SubmitOutput { attestation, .. }
        | OpKind::SubmitNationalReport { attestation, .. } => {
            ascending(&attestation.heads, "document heads")
        }
        _ => {}
    }
}

/// What the decoders said about some bytes.
struct Verdict {
    /// `SignedOp::decode` accepted them.
    decoded: bool,
    /// `SignedOp::from_bytes` or `SignedInception::from_bytes` accepted them.
    verified: bool,
}

/// Runs every decoder on `bytes`, checking that whatever decodes is canonical.
fn check_all(bytes: &[u8]) -> Verdict {
    let decoded = SignedOp::decode(bytes);
    if let Ok(op) = &decoded {
        assert_eq!(op.bytes(), bytes);
        check_op_canonical(op);
    }
    // `from_bytes` is `decode` plus the signature check, nothing else.
    let mut verified = false;
    match (&decoded, SignedOp::from_bytes(bytes)) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, &b);
            verified = true;
        }
        (Ok(_), Err(e)) => assert_eq!(e, OpError::BadSignature),
        (Err(a), Err(b)) => assert_eq!(a, &b),
        (Err(e), Ok(_)) => panic!("from_bytes accepted what decode refused: {e}"),
    }
    if let Ok(rec) = SignedInception::from_bytes(bytes) {
        assert_eq!(rec.bytes(), bytes);
        check_inception_canonical(&rec);
        verified = true;
    }
    Verdict {
        decoded: decoded.is_ok(),
        verified,
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    Truncate(Index),
    Insert(Index, u8),
    Delete(Index),
    Overwrite(Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => any::<Index>().prop_map(Mutation::Delete),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Overwrite(i, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        if bytes.is_empty() {
            bytes.push(0);
        }
        let n = bytes.len();
        match m {
            Mutation::FlipBit(i, b) => bytes[i.index(n)] ^= 1 << b,
            Mutation::Truncate(i) => bytes.truncate(i.index(n)),
            Mutation::Insert(i, b) => bytes.insert(i.index(n + 1), *b),
            Mutation::Delete(i) => {
                bytes.remove(i.index(n));
            }
            Mutation::Overwrite(i, b) => bytes[i.index(n)] = *b,
        }
    }
}

/// Where the items of a canonical encoding are, for structure-aware mutations: every item head, and the spans of
/// the elements of every array and of the entries (key and value) of every map. Nested signed records are byte
/// strings and are not entered.
#[derive(Default)]
struct Layout {
    /// (offset, head length, major type, argument)
    heads: Vec<(usize, usize, u8, u64)>,
    /// Per array or map with at least two members: (is a map, spans of its members).
    groups: Vec<(bool, Vec<(usize, usize)>)>,
}

fn layout(b: &[u8]) -> Layout {
    fn item(b: &[u8], pos: &mut usize, out: &mut Layout) {
        let at = *pos;
        let (major, info) = (b[at] >> 5, b[at] & 0x1f);
        let extra = match info {
            0..=23 => 0,
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => panic!("not canonical input"),
        };
        let arg = if extra == 0 {
            info as u64
        } else {
            b[at + 1..at + 1 + extra]
                .iter()
                .fold(0u64, |a, x| a << 8 | *x as u64)
        };
        *pos = at + 1 + extra;
        out.heads.push((at, 1 + extra, major, arg));
        match major {
            2 | 3 => *pos += arg as usize,
            4 | 5 => {
                let per = if major == 5 { 2 } else { 1 };
                let mut spans = Vec::new();
                for _ in 0..arg {
                    let start = *pos;
                    for _ in 0..per {
                        item(b, pos, out);
                    }
                    spans.push((start, *pos));
                }
                if spans.len() >= 2 {
                    out.groups.push((major == 5, spans));
                }
            }
            _ => {}
        }
    }
    let mut out = Layout::default();
    let mut pos = 0;
    item(b, &mut pos, &mut out);
    assert_eq!(pos, b.len());
    out
}

/// The head at `at` rewritten one size longer: same value, non-minimal encoding.
fn widen(b: &[u8], (at, len, major, arg): (usize, usize, u8, u64)) -> Option<Vec<u8>> {
    let m = major << 5;
    let head: Vec<u8> = match len {
        1 => vec![m | 24, arg as u8],
        2 => [vec![m | 25], (arg as u16).to_be_bytes().to_vec()].concat(),
        3 => [vec![m | 26], (arg as u32).to_be_bytes().to_vec()].concat(),
        5 => [vec![m | 27], arg.to_be_bytes().to_vec()].concat(),
        _ => return None,
    };
    Some([&b[..at], &head[..], &b[at + len..]].concat())
}

/// Members `i` and `i + 1` of a group swapped.
fn swap(b: &[u8], spans: &[(usize, usize)], i: usize) -> Vec<u8> {
    let ((s0, e0), (s1, e1)) = (spans[i], spans[i + 1]);
    [&b[..s0], &b[s1..e1], &b[s0..e0], &b[e1..]].concat()
}

/// A seed record: any op or inception record of the corpus.
fn seed() -> impl Strategy<Value = &'static [u8]> {
    let c = corpus();
    let all: Vec<&'static [u8]> = c
        .ops
        .iter()
        .chain(&c.inceptions)
        .map(|v| v.as_slice())
        .collect();
    proptest::sample::select(all)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_all(&bytes);
    }

    /// Random bytes behind a valid wrapper head, so the body decoder sees them.
    #[test]
    fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut with_map = vec![0xa9, 0x00, 0x01];
        with_map.extend_from_slice(&body);
        check_all(&wrap(&body, &[0; 64]));
        check_all(&wrap(&with_map, &[0; 64]));
    }

    #[test]
    fn mutated_signed_records_never_panic_and_decode_canonically(
        seed in seed(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let mut bytes = seed.to_vec();
        apply(&mut bytes, &mutations);
        check_all(&bytes);
    }

    /// Mutates only the body and re-wraps it, so that the mutation reaches the body decoder (and, for nested records,
    /// the decoders below it) instead of breaking the wrapper.
    #[test]
    fn mutated_bodies_never_panic_and_decode_canonically(
        seed in seed(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let (mut body, sig) = unwrap(seed);
        apply(&mut body, &mutations);
        let verdict = check_all(&wrap(&body, &sig));
        // The signature covers every byte of the body: a changed body never verifies.
        prop_assert!(!verdict.verified || body == unwrap(seed).0);
    }
    /// Structure-aware: one item of a valid body re-encoded in a longer (non-minimal) form. The value is unchanged,
    /// so accepting it would give one value two encodings and two ids: it must never decode.
    #[test]
    fn non_minimal_heads_never_decode(seed in seed(), which in any::<Index>()) {
        let (body, sig) = unwrap(seed);
        let l = layout(&body);
        if let Some(widened) = widen(&body, l.heads[which.index(l.heads.len())]) {
            let verdict = check_all(&wrap(&widened, &sig));
            prop_assert!(!verdict.decoded && !verdict.verified);
        }
    }

    /// Structure-aware: two adjacent members of a map or an array swapped. Swapped map entries are out of order and
    /// must never decode; a swapped array may decode only if its order is data (e.g. section names), and then it
    /// must still be canonical (sets such as parents are checked to be ascending).
    #[test]
    fn swapped_members_decode_only_when_order_is_data(
        seed in seed(),
        group in any::<Index>(),
        at in any::<Index>(),
    ) {
        let (body, sig) = unwrap(seed);
        let l = layout(&body);
        if !l.groups.is_empty() {
            let (is_map, spans) = &l.groups[group.index(l.groups.len())];
            let swapped = swap(&body, spans, at.index(spans.len() - 1));
            let verdict = check_all(&wrap(&swapped, &sig));
            prop_assert!(!verdict.verified);
            if *is_map {
                prop_assert!(!verdict.decoded);
            }
        }
    }
}

/// Deterministic: a single-bit flip at every byte position of every corpus record (bit `i % 8` of byte `i`, so
/// every bit position is hit across a record). Each flip is refused by `from_bytes` (a decode error or a bad
/// signature, never a silently different op), and enough of them still decode structurally that the canonical
/// re-encoding check is not vacuous.
#[test]
fn a_bit_flip_at_any_position_is_refused() {
    let c = corpus();
    let (mut flips, mut decoded) = (0usize, 0usize);
    for seed in c.ops.iter().chain(&c.inceptions) {
        for i in 0..seed.len() {
            let mut b = seed.clone();
            b[i] ^= 1 << (i % 8);
            let verdict = check_all(&b);
            assert!(!verdict.verified, "flip at byte {i} still verifies");
            decoded += verdict.decoded as usize;
            flips += 1;
        }
    }
    println!("{flips} bit flips, {decoded} still decoded structurally");
    assert!(flips > 5_000, "{flips}");
    assert!(decoded > 1_000, "{decoded}");
}

/// An `Evidence` op whose first op is an `Evidence` op whose first op is … as deep as fits in `MAX_OP_BYTES`. Each
/// level is only what the decoder reads before it recurses (no federation, no parents, no second op): that is
/// what a hostile peer would send.
fn deepest_nested_evidence() -> (Vec<u8>, usize) {
    let g = Golden::build();
    let key = g.ngo.secret.public();
    let level = |inner: &[u8]| {
        let body = item(|e| {
            e.map(8).key(0).u64(1);
            e.key(2).bytes(&g.ngo.inception.id().0);
            e.key(3).bytes(key.as_bytes());
            e.key(4)
                .u64(1)
                .key(5)
                .array(0)
                .key(6)
                .u64(T0)
                .key(7)
                .u64(18);
            e.key(8).map(1).key(0).bytes(inner);
        });
        wrap(&body, &[0; 64])
    };
    let mut bytes = g.op("join-team-ngo-c7-ehealth").bytes().to_vec();
    let mut depth = 0;
    loop {
        let next = level(&bytes);
        if next.len() > MAX_OP_BYTES {
            return (bytes, depth);
        }
        bytes = next;
        depth += 1;
    }
}

const NESTED_CHILD: &str = "WSIS_TEST_NESTED_EVIDENCE_CHILD";
const NESTED_TEST: &str = "deeply_nested_evidence_is_refused_without_overflowing_the_stack";

/// Evidence must not nest evidence; the decoder has to refuse that *before* recursing, or one op under the size
/// limit recurses once per level (about 1,600 levels in 256 KiB) and overflows a thread's stack, which aborts the
/// whole process: a remote crash. The decode runs on a 2 MiB stack (the default for Rust and tokio worker
/// threads) in a child process, so that a stack overflow fails this test instead of killing the test binary.
#[test]
fn deeply_nested_evidence_is_refused_without_overflowing_the_stack() {
    if std::env::var_os(NESTED_CHILD).is_some() {
        let (bytes, depth) = deepest_nested_evidence();
        println!("{} bytes, {depth} levels", bytes.len());
        let result = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || SignedOp::decode(&bytes).map(|_| ()))
            .unwrap()
            .join()
            .unwrap();
        assert!(result.is_err());
        return;
    }
    let (bytes, depth) = deepest_nested_evidence();
    assert!(depth > 1000 && bytes.len() <= MAX_OP_BYTES, "{depth}");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([NESTED_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(NESTED_CHILD, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "decoding a {}-byte op of {depth} nested evidence levels crashed or failed ({}):\n{}{}",
        bytes.len(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The child really ran the decode (a filter that matched nothing would also exit 0).
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
