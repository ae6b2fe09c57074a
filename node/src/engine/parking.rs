//! Parking: envelopes waiting for governance ops or for the changes they depend on, held in the node's one
//! bounded parking structure ([`crate::parking`]) and under its rule. Quotas are per organisation: an envelope is
//! charged to the organisation its sending peer is bound to ([`Owner`]), so one organisation's many peer ids share
//! one quota (issue 14, defect 6). Past an organisation's quota its newcomer is refused
//! ([`ReceiveError::ParkingFull`], penalise the sender); past the shared quota of unattributed peers, or with the
//! whole buffer full, the newcomer is refused as [`ReceiveError::ParkingBusy`] (nobody's fault: never penalised);
//! nothing parked is ever evicted for a newcomer, and an envelope parked longer than [`ParkingLimits::ttl`] is
//! dropped (it is fetched again if still wanted).

use super::error::*;
use super::outcome::*;
use super::receive::*;
use crate::parking::{Bounds, Owner, Refusal};
use automerge::ChangeHash;
use std::time::{Duration, Instant};
use wsis_protocol::gov::Governance;
use wsis_protocol::ids::{EnvelopeId, OpId};

/// Bounds of the parking buffer (envelopes waiting for governance ops or for changes they depend on). The owners
/// tracked at once are bounded by `total_envelopes` (a tracked owner has at least one envelope parked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkingLimits {
    /// The quota of one organisation (all its peer ids together), and of all unattributed peers together.
    pub per_org_envelopes: usize,
    pub per_org_bytes: usize,
    pub total_envelopes: usize,
    pub total_bytes: usize,
    /// How long an envelope may wait before it is dropped.
    pub ttl: Duration,
}

impl Default for ParkingLimits {
    fn default() -> Self {
        ParkingLimits {
            per_org_envelopes: 256,
            per_org_bytes: 16 * 1024 * 1024,
            total_envelopes: 4096,
            total_bytes: 128 * 1024 * 1024,
            ttl: Duration::from_secs(10 * 60),
        }
    }
}

impl ParkingLimits {
    fn bounds(&self) -> Bounds {
        Bounds {
            per_owner_entries: self.per_org_envelopes,
            per_owner_bytes: self.per_org_bytes,
            total_entries: self.total_envelopes,
            total_bytes: self.total_bytes,
            owners: self.total_envelopes,
            ttl: self.ttl,
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

/// Parked envelopes by id, charged to an organisation, sent by a peer, indexed by the changes they wait for.
pub(super) type Slots =
    crate::parking::Parking<Owner, Peer, EnvelopeId, ChangeHash, ParkedEnvelope>;

/// One parked envelope taken out: its owner, sender and arrival number are in the entry.
pub(super) type Unparked = crate::parking::Entry<Owner, Peer, ChangeHash, ParkedEnvelope>;

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
    /// Parks `p` from `from`, charged to the organisation `gov` binds `from` to, or refuses it under the
    /// [`crate::parking`] rule (expired envelopes go first, at `now`).
    pub(super) fn park(
        &mut self,
        gov: &Governance,
        from: &Peer,
        p: ParkedEnvelope,
        now: Instant,
    ) -> Result<(), ReceiveError> {
        self.slots.bounds = self.limits.bounds();
        let owner = Owner::of(gov, from.as_bytes());
        let bytes = p.env.header().bytes().len();
        let id = p.env.header().id();
        let waits = match &p.wait {
            Wait::Changes(missing) => missing.clone(),
            Wait::Governance(_) => Vec::new(),
        };
        // This node's own envelopes (restored from its store) wait as long as they need: nobody sends them again.
        let expires = owner != Owner::Local;
        match self
            .slots
            .park(&owner, from, id, bytes, waits, p, now, expires)
        {
            Ok(_expired) => Ok(()),
            Err((Refusal::Quota { entries, bytes }, _)) if owner.accountable() => {
                Err(ReceiveError::ParkingFull {
                    envelopes: entries,
                    bytes,
                })
            }
            Err(_) => Err(ReceiveError::ParkingBusy),
        }
    }

    pub(super) fn remove(&mut self, id: &EnvelopeId) -> Option<Unparked> {
        self.slots.remove(id)
    }
}
