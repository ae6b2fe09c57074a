//! Parking: envelopes waiting for governance ops or for the changes they depend on, bounded per peer and in
//! total.

use super::error::*;
use super::outcome::*;
use super::receive::*;
use automerge::ChangeHash;
use std::collections::HashMap;
use wsis_protocol::ids::{EnvelopeId, OpId};

/// Bounds of the parking buffer (envelopes waiting for governance ops or for changes they depend on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkingLimits {
    pub per_peer_envelopes: usize,
    pub per_peer_bytes: usize,
    pub total_envelopes: usize,
    pub total_bytes: usize,
}

impl Default for ParkingLimits {
    fn default() -> Self {
        ParkingLimits {
            per_peer_envelopes: 256,
            per_peer_bytes: 16 * 1024 * 1024,
            total_envelopes: 4096,
            total_bytes: 128 * 1024 * 1024,
        }
    }
}

#[derive(Debug)]
pub(super) enum Wait {
    Governance(Vec<OpId>),
    Changes(Vec<ChangeHash>),
}

#[derive(Debug)]
pub(super) struct ParkedEnvelope {
    pub(super) env: Incoming,
    pub(super) from: Peer,
    pub(super) restore: bool,
    pub(super) wait: Wait,
    /// Arrival number, for a deterministic retry order.
    pub(super) seq: u64,
}

#[derive(Debug, Default)]
pub(super) struct Parking {
    pub(super) limits: ParkingLimits,
    pub(super) entries: HashMap<EnvelopeId, ParkedEnvelope>,
    pub(super) per_peer: HashMap<Peer, (usize, usize)>,
    pub(super) total_bytes: usize,
    /// missing change → parked envelopes waiting for it.
    pub(super) waiting: HashMap<ChangeHash, Vec<EnvelopeId>>,
    pub(super) next_seq: u64,
}

impl Parking {
    pub(super) fn park(
        &mut self,
        env: Incoming,
        from: &Peer,
        restore: bool,
        wait: Wait,
    ) -> Result<(), ReceiveError> {
        let bytes = env.header().bytes().len();
        let (n, b) = self.per_peer.get(from).copied().unwrap_or((0, 0));
        let l = self.limits;
        if n + 1 > l.per_peer_envelopes
            || b + bytes > l.per_peer_bytes
            || self.entries.len() + 1 > l.total_envelopes
            || self.total_bytes + bytes > l.total_bytes
        {
            return Err(ReceiveError::ParkingFull {
                envelopes: n,
                bytes: b,
            });
        }
        let id = env.header().id();
        if let Wait::Changes(missing) = &wait {
            for m in missing {
                self.waiting.entry(*m).or_default().push(id);
            }
        }
        self.per_peer.insert(from.clone(), (n + 1, b + bytes));
        self.total_bytes += bytes;
        self.entries.insert(
            id,
            ParkedEnvelope {
                env,
                from: from.clone(),
                restore,
                wait,
                seq: self.next_seq,
            },
        );
        self.next_seq += 1;
        Ok(())
    }

    pub(super) fn remove(&mut self, id: &EnvelopeId) -> Option<ParkedEnvelope> {
        let p = self.entries.remove(id)?;
        let bytes = p.env.header().bytes().len();
        if let Some((n, b)) = self.per_peer.get_mut(&p.from) {
            *n -= 1;
            *b -= bytes;
            if *n == 0 {
                self.per_peer.remove(&p.from);
            }
        }
        self.total_bytes -= bytes;
        if let Wait::Changes(missing) = &p.wait {
            for m in missing {
                if let Some(v) = self.waiting.get_mut(m) {
                    v.retain(|x| x != id);
                    if v.is_empty() {
                        self.waiting.remove(m);
                    }
                }
            }
        }
        Some(p)
    }
}
