//! The store: round trips, reopening, tampering, envelope order, and kill -9 during writes (trust-model case 41).

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wsis_node::store::{PeerRecord, Store, StoreError, StoreOpenError, StoreOptions};
use wsis_protocol::crypto::SecretKey;
use wsis_protocol::envelope::{automerge_actor, ChangeEnvelope, SignedEnvelope};
use wsis_protocol::ids::{DocId, EnvelopeId, FederationId, OpId, OrgId};
use wsis_protocol::op::{OpBody, OpKind, SignedOp, TeamCode};

const FED: FederationId = FederationId([9; 32]);

fn author(seed: u8) -> (SecretKey, OrgId) {
    (SecretKey::from_seed(&[seed; 32]), OrgId([seed; 32]))
}

/// A correctly signed op, distinct for every `seq`.
fn op(secret: &SecretKey, author: OrgId, seq: u64) -> SignedOp {
    let team = TeamCode::new("C7.EHEALTH").expect("valid team code");
    signed(secret, author, seq, OpKind::JoinTeam { team })
}

/// `kind` signed by `author` as its op `seq` (the store checks signatures, not governance: one fake parent).
fn signed(secret: &SecretKey, author: OrgId, seq: u64, kind: OpKind) -> SignedOp {
    OpBody {
        federation: Some(FED),
        author,
        key: secret.public(),
        seq,
        parents: vec![OpId([1; 32])],
        timestamp_ms: seq,
        kind,
    }
    .sign(secret)
}

/// Writes one change per call to one document, each sealed in its own envelope.
struct DocWriter {
    secret: SecretKey,
    author: OrgId,
    doc: DocId,
    salt: [u8; 16],
    am: AutoCommit,
    n: i64,
}

impl DocWriter {
    fn new(seed: u8, doc: DocId, salt: [u8; 16]) -> Self {
        let (secret, author) = author(seed);
        let am = AutoCommit::new().with_actor(automerge_actor(&secret.public(), &doc, &salt));
        Self {
            secret,
            author,
            doc,
            salt,
            am,
            n: 0,
        }
    }

    fn next(&mut self) -> SignedEnvelope {
        self.n += 1;
        self.am.put(ROOT, "n", self.n).expect("put");
        self.am.commit();
        let change = self
            .am
            .get_last_local_change()
            .expect("a change was committed");
        ChangeEnvelope::seal(
            FED,
            self.doc,
            self.author,
            &self.secret,
            self.salt,
            vec![OpId([1; 32])],
            vec![change],
        )
        .expect("seal")
    }
}

fn ids(ops: &[SignedOp]) -> HashSet<OpId> {
    ops.iter().map(SignedOp::id).collect()
}

#[tokio::test]
async fn ops_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let (sk, org) = author(1);
    let ops: Vec<SignedOp> = (1..=20).map(|s| op(&sk, org, s)).collect();
    for o in &ops {
        store.put_op(o).await.expect("put");
    }
    // Idempotent.
    store.put_op(&ops[0]).await.expect("put again");
    for o in &ops {
        assert!(store.contains_op(&o.id()).expect("contains"));
        let back = store.get_op(&o.id()).expect("get").expect("present");
        assert_eq!(back.bytes(), o.bytes());
    }
    assert_eq!(store.get_op(&OpId([0; 32])).expect("get"), None);
    let loaded = store.load_ops().expect("load");
    assert_eq!(ids(&loaded), ids(&ops));
    assert_eq!(store.op_count(), 20);
}

#[test]
fn reopen_after_drop_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sk, org) = author(2);
    let ops: Vec<SignedOp> = (1..=50).map(|s| op(&sk, org, s)).collect();
    {
        let store = Store::open(dir.path()).expect("open");
        store.bind_federation_blocking(FED).expect("bind");
        for o in &ops {
            store.put_op_blocking(o).expect("put");
        }
        store
            .put_peer_blocking(
                b"peer-1",
                &PeerRecord {
                    addresses: vec!["/ip4/127.0.0.1/tcp/4001".into()],
                    org: Some(org),
                    last_seen_ms: Some(5),
                },
            )
            .expect("peer");
    }
    // Reopened at once in the same process: dropping the store released sled's lock.
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.federation(), Some(FED));
    assert_eq!(ids(&store.load_ops().expect("load")), ids(&ops));
    let peers = store.load_peers().expect("peers");
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].0, b"peer-1");
    assert_eq!(peers[0].1.org, Some(org));
}

#[test]
fn a_second_open_is_refused_while_the_first_is_alive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = Store::open(dir.path()).expect("open");
    let err = Store::open(dir.path()).expect_err("locked");
    assert!(matches!(err, StoreOpenError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("in use by another process"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_are_all_acknowledged_and_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let mut tasks = Vec::new();
    for t in 0..64u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let (sk, org) = author(3);
            let mut mine = Vec::new();
            for i in 0..40 {
                let o = op(&sk, org, 1 + t * 1000 + i);
                store.put_op(&o).await.expect("put");
                mine.push(o.id());
            }
            mine
        }));
    }
    let mut all = HashSet::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    assert_eq!(all.len(), 64 * 40);
    assert_eq!(ids(&store.load_ops().expect("load")), all);
}

