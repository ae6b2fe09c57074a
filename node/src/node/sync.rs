//! The pull client: what this node asks its peers for (governance ops, then the documents whose heads differ),
//! when (announcements, new connections, anti-entropy), and how what comes back enters the replica and the engine.
//!
//! An item refused once is remembered (`refused`): a later sync that brings it again skips it, asks nobody for it
//! by id and penalises nobody for it, so one bad item costs its sender one penalty, not one per round.

use super::*;
use crate::engine::{ReceiveError, Reject};
use wsis_protocol::ids::EnvelopeId;

impl Node {
    /// Whether this node refused the op `id` before (and still remembers it, see `refused`).
    fn refused_op(&self, id: &OpId) -> bool {
        self.inner.refused_ops.lock().is_ok_and(|r| r.contains(id))
    }

    /// Inserts ops received from `peer`, storing what enters the DAG. Returns (new ops, refused ops, parked ops).
    pub(super) async fn receive_ops(
        &self,
        peer: PeerId,
        ops: Vec<Vec<u8>>,
    ) -> (usize, usize, usize) {
        let (mut new, mut refused, mut parked, mut evicted) = (0, 0, 0, 0);
        // Newcomers the parked-op ledger refused: past the peer's quota (its fault), or with the ledger full.
        let (mut over_quota, mut parking_refused) = (0, 0);
        // Ops refused before (skipped: one fault, one penalty), and ops waiting for such an op (they can never
        // enter the DAG: dropped at once, not parked, not penalised).
        let (mut known_bad, mut doomed) = (0, 0);
        // A peer bound to no member is an outsider here: of its ops only those the replica would take from anyone
        // are decoded further (its organisation's inception and bindings, ops of organisations this replica has
        // admitted); what it makes wait for admission is charged to it, and past its quota it is to blame.
        let outsider = !self.admitted(&peer).await;
        let (mut screened, mut over_pending_quota, mut pending_refused) = (0, 0, 0);
        for bytes in ops {
            let id = OpId::of_bytes(&bytes);
            let before = self
                .inner
                .refused_ops
                .lock()
                .ok()
                .and_then(|r| r.get(&id).cloned());
            if let Some(before) = before {
                tracing::debug!(%peer, %id, first_from = %before.peer, reason = %before.reason, "skipping an op refused before");
                known_bad += 1;
                continue;
            }
            let mut gov = self.inner.gov.lock().await;
            if outsider && !takes_from_outsider(&gov, &bytes) {
                screened += 1;
                continue;
            }
            let result = gov.insert_bytes(&bytes);
            if let Ok(Inserted::Pending) = &result {
                if let Ok(mut l) = self.inner.pending_by.lock() {
                    let now = std::time::Instant::now();
                    let r = l.record(&mut gov, peer, id, bytes.len(), now);
                    evicted += r.evicted;
                    if r.refused.is_some() {
                        pending_refused += 1;
                        over_pending_quota += usize::from(
                            outsider
                                && matches!(r.refused, Some(crate::parking::Refusal::Quota { .. })),
                        );
                    }
                }
            }
            if let Ok(Inserted::Parked { missing }) = &result {
                if missing.iter().any(|m| self.refused_op(m)) {
                    evicted += gov.evict_parked(&[id]);
                    doomed += 1;
                    continue;
                }
            }
            if let Ok(Inserted::Parked { missing }) = &result {
                // Charged to the sender's organisation; refused past its quota (blamed) or with the ledger full
                // (not blamed), and evicted then (see `parked_ops`).
                if let Ok(mut l) = self.inner.parked_by.lock() {
                    let now = std::time::Instant::now();
                    let r = l.record(&mut gov, peer, id, bytes.len(), missing.clone(), now);
                    evicted += r.evicted;
                    parking_refused += usize::from(r.refused.is_some());
                    over_quota += usize::from(r.blame);
                }
            }
            if let Ok(Inserted::Applied { released, .. }) = &result {
                if let Ok(mut l) = self.inner.parked_by.lock() {
                    l.release(released);
                }
                if let Ok(mut l) = self.inner.pending_by.lock() {
                    l.release(released);
                    l.release(&[id]);
                }
            }
            let to_store: Vec<SignedOp> = match &result {
                Ok(Inserted::Applied { released, .. }) => {
                    std::iter::once(SignedOp::decode(&bytes).ok())
                        .flatten()
                        .chain(released.iter().filter_map(|id| gov.get(id).cloned()))
                        .collect()
                }
                _ => vec![],
            };
            drop(gov);
            match result {
                Ok(Inserted::Applied { .. }) => new += 1,
                Ok(Inserted::Parked { .. }) => parked += 1,
                Ok(Inserted::Duplicate) | Ok(Inserted::Pending) => {}
                Err(e) => {
                    refused += 1;
                    tracing::info!(%peer, error = %e, "refused an op from a peer");
                    // A full parking area or an author not known yet is about this node's state, not the op: it
                    // may enter later, and its sender is not to blame (issue 11, defect 6).
                    if !e.is_transient() {
                        if let Ok(mut r) = self.inner.refused_ops.lock() {
                            r.remember(id, peer, &e.to_string());
                        }
                        let _ = self
                            .inner
                            .net
                            .penalise(peer, format!("refused op: {e}"))
                            .await;
                    }
                }
            }
            for op in to_store {
                if let Err(e) = self.inner.store.put_op(&op).await {
                    tracing::error!(error = %e, "cannot store a received op; it will be fetched again");
                }
            }
        }
        if over_quota > 0 {
            let _ = self
                .inner
                .net
                .penalise(
                    peer,
                    format!(
                        "orphan flood: {over_quota} ops refused past the per-peer parking quota"
                    ),
                )
                .await;
        }
        if over_pending_quota > 0 {
            let _ = self
                .inner
                .net
                .penalise(
                    peer,
                    format!(
                        "outsider flood: {over_pending_quota} ops past the per-peer quota of ops waiting for admission"
                    ),
                )
                .await;
        }
        if screened + pending_refused > 0 {
            tracing::debug!(%peer, screened, pending_refused, "ops of organisations not admitted left out");
        }
        if known_bad + doomed > 0 {
            tracing::debug!(%peer, known_bad, doomed, "skipped ops refused before and ops waiting for them");
        }
        if let Ok(mut s) = self.inner.stats.lock() {
            s.ops_received += new as u64;
            s.ops_refused += refused as u64;
            s.ops_evicted += evicted as u64;
            s.ops_parking_refused += parking_refused as u64;
        }
        if new > 0 {
            self.revalidate_documents().await;
        }
        (new, refused, parked)
    }

