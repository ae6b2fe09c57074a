//! One bounded parking structure for everything a peer sends before what it depends on: envelopes waiting for
//! governance ops or changes (the engine), governance ops waiting for their parents (the node). Both use the
//! same rule.
//!
//! An entry is sent by a peer, charged to an **owner** (the organisation the peer is bound to, see [`Owner`]) and
//! waits for keys (missing changes, parents). It leaves when what it waits for arrives ([`Parking::remove`], found
//! through [`Parking::take_waiters`]), when its sender is banned or forgotten ([`Parking::forget`]), or when it has
//! waited longer than [`Bounds::ttl`] ([`Parking::expire`], run before every new entry). Every map here is keyed by
//! a peer-chosen value (std's keyed SipHash) and bounded: entries and bytes per owner (the quota), entries and bytes
//! in total (the global cap), and the number of owners tracked.
//!
//! **Quotas are per organisation, not per peer id** (issue 14, defect 6): peer ids cost nothing, and one
//! organisation's sixteen peer ids used to get sixteen quotas and fill the whole pool. An organisation may bind a
//! bounded number of peer ids (`MAX_BINDINGS_PER_ORG`), all sharing its quota; every peer bound to no organisation
//! (or to several: a binding does not prove the peer agreed) shares one quota, [`Owner::Unattributed`].
//!
//! **The policy: the newcomer is refused, nothing parked moves.** An owner past its quota gets its new entry
//! refused ([`Refusal::Quota`]): the flooder pays, and the caller penalises the sending peer if the owner is
//! accountable ([`Owner::accountable`]: an organisation; the shared quota of unattributed peers is nobody's fault).
//! A full global pool or a full owner table refuses the new entry too ([`Refusal::Full`]) but that is not the
//! sender's fault: the caller never penalises it (the item is fetched again later). Evicting the oldest entry
//! instead would be unsafe: with a full global pool an attacker's newcomers would push honest peers' parked entries
//! out, one by one; refusing bounds what a flooder can do to its own quota, and expiry bounds how long it holds
//! it. Refusals, drops and expiries are counted ([`ParkingCounts`]).

mod owner;

pub(crate) use owner::Owner;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Bounds of a [`Parking`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// The quota of one owner.
    pub(crate) per_owner_entries: usize,
    pub(crate) per_owner_bytes: usize,
    pub(crate) total_entries: usize,
    pub(crate) total_bytes: usize,
    /// Owners with parked entries at once.
    pub(crate) owners: usize,
    /// How long an entry may wait.
    pub(crate) ttl: Duration,
}

/// Why a new entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The owner is past its quota (with this many entries and bytes parked): the owner's fault; penalise the
    /// sender if the owner is accountable.
    Quota { entries: usize, bytes: usize },
    /// The global pool or the owner table is full: not the sender's fault, never penalise it.
    Full,
}

/// What a [`Parking`] refused and dropped since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ParkingCounts {
    /// Newcomers refused because their owner was past its quota.
    pub(crate) refused_quota: u64,
    /// Newcomers refused because the pool or the peer table was full.
    pub(crate) refused_full: u64,
    /// Entries dropped with their sender ([`Parking::forget`]).
    pub(crate) dropped: u64,
    /// Entries dropped because they waited longer than the ttl ([`Parking::expire`]).
    pub(crate) expired: u64,
}

/// One parked entry.
#[derive(Debug)]
pub(crate) struct Entry<O, P, W, V> {
    /// Whose quota it is charged to.
    pub(crate) owner: O,
    /// The peer that sent it.
    pub(crate) peer: P,
    pub(crate) bytes: usize,
    /// What it waits for (indexed, see [`Parking::take_waiters`]).
    pub(crate) waits: Vec<W>,
    /// Arrival number, for a deterministic retry order.
    pub(crate) seq: u64,
    /// When it was parked; `None` for an entry that never expires (this node's own, restored from its store).
    pub(crate) parked_at: Option<Instant>,
    pub(crate) value: V,
}