/// Changes `tree`'s value at `key` directly in sled, as disk corruption or a hand edit would.
fn tamper(db: &Path, tree: &str, key: &[u8], edit: impl FnOnce(&mut Vec<u8>)) {
    let db = sled::open(db).expect("sled");
    let tree = db.open_tree(tree).expect("tree");
    let mut value = tree.get(key).expect("read").expect("present").to_vec();
    edit(&mut value);
    tree.insert(key, value).expect("write");
    db.flush().expect("flush");
}

#[test]
fn a_tampered_op_is_named_on_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sk, org) = author(4);
    let ops: Vec<SignedOp> = (1..=10).map(|s| op(&sk, org, s)).collect();
    {
        let store = Store::open(dir.path()).expect("open");
        for o in &ops {
            store.put_op_blocking(o).expect("put");
        }
    }
    let victim = ops[3].id();
    tamper(dir.path(), "ops", &victim.0, |v| {
        let last = v.len() - 1;
        v[last] ^= 1;
    });
    let store = Store::open(dir.path()).expect("reopen");
    let err = store.load_ops().expect_err("damaged");
    match &err {
        StoreError::Damaged { tree, key, reason } => {
            assert_eq!(*tree, "ops");
            assert_eq!(key, &victim.to_string());
            assert!(reason.contains("hash"), "{reason}");
        }
        other => panic!("expected Damaged, got {other}"),
    }
    assert!(err.to_string().contains(&victim.to_string()));
    assert!(store.get_op(&victim).is_err());
    assert!(store
        .get_op(&ops[0].id())
        .expect("others still read")
        .is_some());
}

#[test]
fn an_op_re_keyed_under_its_new_hash_still_fails_its_signature() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sk, org) = author(5);
    let o = op(&sk, org, 1);
    {
        let store = Store::open(dir.path()).expect("open");
        store.put_op_blocking(&o).expect("put");
    }
    // A forger who also fixes up the key: flip a signature bit and store the bytes under their own hash.
    let mut forged = o.bytes().to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let forged_id = OpId::of_bytes(&forged);
    {
        let db = sled::open(dir.path()).expect("sled");
        let ops = db.open_tree("ops").expect("tree");
        ops.insert(forged_id.0, forged).expect("write");
        db.flush().expect("flush");
    }
    let store = Store::open(dir.path()).expect("reopen");
    match store.load_ops() {
        Err(StoreError::Damaged { tree, key, reason }) => {
            assert_eq!(tree, "ops");
            assert_eq!(key, forged_id.to_string());
            assert!(reason.contains("signature"), "{reason}");
        }
        other => panic!("expected Damaged, got {other:?}"),
    }
}

#[tokio::test]
async fn ops_of_another_federation_are_refused_once_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.bind_federation(FED).await.expect("bind");
    store.bind_federation(FED).await.expect("same again");
    let other = FederationId([8; 32]);
    assert!(matches!(
        store.bind_federation(other).await,
        Err(StoreError::WrongFederation { .. })
    ));
    let (sk, org) = author(6);
    let mut body = op(&sk, org, 1).body().clone();
    body.federation = Some(other);
    let foreign = body.sign(&sk);
    assert!(matches!(
        store.put_op(&foreign).await,
        Err(StoreError::WrongFederation { .. })
    ));
}

#[tokio::test]
async fn envelopes_are_listed_per_document_in_insertion_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let doc_a = DocId([0xa0; 32]);
    let doc_b = DocId([0x0b; 32]);
    let mut a = DocWriter::new(7, doc_a, [1; 16]);
    let mut b = DocWriter::new(8, doc_b, [2; 16]);
    let (mut order_a, mut order_b) = (Vec::new(), Vec::new());
    {
        let store = Store::open(dir.path()).expect("open");
        let first = a.next();
        assert!(matches!(
            store.put_envelope(&first).await,
            Err(StoreError::NotBound)
        ));
        store.bind_federation(FED).await.expect("bind");
        store.put_envelope(&first).await.expect("put");
        order_a.push(first.id());
        for _ in 0..10 {
            let (ea, eb) = (a.next(), b.next());
            store.put_envelope(&eb).await.expect("put");
            store.put_envelope(&ea).await.expect("put");
            order_b.push(eb.id());
            order_a.push(ea.id());
        }
        // A duplicate neither moves nor repeats an envelope.
        let dup = store
            .get_envelope(&order_a[0])
            .expect("get")
            .expect("present");
        store.put_envelope(&dup).await.expect("dup");
        let listed: Vec<EnvelopeId> = store
            .envelopes_of(&doc_a)
            .expect("list")
            .iter()
            .map(SignedEnvelope::id)
            .collect();
        assert_eq!(listed, order_a);
    }
    let store = Store::open(dir.path()).expect("reopen");
    let of = |doc| -> Vec<EnvelopeId> {
        store
            .envelopes_of(&doc)
            .expect("list")
            .iter()
            .map(SignedEnvelope::id)
            .collect()
    };
    assert_eq!(of(doc_a), order_a);
    assert_eq!(of(doc_b), order_b);
    assert_eq!(of(DocId([0; 32])), Vec::<EnvelopeId>::new());
    let all = store.load_envelopes().expect("load");
    assert_eq!(all.len(), order_a.len() + order_b.len());
}