    /// Pulls from `peer` everything this node lacks of the governance DAG: `GovSince` with this node's heads,
    /// page after page while the peer says `more`, then one `GetOps` for parents that parked ops still wait for
    /// (ops that can never be completed, e.g. an orphan flood, must not stop the next sync from asking `GovSince`).
    pub async fn sync_with(&self, peer: PeerId) -> Result<usize, crate::net::RequestError> {
        let _permit = self
            .inner
            .syncs
            .acquire()
            .await
            .map_err(|_| NetError::Stopped)?;
        let mut total = 0;
        for _ in 0..MAX_SYNC_ROUNDS {
            let heads = self.inner.gov.lock().await.have_summary(GOV_HAVE_IDS);
            match self
                .inner
                .net
                .request(peer, &SyncRequest::GovSince { heads })
                .await?
            {
                SyncResponse::Ops { ops, more } => {
                    let (applied, _, _) = self.receive_ops(peer, ops).await;
                    total += applied;
                    if !more || applied == 0 {
                        break;
                    }
                }
                SyncResponse::Refused { reason } => {
                    tracing::debug!(%peer, ?reason, "sync refused");
                    return Ok(total);
                }
                // Still starting: nothing to pull, and an error, so this node introduces itself again later.
                SyncResponse::NoGenesis => return Err(crate::net::RequestError::NoReplica),
                other => {
                    tracing::info!(%peer, ?other, "unexpected sync response");
                    return Ok(total);
                }
            }
        }
        // Parents this node refused are not asked for again (the ops waiting for them never enter the DAG).
        let missing: Vec<OpId> = self
            .inner
            .gov
            .lock()
            .await
            .missing()
            .into_iter()
            .filter(|id| !self.refused_op(id))
            .collect();
        if !missing.is_empty() {
            let ids = missing.into_iter().take(MAX_IDS_PER_REQUEST).collect();
            if let SyncResponse::Ops { ops, .. } = self
                .inner
                .net
                .request(peer, &SyncRequest::GetOps { ids })
                .await?
            {
                total += self.receive_ops(peer, ops).await.0;
            }
        }
        for doc in self.documents_to_sync(peer).await? {
            total += self.sync_document(peer, doc).await?;
        }
        // What a sync pulls is not announced again: its author's announcement already flooded the mesh, and a
        // node that missed it repairs through anti-entropy. Re-announcing made every op cost one gossip flood per
        // node (O(nodes²) messages per op), which at 50 nodes filled gossipsub's send queues.
        Ok(total)
    }