/// Entries that left by expiry, with their keys, oldest first.
pub(crate) type Expired<O, P, K, W, V> = Vec<(K, Entry<O, P, W, V>)>;

/// What [`Parking::park`] did: parked (or already parked) or refused, with what expired first either way.
pub(crate) type ParkResult<O, P, K, W, V> =
    Result<Expired<O, P, K, W, V>, (Refusal, Expired<O, P, K, W, V>)>;

/// Entries of type `V` keyed by `K`, charged to owners `O`, sent by peers `P`, waiting for keys `W`; bounded by
/// [`Bounds`].
#[derive(Debug)]
pub(crate) struct Parking<O, P, K, W, V> {
    pub(crate) bounds: Bounds,
    entries: HashMap<K, Entry<O, P, W, V>>,
    /// owner → (entries, bytes); an owner leaves the table with its last entry.
    per_owner: HashMap<O, (usize, usize)>,
    /// sender → (entries, bytes), for accounting and [`Parking::forget`]; bounded by the entries.
    per_peer: HashMap<P, (usize, usize)>,
    /// arrival number → key of the entries that expire, oldest first.
    arrivals: BTreeMap<u64, K>,
    total_bytes: usize,
    /// awaited key → (arrival number → parked entry waiting for it): taking one out is logarithmic, not a scan.
    waiting: HashMap<W, BTreeMap<u64, K>>,
    next_seq: u64,
    counts: ParkingCounts,
}

