//! What the protocol benchmarks share: their knobs, their statistics, and the synthetic federation they measure.
#![allow(dead_code)] // each benchmark uses its part

use rand::{Rng, SeedableRng};
use wsis_protocol::fixture::World;
use wsis_protocol::op::{MeetingKind, OpKind};

/// A size or count from the environment (`WSIS_BENCH_OPS`, `WSIS_BENCH_RUNS`), or the default.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// (min, median, max).
pub fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// 48 admitted civil-society organisations.
pub fn admitted_orgs(w: &mut World) -> Vec<usize> {
    let orgs: Vec<usize> = (0..48)
        .map(|i| w.add_org(&format!("Org {i}"), "civil-society", None))
        .collect();
    for &o in &orgs {
        w.admit(o);
    }
    orgs
}

/// Statements until the log holds `until` ops: organisations joining and leaving teams, the first secretariat
/// convening up to 2,000 meetings, and organisations attending them (seeded: the same ops every run).
pub fn add_statements(w: &mut World, orgs: &[usize], until: usize) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let teams: Vec<_> = wsis_protocol::reference::wsis_teams()
        .into_iter()
        .map(|t| t.code)
        .collect();
    let mut meetings = Vec::new();
    while w.log.len() < until {
        let o = orgs[rng.gen_range(0..orgs.len())];
        let team = teams[rng.gen_range(0..teams.len())].clone();
        let kind = match rng.gen_range(0..10) {
            0 if meetings.len() < 2000 => {
                let m = w.op(
                    0,
                    OpKind::Convene {
                        meeting: MeetingKind::Recommendation,
                        year: 2026,
                        title: "Open consultation".into(),
                    },
                );
                meetings.push(m.id());
                continue;
            }
            0..=3 => OpKind::JoinTeam { team },
            4..=5 => OpKind::LeaveTeam { team },
            _ if !meetings.is_empty() => OpKind::Attend {
                meeting: meetings[rng.gen_range(0..meetings.len())],
            },
            _ => OpKind::JoinTeam { team },
        };
        w.op(o, kind);
    }
}
