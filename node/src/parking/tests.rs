//! Unit tests of the parking rules, one per rule: quota, global cap, tracked-owner cap, release on arrival,
//! forgetting a peer, quotas shared by an owner's peers, expiry, and the counts.

use super::*;

/// Owners and peers are both names here; most tests charge each peer to an owner of the same name.
type P = Parking<&'static str, &'static str, u32, char, ()>;

const TTL: Duration = Duration::from_secs(60);

fn parking(per_owner_entries: usize, total_entries: usize, owners: usize) -> P {
    Parking::new(Bounds {
        per_owner_entries,
        per_owner_bytes: 100,
        total_entries,
        total_bytes: 1_000,
        owners,
        ttl: TTL,
    })
}

/// The start of every test's clock.
fn t0() -> Instant {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *T0.get_or_init(Instant::now)
}

/// The short form: `owner` sends it itself, at `t0`, expiring.
trait Park {
    fn put(
        &mut self,
        owner: &&'static str,
        key: u32,
        bytes: usize,
        waits: Vec<char>,
        v: (),
    ) -> Result<(), Refusal>;
}

impl Park for P {
    fn put(
        &mut self,
        owner: &&'static str,
        key: u32,
        bytes: usize,
        waits: Vec<char>,
        v: (),
    ) -> Result<(), Refusal> {
        Parking::park(self, owner, owner, key, bytes, waits, v, t0(), true)
            .map(|_| ())
            .map_err(|(r, _)| r)
    }
}

#[test]
fn a_peer_past_its_quota_has_its_newcomer_refused_and_nothing_moves() {
    let mut p = parking(2, 10, 10);
    p.put(&"mallory", 1, 10, vec![], ()).unwrap();
    p.put(&"honest", 2, 10, vec![], ()).unwrap();
    p.put(&"mallory", 3, 10, vec![], ()).unwrap();
    assert_eq!(
        p.put(&"mallory", 4, 10, vec![], ()),
        Err(Refusal::Quota {
            entries: 2,
            bytes: 20
        })
    );
    assert!(p.contains(&1) && p.contains(&2) && p.contains(&3) && !p.contains(&4));
    // The byte quota as well.
    assert_eq!(
        p.put(&"honest", 5, 91, vec![], ()),
        Err(Refusal::Quota {
            entries: 1,
            bytes: 10
        })
    );
    p.put(&"honest", 5, 90, vec![], ()).unwrap();
}

#[test]
fn a_full_pool_refuses_the_newcomer_as_not_its_fault() {
    let mut p = parking(5, 3, 10);
    for (k, owner) in [(1, "a"), (2, "a"), (3, "b")] {
        p.put(&owner, k, 10, vec![], ()).unwrap();
    }
    assert_eq!(p.put(&"c", 4, 10, vec![], ()), Err(Refusal::Full));
    assert_eq!(p.put(&"a", 4, 10, vec![], ()), Err(Refusal::Full));
    assert_eq!(p.len(), 3, "nobody's entry was evicted");
    p.remove(&1);
    p.put(&"c", 4, 10, vec![], ()).unwrap();
}

#[test]
fn past_the_tracked_owners_a_new_owner_is_refused_but_known_ones_go_on() {
    let mut p = parking(5, 10, 2);
    p.put(&"a", 1, 10, vec![], ()).unwrap();
    p.put(&"b", 2, 10, vec![], ()).unwrap();
    assert_eq!(p.put(&"c", 3, 10, vec![], ()), Err(Refusal::Full));
    p.put(&"a", 3, 10, vec![], ()).unwrap();
    assert_eq!(p.owners(), 2);
    // A peer leaves the table with its last entry.
    p.remove(&2);
    p.put(&"c", 4, 10, vec![], ()).unwrap();
    assert_eq!(p.owners(), 2);
}

#[test]
fn an_entry_is_released_when_what_it_waits_for_arrives() {
    let mut p = parking(5, 10, 10);
    p.put(&"a", 2, 10, vec!['x', 'y'], ()).unwrap();
    p.put(&"b", 1, 10, vec!['x'], ()).unwrap();
    assert_eq!(p.take_waiters(&'x'), vec![2, 1], "in arrival order");
    assert!(p.take_waiters(&'x').is_empty());
    let e = p.remove(&2).unwrap();
    assert_eq!((e.owner, e.waits), ("a", vec!['x', 'y']));
    assert_eq!(p.awaited().count(), 0, "its other index entries go with it");
    assert_eq!(p.usage(&"a"), (0, 0));
    assert_eq!((p.len(), p.total_bytes()), (1, 10));
    p.remove(&1);
    assert_eq!((p.len(), p.total_bytes(), p.owners()), (0, 0, 0));
}

