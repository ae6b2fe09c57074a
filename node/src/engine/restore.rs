//! Restoring the engine from the store after a restart, and revalidating every stored envelope when governance
//! changes (a late revocation, an admission).

use super::history::Standing;
use super::outcome::*;
use super::parking::*;
use super::receive::*;
use super::sink::*;
use super::DocumentEngine;
use std::collections::{BTreeSet, HashMap, HashSet};
use wsis_protocol::crypto::PublicKey;
use wsis_protocol::envelope::{SignedEnvelope, VerifiedHeader};
use wsis_protocol::gov::{Governance, WriteDenied};
use wsis_protocol::ids::Hash32;
use wsis_protocol::ids::{DocId, EnvelopeId, OpId, OrgId};

impl<S: EnvelopeSink> DocumentEngine<S> {
    /// Loads envelopes from this node's store after a restart: each is verified again and goes through the
    /// pipeline in causal order (whatever order the store yields), without being stored again. Envelopes that
    /// are no longer authorised are kept (stored, not applied), as they were before the restart.
    pub fn restore<B: AsRef<[u8]>>(
        &mut self,
        gov: &Governance,
        stored: impl IntoIterator<Item = B>,
    ) -> Restored {
        let mut report = Restored::default();
        let mut envs = Vec::new();
        for b in stored {
            match VerifiedHeader::from_bytes(b.as_ref(), self.federation) {
                Ok(env) => envs.push(Incoming::Header(env)),
                Err(_) => report.rejected += 1,
            }
        }
        self.restore_incoming(gov, envs, report)
    }

    /// [`restore`](Self::restore) for envelopes the store has verified already (`Store::load_envelopes`), so
    /// no signature is checked twice.
    pub fn restore_envelopes(
        &mut self,
        gov: &Governance,
        stored: impl IntoIterator<Item = SignedEnvelope>,
    ) -> Restored {
        let envs = stored.into_iter().map(Incoming::Parsed).collect();
        self.restore_incoming(gov, envs, Restored::default())
    }

    pub(super) fn restore_incoming(
        &mut self,
        gov: &Governance,
        envs: Vec<Incoming>,
        mut report: Restored,
    ) -> Restored {
        self.defer = true;
        for env in causal_order(envs) {
            if env.header().header().federation != self.federation {
                report.rejected += 1;
                continue;
            }
            match self.admit(gov, env, &Peer::local(), true) {
                Ok(Step::Accepted { hashes, .. }) => {
                    let (released, _, _, _) = self.release(gov, hashes);
                    report.accepted += 1 + released;
                }
                Ok(Step::Parked(_) | Step::Duplicate) => {}
                Err(_) => report.rejected += 1,
            }
        }
        self.flush_deferred();
        report.parked = self.parked_by(&Peer::local()).0;
        report
    }

    // -----------------------------------------------------------------------------------------------------------
    // Governance changes
    // -----------------------------------------------------------------------------------------------------------

