//! What one peer may cost this node in requests answered and response bytes: a token bucket per peer
//! ([`Budgets`]), with the rates and bursts of [`ServeBudget`] (a field of the network config).
//!
//! Before a request is answered it takes one request token and reserves response bytes: at least
//! [`MIN_RESERVE`] (a full page, larger than any answer that is not a page), at most
//! [`MAX_RESERVE`] (the largest envelope alone with its framing), or what the bucket holds in between. The page is
//! filled within the reservation and the unused part goes back. A reservation is never exceeded, so the bytes one
//! peer is served over `t` seconds are at most `byte_burst + bytes_per_sec × t`, however many requests it sends
//! and however many run at once (the swarm bounds those per peer too). A peer whose bucket is short waits for
//! it (the serving task sleeps; the request holds no page while it does) up to [`MAX_WAIT`], then is refused
//! as busy; it is not penalised: an honest node syncing a large federation from scratch runs into its budget too.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use wsis_protocol::limits::{MAX_ENVELOPE_BYTES, MAX_OP_BYTES};

use crate::net::MAX_PAGE_BYTES;

use crate::net::{PeerId, ServeBudget, MAX_TRACKED_PEERS};

/// The smallest reservation a request is answered with: a full page and its framing, so any envelope up to a
/// page is served whole (a larger one waits for a larger reservation); a genesis (the largest op), a heads list,
/// a digest page or an acknowledgement is smaller.
pub const MIN_RESERVE: usize = MAX_PAGE_BYTES + 4096;
const _: () = assert!(MIN_RESERVE > MAX_OP_BYTES);
/// The largest reservation: one envelope of the largest size alone in a page, with its framing.
pub const MAX_RESERVE: usize = MAX_ENVELOPE_BYTES + 4096;
/// The longest a request waits for its peer's budget before it is refused as busy.
pub const MAX_WAIT: Duration = Duration::from_secs(2);

/// What one peer was served since this node started (or since its bucket was last forgotten).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Served {
    /// Requests answered within the budget.
    pub requests: u64,
    /// Requests that waited for the budget before being answered or refused.
    pub delayed: u64,
    /// Requests refused as busy after waiting `MAX_WAIT` (2 s).
    pub refused: u64,
    /// Response bytes charged (estimated encoded size of each answer).
    pub bytes: u64,
}

struct Bucket {
    requests: f64,
    bytes: f64,
    at: Instant,
    served: Served,
}

/// The token buckets of the peers this node serves, at most [`MAX_TRACKED_PEERS`].
pub struct Budgets {
    policy: ServeBudget,
    peers: HashMap<PeerId, Bucket>,
}

impl Budgets {
    pub fn new(policy: ServeBudget) -> Self {
        Self {
            policy,
            peers: HashMap::new(),
        }
    }

    fn byte_burst(&self) -> f64 {
        // A bucket smaller than the smallest reservation could never answer anything.
        self.policy.byte_burst.max(MIN_RESERVE as u64) as f64
    }

    fn request_burst(&self) -> f64 {
        f64::from(self.policy.request_burst.max(1))
    }

    fn bucket(&mut self, peer: PeerId, now: Instant) -> &mut Bucket {
        let (byte_burst, request_burst) = (self.byte_burst(), self.request_burst());
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_TRACKED_PEERS {
            self.forget_one(now);
        }
        let policy = self.policy;
        let b = self.peers.entry(peer).or_insert(Bucket {
            requests: request_burst,
            bytes: byte_burst,
            at: now,
            served: Served::default(),
        });
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.at = b.at.max(now);
        b.requests = (b.requests + dt * f64::from(policy.requests_per_sec)).min(request_burst);
        b.bytes = (b.bytes + dt * policy.bytes_per_sec as f64).min(byte_burst);
        b
    }

    /// Makes room for one more peer: the bucket closest to full goes (a full bucket is what a new peer gets, so
    /// forgetting it changes nothing for that peer).
    fn forget_one(&mut self, now: Instant) {
        let policy = self.policy;
        let fullness = |b: &Bucket| {
            let dt = now.saturating_duration_since(b.at).as_secs_f64();
            b.bytes + dt * policy.bytes_per_sec as f64
        };
        let victim = self
            .peers
            .iter()
            .max_by(|a, b| fullness(a.1).total_cmp(&fullness(b.1)))
            .map(|(p, _)| *p);
        if let Some(p) = victim {
            self.peers.remove(&p);
        }
    }