#[test]
fn queued_envelopes_are_durable_once_their_pending_writes_resolve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let doc = DocId([0xc0; 32]);
    let mut w = DocWriter::new(10, doc, [4; 16]);
    let envs: Vec<SignedEnvelope> = (0..20).map(|_| w.next()).collect();
    {
        let store = Store::open(dir.path()).expect("open");
        assert!(matches!(
            store.queue_envelope_blocking(&envs[0]),
            Err(StoreError::NotBound)
        ));
        store.bind_federation_blocking(FED).expect("bind");
        // Queue all, then wait for all: what the node does for one sync response.
        let pending: Vec<_> = envs
            .iter()
            .map(|e| store.queue_envelope_blocking(e).expect("queued"))
            .collect();
        for p in pending {
            p.wait().expect("flushed");
        }
    }
    let store = Store::open(dir.path()).expect("reopen");
    let listed: Vec<EnvelopeId> = store
        .envelopes_of(&doc)
        .expect("list")
        .iter()
        .map(SignedEnvelope::id)
        .collect();
    assert_eq!(
        listed,
        envs.iter().map(SignedEnvelope::id).collect::<Vec<_>>()
    );
}

#[test]
fn a_tampered_envelope_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let doc = DocId([0xd0; 32]);
    let mut w = DocWriter::new(9, doc, [3; 16]);
    let env = w.next();
    {
        let store = Store::open(dir.path()).expect("open");
        store.bind_federation_blocking(FED).expect("bind");
        store.put_envelope_blocking(&env).expect("put");
    }
    tamper(dir.path(), "envelopes", &env.id().0, |v| v[10] ^= 0x40);
    let store = Store::open(dir.path()).expect("reopen");
    for result in [store.load_envelopes(), store.envelopes_of(&doc)] {
        match result {
            Err(StoreError::Damaged { tree, key, .. }) => {
                assert_eq!(tree, "envelopes");
                assert_eq!(key, env.id().to_string());
            }
            other => panic!("expected Damaged, got {other:?}"),
        }
    }
}

#[test]
fn oversized_or_empty_peer_ids_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    assert!(matches!(
        store.put_peer_blocking(&[], &PeerRecord::default()),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.put_peer_blocking(&[1; 129], &PeerRecord::default()),
        Err(StoreError::TooLarge { .. })
    ));
    let huge = PeerRecord {
        addresses: vec!["x".repeat(20_000)],
        ..PeerRecord::default()
    };
    assert!(matches!(
        store.put_peer_blocking(b"p", &huge),
        Err(StoreError::TooLarge { .. })
    ));
}

// -------------------------------------------------------------------------------------------------------------
// kill -9 during writes (trust-model case 41).
//
// The parent re-runs this test binary with `WSIS_CRASH_WRITER=<db>` and the filter `crash_writer_child`: that
// test then writes ops and envelopes from many tasks and prints `ACK <id>` only after each write was
// acknowledged. The parent SIGKILLs it at a seeded random moment, reopens the store and checks that every
// acknowledged id is there and verifies. Every cycle appends to the same store, so recovery runs over a growing
// log that has itself been recovered many times.
//
// SIGKILL tests a process crash: what the process handed to the kernel survives, what it only held in memory
// does not. Power loss additionally depends on fsync doing its job, which `flush` calls.

const CHILD_ENV: &str = "WSIS_CRASH_WRITER";
const CYCLE_ENV: &str = "WSIS_CRASH_CYCLE";
const OP_TASKS: u64 = 24;
const ENVELOPE_TASKS: u64 = 4;

/// One line per acknowledged write, written whole and flushed, so a kill can cut off at most a line that was
/// never complete (and so never counted).
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    if out
        .write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        // The parent is gone: nobody is counting.
        std::process::exit(0);
    }
}

