//! Parking: envelopes waiting for governance ops or for the changes they depend on, held in the node's one
//! bounded parking structure ([`crate::parking`]) and under its rule: past a peer's quota its newcomer is refused
//! ([`ReceiveError::ParkingFull`], penalise it); with the whole buffer full the newcomer is refused too
//! ([`ReceiveError::ParkingBusy`], not the peer's fault); nothing parked is ever evicted for a newcomer.

use super::error::*;
use super::outcome::*;
use super::receive::*;
use crate::parking::{Bounds, Refusal};
use automerge::ChangeHash;
use wsis_protocol::ids::{EnvelopeId, OpId};

/// Bounds of the parking buffer (envelopes waiting for governance ops or for changes they depend on). The peers
/// tracked at once are bounded by `total_envelopes` (a tracked peer has at least one envelope parked).
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

impl ParkingLimits {
    fn bounds(&self) -> Bounds {
        Bounds {
            per_peer_entries: self.per_peer_envelopes,
            per_peer_bytes: self.per_peer_bytes,
            total_entries: self.total_envelopes,
            total_bytes: self.total_bytes,
            peers: self.total_envelopes,
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
    pub(super) restore: bool,
    pub(super) wait: Wait,
}

/// Parked envelopes by id, owned by the peer that sent them, indexed by the changes they wait for.
pub(super) type Slots = crate::parking::Parking<Peer, EnvelopeId, ChangeHash, ParkedEnvelope>;

/// One parked envelope taken out: its owner and arrival number are in the entry.
pub(super) type Unparked = crate::parking::Entry<Peer, ChangeHash, ParkedEnvelope>;

#[derive(Debug)]
pub(super) struct Parking {
    /// Applied to `slots` at each [`Parking::park`] (so a caller may replace them at any time).
    pub(super) limits: ParkingLimits,
    pub(super) slots: Slots,
}

impl Default for Parking {
    fn default() -> Self {
        let limits = ParkingLimits::default();
        Parking {
            limits,
            slots: Slots::new(limits.bounds()),
        }
    }
}

impl Parking {
    /// Parks `p` for `from`, or refuses it under the [`crate::parking`] rule.
    pub(super) fn park(&mut self, from: &Peer, p: ParkedEnvelope) -> Result<(), ReceiveError> {
        self.slots.bounds = self.limits.bounds();
        let bytes = p.env.header().bytes().len();
        let id = p.env.header().id();
        let waits = match &p.wait {
            Wait::Changes(missing) => missing.clone(),
            Wait::Governance(_) => Vec::new(),
        };
        self.slots
            .park(from, id, bytes, waits, p)
            .map_err(|r| match r {
                Refusal::Quota { entries, bytes } => ReceiveError::ParkingFull {
                    envelopes: entries,
                    bytes,
                },
                Refusal::Full => ReceiveError::ParkingBusy,
            })
    }

    pub(super) fn remove(&mut self, id: &EnvelopeId) -> Option<Unparked> {
        self.slots.remove(id)
    }
}
