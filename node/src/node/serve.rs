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

    /// Forwards the ops a push from `peer` made wait for admission (an organisation's inception and bindings, held
    /// outside the DAG) to the connected nodes of secretariat organisations, `peer` excepted: only a secretariat
    /// admits, and a newcomer may know no secretariat node (it bootstrapped from a member's). Each op is forwarded
    /// once, when it first waits here, and only what the pending ledger took from `peer` within its quota waits,
    /// so a flood through this node costs the secretariat no more than the flood costs this node.
    async fn relay_admission_requests(&self, peer: PeerId, held_before: &[(OpId, bool)]) {
        if held_before.iter().all(|(_, before)| *before) {
            return;
        }
        let connected = self.inner.net.connected_peers().await.unwrap_or_default();
        let (ops, secretariat_peers) = {
            let gov = self.inner.gov.lock().await;
            let ops: Vec<Vec<u8>> = held_before
                .iter()
                .filter(|(_, before)| !before)
                .filter_map(|(id, _)| gov.pending_op(id))
                .map(|op| op.bytes().to_vec())
                .collect();
            if ops.is_empty() {
                return;
            }
            let secretariat = &gov.federation().secretariat;
            let targets: Vec<PeerId> = connected
                .into_iter()
                .filter(|p| *p != peer)
                .filter(|p| {
                    gov.bound_orgs(&p.to_bytes())
                        .iter()
                        .any(|o| secretariat.contains(o))
                })
                .collect();
            (ops, targets)
        };
        if secretariat_peers.is_empty() {
            return;
        }
        tracing::debug!(%peer, ops = ops.len(), to = secretariat_peers.len(), "relaying admission requests");
        let node = self.clone();
        tokio::spawn(async move {
            for target in secretariat_peers {
                let push = SyncRequest::Push { ops: ops.clone() };
                if let Err(e) = node.inner.net.request(target, &push).await {
                    tracing::debug!(%target, error = %e, "could not relay admission requests");
                }
            }
        });
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
                        // Garbage is a fault whoever sends it; another kind of op is only early.
                        if ops.iter().any(|b| SignedOp::decode(b).is_err()) {
                            let _ = self
                                .inner
                                .net
                                .penalise(peer, "pushed an op that does not decode")
                                .await;
                        }
                        return refuse(RefuseReason::NotAdmitted);
                    }
                }
                let held_before: Vec<(OpId, bool)> = {
                    let gov = self.inner.gov.lock().await;
                    ops.iter()
                        .map(|b| {
                            let id = OpId::of_bytes(b);
                            (id, gov.is_pending(&id))
                        })
                        .collect()
                };
                let (new, _, parked) = self.receive_ops(peer, ops).await;
                self.relay_admission_requests(peer, &held_before).await;
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
            // In the DAG, or waiting outside it for this organisation's admission.
            gov.ops()
                .chain(gov.pending_of(&self.inner.org))
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test inputs are built here; a failure is a test failure.
mod tests {
    use super::budget::{MAX_RESERVE, MIN_RESERVE};
    use super::*;
    use crate::engine::{DocumentEngine, MemorySink};
    use automerge::transaction::Transactable;
    use rand::{Rng, SeedableRng};
    use wsis_protocol::fixture::World;
    use wsis_protocol::op::DocKind;

    /// Text that Automerge's column compression cannot shrink much.
    fn noise(rng: &mut rand::rngs::StdRng, len: usize) -> String {
        (0..len)
            .map(|_| rng.sample(rand::distributions::Alphanumeric) as char)
            .collect()
    }