#[test]
fn crash_writer_child() {
    let Ok(db) = std::env::var(CHILD_ENV) else {
        return; // A normal test run: this test only acts as the parent's child process.
    };
    let cycle: u64 = std::env::var(CYCLE_ENV)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store = Store::open(&db).expect("child opens the store");
        store.bind_federation(FED).await.expect("bind");
        report("READY\n");
        let mut tasks = Vec::new();
        for t in 0..OP_TASKS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let (sk, org) = author(10 + t as u8);
                for i in 0.. {
                    // Distinct across tasks and cycles.
                    let o = op(&sk, org, 1 + cycle * 1_000_000_000 + i);
                    match store.put_op(&o).await {
                        Ok(()) => report(&format!("ACK {}\n", o.id())),
                        Err(e) => report(&format!("ERR {e}\n")),
                    }
                }
            }));
        }
        for t in 0..ENVELOPE_TASKS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                // A fresh salt per cycle: a new session, so (actor, seq) is never reused.
                let mut salt = [0u8; 16];
                salt[..8].copy_from_slice(&cycle.to_be_bytes());
                salt[8] = t as u8;
                let mut w = DocWriter::new(100 + t as u8, DocId([t as u8; 32]), salt);
                loop {
                    let env = w.next();
                    match store.put_envelope(&env).await {
                        Ok(()) => report(&format!("ENV {}\n", env.id())),
                        Err(e) => report(&format!("ERR {e}\n")),
                    }
                }
            }));
        }
        // Never outlive a parent that failed to kill us.
        tokio::time::sleep(Duration::from_secs(60)).await;
        std::process::exit(2);
    });
}

#[test]
fn kill_9_never_loses_an_acknowledged_write() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let soak = std::env::var("WSIS_SOAK").is_ok_and(|v| v == "1");
    let cycles = if soak { 100 } else { 20 };
    let seed: u64 = std::env::var("WSIS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5715_0041);
    eprintln!("kill -9 test: {cycles} cycles, seed {seed} (set WSIS_CRASH_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    let exe = std::env::current_exe().expect("test binary path");
    let mut acked_ops: Vec<OpId> = Vec::new();
    let mut acked_envs: Vec<EnvelopeId> = Vec::new();
    let started = Instant::now();

    for cycle in 0..cycles {
        let child_log = dir.path().join(format!("child-{cycle}.stderr"));
        let log = || std::fs::read_to_string(&child_log).unwrap_or_default();
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_writer_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &db)
            .env(CYCLE_ENV, cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::File::create(&child_log).expect("child log"),
            ))
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });

        // One cycle in eight is killed early, possibly while sled is still opening or recovering.
        let early = rng.gen_ratio(1, 8);
        let delay = Duration::from_millis(if early {
            rng.gen_range(0..40)
        } else {
            rng.gen_range(0..250)
        });
        let mut lines = Vec::new();
        if !early {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    // libtest prints `test crash_writer_child ... ` on the same line, without a newline.
                    Ok(l) if l.ends_with("READY") => break,
                    Ok(l) => lines.push(l),
                    Err(e) => panic!(
                        "cycle {cycle} (seed {seed}): the child never became ready: {e}\n{}",
                        log()
                    ),
                }
            }
        }
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("reap");
        reader.join().expect("reader");
        lines.extend(rx.try_iter());
        assert!(
            status.code().is_none(),
            "cycle {cycle}: the child exited on its own ({status}); it must die by the signal"
        );

        let (mut ops_now, mut envs_now) = (0, 0);
        for line in &lines {
            assert!(
                !line.starts_with("ERR"),
                "cycle {cycle}: a write failed: {line}"
            );
            if let Some(id) = line.strip_prefix("ACK ") {
                // A line cut short by the kill does not parse and was never a complete acknowledgement.
                if let Ok(id) = id.parse() {
                    acked_ops.push(id);
                    ops_now += 1;
                }
            } else if let Some(id) = line.strip_prefix("ENV ") {
                if let Ok(id) = id.parse() {
                    acked_envs.push(id);
                    envs_now += 1;
                }
            }
        }

        let store = Store::open(&db)
            .unwrap_or_else(|e| panic!("cycle {cycle} (seed {seed}): reopen after kill -9: {e}"));
        for id in &acked_ops[acked_ops.len() - ops_now..] {
            let found = store
                .get_op(id)
                .unwrap_or_else(|e| panic!("cycle {cycle} (seed {seed}): {e}"));
            assert!(
                found.is_some(),
                "cycle {cycle} (seed {seed}): acknowledged {id} was lost"
            );
        }
        for id in &acked_envs[acked_envs.len() - envs_now..] {
            let found = store
                .get_envelope(id)
                .unwrap_or_else(|e| panic!("cycle {cycle} (seed {seed}): {e}"));
            assert!(
                found.is_some(),
                "cycle {cycle} (seed {seed}): acknowledged {id} was lost"
            );
        }
        // The whole store, every few cycles: everything verifies and the document index is consistent.
        if cycle % 5 == 4 || cycle + 1 == cycles {
            let all = ids(&store
                .load_ops()
                .unwrap_or_else(|e| panic!("cycle {cycle} (seed {seed}): {e}")));
            let missing = acked_ops.iter().filter(|id| !all.contains(id)).count();
            assert_eq!(missing, 0, "cycle {cycle} (seed {seed}): ops lost");
            let envs: HashSet<EnvelopeId> = store
                .load_envelopes()
                .unwrap_or_else(|e| panic!("cycle {cycle} (seed {seed}): {e}"))
                .iter()
                .map(SignedEnvelope::id)
                .collect();
            assert!(
                acked_envs.iter().all(|id| envs.contains(id)),
                "cycle {cycle} (seed {seed}): envelopes lost"
            );
        }
        drop(store);
    }
    eprintln!(
        "kill -9 test: {} ops and {} envelopes acknowledged over {cycles} cycles, all present ({:.1} s)",
        acked_ops.len(),
        acked_envs.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        !acked_ops.is_empty(),
        "no write was ever acknowledged: the test tested nothing"
    );
}

