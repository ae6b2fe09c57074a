//! Peer conduct: penalties that decay, and bans that expire.
//!
//! Every penalty adds one point to a peer's score; the score halves every [`PENALTY_HALF_LIFE`], in whole steps
//! counted from the peer's first penalty (so a burst inside one step adds up exactly, and nothing depends on
//! floating-point rounding of a continuous decay). A peer whose score
//! reaches the threshold ([`DEFAULT_PENALTY_THRESHOLD`] unless configured) is banned for [`BAN_DURATION`]; each
//! further ban of the same peer lasts twice as long as the one before, up to [`MAX_BAN_DURATION`]. When a ban ends
//! the score starts again from zero (the ban count is kept, so a repeat offender is shut out longer).
//!
//! Why decay: a count that only grows bans an honest peer eventually — one that once relayed an envelope this node
//! judges differently (e.g. because it knows a revocation the peer does not), or whose frame was cut by a network
//! fault. With the numbers above, a peer is banned by a burst of 10 bad items, or by a sustained rate of five or
//! more per ten minutes (a steady `r` per half-life peaks at `2r` just before each halving), while one bad item
//! every few minutes never adds up to a ban.
//!
//! Why expiry: bans are keyed by peer id, which costs an attacker nothing to change, so a permanent ban protects
//! little against a determined attacker and shuts an honest peer out for good after a bad hour. A bounded ban
//! (at most a day) and a bounded ban list ([`super::MAX_BANNED_PEERS`]) keep memory and mistakes bounded.
//!
//! What is never penalised: a refusal about this node's own buffers rather than the item — a full parking pool, the
//! parking quota that all unbound peers share, an op whose author this node does not know yet (issue 11 and 14,
//! defect 6; `crate::parking`). Peer ids cost nothing, so such a pool can be full of someone else's items: blaming
//! the peer that hit it would let a flooder get honest peers banned.
//!
//! The functions take the current [`Instant`] as an argument, so the rules are tested without sleeping.

use std::time::{Duration, Instant};

/// A penalty's weight halves every this long.
pub const PENALTY_HALF_LIFE: Duration = Duration::from_secs(10 * 60);
/// The default score at which a peer is banned ([`super::NetConfig::penalty_threshold`]).
pub const DEFAULT_PENALTY_THRESHOLD: u32 = 10;
/// How long a first ban lasts.
pub const BAN_DURATION: Duration = Duration::from_secs(60 * 60);
/// The longest ban: repeated bans double up to this.
pub const MAX_BAN_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// How often the network task lifts expired bans (a ban may last up to this much longer than its length).
pub const BAN_SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// The numbers of the rules above, from [`super::NetConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PenaltyPolicy {
    /// Score at which a peer is banned (at least 1).
    pub threshold: u32,
    /// Half-life of a penalty (zero: penalties do not decay).
    pub half_life: Duration,
    /// Length of a first ban.
    pub ban: Duration,
    /// Longest ban.
    pub max_ban: Duration,
}

impl Default for PenaltyPolicy {
    fn default() -> Self {
        PenaltyPolicy {
            threshold: DEFAULT_PENALTY_THRESHOLD,
            half_life: PENALTY_HALF_LIFE,
            ban: BAN_DURATION,
            max_ban: MAX_BAN_DURATION,
        }
    }
}

impl PenaltyPolicy {
    /// The length of a peer's `nth` ban (1-based): `ban × 2^(n-1)`, at most `max_ban`.
    pub fn ban_length(&self, nth: u32) -> Duration {
        let doublings = nth.saturating_sub(1).min(31);
        self.ban
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max_ban)
            .min(self.max_ban)
    }
}

/// What a penalty did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Counted; the score after it is below the threshold.
    Counted { score: f64 },
    /// The score reached the threshold: the peer is banned until `until`.
    Banned { until: Instant, length: Duration },
    /// The peer is banned already; nothing changes.
    AlreadyBanned,
}

