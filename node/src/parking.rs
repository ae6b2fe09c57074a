//! One bounded parking structure for everything a peer sends before what it depends on: envelopes waiting for
//! governance ops or changes (the engine), governance ops waiting for their parents (the node). Both use the
//! same rule.
//!
//! An entry is owned by the peer that sent it and waits for keys (missing changes, parents). It leaves when what
//! it waits for arrives ([`Parking::remove`], found through [`Parking::take_waiters`]), or when its owner is
//! banned or forgotten ([`Parking::forget`]). Every map here is keyed by a peer-chosen value and bounded: entries
//! and bytes per peer (the quota), entries and bytes in total (the global cap), and the number of peers tracked.
//!
//! **The policy: the newcomer is refused, nothing parked moves.** A peer past its quota gets its new entry
//! refused ([`Refusal::Quota`]): the flooder pays, and the caller should penalise it. A full global pool or a full
//! peer table refuses the new entry too ([`Refusal::Full`]) but it is not that peer's fault: the caller must not
//! penalise it (the item is fetched again later). Evicting the oldest entry instead would be unsafe: with a full
//! global pool an attacker's newcomers would push honest peers' parked entries out, one by one; refusing bounds
//! what a flooder can do to its own quota. Refusals and drops are counted ([`ParkingCounts`]).

use std::collections::HashMap;
use std::hash::Hash;

/// Bounds of a [`Parking`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) per_peer_entries: usize,
    pub(crate) per_peer_bytes: usize,
    pub(crate) total_entries: usize,
    pub(crate) total_bytes: usize,
    /// Peers with parked entries at once.
    pub(crate) peers: usize,
}

/// Why a new entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The owner is past its quota (with this many entries and bytes parked): its fault, penalise it.
    Quota { entries: usize, bytes: usize },
    /// The global pool or the peer table is full: not this peer's fault, do not penalise it.
    Full,
}

/// What a [`Parking`] refused and dropped since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ParkingCounts {
    /// Newcomers refused because their owner was past its quota.
    pub(crate) refused_quota: u64,
    /// Newcomers refused because the pool or the peer table was full.
    pub(crate) refused_full: u64,
    /// Entries dropped with their owner ([`Parking::forget`]).
    pub(crate) dropped: u64,
}

/// One parked entry.
#[derive(Debug)]
pub(crate) struct Entry<P, W, V> {
    pub(crate) owner: P,
    pub(crate) bytes: usize,
    /// What it waits for (indexed, see [`Parking::take_waiters`]).
    pub(crate) waits: Vec<W>,
    /// Arrival number, for a deterministic retry order.
    pub(crate) seq: u64,
    pub(crate) value: V,
}

/// Entries of type `V` keyed by `K`, owned by peers `P`, waiting for keys `W`; bounded by [`Bounds`].
#[derive(Debug)]
pub(crate) struct Parking<P, K, W, V> {
    pub(crate) bounds: Bounds,
    entries: HashMap<K, Entry<P, W, V>>,
    /// owner → (entries, bytes); a peer leaves the table with its last entry.
    per_peer: HashMap<P, (usize, usize)>,
    total_bytes: usize,
    /// awaited key → parked entries waiting for it.
    waiting: HashMap<W, Vec<K>>,
    next_seq: u64,
    counts: ParkingCounts,
}