    /// Re-runs authorisation on every stored envelope against `gov` (call it after governance ops arrive: a late
    /// revocation, a contest resolved) and rebuilds every document whose valid set changed. Invalidated envelopes
    /// stay stored but out of the materialised document. Also retries envelopes parked for governance ops.
    pub fn revalidate(&mut self, gov: &Governance) -> Revalidation {
        let mut report = Revalidation::default();
        let mut ids: Vec<DocId> = self.docs.keys().copied().collect();
        ids.sort();
        // Envelopes of one author citing the same heads (the usual case between governance changes) share one
        // answer: it depends only on the document, the author, the key and the heads.
        let mut cache: AuthorisationCache = HashMap::new();
        for doc in ids {
            let Some(st) = self.docs.get_mut(&doc) else {
                continue;
            };
            let mut changed = false;
            let mut now: Vec<Result<(), WriteDenied>> = st
                .envelopes
                .iter()
                .map(|s| {
                    let key = (
                        doc,
                        s.env.header().author,
                        s.env.header().key,
                        s.env.header().gov_heads.clone(),
                    );
                    cache
                        .entry(key)
                        .or_insert_with(|| gov.authorize_envelope(&s.env))
                        .clone()
                })
                .collect();
            // Refused by the state but in the document all the same (finalised content, adopted edits): decided
            // afresh from the new state (`history`).
            let standing: Vec<Standing> = now
                .iter()
                .map(|r| match r {
                    Ok(()) => Standing::Authorised,
                    Err(d) => Standing::Refused(d.clone()),
                })
                .collect();
            for s in &st.envelopes {
                self.history.reinstated.remove(&s.env.id());
            }
            for i in self.history.beyond_state(gov, st, &standing) {
                now[i] = Ok(());
                self.history.reinstated.insert(st.envelopes[i].env.id());
            }
            for (s, now) in st.envelopes.iter_mut().zip(now) {
                if now != s.authorised {
                    match (&s.authorised, &now) {
                        (Ok(()), Err(_)) => report.invalidated += 1,
                        (Err(_), Ok(())) => report.reinstated += 1,
                        _ => {}
                    }
                    changed |= s.authorised.is_ok() != now.is_ok();
                    s.authorised = now;
                }
            }
            if changed {
                st.rebuild(&HashSet::new());
                report.rebuilt.push(doc);
            }
        }
        // Parked for governance ops: retry those whose ops are all known now.
        let mut ready: Vec<(u64, EnvelopeId)> = self
            .parking
            .slots
            .iter()
            .filter(|(_, p)| match &p.value.wait {
                Wait::Governance(ops) => ops.iter().all(|o| gov.contains(o)),
                Wait::Changes(_) => false,
            })
            .map(|(id, p)| (p.seq, *id))
            .collect();
        ready.sort();
        for (_, id) in ready {
            let Some(p) = self.parking.remove(&id) else {
                continue;
            };
            match self.admit(gov, p.value.env, &p.peer, p.value.restore) {
                Ok(Step::Accepted { hashes, .. }) => {
                    report.released += 1;
                    let (released, _, _, _) = self.release(gov, hashes);
                    report.released += released;
                }
                Ok(_) => {}
                Err(_) => report.rejected += 1,
            }
        }
        report
    }
}

/// Authorisation answers within one [`DocumentEngine::revalidate`], by (document, author, key, cited heads).
pub(super) type AuthorisationCache =
    HashMap<(DocId, OrgId, PublicKey, Vec<OpId>), Result<(), WriteDenied>>;

/// Orders envelopes so that each comes after the envelopes carrying its dependencies (input order otherwise).
pub(super) fn causal_order(envs: Vec<Incoming>) -> Vec<Incoming> {
    let mut carrier: HashMap<Hash32, usize> = HashMap::new();
    for (i, e) in envs.iter().enumerate() {
        for h in &e.header().header().change_hashes {
            carrier.entry(*h).or_insert(i);
        }
    }
    let mut indegree = vec![0usize; envs.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); envs.len()];
    for (i, e) in envs.iter().enumerate() {
        let mut on: BTreeSet<usize> = BTreeSet::new();
        for d in e.header().external_deps() {
            if let Some(&j) = carrier.get(&d) {
                if j != i {
                    on.insert(j);
                }
            }
        }
        indegree[i] = on.len();
        for j in on {
            dependents[j].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..envs.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(envs.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &k in &dependents[i] {
            indegree[k] -= 1;
            if indegree[k] == 0 {
                ready.insert(k);
            }
        }
    }
    // A cycle cannot happen with hashes; anything left over is appended in input order.
    let placed: HashSet<usize> = order.iter().copied().collect();
    order.extend((0..envs.len()).filter(|i| !placed.contains(i)));
    let mut slots: Vec<Option<Incoming>> = envs.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}