    /// A federation where APC writes two documents of team C2: one of `n` envelopes of about `each` bytes, and one
    /// of a single envelope of about `lone` bytes.
    fn documents(n: usize, each: usize, lone: usize) -> (World, DocumentEngine, DocId, DocId) {
        let mut w = World::wsis();
        let apc = w.add_org("APC", "civil-society", None);
        w.admit(apc);
        w.op(apc, OpKind::JoinTeam { team: w.team("C2") });
        let mut docs = Vec::new();
        for year in [2026, 2027] {
            let kind = DocKind::OutputDraft {
                team: w.team("C2"),
                year,
            };
            docs.push(DocId(w.op(apc, OpKind::CreateDoc { kind }).id().0));
        }
        let mut e = DocumentEngine::new(
            w.federation,
            w.id(apc),
            w.secret_of(apc),
            MemorySink::default(),
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(14);
        for i in 0..n {
            let text = noise(&mut rng, each);
            e.edit(&docs[0], |tx| {
                tx.put(automerge::ROOT, format!("k{i}"), text)
            })
            .unwrap();
            e.publish(&w.gov, &docs[0]).unwrap();
        }
        // Two changes of half the size each in one burst: one envelope larger than a page.
        for half in 0..2 {
            let text = noise(&mut rng, lone / 2);
            e.edit(&docs[1], |tx| {
                tx.put(automerge::ROOT, format!("h{half}"), text)
            })
            .unwrap();
        }
        e.publish(&w.gov, &docs[1]).unwrap();
        (w, e, docs[0], docs[1])
    }

    #[test]
    fn issue14_case_5_a_response_never_exceeds_the_page_bound_and_an_empty_have_costs_a_page() {
        let (_w, e, doc, big) = documents(24, 100_000, 1_500_000);
        assert_eq!(e.envelope_ids(&doc).len(), 24);

        // `GetEnvelopes { have: [] }` with the largest reservation: one page, `more`, and only the envelopes in
        // it (plus the one that did not fit) looked at.
        let mut missing = e.missing_envelopes(&doc, &[]);
        let page = envelopes_response(&mut missing, MAX_RESERVE);
        let SyncResponse::Envelopes { envelopes, more } = &page else {
            panic!("{page:?}");
        };
        assert!(*more, "a 2.4 MB document does not fit one page");
        assert!(!envelopes.is_empty() && envelopes.len() < 24);
        let encoded = page.encode().unwrap().len();
        assert!(encoded <= MAX_PAGE_BYTES, "{encoded} bytes in a page");
        assert!(
            response_bytes(&page) >= encoded,
            "the budget charges at least what is sent"
        );
        assert_eq!(
            missing.visited(),
            envelopes.len() + 1,
            "the rest of the document is not walked"
        );
        assert_eq!(missing.walked(), 0, "an empty have names no history");

        // The requester follows `more` with what it now has: the next page starts after it.
        let have: Vec<_> = envelopes
            .iter()
            .map(|b| wsis_protocol::ids::EnvelopeId::of_bytes(b))
            .collect();
        let mut pages = 1;
        let mut received = have.clone();
        loop {
            let mut missing = e.missing_envelopes(&doc, &received);
            let SyncResponse::Envelopes { envelopes, more } =
                envelopes_response(&mut missing, MAX_RESERVE)
            else {
                panic!("not a page");
            };
            assert!(envelopes.iter().map(|b| b.len() + 9).sum::<usize>() <= MAX_PAGE_BYTES);
            received.extend(
                envelopes
                    .iter()
                    .map(|b| wsis_protocol::ids::EnvelopeId::of_bytes(b)),
            );
            pages += 1;
            if !more {
                break;
            }
        }
        received.sort();
        assert_eq!(
            received,
            e.envelope_ids(&doc),
            "paging delivers every envelope once"
        );
        assert!(pages >= 3);

        // An envelope larger than a page goes alone when the reservation holds it, and not at all (busy)
        // when it does not: a reservation is never exceeded.
        let mut missing = e.missing_envelopes(&big, &[]);
        let alone = envelopes_response(&mut missing, MAX_RESERVE);
        assert!(
            matches!(&alone, SyncResponse::Envelopes { envelopes, more: false } if envelopes.len() == 1)
        );
        assert!(alone.encode().unwrap().len() > MAX_PAGE_BYTES);
        let mut missing = e.missing_envelopes(&big, &[]);
        assert_eq!(
            envelopes_response(&mut missing, MIN_RESERVE),
            SyncResponse::Refused {
                reason: RefuseReason::Busy
            }
        );

        // A small reservation makes a small page.
        let mut missing = e.missing_envelopes(&doc, &[]);
        let small = envelopes_response(&mut missing, MIN_RESERVE);
        assert!(small.encode().unwrap().len() <= MIN_RESERVE);
    }

    #[test]
    fn issue14_case_5_a_doc_digests_page_is_bounded_by_the_envelopes_it_digests() {
        let (_w, e, doc, big) = documents(12, 1_000, 1_000);
        let all = e.heads_digests_page(None, MAX_RESPONSE_ITEMS, usize::MAX);
        assert_eq!((all.0.len(), all.1), (2, false));
        // A budget of 5 envelopes: the first document goes in whatever its size, the next would pass the bound.
        let (page, more) = e.heads_digests_page(None, MAX_RESPONSE_ITEMS, 5);
        assert_eq!(page.len(), 1);
        assert!(more);
        // The requester goes on after the last document it got.
        let (rest, more) = e.heads_digests_page(Some(&page[0].0), MAX_RESPONSE_ITEMS, 5);
        assert_eq!((rest.len(), more), (1, false));
        let mut got: Vec<DocId> = page.iter().chain(&rest).map(|(d, _)| *d).collect();
        got.sort();
        let mut want = vec![doc, big];
        want.sort();
        assert_eq!(got, want);
        assert_eq!(
            e.heads_digest(&doc),
            all.0.iter().find(|(d, _)| *d == doc).unwrap().1
        );
    }

    #[test]
    fn issue14_case_5_gov_since_with_empty_heads_pages_from_the_genesis() {
        let mut w = World::wsis();
        for i in 0..40 {
            let org = w.add_org(&format!("Org {i}"), "civil-society", None);
            w.admit(org);
        }
        let all = w.gov.ops().count();
        // A reservation that holds a few ops only: the first page, from the genesis, and `more`.
        let first_len = w.gov.ops().next().unwrap().bytes().len();
        let SyncResponse::Ops { ops, more } =
            ops_response(w.gov.ops_missing_iter(&[]), first_len + 100)
        else {
            panic!("not ops");
        };
        assert!(more && ops.len() < all);
        assert_eq!(ops[0], w.gov.genesis().bytes().to_vec());
        // The whole DAG comes back only with room for it, and not beyond the page bound.
        let SyncResponse::Ops { ops, more } =
            ops_response(w.gov.ops_missing_iter(&[]), MAX_RESERVE)
        else {
            panic!("not ops");
        };
        assert_eq!((ops.len(), more), (all, false));
    }
}
