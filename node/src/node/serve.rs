//! Serving peers' requests, with the access control of the trust model: a peer bound to an admitted organisation
//! may read federation data; any other peer may only fetch the genesis and push its own inception and binding.

use super::*;

impl Node {
    /// Is the peer bound to an admitted organisation (or is it this node's own organisation's)?
    pub(super) async fn admitted(&self, peer: &PeerId) -> bool {
        let gov = self.inner.gov.lock().await;
        !gov.bound_orgs(&peer.to_bytes()).is_empty()
    }

    pub(super) async fn serve(&self, peer: PeerId, request: SyncRequest, channel: ChannelId) {
        let response = self.answer(peer, request).await;
        if let Err(e) = self.inner.net.respond(channel, response).await {
            tracing::debug!(%peer, error = %e, "could not respond");
        }
    }

    pub(super) async fn answer(&self, peer: PeerId, request: SyncRequest) -> SyncResponse {
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
                ops_response(gov.ops_missing_from(&heads).into_iter())
            }
            SyncRequest::GetOps { ids } => {
                let gov = self.inner.gov.lock().await;
                ops_response(ids.iter().filter_map(|id| gov.get(id)))
            }
            SyncRequest::GetEnvelopes { doc, have } => {
                let docs = self.inner.docs.lock().await;
                let mut batch = crate::net::wire::Batch::for_envelopes();
                let mut more = false;
                for env in docs.envelopes_missing_from(&doc, &have) {
                    if batch.try_push(env.bytes().to_vec()).is_err() {
                        more = true;
                        break;
                    }
                }
                batch.into_envelopes(more)
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
                let (digests, more) =
                    docs.heads_digests_after(after.as_ref(), crate::net::wire::MAX_RESPONSE_ITEMS);
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

/// The op list for a response, bounded in count and bytes; `more` when something was left out.
pub(super) fn ops_response<'a>(ops: impl Iterator<Item = &'a SignedOp>) -> SyncResponse {
    let mut out = Vec::new();
    let mut bytes = 0;
    let mut more = false;
    for op in ops {
        if out.len() >= MAX_OPS_PER_RESPONSE
            || bytes + op.bytes().len() > MAX_OPS_BYTES_PER_RESPONSE
        {
            more = true;
            break;
        }
        bytes += op.bytes().len();
        out.push(op.bytes().to_vec());
    }
    SyncResponse::Ops { ops: out, more }
}
