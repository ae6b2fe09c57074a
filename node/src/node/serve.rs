//! Serving peers' requests, with the access control of the trust model: a peer bound to an admitted organisation
//! may read federation data; any other peer may only fetch the genesis and push its own inception and binding.
//!
//! What a request costs is bounded by the request and by its peer's budget (`budget`): every answer fits the
//! bytes reserved for it, a page of ops or envelopes holds at most [`MAX_PAGE_BYTES`] (or one larger item
//! alone) with `more` set when something was left out, and the engine is walked only as far as the page needs
//! (an empty `have` or empty heads costs a page from the start, not the whole document or DAG; a `DocDigests`
//! page ends after [`MAX_DIGEST_ENVELOPES`] envelopes' worth of digests).

use super::*;
use crate::net::wire::{Batch, MAX_PAGE_BYTES, MAX_RESPONSE_ITEMS};
use std::time::Instant;

/// Stored envelopes whose heads one `DocDigests` page may digest (after its first document): a digest walks its
/// document's envelopes, and a page of 4,096 large documents would be a walk of everything.
pub(super) const MAX_DIGEST_ENVELOPES: usize = 65_536;
/// A `DocDigests` entry as encoded: a pair head, two byte-string heads, 32 + 32 bytes.
const DIGEST_ENTRY_BYTES: usize = 1 + 2 + 32 + 2 + 32;

impl Node {
    /// Is the peer bound to an admitted organisation (or is it this node's own organisation's)?
    pub(super) async fn admitted(&self, peer: &PeerId) -> bool {
        let gov = self.inner.gov.lock().await;
        !gov.bound_orgs(&peer.to_bytes()).is_empty()
    }

    pub(super) async fn serve(&self, peer: PeerId, request: SyncRequest, channel: ChannelId) {
        let response = match self.reserve(peer).await {
            Some(reserved) => {
                let response = self.answer(peer, request, reserved).await;
                let used = response_bytes(&response);
                if let Ok(mut b) = self.inner.budgets.lock() {
                    b.settle(peer, reserved, used, Instant::now());
                }
                response
            }
            None => SyncResponse::Refused {
                reason: RefuseReason::Busy,
            },
        };
        if let Err(e) = self.inner.net.respond(channel, response).await {
            tracing::debug!(%peer, error = %e, "could not respond");
        }
    }