/// One peer's conduct.
#[derive(Debug, Clone, Default)]
pub struct Conduct {
    /// The score at the end of half-life step `step`.
    score: f64,
    /// The first penalty since the score was last zero: half-life steps are counted from here.
    origin: Option<Instant>,
    step: u64,
    /// Bans so far.
    bans: u32,
    banned_until: Option<Instant>,
}

impl Conduct {
    /// Whole half-lives from the origin to `now` (0 without decay; an earlier `now` counts as the origin).
    fn step_at(&self, now: Instant, policy: &PenaltyPolicy) -> u64 {
        match self.origin {
            Some(origin) if !policy.half_life.is_zero() => {
                let steps =
                    now.saturating_duration_since(origin).as_nanos() / policy.half_life.as_nanos();
                u64::try_from(steps).unwrap_or(u64::MAX)
            }
            _ => 0,
        }
    }

    /// The score at `now`, decayed.
    pub fn score(&self, now: Instant, policy: &PenaltyPolicy) -> f64 {
        let halvings = self.step_at(now, policy).saturating_sub(self.step);
        if halvings >= 64 {
            return 0.0;
        }
        self.score / (1u64 << halvings) as f64
    }

    /// Counts one penalty at `now`.
    pub fn penalise(&mut self, now: Instant, policy: &PenaltyPolicy) -> Verdict {
        if self.is_banned(now) {
            return Verdict::AlreadyBanned;
        }
        if self.origin.is_none() {
            self.origin = Some(now);
            self.step = 0;
        }
        self.score = self.score(now, policy) + 1.0;
        self.step = self.step.max(self.step_at(now, policy));
        if self.score >= f64::from(policy.threshold.max(1)) {
            self.bans = self.bans.saturating_add(1);
            let length = policy.ban_length(self.bans);
            let until = now.checked_add(length).unwrap_or(now);
            self.banned_until = Some(until);
            Verdict::Banned { until, length }
        } else {
            Verdict::Counted { score: self.score }
        }
    }

