//! Whose quota a parked item is charged to: the organisation its sending peer is bound to (issue 14, defect 6).

use wsis_protocol::gov::Governance;
use wsis_protocol::ids::OrgId;

/// The owner of a parked item's quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Owner {
    /// The one member organisation the sending peer is bound to (`BindNode`): all its peer ids share this quota.
    Org(OrgId),
    /// Every peer bound to no member, or to several (a binding is signed by the organisation alone, so a peer
    /// bound by two could be an honest one that a flooder bound too): one quota for all of them together. Not
    /// accountable: a refusal from this shared quota penalises nobody.
    Unattributed,
    /// This node itself (envelopes restored from its own store).
    Local,
}

impl Owner {
    /// The owner for the peer whose id bytes are `peer_id` (empty: this node), as `gov` binds it now.
    pub(crate) fn of(gov: &Governance, peer_id: &[u8]) -> Owner {
        if peer_id.is_empty() {
            return Owner::Local;
        }
        match gov.bound_orgs(peer_id).as_slice() {
            [org] => Owner::Org(*org),
            _ => Owner::Unattributed,
        }
    }

    /// Whether a sender whose owner is past its quota is to blame for it (only a single organisation's peers).
    pub(crate) fn accountable(&self) -> bool {
        matches!(self, Owner::Org(_))
    }
}