// -------------------------------------------------------------------------------------------------------------
// Disk full (trust-model case 44). Needs a small filesystem, so it runs only when `WSIS_SMALL_FS` names a
// directory on one, e.g. as root: `mount -t tmpfs -o size=96m tmpfs /mnt/small && WSIS_SMALL_FS=/mnt/small`.
// (Larger than the store's reserve, `MIN_FREE_BYTES` = 64 MiB, so that some writes succeed first.)

/// A large op (16 KiB of text) so that a small filesystem fills quickly.
fn big_op(secret: &SecretKey, author: OrgId, seq: u64) -> SignedOp {
    let team = TeamCode::new("C1").expect("valid team code");
    let text = format!("{seq:>16384}");
    signed(secret, author, seq, OpKind::SetModalities { team, text })
}

#[test]
fn disk_full_is_a_clear_error_and_loses_nothing_acknowledged() {
    let Ok(small) = std::env::var("WSIS_SMALL_FS") else {
        eprintln!("skipped: set WSIS_SMALL_FS to a directory on a small filesystem to run it");
        return;
    };
    let dir = tempfile::tempdir_in(small).expect("tempdir on the small filesystem");
    let (sk, org) = author(11);
    let mut acked = Vec::new();
    let err = {
        let store = Store::open(dir.path()).expect("open");
        let mut seq = 1;
        loop {
            let o = big_op(&sk, org, seq);
            match store.put_op_blocking(&o) {
                Ok(()) => acked.push(o.id()),
                Err(e) => break e,
            }
            seq += 1;
            assert!(seq < 100_000, "the filesystem never filled up");
        }
    };
    let chain = {
        let mut s = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(e) = source {
            s.push_str(": ");
            s.push_str(&e.to_string());
            source = e.source();
        }
        s
    };
    eprintln!(
        "disk full after {} acknowledged writes: {chain}",
        acked.len()
    );
    assert!(matches!(err, StoreError::DiskFull { .. }), "{chain}");
    assert!(chain.contains("free space"), "{chain}");
    assert!(
        !acked.is_empty(),
        "something was written before the disk filled"
    );
    // The store refused before sled ran out of space, so it reopens and has everything acknowledged.
    let store = Store::open(dir.path()).expect("reopens on the nearly full filesystem");
    for id in &acked {
        assert!(
            store.get_op(id).expect("verifies").is_some(),
            "acknowledged {id} lost after disk full"
        );
    }
    assert_eq!(store.load_ops().expect("all verify").len(), acked.len());
    // Still full: refused again, clearly and at once.
    assert!(matches!(
        store.put_op_blocking(&big_op(&sk, org, 999_999)),
        Err(StoreError::DiskFull { .. })
    ));
}

/// The last line of defence when the disk fills anyway (another process filled it between the free-space check
/// and sled's write): sled's flush never returns, and the writer must answer instead of hanging every caller.
/// Runs only when `WSIS_TINY_FS` names a directory on a tiny filesystem of its own (a few MiB), because it fills
/// that filesystem for good while this process lives.
#[test]
fn a_flush_that_never_returns_is_reported_not_waited_for() {
    let Ok(tiny) = std::env::var("WSIS_TINY_FS") else {
        eprintln!(
            "skipped: set WSIS_TINY_FS to a directory on a tiny filesystem of its own to run it"
        );
        return;
    };
    let dir = tempfile::tempdir_in(tiny).expect("tempdir on the tiny filesystem");
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            min_free_bytes: 0,
            flush_timeout_ms: 2_000,
        },
    )
    .expect("open");
    let (sk, org) = author(12);
    let started = Instant::now();
    let mut seq = 1;
    let err = loop {
        match store.put_op_blocking(&big_op(&sk, org, seq)) {
            Ok(()) => seq += 1,
            Err(e) => break e,
        }
        assert!(seq < 100_000, "the filesystem never filled up");
    };
    eprintln!("after {} writes: {err}", seq - 1);
    assert!(
        matches!(
            err,
            StoreError::FlushStalled { .. } | StoreError::Io { .. } | StoreError::DiskFull { .. }
        ),
        "{err}"
    );
    // Later writes are answered at once, not after another timeout.
    let again = Instant::now();
    let next = store
        .put_op_blocking(&big_op(&sk, org, seq + 1))
        .expect_err("still refused");
    eprintln!("then: {next}");
    assert!(again.elapsed() < Duration::from_secs(1));
    assert!(started.elapsed() < Duration::from_secs(60));
    // Dropping the store must not hang on the stuck flush either.
    drop(store);
}