impl<P, K, W, V> Parking<P, K, W, V>
where
    P: Hash + Eq + Clone,
    K: Hash + Eq + Clone,
    W: Hash + Eq + Clone,
{
    pub(crate) fn new(bounds: Bounds) -> Self {
        Parking {
            bounds,
            entries: HashMap::new(),
            per_peer: HashMap::new(),
            total_bytes: 0,
            waiting: HashMap::new(),
            next_seq: 0,
            counts: ParkingCounts::default(),
        }
    }

    /// Whether a new entry of `bytes` from `owner` would be refused, and why (counts nothing).
    pub(crate) fn refusal(&self, owner: &P, bytes: usize) -> Option<Refusal> {
        let b = &self.bounds;
        let (n, used) = self.usage(owner);
        if n + 1 > b.per_peer_entries || used + bytes > b.per_peer_bytes {
            return Some(Refusal::Quota {
                entries: n,
                bytes: used,
            });
        }
        let new_peer = n == 0;
        if self.entries.len() + 1 > b.total_entries
            || self.total_bytes + bytes > b.total_bytes
            || (new_peer && self.per_peer.len() + 1 > b.peers)
        {
            return Some(Refusal::Full);
        }
        None
    }

    /// Parks `value` under `key` for `owner`, waiting for `waits`, or refuses it (and counts the refusal). A key
    /// already parked stays as it is.
    pub(crate) fn park(
        &mut self,
        owner: &P,
        key: K,
        bytes: usize,
        waits: Vec<W>,
        value: V,
    ) -> Result<(), Refusal> {
        if self.entries.contains_key(&key) {
            return Ok(());
        }
        if let Some(r) = self.refusal(owner, bytes) {
            match r {
                Refusal::Quota { .. } => self.counts.refused_quota += 1,
                Refusal::Full => self.counts.refused_full += 1,
            }
            return Err(r);
        }
        for w in &waits {
            self.waiting.entry(w.clone()).or_default().push(key.clone());
        }
        let usage = self.per_peer.entry(owner.clone()).or_default();
        usage.0 += 1;
        usage.1 += bytes;
        self.total_bytes += bytes;
        self.entries.insert(
            key,
            Entry {
                owner: owner.clone(),
                bytes,
                waits,
                seq: self.next_seq,
                value,
            },
        );
        self.next_seq += 1;
        Ok(())
    }

    /// Takes `key` out (what it waited for arrived, or it left by other means), with its index entries and its
    /// owner's quota.
    pub(crate) fn remove(&mut self, key: &K) -> Option<Entry<P, W, V>> {
        let e = self.entries.remove(key)?;
        if let Some((n, b)) = self.per_peer.get_mut(&e.owner) {
            *n -= 1;
            *b -= e.bytes;
            if *n == 0 {
                self.per_peer.remove(&e.owner);
            }
        }
        self.total_bytes -= e.bytes;
        for w in &e.waits {
            if let Some(v) = self.waiting.get_mut(w) {
                v.retain(|x| x != key);
                if v.is_empty() {
                    self.waiting.remove(w);
                }
            }
        }
        Some(e)
    }

    /// The entries waiting for `awaited`, in arrival order; they stay parked (the caller removes those that are
    /// ready), but the index forgets `awaited`.
    pub(crate) fn take_waiters(&mut self, awaited: &W) -> Vec<K> {
        let mut keys = self.waiting.remove(awaited).unwrap_or_default();
        keys.sort_by_key(|k| self.entries.get(k).map(|e| e.seq));
        keys
    }

    /// Drops everything `owner` parked (it is banned or forgotten), in arrival order.
    pub(crate) fn forget(&mut self, owner: &P) -> Vec<(K, Entry<P, W, V>)> {
        if !self.per_peer.contains_key(owner) {
            return Vec::new();
        }
        let mut keys: Vec<(u64, K)> = self
            .entries
            .iter()
            .filter(|(_, e)| &e.owner == owner)
            .map(|(k, e)| (e.seq, k.clone()))
            .collect();
        keys.sort_by_key(|(seq, _)| *seq);
        let dropped: Vec<_> = keys
            .into_iter()
            .filter_map(|(_, k)| self.remove(&k).map(|e| (k, e)))
            .collect();
        self.counts.dropped += dropped.len() as u64;
        dropped
    }

    /// Keeps only the entries for which `keep` holds (the others left by other means, e.g. released elsewhere).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        let gone: Vec<K> = self.entries.keys().filter(|k| !keep(k)).cloned().collect();
        for k in &gone {
            self.remove(k);
        }
    }

    pub(crate) fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    pub(crate) fn get(&self, key: &K) -> Option<&Entry<P, W, V>> {
        self.entries.get(key)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &Entry<P, W, V>)> {
        self.entries.iter()
    }

    /// Keys some entry waits for.
    pub(crate) fn awaited(&self) -> impl Iterator<Item = &W> {
        self.waiting.keys()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Peers with parked entries.
    #[cfg(test)]
    pub(crate) fn peers(&self) -> usize {
        self.per_peer.len()
    }

    /// Entries `owner` has parked, and their bytes.
    pub(crate) fn usage(&self, owner: &P) -> (usize, usize) {
        self.per_peer.get(owner).copied().unwrap_or((0, 0))
    }

    pub(crate) fn counts(&self) -> ParkingCounts {
        self.counts
    }
}

#[cfg(test)]
mod tests;
