//! Unit tests of the parking rules, one per rule: quota, global cap, tracked-peer cap, release on arrival,
//! forgetting a peer, and the counts.

use super::*;

type P = Parking<&'static str, u32, char, ()>;

fn parking(per_peer_entries: usize, total_entries: usize, peers: usize) -> P {
    Parking::new(Bounds {
        per_peer_entries,
        per_peer_bytes: 100,
        total_entries,
        total_bytes: 1_000,
        peers,
    })
}

#[test]
fn a_peer_past_its_quota_has_its_newcomer_refused_and_nothing_moves() {
    let mut p = parking(2, 10, 10);
    p.park(&"mallory", 1, 10, vec![], ()).unwrap();
    p.park(&"honest", 2, 10, vec![], ()).unwrap();
    p.park(&"mallory", 3, 10, vec![], ()).unwrap();
    assert_eq!(
        p.park(&"mallory", 4, 10, vec![], ()),
        Err(Refusal::Quota {
            entries: 2,
            bytes: 20
        })
    );
    assert!(p.contains(&1) && p.contains(&2) && p.contains(&3) && !p.contains(&4));
    // The byte quota as well.
    assert_eq!(
        p.park(&"honest", 5, 91, vec![], ()),
        Err(Refusal::Quota {
            entries: 1,
            bytes: 10
        })
    );
    p.park(&"honest", 5, 90, vec![], ()).unwrap();
}

#[test]
fn a_full_pool_refuses_the_newcomer_as_not_its_fault() {
    let mut p = parking(5, 3, 10);
    for (k, owner) in [(1, "a"), (2, "a"), (3, "b")] {
        p.park(&owner, k, 10, vec![], ()).unwrap();
    }
    assert_eq!(p.park(&"c", 4, 10, vec![], ()), Err(Refusal::Full));
    assert_eq!(p.park(&"a", 4, 10, vec![], ()), Err(Refusal::Full));
    assert_eq!(p.len(), 3, "nobody's entry was evicted");
    p.remove(&1);
    p.park(&"c", 4, 10, vec![], ()).unwrap();
}

#[test]
fn past_the_tracked_peers_a_new_peer_is_refused_but_known_ones_go_on() {
    let mut p = parking(5, 10, 2);
    p.park(&"a", 1, 10, vec![], ()).unwrap();
    p.park(&"b", 2, 10, vec![], ()).unwrap();
    assert_eq!(p.park(&"c", 3, 10, vec![], ()), Err(Refusal::Full));
    p.park(&"a", 3, 10, vec![], ()).unwrap();
    assert_eq!(p.peers(), 2);
    // A peer leaves the table with its last entry.
    p.remove(&2);
    p.park(&"c", 4, 10, vec![], ()).unwrap();
    assert_eq!(p.peers(), 2);
}

#[test]
fn an_entry_is_released_when_what_it_waits_for_arrives() {
    let mut p = parking(5, 10, 10);
    p.park(&"a", 2, 10, vec!['x', 'y'], ()).unwrap();
    p.park(&"b", 1, 10, vec!['x'], ()).unwrap();
    assert_eq!(p.take_waiters(&'x'), vec![2, 1], "in arrival order");
    assert!(p.take_waiters(&'x').is_empty());
    let e = p.remove(&2).unwrap();
    assert_eq!((e.owner, e.waits), ("a", vec!['x', 'y']));
    assert_eq!(p.awaited().count(), 0, "its other index entries go with it");
    assert_eq!(p.usage(&"a"), (0, 0));
    assert_eq!((p.len(), p.total_bytes()), (1, 10));
    // Entries released elsewhere are pruned.
    p.retain(|k| *k != 1);
    assert_eq!((p.len(), p.total_bytes(), p.peers()), (0, 0, 0));
}

#[test]
fn forgetting_a_peer_drops_all_it_parked_and_only_that() {
    let mut p = parking(5, 10, 10);
    p.park(&"mallory", 3, 10, vec!['x'], ()).unwrap();
    p.park(&"honest", 2, 10, vec!['x'], ()).unwrap();
    p.park(&"mallory", 1, 10, vec!['y'], ()).unwrap();
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
    p.park(&"a", 1, 10, vec![], ()).unwrap();
    assert!(p.park(&"a", 2, 10, vec![], ()).is_err());
    p.park(&"b", 3, 10, vec![], ()).unwrap();
    assert!(p.park(&"c", 4, 10, vec![], ()).is_err());
    // A key already parked is no newcomer: neither parked twice nor refused.
    assert_eq!(p.park(&"a", 1, 10, vec![], ()), Ok(()));
    p.forget(&"a");
    assert_eq!(
        p.counts(),
        ParkingCounts {
            refused_quota: 1,
            refused_full: 1,
            dropped: 1
        }
    );
}