// ---------------------------------------------------------------------------------------------------------------
// `wsis store check` and the quarantine: one bad item never bricks a node (issue 10, deliverable 3)
// ---------------------------------------------------------------------------------------------------------------

mod common;

use wsis_node::data_dir::DataDir;
use wsis_node::node::{Node, NodeOptions};
use wsis_node::store::{check_store, quarantine_store, quarantined_bytes};
use wsis_protocol::op::{MeetingKind, MotionKind, Procedure, StakeholderType};

/// The secretariat's op `seq` of `kind` after `parent`, signed with its real key (so only what the strict decoder
/// checks beyond the signature can fail).
fn secretariat_op(dir: &DataDir, seq: u64, parent: OpId, kind: OpKind) -> SignedOp {
    OpBody {
        federation: dir.federation(),
        author: dir.org_id(),
        key: dir.org_key().public(),
        seq,
        parents: vec![parent],
        timestamp_ms: 1_700_000_000_000 + seq,
        kind,
    }
    .sign(dir.org_key())
}

/// Every key of a sled tree, read directly.
fn keys_of(db: &Path, tree: &str) -> Vec<Vec<u8>> {
    let db = sled::open(db).expect("sled");
    let tree = db.open_tree(tree).expect("tree");
    tree.iter().map(|i| i.expect("read").0.to_vec()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_store_starts_and_syncs_and_keeps_every_byte() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, fed) = common::nodes::secretariat_dir(root.path(), "ITU", "WSIS test").await;
    let db = dir.db_path();
    let genesis = OpId(fed.0);
    // A good op, the procedure op with its teams in the order a person types them (every peer's decoder refuses
    // it), and a good op whose bytes will be torn.
    let convene = secretariat_op(
        &dir,
        2,
        genesis,
        OpKind::Convene {
            meeting: MeetingKind::Coordinators,
            year: 2026,
            title: "Coordinators 2026".into(),
        },
    );
    let team = |c: &str| TeamCode::new(c).expect("valid team code");
    let unsorted = secretariat_op(
        &dir,
        3,
        convene.id(),
        OpKind::Motion {
            meeting: convene.id(),
            motion: MotionKind::AdoptProcedure(Procedure {
                year: 2026,
                teams: vec![team("C7.EGOV"), team("C7.EBUS")],
                deadline_ms: 0,
                required_sections: vec![],
                national_reports: false,
            }),
        },
    );
    assert!(
        SignedOp::from_bytes(unsorted.bytes()).is_err(),
        "the strict decoder refuses unsorted teams"
    );
    let torn = secretariat_op(
        &dir,
        4,
        unsorted.id(),
        OpKind::Attend {
            meeting: convene.id(),
        },
    );
    {
        let store = Store::open(&db).expect("open");
        for o in [&convene, &unsorted, &torn] {
            store.put_op_blocking(o).expect("put");
        }
    }
    // Disk damage beside it: a torn value under its key, garbage under a key of its own, a good op's bytes under
    // another key.
    tamper(&db, "ops", &torn.id().0, |v| v.truncate(v.len() / 2));
    let garbage_key = [0xAB; 32];
    let misplaced_key = [0xCD; 32];
    {
        let raw = sled::open(&db).expect("sled");
        let ops = raw.open_tree("ops").expect("tree");
        ops.insert(garbage_key, &b"\x00 not an op"[..])
            .expect("write");
        ops.insert(misplaced_key, convene.bytes()).expect("write");
        raw.flush().expect("flush");
    }
    let torn_bytes = {
        let raw = sled::open(&db).expect("sled");
        let v = raw.open_tree("ops").expect("tree").get(torn.id().0);
        v.expect("read").expect("present").to_vec()
    };
    let before = keys_of(&db, "ops");

    // The node refuses to start and names the item and the command.
    let options = || NodeOptions {
        listen: common::loopback(),
        ..Default::default()
    };
    let open = || DataDir::open(root.path().join("ITU")).expect("data dir");
    let err = Node::start(open(), options())
        .await
        .expect_err("a damaged store does not start");
    let msg = err.to_string();
    assert!(msg.contains("store check"), "{msg}");
    assert!(msg.contains("--quarantine"), "{msg}");
    assert!(msg.contains("tree ops"), "{msg}");

    // `store check` lists all four, by tree, key and reason.
    let report = check_store(&db, Some(fed)).expect("check");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let found = |key: &[u8]| {
        report
            .findings
            .iter()
            .find(|f| f.key_hex == hex::encode(key))
            .unwrap_or_else(|| panic!("{} not listed: {:?}", hex::encode(key), report.findings))
    };
    let f = found(&unsorted.id().0);
    assert_eq!(f.tree, "ops");
    assert_eq!(f.key, unsorted.id().to_string());
    assert!(
        f.reason
            .contains("procedure teams must be sorted and unique"),
        "{}",
        f.reason
    );
    for key in [torn.id().0, garbage_key, misplaced_key] {
        let f = found(&key);
        assert_eq!(f.tree, "ops");
        assert!(f.reason.contains("hash"), "{}", f.reason);
    }
    assert_eq!(report.findings.len(), 4, "{:?}", report.findings);
    assert!(report.quarantined.is_empty());
    // The start-up error named one of them.
    assert!(
        report.findings.iter().any(|f| msg.contains(&f.key)),
        "{msg}"
    );

    // Quarantine moves exactly those, byte for byte, and loses nothing else.
    let outcome = quarantine_store(&db, Some(fed)).expect("quarantine");
    assert_eq!(outcome.moved.len(), 4);
    assert!(outcome.after.is_clean(), "{:?}", outcome.after.findings);
    assert_eq!(outcome.after.quarantined.len(), 4);
    let moved: HashSet<Vec<u8>> = [unsorted.id().0, torn.id().0, garbage_key, misplaced_key]
        .into_iter()
        .map(|k| k.to_vec())
        .collect();
    let expected: Vec<Vec<u8>> = before
        .iter()
        .filter(|k| !moved.contains(*k))
        .cloned()
        .collect();
    assert_eq!(keys_of(&db, "ops"), expected);
    assert_eq!(expected.len(), 2, "the genesis and the good op stay");
    let kept = |key: &[u8]| quarantined_bytes(&db, "ops", key).expect("read quarantine");
    assert_eq!(kept(&unsorted.id().0), vec![unsorted.bytes().to_vec()]);
    assert_eq!(kept(&torn.id().0), vec![torn_bytes.clone()]);
    assert_eq!(kept(&garbage_key), vec![b"\x00 not an op".to_vec()]);
    assert_eq!(kept(&misplaced_key), vec![convene.bytes().to_vec()]);
    // A second run moves nothing.
    assert!(quarantine_store(&db, Some(fed))
        .expect("again")
        .moved
        .is_empty());

    // The node starts, and a second node receives its later ops.
    let itu = Node::start(open(), options())
        .await
        .expect("starts once quarantined");
    assert!(itu.with_gov(|g| g.contains(&convene.id())).await);
    assert!(!itu.with_gov(|g| g.contains(&unsorted.id())).await);
    let addr = common::nodes::address_of(&itu).await;
    let ke = common::nodes::join(
        root.path(),
        "KE",
        StakeholderType::Government,
        Some("KE"),
        fed,
        &addr,
    )
    .await;
    common::nodes::admit(&itu, &ke).await;
    let later = itu
        .submit(OpKind::Convene {
            meeting: MeetingKind::Coordinators,
            year: 2027,
            title: "Coordinators 2027".into(),
        })
        .await
        .expect("a later op");
    common::nodes::eventually("the peer receives the later op", || async {
        ke.with_gov(|g| g.contains(&later.id())).await
    })
    .await;
    assert!(ke.with_gov(|g| g.contains(&convene.id())).await);
    common::nodes::eventually("both replicas agree", || async {
        common::nodes::digest(&itu).await == common::nodes::digest(&ke).await
    })
    .await;
    // That the quarantine is still intact after the node ran is checked with real processes (the node's store
    // stays locked in this process): `cli/tests/store_check.rs`.
    itu.shutdown().await;
    ke.shutdown().await;
}