    /// Waits for `peer`'s budget to admit one more request (at most [`budget::MAX_WAIT`]); the response bytes
    /// reserved for it, or `None` when it is to be refused as busy.
    async fn reserve(&self, peer: PeerId) -> Option<usize> {
        let mut waited = Duration::ZERO;
        loop {
            let admitted = self.inner.budgets.lock().ok()?.admit(peer, Instant::now());
            match admitted {
                Ok(reserved) => return Some(reserved),
                Err(wait) => {
                    let refuse = waited + wait > budget::MAX_WAIT;
                    if let Ok(mut b) = self.inner.budgets.lock() {
                        if refuse {
                            b.note_refused(peer, Instant::now());
                        } else if waited.is_zero() {
                            b.note_delayed(peer, Instant::now());
                        }
                    }
                    if refuse {
                        tracing::debug!(%peer, "over its serving budget; refusing as busy");
                        return None;
                    }
                    waited += wait;
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// What `peer` was served within its budget, and how often it had to wait or was refused.
    pub fn served_to(&self, peer: &PeerId) -> Served {
        self.inner
            .budgets
            .lock()
            .map(|b| b.served(peer))
            .unwrap_or_default()
    }

    /// The answer to `request`, within `reserved` response bytes.
    pub(super) async fn answer(
        &self,
        peer: PeerId,
        request: SyncRequest,
        reserved: usize,
    ) -> SyncResponse {
        let refuse = |reason| SyncResponse::Refused { reason };
        match request {
            SyncRequest::Hello { federation } => {
                let gov = self.inner.gov.lock().await;
                if federation != gov.federation_id() {
                    return refuse(RefuseReason::WrongFederation);
                }
                SyncResponse::Genesis(gov.genesis().bytes().to_vec())
            }
            SyncRequest::Push { ops } => {
                // Unknown peers may push only inceptions and bindings (their own: the signature says whose).
                if !self.admitted(&peer).await {
                    let allowed = ops.iter().all(|b| {
                        SignedOp::decode(b).is_ok_and(|op| {
                            matches!(op.kind(), OpKind::OrgInception(_) | OpKind::BindNode { .. })
                        })
                    });
                    if !allowed {
                        self.count_refusal();
                        return refuse(RefuseReason::NotAdmitted);
                    }
                }
                let (new, _, parked) = self.receive_ops(peer, ops).await;
                if parked > MAX_PARKED_PER_PUSH {
                    let _ = self
                        .inner
                        .net
                        .penalise(peer, format!("orphan flood: {parked} ops without parents"))
                        .await;
                }
                if new > 0 {
                    let heads = self.inner.gov.lock().await.heads();
                    self.announce(heads).await;
                }
                SyncResponse::Ack {
                    accepted: new as u32,
                }
            }
            _ if !self.admitted(&peer).await => {
                self.count_refusal();
                refuse(RefuseReason::NotAdmitted)
            }
            SyncRequest::GovSince { heads } => {
                let gov = self.inner.gov.lock().await;
                ops_response(gov.ops_missing_iter(&heads), reserved)
            }
            SyncRequest::GetOps { ids } => {
                let gov = self.inner.gov.lock().await;
                ops_response(ids.iter().filter_map(|id| gov.get(id)), reserved)
            }
            SyncRequest::GetEnvelopes { doc, have } => {
                let docs = self.inner.docs.lock().await;
                let mut missing = docs.missing_envelopes(&doc, &have);
                envelopes_response(&mut missing, reserved)
            }
            SyncRequest::DocHeads { doc } => {
                let docs = self.inner.docs.lock().await;
                SyncResponse::Heads {
                    doc,
                    heads: docs.envelope_heads(&doc),
                }
            }
            SyncRequest::DocDigests { after } => {
                let docs = self.inner.docs.lock().await;
                let fit = reserved.saturating_sub(64) / DIGEST_ENTRY_BYTES;
                let (digests, more) = docs.heads_digests_page(
                    after.as_ref(),
                    fit.clamp(1, MAX_RESPONSE_ITEMS),
                    MAX_DIGEST_ENVELOPES,
                );
                SyncResponse::DocDigests { digests, more }
            }
        }
    }

    pub(super) fn count_refusal(&self) {
        if let Ok(mut s) = self.inner.stats.lock() {
            s.requests_refused += 1;
        }
    }

    /// Publishes this organisation's inception and node binding to a peer (used when joining: the peer admits
    /// nobody by itself, but a secretariat operator can then admit the organisation).
    pub async fn push_identity(&self, peer: PeerId) -> Result<u32, crate::net::RequestError> {
        let ops: Vec<Vec<u8>> = {
            let gov = self.inner.gov.lock().await;
            gov.ops()
                .filter(|op| op.author() == self.inner.org)
                .filter(|op| matches!(op.kind(), OpKind::OrgInception(_) | OpKind::BindNode { .. }))
                .map(|op| op.bytes().to_vec())
                .collect()
        };
        match self
            .inner
            .net
            .request(peer, &SyncRequest::Push { ops })
            .await?
        {
            SyncResponse::Ack { accepted } => Ok(accepted),
            // Not received: the peer is still starting (it must not count as introduced).
            SyncResponse::NoGenesis => Err(crate::net::RequestError::NoReplica),
            _ => Ok(0),
        }
    }
}

/// A page of ops for a response (at most [`MAX_OPS_PER_RESPONSE`], within the page bound and `reserved`), taken
/// from `ops` only as far as it fills; `more` when something was left out.
pub(super) fn ops_response<'a>(
    ops: impl Iterator<Item = &'a SignedOp>,
    reserved: usize,
) -> SyncResponse {
    let mut batch = Batch::for_ops().limited(MAX_PAGE_BYTES, reserved);
    let mut more = false;
    for op in ops {
        if batch.len() >= MAX_OPS_PER_RESPONSE || batch.try_push(op.bytes().to_vec()).is_err() {
            more = true;
            break;
        }
    }
    batch.into_ops(more)
}

/// A page of envelopes for a response, within the page bound and `reserved`, pulled from `missing` only as far as
/// it fills. An envelope larger than the reservation (it can be up to 8 MiB, and the peer's bucket held less) is
/// not sent in part: the answer is "busy", and the peer's next sync finds the bucket refilled.
pub(super) fn envelopes_response<'a>(
    missing: &mut impl Iterator<Item = &'a SignedEnvelope>,
    reserved: usize,
) -> SyncResponse {
    let mut batch = Batch::for_envelopes().limited(MAX_PAGE_BYTES, reserved);
    let mut more = false;
    for env in missing {
        if batch.try_push(env.bytes().to_vec()).is_err() {
            if batch.is_empty() {
                return SyncResponse::Refused {
                    reason: RefuseReason::Busy,
                };
            }
            more = true;
            break;
        }
    }
    batch.into_envelopes(more)
}

/// A response's size as encoded, at most (what the budget charges; the frame prefix is left out).
pub(super) fn response_bytes(response: &SyncResponse) -> usize {
    let items = |v: &[Vec<u8>]| v.iter().map(|i| i.len() + 9).sum::<usize>();
    32 + match response {
        SyncResponse::Genesis(g) => g.len() + 9,
        SyncResponse::Ops { ops, .. } => items(ops),
        SyncResponse::Envelopes { envelopes, .. } => items(envelopes),
        SyncResponse::Heads { heads, .. } => 34 * heads.len() + 43,
        SyncResponse::DocDigests { digests, .. } => DIGEST_ENTRY_BYTES * digests.len() + 9,
        SyncResponse::Refused { .. } => crate::net::wire::MAX_REASON_BYTES + 16,
        _ => 16,
    }
}
