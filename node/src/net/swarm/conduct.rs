//! A peer's conduct as the swarm task keeps it: traffic counters, penalties, bans and their expiry.
//!
//! The rules (decay, ban lengths) are [`penalty`]'s; this file applies them to the swarm (block list, gossipsub
//! blacklist, Kademlia) and keeps the per-peer tables bounded by [`MAX_TRACKED_PEERS`] and [`MAX_BANNED_PEERS`].

use std::time::Instant;

use libp2p::PeerId;

use super::Task;
use crate::net::config::{MAX_BANNED_PEERS, MAX_TRACKED_PEERS};
use crate::net::event::NetEvent;
use crate::net::penalty;
use crate::net::stats::PeerStats;

impl Task {
    /// The stats entry of a peer, creating it if there is room (forgetting an idle, unpenalised peer if needed).
    pub(super) fn peer_stats(&mut self, peer: PeerId) -> Option<&mut PeerStats> {
        if !self.stats.contains_key(&peer) && self.stats.len() >= MAX_TRACKED_PEERS {
            let victim = self
                .stats
                .iter()
                .filter(|(_, s)| !s.connected && !s.banned)
                .min_by_key(|(_, s)| s.penalties)
                .map(|(p, _)| *p);
            match victim {
                Some(victim) => {
                    self.stats.remove(&victim);
                }
                None => return None,
            }
        }
        Some(self.stats.entry(peer).or_default())
    }

    pub(super) fn count_in(&mut self, peer: PeerId, bytes: usize, f: impl FnOnce(&mut PeerStats)) {
        self.totals.bytes_in += bytes as u64;
        if let Some(s) = self.peer_stats(peer) {
            s.bytes_in += bytes as u64;
            f(s);
        }
    }

    pub(super) fn count_out(&mut self, peer: PeerId, bytes: usize, f: impl FnOnce(&mut PeerStats)) {
        self.totals.bytes_out += bytes as u64;
        if let Some(s) = self.peer_stats(peer) {
            s.bytes_out += bytes as u64;
            f(s);
        }
    }

    /// The conduct entry of a peer, creating it if there is room (forgetting one with nothing worth keeping).
    fn conduct(&mut self, peer: PeerId, now: Instant) -> Option<&mut penalty::Conduct> {
        if !self.conduct.contains_key(&peer) && self.conduct.len() >= MAX_TRACKED_PEERS {
            let policy = self.policy;
            self.conduct.retain(|_, c| !c.is_forgettable(now, &policy));
            if self.conduct.len() >= MAX_TRACKED_PEERS {
                return None;
            }
        }
        Some(self.conduct.entry(peer).or_default())
    }

    pub(super) fn penalise(&mut self, peer: PeerId, reason: &str) {
        if self.banned.contains_key(&peer) {
            return;
        }
        let now = Instant::now();
        let policy = self.policy;
        if let Some(s) = self.peer_stats(peer) {
            s.penalties = s.penalties.saturating_add(1);
        }
        let verdict = match self.conduct(peer, now) {
            Some(c) => c.penalise(now, &policy),
            // No room to remember the peer: treat it as a repeat offender (a ban bounded in time).
            None => penalty::Verdict::Banned {
                until: now + policy.ban,
                length: policy.ban,
            },
        };
        match verdict {
            penalty::Verdict::Counted { score } => {
                tracing::warn!(%peer, %reason, score, threshold = policy.threshold, "peer penalised")
            }
            penalty::Verdict::Banned { until, length } => {
                tracing::warn!(%peer, %reason, ban_s = length.as_secs(), "peer penalised past the threshold");
                self.ban(peer, until);
            }
            penalty::Verdict::AlreadyBanned => {}
        }
    }

    /// Lifts a ban: unblocks the peer and lets gossipsub talk to it again; its score starts from zero.
    fn unban(&mut self, peer: PeerId) {
        self.banned.remove(&peer);
        self.banned_order.retain(|p| *p != peer);
        if let Some(c) = self.conduct.get_mut(&peer) {
            c.lift_ban();
        }
        if let Some(s) = self.stats.get_mut(&peer) {
            s.banned = false;
        }
        let still_blocked = self.blocked_peers.contains(&peer);
        let behaviour = self.swarm.behaviour_mut();
        if !still_blocked {
            behaviour.blocked.unblock_peer(peer);
        }
        behaviour.gossipsub.remove_blacklisted_peer(&peer);
        tracing::info!(%peer, "ban lifted");
        self.emit(NetEvent::PeerUnbanned { peer });
    }

    pub(super) fn lift_expired_bans(&mut self, now: Instant) {
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in expired {
            self.unban(peer);
        }
    }

    pub(super) fn ban(&mut self, peer: PeerId, until: Instant) {
        tracing::warn!(%peer, "peer banned: disconnecting and refusing it");
        if self.banned_order.len() >= MAX_BANNED_PEERS {
            if let Some(oldest) = self.banned_order.front().copied() {
                self.unban(oldest);
            }
        }
        self.banned.insert(peer, until);
        self.banned_order.push_back(peer);
        if let Some(s) = self.peer_stats(peer) {
            s.banned = true;
        }
        let behaviour = self.swarm.behaviour_mut();
        behaviour.blocked.block_peer(peer);
        behaviour.gossipsub.blacklist_peer(&peer);
        let _ = behaviour.kad.remove_peer(&peer);
        let _ = self.swarm.disconnect_peer_id(peer);
        self.emit(NetEvent::PeerBanned { peer });
    }
}
