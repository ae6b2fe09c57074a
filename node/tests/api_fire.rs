//! The local API under fire: seeded random and adversarial requests against the API of a three-node loopback
//! federation (a secretariat, a government and an NGO, each its own node and API). Requests are plausible ones
//! built from what the nodes currently hold (real meeting, motion, document and organisation ids, the right
//! roles or the wrong ones, repeated votes) mutated with adversarial values: unsorted and duplicated lists, empty
//! and oversized fields, control characters, right-to-left text and emoji, years 0 and 65535, unknown ids, ids of
//! the wrong kind, wrong types, malformed JSON.
//!
//! The properties: every request gets a 2xx or a JSON 4xx (`{"error", "code"}`), never a 5xx and never a dropped
//! connection; afterwards the three nodes converge (equal governance and document digests), no node has
//! penalised another (what one node's API accepted, every peer accepts), and every node restarts cleanly from its
//! data directory with the same digests.
//!
//! A failure prints its seed: `WSIS_SEED=<n> cargo test -p wsis-node --test api_fire` replays it;
//! `WSIS_API_REQUESTS=<n>` sends more requests per run (the default keeps CI fast).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use wsis_node::api::types::{ErrorBody, Status};
use wsis_node::data_dir::DataDir;
use wsis_node::node::{Node, NodeOptions};
use wsis_protocol::ids::FederationId;
use wsis_protocol::op::StakeholderType;

mod common;
use common::http::http;
use common::nodes::address_of;

/// Requests per run unless `WSIS_API_REQUESTS` says otherwise.
const DEFAULT_REQUESTS: usize = 400;