impl<O, P, K, W, V> Parking<O, P, K, W, V>
where
    O: Hash + Eq + Clone,
    P: Hash + Eq + Clone,
    K: Hash + Eq + Clone,
    W: Hash + Eq + Clone,
{
    pub(crate) fn new(bounds: Bounds) -> Self {
        Parking {
            bounds,
            entries: HashMap::new(),
            per_owner: HashMap::new(),
            per_peer: HashMap::new(),
            arrivals: BTreeMap::new(),
            total_bytes: 0,
            waiting: HashMap::new(),
            next_seq: 0,
            counts: ParkingCounts::default(),
        }
    }

    /// Whether a new entry of `bytes` charged to `owner` would be refused, and why (counts nothing).
    pub(crate) fn refusal(&self, owner: &O, bytes: usize) -> Option<Refusal> {
        let b = &self.bounds;
        let (n, used) = self.usage(owner);
        if n + 1 > b.per_owner_entries || used + bytes > b.per_owner_bytes {
            return Some(Refusal::Quota {
                entries: n,
                bytes: used,
            });
        }
        let new_owner = n == 0;
        if self.entries.len() + 1 > b.total_entries
            || self.total_bytes + bytes > b.total_bytes
            || (new_owner && self.per_owner.len() + 1 > b.owners)
        {
            return Some(Refusal::Full);
        }
        None
    }

    /// Drops the entries parked longer than the ttl before `now`, oldest first, and returns them.
    pub(crate) fn expire(&mut self, now: Instant) -> Expired<O, P, K, W, V> {
        let mut gone = Vec::new();
        while let Some((_, key)) = self.arrivals.first_key_value() {
            let expired = self
                .entries
                .get(key)
                .and_then(|e| e.parked_at)
                .is_none_or(|at| now.saturating_duration_since(at) > self.bounds.ttl);
            if !expired {
                break;
            }
            let key = key.clone();
            match self.remove(&key) {
                Some(e) => gone.push((key, e)),
                // Not an entry any more (cannot happen: `remove` keeps both in step); drop the stale arrival.
                None => {
                    self.arrivals.pop_first();
                }
            }
        }
        self.counts.expired += gone.len() as u64;
        gone
    }

    /// Parks `value` under `key`, sent by `peer` and charged to `owner`, waiting for `waits`, or refuses it (and
    /// counts the refusal); what has expired by `now` goes first and is returned. `expires`: whether this entry
    /// may expire (false for this node's own). A key already parked stays as it is.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn park(
        &mut self,
        owner: &O,
        peer: &P,
        key: K,
        bytes: usize,
        waits: Vec<W>,
        value: V,
        now: Instant,
        expires: bool,
    ) -> ParkResult<O, P, K, W, V> {
        let expired = self.expire(now);
        if self.entries.contains_key(&key) {
            return Ok(expired);
        }
        if let Some(r) = self.refusal(owner, bytes) {
            match r {
                Refusal::Quota { .. } => self.counts.refused_quota += 1,
                Refusal::Full => self.counts.refused_full += 1,
            }
            return Err((r, expired));
        }
        for w in &waits {
            self.waiting
                .entry(w.clone())
                .or_default()
                .insert(self.next_seq, key.clone());
        }
        let usage = self.per_owner.entry(owner.clone()).or_default();
        usage.0 += 1;
        usage.1 += bytes;
        let usage = self.per_peer.entry(peer.clone()).or_default();
        usage.0 += 1;
        usage.1 += bytes;
        self.total_bytes += bytes;
        if expires {
            self.arrivals.insert(self.next_seq, key.clone());
        }
        self.entries.insert(
            key,
            Entry {
                owner: owner.clone(),
                peer: peer.clone(),
                bytes,
                waits,
                seq: self.next_seq,
                parked_at: expires.then_some(now),
                value,
            },
        );
        self.next_seq += 1;
        Ok(expired)
    }

    /// Takes `key` out (what it waited for arrived, or it left by other means), with its index entries and its
    /// owner's quota.
    pub(crate) fn remove(&mut self, key: &K) -> Option<Entry<O, P, W, V>> {
        let e = self.entries.remove(key)?;
        if let Some((n, b)) = self.per_owner.get_mut(&e.owner) {
            *n -= 1;
            *b -= e.bytes;
            if *n == 0 {
                self.per_owner.remove(&e.owner);
            }
        }
        if let Some((n, b)) = self.per_peer.get_mut(&e.peer) {
            *n -= 1;
            *b -= e.bytes;
            if *n == 0 {
                self.per_peer.remove(&e.peer);
            }
        }
        self.arrivals.remove(&e.seq);
        self.total_bytes -= e.bytes;
        for w in &e.waits {
            if let Some(v) = self.waiting.get_mut(w) {
                v.remove(&e.seq);
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
        self.waiting
            .remove(awaited)
            .map(|w| w.into_values().collect())
            .unwrap_or_default()
    }

    /// Drops everything `peer` sent (it is banned or forgotten), in arrival order.
    pub(crate) fn forget(&mut self, peer: &P) -> Vec<(K, Entry<O, P, W, V>)> {
        if !self.per_peer.contains_key(peer) {
            return Vec::new();
        }
        let mut keys: Vec<(u64, K)> = self
            .entries
            .iter()
            .filter(|(_, e)| &e.peer == peer)
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

    pub(crate) fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    pub(crate) fn get(&self, key: &K) -> Option<&Entry<O, P, W, V>> {
        self.entries.get(key)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &Entry<O, P, W, V>)> {
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

    /// Owners with parked entries.
    #[cfg(test)]
    pub(crate) fn owners(&self) -> usize {
        self.per_owner.len()
    }

    /// Entries charged to `owner`, and their bytes.
    pub(crate) fn usage(&self, owner: &O) -> (usize, usize) {
        self.per_owner.get(owner).copied().unwrap_or((0, 0))
    }

    /// Entries `peer` sent that are parked, and their bytes.
    pub(crate) fn peer_usage(&self, peer: &P) -> (usize, usize) {
        self.per_peer.get(peer).copied().unwrap_or((0, 0))
    }

    pub(crate) fn counts(&self) -> ParkingCounts {
        self.counts
    }
}

#[cfg(test)]
mod tests;