    /// Is the peer banned at `now`?
    pub fn is_banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|until| now < until)
    }

    /// A ban that has run out by `now` (the caller lifts it with [`Conduct::lift_ban`]).
    pub fn ban_expired(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|until| now >= until)
    }

    /// Ends a ban (expired, or evicted from a full ban list): the score starts again from zero.
    pub fn lift_ban(&mut self) {
        self.banned_until = None;
        self.score = 0.0;
        self.origin = None;
        self.step = 0;
    }

    /// How many times the peer was banned.
    pub fn bans(&self) -> u32 {
        self.bans
    }

    /// Nothing worth remembering at `now`: not banned, never banned, and a negligible score.
    pub fn is_forgettable(&self, now: Instant, policy: &PenaltyPolicy) -> bool {
        self.banned_until.is_none() && self.bans == 0 && self.score(now, policy) < 0.01
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn an_occasional_bad_item_never_adds_up_to_a_ban() {
        let policy = PenaltyPolicy::default();
        let t0 = Instant::now();
        let mut c = Conduct::default();
        // One penalty every five minutes for a week: the count alone would have banned at the tenth. Two per
        // half-life peak at a score of 4.
        for i in 0..(7 * 24 * 12) {
            match c.penalise(t0 + i * 5 * MINUTE, &policy) {
                Verdict::Counted { score } => assert!(score <= 4.0, "{i}: {score}"),
                other => panic!("{i}: {other:?}"),
            }
        }
        assert_eq!(c.score(t0 + 7 * 24 * 60 * MINUTE, &policy), 2.0);
    }

    #[test]
    fn a_burst_reaching_the_threshold_bans() {
        let policy = PenaltyPolicy::default();
        let t0 = Instant::now();
        let mut c = Conduct::default();
        for i in 1..DEFAULT_PENALTY_THRESHOLD {
            assert!(matches!(
                c.penalise(t0 + Duration::from_secs(u64::from(i)), &policy),
                Verdict::Counted { .. }
            ));
        }
        let at = t0 + Duration::from_secs(10);
        match c.penalise(at, &policy) {
            Verdict::Banned { until, length } => {
                assert_eq!(length, BAN_DURATION);
                assert_eq!(until, at + BAN_DURATION);
            }
            other => panic!("{other:?}"),
        }
        assert!(c.is_banned(at));
        assert_eq!(c.penalise(at + MINUTE, &policy), Verdict::AlreadyBanned);
    }

    #[test]
    fn the_score_halves_every_half_life() {
        let policy = PenaltyPolicy::default();
        let t0 = Instant::now();
        let mut c = Conduct::default();
        for _ in 0..8 {
            c.penalise(t0, &policy);
        }
        assert_eq!(c.score(t0, &policy), 8.0);
        let after = |n: u32| c.score(t0 + PENALTY_HALF_LIFE * n, &policy);
        assert!((after(1) - 4.0).abs() < 1e-9);
        assert!((after(3) - 1.0).abs() < 1e-9);
        // Eight penalties, then more a half-life later: the first eight count as four, so the sixth new one bans.
        let mut d = c.clone();
        let mut verdicts = Vec::new();
        for _ in 0..8 {
            verdicts.push(d.penalise(t0 + PENALTY_HALF_LIFE, &policy));
        }
        assert!(
            matches!(verdicts[5], Verdict::Banned { .. }),
            "{verdicts:?}"
        );
        assert!(
            matches!(verdicts[4], Verdict::Counted { .. }),
            "{verdicts:?}"
        );
        // A clock that goes backwards (it cannot with `Instant`, but a caller may pass an older one) never
        // increases the score.
        if let Some(earlier) = t0.checked_sub(MINUTE) {
            assert_eq!(c.score(earlier, &policy), 8.0);
        }
    }

    #[test]
    fn bans_expire_and_repeat_offenders_wait_longer_up_to_a_bound() {
        let policy = PenaltyPolicy::default();
        let t0 = Instant::now();
        let mut c = Conduct::default();
        let mut at = t0;
        let mut lengths = Vec::new();
        for _ in 0..8 {
            let mut verdict = Verdict::AlreadyBanned;
            for _ in 0..DEFAULT_PENALTY_THRESHOLD {
                verdict = c.penalise(at, &policy);
            }
            let Verdict::Banned { until, length } = verdict else {
                panic!("{verdict:?}");
            };
            lengths.push(length);
            assert!(c.is_banned(until - Duration::from_secs(1)));
            assert!(!c.ban_expired(until - Duration::from_secs(1)));
            assert!(c.ban_expired(until));
            assert!(!c.is_banned(until));
            c.lift_ban();
            assert_eq!(
                c.score(until, &policy),
                0.0,
                "a lifted ban starts from zero"
            );
            at = until;
        }
        let hours = |h: u64| Duration::from_secs(h * 3600);
        assert_eq!(
            lengths,
            vec![
                hours(1),
                hours(2),
                hours(4),
                hours(8),
                hours(16),
                hours(24),
                hours(24),
                hours(24)
            ]
        );
        assert_eq!(c.bans(), 8);
        assert_eq!(policy.ban_length(u32::MAX), MAX_BAN_DURATION);
    }

    #[test]
    fn a_zero_half_life_means_no_decay_and_a_zero_threshold_still_needs_one_penalty() {
        let policy = PenaltyPolicy {
            threshold: 0,
            half_life: Duration::ZERO,
            ..PenaltyPolicy::default()
        };
        let t0 = Instant::now();
        let mut c = Conduct::default();
        assert!(!c.is_banned(t0));
        assert!(matches!(c.penalise(t0, &policy), Verdict::Banned { .. }));
        let mut d = Conduct::default();
        let policy = PenaltyPolicy {
            half_life: Duration::ZERO,
            ..PenaltyPolicy::default()
        };
        d.penalise(t0, &policy);
        assert_eq!(d.score(t0 + 1000 * MINUTE, &policy), 1.0);
        assert!(!d.is_forgettable(t0 + 1000 * MINUTE, &policy));
        assert!(Conduct::default().is_forgettable(t0, &policy));
    }
}
