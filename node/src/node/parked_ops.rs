//! Which peer parked which governance ops, so one peer's orphans are bounded and can be evicted.

use super::*;

/// Which peer made which governance ops wait for missing parents, so one peer's orphans are bounded and can be
/// evicted (catalogue case 8: "an orphan flood past the quota — evicted, peer penalised"). The replica's own
/// parking limit (`MAX_PARKED_OPS`) is the federation-wide backstop; this keeps one peer from filling it.
#[derive(Debug, Default)]
pub(super) struct ParkedLedger {
    pub(super) by_peer: HashMap<PeerId, std::collections::VecDeque<OpId>>,
}

impl ParkedLedger {
    /// Records that `peer` parked `id`; returns what to evict: the peer's oldest parked ops beyond `quota` (ids no
    /// longer parked, per `still_parked`, are forgotten first), or `id` itself when no more peers can be tracked.
    pub(super) fn record(
        &mut self,
        peer: PeerId,
        id: OpId,
        quota: usize,
        still_parked: impl Fn(&OpId) -> bool,
    ) -> Vec<OpId> {
        if !self.by_peer.contains_key(&peer) && self.by_peer.len() >= MAX_PARKING_PEERS {
            self.by_peer.retain(|_, q| {
                q.retain(&still_parked);
                !q.is_empty()
            });
            if self.by_peer.len() >= MAX_PARKING_PEERS {
                return vec![id];
            }
        }
        let queue = self.by_peer.entry(peer).or_default();
        queue.push_back(id);
        let mut evict = Vec::new();
        if queue.len() > quota {
            queue.retain(&still_parked);
            while queue.len() > quota {
                evict.extend(queue.pop_front());
            }
        }
        evict
    }

    /// Everything `peer` parked (when it is banned).
    pub(super) fn forget(&mut self, peer: &PeerId) -> Vec<OpId> {
        self.by_peer.remove(peer).map(Vec::from).unwrap_or_default()
    }
}