#[test]
fn forgetting_a_peer_drops_all_it_parked_and_only_that() {
    let mut p = parking(5, 10, 10);
    p.put(&"mallory", 3, 10, vec!['x'], ()).unwrap();
    p.put(&"honest", 2, 10, vec!['x'], ()).unwrap();
    p.put(&"mallory", 1, 10, vec!['y'], ()).unwrap();
    let gone: Vec<u32> = p.forget(&"mallory").into_iter().map(|(k, _)| k).collect();
    assert_eq!(gone, vec![3, 1]);
    assert!(p.forget(&"mallory").is_empty());
    assert_eq!((p.len(), p.usage(&"mallory")), (1, (0, 0)));
    assert_eq!(p.take_waiters(&'x'), vec![2]);
    assert!(p.take_waiters(&'y').is_empty());
}

#[test]
fn refusals_and_drops_are_counted() {
    let mut p = parking(1, 2, 10);
    p.put(&"a", 1, 10, vec![], ()).unwrap();
    assert!(p.put(&"a", 2, 10, vec![], ()).is_err());
    p.put(&"b", 3, 10, vec![], ()).unwrap();
    assert!(p.put(&"c", 4, 10, vec![], ()).is_err());
    // A key already parked is no newcomer: neither parked twice nor refused.
    assert_eq!(p.put(&"a", 1, 10, vec![], ()), Ok(()));
    p.forget(&"a");
    assert_eq!(
        p.counts(),
        ParkingCounts {
            refused_quota: 1,
            refused_full: 1,
            dropped: 1,
            expired: 0,
        }
    );
}

/// Catalogue (issue 14, defect 6): one owner's many peers share its one quota; the quota is charged and freed per
/// owner, and forgetting one peer drops only what that peer sent.
#[test]
fn an_owners_peers_share_its_quota() {
    let mut p = parking(3, 100, 100);
    for (k, peer) in [(1, "m1"), (2, "m2"), (3, "m3")] {
        Parking::park(&mut p, &"mallory", &peer, k, 10, vec![], (), t0(), true).unwrap();
    }
    let r = Parking::park(&mut p, &"mallory", &"m4", 4, 10, vec![], (), t0(), true);
    assert!(
        matches!(r, Err((Refusal::Quota { entries: 3, .. }, _))),
        "a fresh peer id buys nothing"
    );
    assert!(p.put(&"honest", 5, 10, vec![], ()).is_ok());
    assert_eq!(
        (p.usage(&"mallory"), p.peer_usage(&"m2")),
        ((3, 30), (1, 10))
    );
    let gone: Vec<u32> = p.forget(&"m2").into_iter().map(|(k, _)| k).collect();
    assert_eq!(gone, vec![2]);
    assert_eq!(p.usage(&"mallory"), (2, 20));
}

/// Catalogue (issue 11 and 14, defect 6): an entry parked longer than the ttl leaves before the next newcomer is
/// judged, so a full pool frees itself; entries that do not expire are never dropped by time.
#[test]
fn expired_entries_leave_before_a_newcomer_is_judged() {
    let mut p = parking(10, 2, 10);
    Parking::park(&mut p, &"a", &"a", 1, 10, vec!['x'], (), t0(), true).unwrap();
    Parking::park(&mut p, &"local", &"local", 2, 10, vec![], (), t0(), false).unwrap();
    let soon = t0() + TTL;
    assert!(
        Parking::park(&mut p, &"b", &"b", 3, 10, vec![], (), soon, true).is_err(),
        "full, nothing expired yet"
    );
    let later = t0() + TTL + Duration::from_secs(1);
    let expired = Parking::park(&mut p, &"b", &"b", 3, 10, vec![], (), later, true).unwrap();
    assert_eq!(expired.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![1]);
    assert!(
        p.take_waiters(&'x').is_empty(),
        "its index entries go with it"
    );
    assert!(p.contains(&2), "an entry that does not expire stays");
    assert_eq!(p.counts().expired, 1);
    assert!(p.expire(later + TTL * 10).len() == 1 && p.contains(&2));
}