    /// The documents whose heads differ between this node and `peer`, found with one `DocDigests` exchange (a
    /// page per 4,096 documents) instead of one request per document: a sync after one edit pulls one document.
    /// Documents the peer does not hold at all are skipped (it pulls them from us); a peer that refuses or
    /// answers out of turn gets the per-document pull of every document, the slow path that always works.
    pub(super) async fn documents_to_sync(
        &self,
        peer: PeerId,
    ) -> Result<Vec<DocId>, crate::net::RequestError> {
        let ours = self.inner.gov.lock().await.documents();
        let mut theirs: HashMap<DocId, [u8; 32]> = HashMap::new();
        let mut after = None;
        for _ in 0..MAX_SYNC_ROUNDS {
            match self
                .inner
                .net
                .request(peer, &SyncRequest::DocDigests { after })
                .await?
            {
                SyncResponse::DocDigests { digests, more } => {
                    after = digests.last().map(|(d, _)| *d);
                    let empty = digests.is_empty();
                    theirs.extend(digests);
                    if !more || empty {
                        break;
                    }
                }
                // Over our budget at the peer: pulling every document instead would only spend more of it.
                SyncResponse::Refused {
                    reason: RefuseReason::Busy,
                } => return Ok(Vec::new()),
                other => {
                    tracing::debug!(%peer, response = other.kind_name(), "no document digests; pulling every document");
                    return Ok(ours);
                }
            }
        }
        let docs = self.inner.docs.lock().await;
        Ok(ours
            .into_iter()
            .filter(|d| theirs.get(d).is_some_and(|t| *t != docs.heads_digest(d)))
            .collect())
    }

    /// Pulls the envelopes of one document that this node lacks from `peer`, through the acceptance pipeline.
    pub(super) async fn sync_document(
        &self,
        peer: PeerId,
        doc: DocId,
    ) -> Result<usize, crate::net::RequestError> {
        let from = Peer::new(&peer.to_bytes());
        let mut accepted = 0;
        for _ in 0..MAX_SYNC_ROUNDS {
            // Every envelope id while they fit one request (documents are small): a peer that lacks our newest
            // envelope would otherwise not recognise our heads and send the whole document.
            let have = {
                let docs = self.inner.docs.lock().await;
                let all = docs.envelope_ids(&doc);
                if all.len() <= MAX_IDS_PER_REQUEST {
                    all
                } else {
                    docs.envelope_heads(&doc)
                }
            };
            let (mut envelopes, more) = match self
                .inner
                .net
                .request(peer, &SyncRequest::GetEnvelopes { doc, have })
                .await?
            {
                SyncResponse::Envelopes { envelopes, more } => (envelopes, more),
                _ => return Ok(accepted),
            };
            // Envelopes refused before are skipped: the peer sends them again at every round (they never enter
            // this node's heads), and one bad envelope is one fault, penalised once.
            let sent = envelopes.len();
            if let Ok(r) = self.inner.refused_envelopes.lock() {
                envelopes.retain(|b| !r.contains(&EnvelopeId::of_bytes(b)));
            }
            if envelopes.len() < sent {
                tracing::debug!(%peer, skipped = sent - envelopes.len(), "skipped envelopes refused before");
            }
            let (new, refused, first_error) = {
                let gov = self.inner.gov.lock().await;
                let mut docs = self.inner.docs.lock().await;
                // One engine call per response: one Automerge apply per document and one group commit for the
                // envelopes it accepts (see `StoreSink`); it verifies signatures, parses changes and waits for the
                // disk: block in place (see the module docs). A failed commit comes back as a storage error on
                // each envelope it held (logged below; they are fetched again).
                let results = blocking(|| docs.receive_batch(&gov, &from, envelopes.iter()));
                let (mut new, mut refused, mut first_error) = (0, 0, None);
                for (result, bytes) in results.into_iter().zip(&envelopes) {
                    match result {
                        // Stored as evidence; the sender delivered an author's first equivocation in a document,
                        // which each node sees once per (author, document): one penalty (issue 14, defect 3).
                        Ok(Received::Accepted(a)) if a.excluded.is_some() => {
                            new += 1;
                            first_error.get_or_insert((
                                Reject::InvalidHistory,
                                format!("an equivocation by {:?}", a.excluded),
                            ));
                        }
                        Ok(Received::Accepted(_)) => new += 1,
                        Ok(_) => {}
                        Err(e) => {
                            if let Some(reason) = e.reason() {
                                refused += 1;
                                tracing::info!(%peer, error = %e, "refused an envelope from a peer");
                                // Remembered unless the refusal is about this node's buffers (over the peer's
                                // parking quota, or the buffer full): that envelope may be accepted later.
                                if e.penalises() && !matches!(e, ReceiveError::ParkingFull { .. }) {
                                    if let Ok(mut r) = self.inner.refused_envelopes.lock() {
                                        r.remember(
                                            EnvelopeId::of_bytes(bytes),
                                            peer,
                                            &e.to_string(),
                                        );
                                    }
                                }
                                // A full parking buffer is not this peer's fault: refused, not penalised.
                                if e.penalises() {
                                    first_error.get_or_insert((reason, e.to_string()));
                                }
                            } else {
                                tracing::error!(error = %e, "cannot store a received envelope; it will be fetched again");
                            }
                        }
                    }
                }
                (new, refused, first_error)
            };
            if let Some((reason, error)) = first_error {
                // One penalty per response, however many envelopes it held: the response is one act of the peer,
                // and an honest peer can relay an envelope this node judges differently (it may know a
                // revocation the peer does not), which must not ban it at once.
                let _ = self
                    .inner
                    .net
                    .penalise(
                        peer,
                        format!(
                            "refused {refused} of {} envelopes, first {reason:?}: {error}",
                            envelopes.len()
                        ),
                    )
                    .await;
            }
            accepted += new;
            if !more || new == 0 {
                break;
            }
        }
        Ok(accepted)
    }