#[test]
fn store_check_never_creates_a_database_and_reports_a_held_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("db");
    assert!(matches!(
        check_store(&missing, None),
        Err(StoreOpenError::Missing { .. })
    ));
    assert!(!missing.exists(), "the check created nothing");
    let store = Store::open(&missing).expect("open");
    let err = check_store(&missing, None).expect_err("a running node holds the lock");
    assert!(matches!(err, StoreOpenError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("node already running"), "{err}");
    drop(store);
    let report = check_store(&missing, None).expect("free again");
    assert!(report.is_clean());
}

#[test]
fn damaged_envelopes_index_entries_and_peer_records_are_quarantined_with_nothing_else_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let doc = DocId([0xd1; 32]);
    let mut w = DocWriter::new(10, doc, [4; 16]);
    let envs: Vec<SignedEnvelope> = (0..4).map(|_| w.next()).collect();
    {
        let store = Store::open(dir.path()).expect("open");
        store.bind_federation_blocking(FED).expect("bind");
        for e in &envs {
            store.put_envelope_blocking(e).expect("put");
        }
        store
            .put_peer_blocking(b"peer-a", &PeerRecord::default())
            .expect("peer");
    }
    tamper(dir.path(), "envelopes", &envs[1].id().0, |v| v[10] ^= 0x40);
    // An index entry naming an envelope that is not stored, and a peer record that is not JSON.
    let mut dangling = doc.0.to_vec();
    dangling.extend_from_slice(&u64::MAX.to_be_bytes());
    dangling.extend_from_slice(&[0xEE; 32]);
    {
        let raw = sled::open(dir.path()).expect("sled");
        let index = raw.open_tree("doc_index").expect("tree");
        index.insert(&dangling, &[][..]).expect("write");
        let peers = raw.open_tree("peers").expect("tree");
        peers.insert(b"peer-b", &b"{not json"[..]).expect("write");
        raw.flush().expect("flush");
    }
    let report = check_store(dir.path(), None).expect("check");
    let mut listed: Vec<(&str, String)> = report
        .findings
        .iter()
        .map(|f| (f.tree, f.key_hex.clone()))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![
            ("doc_index", hex::encode(&dangling)),
            ("envelopes", hex::encode(envs[1].id().0)),
            ("peers", hex::encode(b"peer-b")),
        ],
        "{:?}",
        report.findings
    );

    let outcome = quarantine_store(dir.path(), None).expect("quarantine");
    assert!(outcome.after.is_clean(), "{:?}", outcome.after.findings);
    // The envelope went with its own index entry, so the index names only stored envelopes.
    assert_eq!(outcome.after.quarantined.len(), 4);
    assert_eq!(
        quarantined_bytes(dir.path(), "doc_index", &dangling)
            .expect("q")
            .len(),
        1
    );
    let kept = quarantined_bytes(dir.path(), "envelopes", &envs[1].id().0).expect("q");
    assert_eq!(kept.len(), 1);
    assert_eq!(EnvelopeId::of_bytes(envs[1].bytes()), envs[1].id());
    assert_ne!(
        kept[0],
        envs[1].bytes(),
        "the tampered bytes are kept, as they were"
    );
    assert_eq!(kept[0].len(), envs[1].bytes().len());
    assert_eq!(
        quarantined_bytes(dir.path(), "peers", b"peer-b").expect("q"),
        vec![b"{not json".to_vec()]
    );
    let store = Store::open(dir.path()).expect("reopen");
    let left: Vec<EnvelopeId> = store
        .load_envelopes()
        .expect("loads")
        .iter()
        .map(SignedEnvelope::id)
        .collect();
    assert_eq!(left, vec![envs[0].id(), envs[2].id(), envs[3].id()]);
    assert_eq!(store.load_peers().expect("peers").len(), 1);
}