/// One organisation: its node, its API and its data directory (for the restart).
struct Member {
    node: Node,
    path: PathBuf,
    addr: SocketAddr,
    token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The API server, which holds a handle on the node (and so the store's lock) until it returns.
    serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Member {
    async fn start(
        dir: DataDir,
        bootstrap: Vec<wsis_node::net::Multiaddr>,
        join: Option<FederationId>,
    ) -> Member {
        let path = dir.path().to_path_buf();
        let token = dir.api_token().to_string();
        let node = Node::start(
            dir,
            NodeOptions {
                listen: common::loopback(),
                bootstrap,
                mdns: Some(false),
                join,
                ..Default::default()
            },
        )
        .await
        .expect("start");
        let (addr, stop, serving) = common::http::serve_api(&node, &token).await;
        Member {
            node,
            path,
            addr,
            token,
            stop: Some(stop),
            serving: Some(serving),
        }
    }

    async fn call(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        http(self.addr, method, path, Some(&self.token), body).await
    }

    async fn status(&self) -> Status {
        let (code, body) = self.call("GET", "/v1/status", b"").await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status JSON")
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(serving) = self.serving.take() {
            let _ = serving.await;
        }
        self.node.shutdown().await;
    }
}

/// What the nodes hold, as ids to aim requests at.
#[derive(Default)]
struct Known {
    orgs: Vec<String>,
    meetings: Vec<String>,
    motions: Vec<String>,
    docs: Vec<String>,
    ops: Vec<String>,
}

impl Known {
    async fn refresh(&mut self, m: &Member) {
        let list = |body: String, key: &str| -> Vec<String> {
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            v.as_array()
                .map(|rows| {
                    rows.iter()
                        .filter_map(|r| r.get(key).and_then(Value::as_str).map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        self.orgs = list(m.call("GET", "/v1/orgs", b"").await.1, "id");
        self.meetings = list(m.call("GET", "/v1/meetings", b"").await.1, "id");
        self.motions = list(m.call("GET", "/v1/motions", b"").await.1, "id");
        self.docs = list(m.call("GET", "/v1/docs", b"").await.1, "id");
        self.ops = self.meetings.iter().chain(&self.motions).cloned().collect();
    }
}

/// The generator: plausible requests from what is known, mutated with adversarial values.
struct Gen {
    rng: ChaCha8Rng,
    /// Whether this request may carry adversarial values; about half are what a careful user would send, so
    /// the run reaches deep states (meetings with attendees, motions with votes, drafts with text).
    wild: bool,
}

const TEAMS: &[&str] = &["C1", "C3", "C7.EGOV", "C7.EBUS", "C11"];
const SECTIONS: &[&str] = &[
    "achievements",
    "challenges",
    "recommendations",
    "summary",
    "Achievements",
    "",
    "activities",
    "sections",
];

impl Gen {
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs.choose(&mut self.rng).copied().unwrap_or("")
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    /// A text a person or an attacker might type.
    fn text(&mut self) -> Value {
        let max = wsis_node::api::MAX_TEXT_BYTES;
        let pick = if self.wild {
            self.rng.gen_range(0..14)
        } else {
            13
        };
        let s: String = match pick {
            0 => String::new(),
            1 => " ".into(),
            2 => "\u{0}\u{7}\u{1b}[31mred\r\nnext".into(),
            3 => "\u{202e}txet lanoitan\u{202c} \u{200f}مرحبا بالعالم".into(),
            4 => "👩🏽‍💻 e-government 🇰🇪 — ✓".into(),
            5 => "x".repeat(max),
            6 => "x".repeat(max + 1),
            7 => "\u{feff}BOM and\ttabs".into(),
            8 => "🀄".repeat(max / 4 + 1),
            9 => "<script>alert(1)</script>".into(),
            _ => format!("Progress on item {}", self.rng.gen::<u16>()),
        };
        Value::String(s)
    }

    fn year(&mut self) -> Value {
        let pick = if self.wild {
            self.rng.gen_range(0..10)
        } else {
            9
        };
        match pick {
            0 => json!(0),
            1 => json!(65535),
            2 => json!(65536),
            3 => json!(-1),
            4 => json!("2026"),
            5 => json!(1e20),
            _ => json!(2026),
        }
    }

    fn team(&mut self) -> String {
        let pick = if self.wild {
            self.rng.gen_range(0..12)
        } else {
            11
        };
        match pick {
            0 => "C99".into(),
            1 => "c1".into(),
            2 => String::new(),
            3 => " C1".into(),
            _ => self.pick(TEAMS).to_string(),
        }
    }

    /// A list of teams as a person types it: any order, sometimes with repeats, sometimes junk.
    fn teams(&mut self) -> Value {
        let n = self.rng.gen_range(0..5);
        let mut v: Vec<Value> = (0..n).map(|_| Value::String(self.team())).collect();
        if self.chance(0.3) {
            if let Some(first) = v.first().cloned() {
                v.push(first);
            }
        }
        if self.chance(0.05) {
            v = (0..300).map(|i| json!(format!("C{}", i % 12))).collect();
        }
        Value::Array(v)
    }

    fn sections(&mut self) -> Value {
        let n = self.rng.gen_range(0..4);
        Value::Array(
            (0..n)
                .map(|_| Value::String(self.pick(SECTIONS).to_string()))
                .collect(),
        )
    }

    /// An id for a slot that wants `kind` (`op`, `doc` or `org`): usually a real one, else of the wrong kind,
    /// unknown or malformed.
    fn id(&mut self, real: &[String], kind: &str) -> String {
        let zeros = "0".repeat(64);
        let pick = if self.wild {
            self.rng.gen_range(0..16)
        } else {
            15
        };
        match pick {
            0 => format!("{kind}_{zeros}"),
            1 => format!("{kind}_zz"),
            2 => format!("{kind}_{}", "a".repeat(63)),
            3 => format!("{kind}_{}", "A".repeat(64)),
            4 => String::new(),
            5 => "x".repeat(5000),
            6 => real
                .choose(&mut self.rng)
                .map(|r| {
                    // The same hex under another kind's prefix.
                    let hex = r.split_once('_').map_or(r.as_str(), |(_, h)| h);
                    let other = match kind {
                        "op" => "doc",
                        "doc" => "op",
                        _ => "op",
                    };
                    format!("{other}_{hex}")
                })
                .unwrap_or_default(),
            7 => real
                .choose(&mut self.rng)
                .map(|r| r[..r.len().min(12)].to_string())
                .unwrap_or_default(),
            _ => real
                .choose(&mut self.rng)
                .cloned()
                .unwrap_or_else(|| format!("{kind}_{zeros}")),
        }
    }

    /// Something of a random JSON type, to replace a field with.
    fn junk(&mut self) -> Value {
        match self.rng.gen_range(0..9) {
            0 => Value::Null,
            1 => json!(true),
            2 => json!(-7),
            3 => json!(1.5),
            4 => json!([]),
            5 => json!({"nested": {"deeper": [1, 2, 3]}}),
            6 => json!(u64::MAX),
            7 => self.text(),
            _ => self.teams(),
        }
    }

    /// Mutates some fields of `body`: replaced by junk, dropped, or an unknown field added.
    fn mutate(&mut self, body: &mut Value) {
        let Some(map) = body.as_object_mut().filter(|_| self.wild) else {
            return;
        };
        let keys: Vec<String> = map.keys().cloned().collect();
        for k in keys {
            if self.rng.gen_bool(0.12) {
                let j = self.junk();
                map.insert(k.clone(), j);
            } else if self.rng.gen_bool(0.05) {
                map.remove(&k);
            }
        }
        if self.rng.gen_bool(0.05) {
            map.insert("unexpected".into(), json!("field"));
        }
    }

    fn motion(&mut self, k: &Known) -> Value {
        match self.rng.gen_range(0..6) {
            0 => json!({"kind": "recommend", "team": self.team(), "org": self.id(&k.orgs, "org")}),
            1 => json!({"kind": "elect", "role": self.pick(&["chair", "co-chair", "king", ""]),
                        "org": self.id(&k.orgs, "org")}),
            2 => json!({"kind": "adopt-procedure", "year": self.year(), "teams": self.teams(),
                        "deadline_ms": self.pick_deadline(), "sections": self.sections(),
                        "national_reports": self.chance(0.5)}),
            3 => json!({"kind": "checkpoint"}),
            4 => json!({"kind": "adopt-report", "year": self.year(),
                        "manifest_hash": self.pick(&["", "zz", &"ab".repeat(32)])}),
            _ => json!({"kind": "impeach"}),
        }
    }

    fn pick_deadline(&mut self) -> Value {
        match self.rng.gen_range(0..5) {
            0 => json!(0),
            1 => json!(u64::MAX),
            2 => json!(-5),
            _ => json!(1_800_000_000_000u64),
        }
    }

    /// One request: method, path, body.
    fn request(&mut self, k: &Known) -> (&'static str, String, Vec<u8>) {
        self.wild = self.chance(0.5);
        let (method, path, mut body): (&'static str, String, Value) = match self
            .rng
            .gen_range(0..24)
        {
            0 => ("GET", "/v1/status".into(), json!({})),
            1 => (
                "GET",
                format!("/v1/ops/{}", self.id(&k.ops, "op")),
                json!({}),
            ),
            2 => (
                "POST",
                "/v1/orgs/admit".into(),
                json!({"org": self.id(&k.orgs, "org")}),
            ),
            3 => ("POST", format!("/v1/teams/{}/join", self.team()), json!({})),
            4 => (
                "POST",
                format!("/v1/teams/{}/leave", self.team()),
                json!({}),
            ),
            5 => (
                "POST",
                format!("/v1/teams/{}/modalities", self.team()),
                json!({"text": self.text()}),
            ),
            6 | 7 => {
                let kind = self.pick(&["team", "recommendation", "coordinators", "plenary"]);
                let team = self.team();
                (
                    "POST",
                    "/v1/meetings".into(),
                    json!({"kind": kind, "team": team, "year": self.year(), "title": self.text()}),
                )
            }
            8 | 9 => (
                "POST",
                format!("/v1/meetings/{}/attend", self.id(&k.meetings, "op")),
                json!({}),
            ),
            10 => (
                "POST",
                format!("/v1/meetings/{}/minutes", self.id(&k.meetings, "op")),
                json!({"text": self.text()}),
            ),
            11 => (
                "POST",
                format!("/v1/meetings/{}/approve", self.id(&k.meetings, "op")),
                json!({}),
            ),
            12 | 13 => {
                let motion = self.motion(k);
                (
                    "POST",
                    "/v1/motions".into(),
                    json!({"meeting": self.id(&k.meetings, "op"), "motion": motion}),
                )
            }
            14 | 15 => (
                "POST",
                format!("/v1/motions/{}/vote", self.id(&k.motions, "op")),
                json!({"yes": self.chance(0.7)}),
            ),
            16 => (
                "POST",
                "/v1/coordinators".into(),
                json!({"team": self.team(), "org": self.id(&k.orgs, "org"),
                       "recommendation": self.id(&k.motions, "op")}),
            ),
            17 => (
                "POST",
                "/v1/outputs".into(),
                json!({"team": self.team(), "year": self.year()}),
            ),
            18 => (
                "POST",
                format!(
                    "/v1/{}/{}/submit",
                    self.pick(&["outputs", "national-reports"]),
                    self.id(&k.docs, "doc")
                ),
                json!({}),
            ),
            19 => (
                "POST",
                "/v1/national-reports".into(),
                json!({"year": self.year()}),
            ),
            20 => (
                "GET",
                format!("/v1/docs/{}", self.id(&k.docs, "doc")),
                json!({}),
            ),
            21 | 22 => {
                let body = match self.rng.gen_range(0..4) {
                    0 => json!({"section": self.pick(SECTIONS), "text": self.text()}),
                    1 => json!({"section": self.pick(SECTIONS), "append": self.text()}),
                    2 => json!({"activity": self.text()}),
                    _ => json!({"section": self.pick(SECTIONS), "text": self.text(),
                                "append": self.text(), "activity": self.text()}),
                };
                (
                    "POST",
                    format!("/v1/docs/{}/edit", self.id(&k.docs, "doc")),
                    body,
                )
            }
            _ => {
                if self.chance(0.5) {
                    let year = self.year();
                    ("GET", format!("/v1/stocktake?year={year}"), json!({}))
                } else {
                    (
                        "POST",
                        "/v1/stocktake/assemble".into(),
                        json!({"year": self.year()}),
                    )
                }
            }
        };
        self.mutate(&mut body);
        let pick = if self.wild {
            self.rng.gen_range(0..40)
        } else {
            39
        };
        let bytes = match pick {
            0 => b"{not json".to_vec(),
            1 => vec![0xff, 0xfe, 0x00, 0x7b],
            2 => b"[]".to_vec(),
            3 => "[".repeat(10_000).into_bytes(),
            _ => serde_json::to_vec(&body).expect("JSON"),
        };
        // Paths are sent as typed; characters a URI cannot carry are percent-encoded.
        let path: String = path
            .chars()
            .flat_map(|c| {
                if c.is_ascii_alphanumeric() || "-._~/?=&%".contains(c) {
                    vec![c.to_string()]
                } else {
                    let mut buf = [0u8; 4];
                    c.encode_utf8(&mut buf)
                        .bytes()
                        .map(|b| format!("%{b:02X}"))
                        .collect()
                }
            })
            .collect();
        (method, path, bytes)
    }
}

/// A 2xx, or a 4xx whose body is the API's one-line JSON error.
fn acceptable(status: u16, body: &str) -> Result<(), String> {
    match status {
        200..=299 => Ok(()),
        400..=499 => {
            let e: ErrorBody =
                serde_json::from_str(body).map_err(|e| format!("4xx body is not JSON ({e})"))?;
            if e.code.is_empty() || e.error.is_empty() || e.error.lines().count() != 1 {
                return Err("4xx error is not one non-empty line with a code".into());
            }
            Ok(())
        }
        0 => Err("no HTTP answer (dropped connection)".into()),
        _ => Err(format!("status {status}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_adversarial_requests_get_a_2xx_or_a_json_4xx_and_leave_the_federation_consistent(
) {
    let seed: u64 = std::env::var("WSIS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let requests: usize = std::env::var("WSIS_API_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_REQUESTS);
    eprintln!("api_fire: seed {seed}, {requests} requests (WSIS_SEED / WSIS_API_REQUESTS)");

    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, fed) = common::nodes::secretariat_dir(tmp.path(), "itu", "api under fire").await;
    let itu = Member::start(dir, vec![], None).await;
    let boot = address_of(&itu.node).await;
    let mut members = vec![itu];
    for (name, st, country) in [
        ("kenya", StakeholderType::Government, Some("KE")),
        ("apc", StakeholderType::CivilSociety, None),
    ] {
        let dir = common::init(tmp.path(), name, st, country);
        let m = Member::start(dir, vec![boot.clone()], Some(fed)).await;
        common::nodes::admit(&members[0].node, &m.node).await;
        members.push(m);
    }

    let mut gen = Gen {
        rng: ChaCha8Rng::seed_from_u64(seed),
        wild: false,
    };
    let mut known = Known::default();
    let mut failures = Vec::new();
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..requests {
        if i % 10 == 0 {
            let m = members.choose(&mut gen.rng).expect("members");
            known.refresh(m).await;
        }
        let who = gen.rng.gen_range(0..members.len());
        let (method, path, body) = gen.request(&known);
        let (status, answer) = members[who].call(method, &path, &body).await;
        *by_status.entry(status).or_default() += 1;
        if let Err(why) = acceptable(status, &answer) {
            let shown: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            let answer: String = answer.chars().take(300).collect();
            failures.push(format!(
                "#{i} node {who}: {method} {path} {shown} → {why}: {answer}"
            ));
        }
    }
    eprintln!("api_fire: statuses {by_status:?}");
    assert!(
        failures.is_empty(),
        "seed {seed}: {} of {requests} requests broke the rule (2xx or JSON 4xx):\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The run did something: a run where every request was refused would prove little.
    let accepted: usize = by_status
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    assert!(
        accepted >= requests / 10,
        "seed {seed}: only {accepted} requests succeeded"
    );

    // The federation converges: what any API accepted, every peer accepted.
    let start = tokio::time::Instant::now();
    loop {
        let mut rows = Vec::new();
        for m in &members {
            rows.push(m.status().await);
        }
        let key = |s: &Status| (s.gov_digest.clone(), s.docs_digest.clone(), s.ops);
        if rows.iter().all(|s| key(s) == key(&rows[0])) {
            break;
        }
        if start.elapsed() > common::nodes::DEADLINE {
            let shown: Vec<String> = rows
                .iter()
                .map(|s| {
                    format!(
                        "{}: ops {} parked {} invalid {} docs {} refused {} rejected {:?} gov {} docs {}",
                        s.name,
                        s.ops,
                        s.ops_parked,
                        s.ops_invalid,
                        s.documents,
                        s.ops_refused,
                        s.envelopes_rejected,
                        &s.gov_digest[..8],
                        &s.docs_digest[..8]
                    )
                })
                .collect();
            panic!(
                "seed {seed}: the nodes did not converge:\n{}",
                shown.join("\n")
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for (i, m) in members.iter().enumerate() {
        let stats = m.node.network().stats().await.expect("net stats");
        for (peer, p) in &stats.peers {
            assert_eq!(
                p.penalties, 0,
                "seed {seed}: node {i} penalised {peer}: something one API accepted is refused by a peer"
            );
        }
        let s = m.status().await;
        assert_eq!(s.ops_refused, 0, "seed {seed}: node {i} refused ops");
        assert!(
            s.envelopes_rejected.values().all(|n| *n == 0),
            "seed {seed}: node {i} rejected envelopes: {:?}",
            s.envelopes_rejected
        );
    }

    // Every node restarts from its data directory with the same state.
    let before = members[0].status().await;
    let paths: Vec<PathBuf> = members.iter().map(|m| m.path.clone()).collect();
    for m in &mut members {
        m.shutdown().await;
    }
    drop(members);
    for path in &paths {
        let dir = DataDir::open(path).expect("reopen");
        let mut again = Member::start(dir, vec![], None).await;
        let after = again.status().await;
        assert_eq!(
            (after.gov_digest, after.docs_digest),
            (before.gov_digest.clone(), before.docs_digest.clone()),
            "seed {seed}: the state after a restart"
        );
        again.shutdown().await;
    }
}