    pub(super) fn schedule_sync(&self, peer: PeerId) {
        let fresh = self
            .inner
            .syncing
            .lock()
            .map(|mut s| match s.get_mut(&peer) {
                Some(again) => {
                    *again = true;
                    false
                }
                None => {
                    s.insert(peer, false);
                    true
                }
            })
            .unwrap_or(false);
        if !fresh {
            return;
        }
        let node = self.clone();
        tokio::spawn(async move {
            let member = {
                let gov = node.inner.gov.lock().await;
                gov.is_member(&node.inner.org)
            };
            // Not admitted (yet): offer our inception and binding so a secretariat can admit us. Admitted too,
            // once per peer and again after a refusal: a secretariat organisation is a member from the genesis,
            // and the peer serves it only once it knows the binding of this node (two secretariat nodes would
            // otherwise refuse each other forever).
            let introduced = node
                .inner
                .introduced
                .lock()
                .map(|s| s.contains(&peer))
                .unwrap_or(false);
            if !member || !introduced {
                match node.push_identity(peer).await {
                    Ok(_) if member => {
                        if let Ok(mut s) = node.inner.introduced.lock() {
                            if s.len() < MAX_INTRODUCED_PEERS {
                                s.insert(peer);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(%peer, error = %e, "could not push identity"),
                }
            }
            // Bounded: a peer announcing faster than we sync gets at most this many back-to-back syncs; the
            // next announcement or anti-entropy round starts a fresh task.
            for _ in 0..MAX_SYNC_ROUNDS {
                let synced = node.sync_with(peer).await;
                if let Err(e) = &synced {
                    tracing::debug!(%peer, error = %e, "sync failed");
                    if let Ok(mut s) = node.inner.introduced.lock() {
                        s.remove(&peer);
                    }
                }
                // Checked and cleared under one lock, so a request arriving now is either seen here or starts
                // a new task.
                let again = node
                    .inner
                    .syncing
                    .lock()
                    .map(|mut s| {
                        if synced.is_ok() && s.get(&peer) == Some(&true) {
                            s.insert(peer, false);
                            true
                        } else {
                            s.remove(&peer);
                            false
                        }
                    })
                    .unwrap_or(false);
                if !again {
                    return;
                }
            }
            if let Ok(mut s) = node.inner.syncing.lock() {
                s.remove(&peer);
            }
        });
    }

    pub(super) async fn anti_entropy(self) {
        let mut tick = tokio::time::interval(ANTI_ENTROPY_INTERVAL);
        loop {
            tick.tick().await;
            let Ok(mut peers) = self.inner.net.connected_peers().await else {
                return;
            };
            // A few random peers per round, not all: asking every peer every round is O(nodes²) traffic for
            // the federation (at 50 nodes it saturated a 2-core machine). Announcements still trigger syncs at
            // once; this only repairs what gossip missed, and random choice reaches every peer over rounds.
            {
                use rand::seq::SliceRandom;
                peers.shuffle(&mut rand::thread_rng());
            }
            for p in peers.into_iter().take(ANTI_ENTROPY_FANOUT) {
                self.schedule_sync(p);
            }
        }
    }
}

/// Whether an op from a peer bound to no member is worth more than its decoding: its organisation's inception or
/// a binding (which may wait for admission), or an op of an organisation this replica has incepted (the same op
/// from anyone else is the same op). Anything else the replica would refuse as not admitted.
pub(super) fn takes_from_outsider(gov: &Governance, bytes: &[u8]) -> bool {
    // Bytes that do not decode are taken: the replica refuses them as malformed and the peer is penalised, as
    // any peer would be (being an outsider is no excuse for sending garbage).
    SignedOp::decode(bytes).map_or(true, |op| {
        matches!(op.kind(), OpKind::OrgInception(_) | OpKind::BindNode { .. })
            || gov.is_incepted(&op.author())
    })
}