    /// Takes a request token and reserves response bytes for `peer`: the bytes reserved, or how long to wait
    /// before asking again.
    pub fn admit(&mut self, peer: PeerId, now: Instant) -> Result<usize, Duration> {
        let policy = self.policy;
        let b = self.bucket(peer, now);
        if b.requests >= 1.0 && b.bytes >= MIN_RESERVE as f64 {
            b.requests -= 1.0;
            let reserve = b.bytes.min(MAX_RESERVE as f64);
            b.bytes -= reserve;
            return Ok(reserve as usize);
        }
        let wait_requests = (1.0 - b.requests).max(0.0) / f64::from(policy.requests_per_sec.max(1));
        let wait_bytes =
            (MIN_RESERVE as f64 - b.bytes).max(0.0) / policy.bytes_per_sec.max(1) as f64;
        // At least a millisecond, so a caller looping on this always advances.
        Err(Duration::from_secs_f64(wait_requests.max(wait_bytes)).max(Duration::from_millis(1)))
    }

    /// Ends an admitted request: `used` of the `reserved` bytes were sent, the rest goes back to the bucket.
    pub fn settle(&mut self, peer: PeerId, reserved: usize, used: usize, now: Instant) {
        let burst = self.byte_burst();
        let b = self.bucket(peer, now);
        // The page was filled within the reservation; should an answer exceed it, the excess is a debt.
        b.bytes = (b.bytes + reserved as f64 - used as f64).min(burst);
        b.served.requests += 1;
        b.served.bytes += used as u64;
    }

    pub fn note_delayed(&mut self, peer: PeerId, now: Instant) {
        self.bucket(peer, now).served.delayed += 1;
    }

    pub fn note_refused(&mut self, peer: PeerId, now: Instant) {
        self.bucket(peer, now).served.refused += 1;
    }

    /// What `peer` was served (zeros for a peer not tracked).
    pub fn served(&self, peer: &PeerId) -> Served {
        self.peers.get(peer).map(|b| b.served).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ServeBudget {
        ServeBudget {
            requests_per_sec: 10,
            request_burst: 20,
            bytes_per_sec: 1024 * 1024,
            byte_burst: 16 * 1024 * 1024,
        }
    }

    /// Serves `peer` as a flooder would: as many requests as the budget admits at `now`, each using its whole
    /// reservation. Returns (admitted, bytes).
    fn flood(b: &mut Budgets, peer: PeerId, now: Instant) -> (u64, u64) {
        let (mut n, mut bytes) = (0, 0);
        while let Ok(reserved) = b.admit(peer, now) {
            b.settle(peer, reserved, reserved, now);
            n += 1;
            bytes += reserved as u64;
        }
        (n, bytes)
    }

    #[test]
    fn issue14_case_5_the_budget_stops_a_flooding_peer_and_not_another() {
        let mut b = Budgets::new(policy());
        let t0 = Instant::now();
        let (flooder, honest) = (PeerId::random(), PeerId::random());
        let (n, bytes) = flood(&mut b, flooder, t0);
        assert!(n >= 1, "a fresh peer is served");
        assert!(
            bytes <= 16 * 1024 * 1024,
            "at most the burst at once: {bytes}"
        );
        let wait = b.admit(flooder, t0).expect_err("the flooder must wait");
        assert!(wait > Duration::ZERO);
        // Another peer's bucket is untouched.
        let reserved = b.admit(honest, t0).expect("another peer is served at once");
        assert_eq!(reserved, MAX_RESERVE);
        b.settle(honest, reserved, 1000, t0);
        // After ten seconds the flooder got at most the rate's worth more.
        let (_, later) = flood(&mut b, flooder, t0 + Duration::from_secs(10));
        assert!(
            later <= 10 * 1024 * 1024 + 1,
            "refill past the rate: {later}"
        );
        assert_eq!(b.served(&flooder).bytes, bytes + later);
        assert_eq!(b.served(&honest).bytes, 1000);
    }

    #[test]
    fn the_request_rate_is_bounded_even_for_tiny_answers() {
        let mut b = Budgets::new(policy());
        let t0 = Instant::now();
        let p = PeerId::random();
        let mut n = 0;
        while let Ok(r) = b.admit(p, t0) {
            b.settle(p, r, 10, t0);
            n += 1;
        }
        assert_eq!(n, 20, "the request burst");
        let wait = b.admit(p, t0).expect_err("out of requests");
        assert!(
            wait <= Duration::from_millis(101),
            "one token at 10/s: {wait:?}"
        );
        assert!(b.admit(p, t0 + Duration::from_millis(100)).is_ok());
    }

    #[test]
    fn unused_reservations_go_back_and_the_peer_table_is_bounded() {
        let mut b = Budgets::new(policy());
        let t0 = Instant::now();
        let p = PeerId::random();
        for _ in 0..20 {
            let r = b.admit(p, t0).expect("bytes come back");
            b.settle(p, r, 0, t0);
        }
        for _ in 0..MAX_TRACKED_PEERS + 10 {
            let q = PeerId::random();
            let r = b.admit(q, t0).expect("fresh");
            b.settle(q, r, r, t0);
        }
        assert!(b.peers.len() <= MAX_TRACKED_PEERS);
    }
}