#[tokio::test]
async fn an_op_the_governance_replay_refuses_is_listed_and_quarantined_too() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, fed) = common::nodes::secretariat_dir(root.path(), "ITU", "WSIS test").await;
    let db = dir.db_path();
    // Well formed and correctly signed, but with a key that is not ITU's inception key: it decodes, so the
    // start does not stop at it, but the replica refuses it (as every peer does).
    let other = SecretKey::from_seed(&[0x77; 32]);
    let forged = OpBody {
        federation: Some(fed),
        author: dir.org_id(),
        key: other.public(),
        seq: 2,
        parents: vec![OpId(fed.0)],
        timestamp_ms: 1,
        kind: OpKind::Convene {
            meeting: MeetingKind::Coordinators,
            year: 2026,
            title: "Coordinators 2026".into(),
        },
    }
    .sign(&other);
    Store::open(&db)
        .expect("open")
        .put_op_blocking(&forged)
        .expect("put");
    let report = check_store(&db, Some(fed)).expect("check");
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let f = &report.findings[0];
    assert_eq!(
        (f.tree, f.key.as_str()),
        ("ops", forged.id().to_string().as_str())
    );
    assert!(
        f.reason.starts_with("refused by the governance replay"),
        "{}",
        f.reason
    );
    let outcome = quarantine_store(&db, Some(fed)).expect("quarantine");
    assert_eq!(outcome.moved.len(), 1);
    assert!(outcome.after.is_clean());
    assert_eq!(
        quarantined_bytes(&db, "ops", &forged.id().0).expect("q"),
        vec![forged.bytes().to_vec()]
    );
    let ops = Store::open(&db).expect("reopen").load_ops().expect("load");
    assert_eq!(ids(&ops), HashSet::from([OpId(fed.0)]));
}
