use super::*;

const DAY: i64 = 86_400_000;

fn observe(store: &mut BaselineStore, tenant: &str, set: &str, key: &str, time: i64) -> Observed {
    store.tenant(tenant).observe(set, 90 * DAY, &[(key, time)])[0]
}

#[test]
fn first_sighting_is_new_and_later_ones_are_not() {
    let mut store = BaselineStore::in_memory();
    let first = observe(&mut store, "t", "region", "us-east-1", 10 * DAY);
    assert!(first.is_new);
    assert_eq!(
        (first.set_size, first.learning_start, first.previous),
        (0, 10 * DAY, None)
    );
    let again = observe(&mut store, "t", "region", "us-east-1", 11 * DAY);
    assert!(!again.is_new);
    assert_eq!(again.previous.unwrap().count, 1);
    let other = observe(&mut store, "t", "region", "eu-west-1", 12 * DAY);
    assert_eq!(
        (other.is_new, other.set_size, other.learning_start),
        (true, 1, 10 * DAY)
    );
}

#[test]
fn a_key_unseen_past_the_forget_window_is_new_again_with_its_history() {
    let mut store = BaselineStore::in_memory();
    observe(&mut store, "t", "type", "m5.large", 0);
    let back = observe(&mut store, "t", "type", "m5.large", 91 * DAY);
    assert!(back.is_new);
    assert_eq!(back.previous.unwrap().last_seen, 0);
    let sighting = store.keys("t", "type")[0].1;
    assert_eq!((sighting.first_seen, sighting.count), (91 * DAY, 1));
}

#[test]
fn out_of_order_sightings_keep_the_earliest_first_seen() {
    let mut store = BaselineStore::in_memory();
    observe(&mut store, "t", "ami", "ami-1", 5 * DAY);
    let late = observe(&mut store, "t", "ami", "ami-1", 4 * DAY);
    assert!(!late.is_new);
    assert_eq!(late.learning_start, 4 * DAY);
    let s = store.keys("t", "ami")[0].1;
    assert_eq!((s.first_seen, s.last_seen, s.count), (4 * DAY, 5 * DAY, 2));
}

#[test]
fn tenants_never_share_state() {
    let mut store = BaselineStore::in_memory();
    observe(&mut store, "acme", "region", "us-east-1", 0);
    assert!(observe(&mut store, "globex", "region", "us-east-1", 0).is_new);
    store.tenant("acme").add("launches", &[("alice", 0, 5)]);
    assert_eq!(
        store.tenant("globex").add("launches", &[("alice", 0, 1)]),
        vec![1]
    );
    store.tenant("acme").record_values(
        "s",
        &[ValueChange {
            bucket: 0,
            previous: 0,
            current: 5,
        }],
    );
    assert!(store.tenant("globex").histogram("s", 0, 0).is_empty());
}

#[test]
fn counters_and_histograms_follow_running_counts() {
    let mut store = BaselineStore::in_memory();
    let mut t = store.tenant("t");
    assert_eq!(
        t.add(
            "c",
            &[
                ("alice", 600_000, 1),
                ("alice", 600_000, 2),
                ("bob", 600_000, 1)
            ]
        ),
        vec![1, 3, 1]
    );
    t.record_values(
        "s",
        &[ValueChange {
            bucket: 0,
            previous: 0,
            current: 1,
        }],
    );
    t.record_values(
        "s",
        &[ValueChange {
            bucket: 0,
            previous: 1,
            current: 2,
        }],
    );
    t.record_values(
        "s",
        &[ValueChange {
            bucket: DAY,
            previous: 0,
            current: 2,
        }],
    );
    assert_eq!(t.histogram("s", 0, 0), vec![(2, 1)]);
    assert_eq!(t.histogram("s", 0, DAY), vec![(2, 2)]);
    assert_eq!(t.histogram("s", DAY, 0), vec![]);
}

#[test]
fn committed_state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = BaselineStore::open(dir.path()).unwrap();
        observe(&mut store, "t", "region", "us-east-1", DAY);
        store.tenant("t").add("c", &[("alice", 0, 3)]);
        store.tenant("t").record_values(
            "s",
            &[ValueChange {
                bucket: 0,
                previous: 0,
                current: 3,
            }],
        );
        store.commit().unwrap();
        // Not committed: must not survive.
        observe(&mut store, "t", "region", "eu-west-1", 2 * DAY);
    }
    let mut store = BaselineStore::open(dir.path()).unwrap();
    let keys: Vec<String> = store
        .keys("t", "region")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec!["us-east-1"]);
    assert_eq!(store.tenant("t").add("c", &[("alice", 0, 1)]), vec![4]);
    assert_eq!(store.tenant("t").histogram("s", 0, 0), vec![(3, 1)]);
    let again = observe(&mut store, "t", "region", "us-east-1", 3 * DAY);
    assert!(!again.is_new);
    assert_eq!(again.learning_start, DAY);
}

#[test]
fn a_second_process_cannot_open_a_store_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let _held = BaselineStore::open(dir.path()).unwrap();
    let err = BaselineStore::open(dir.path()).unwrap_err();
    assert!(
        format!("{err:#}").contains("is held by another minewatch process"),
        "{err:#}"
    );
}

#[test]
fn export_then_import_reproduces_the_store() {
    let mut store = BaselineStore::in_memory();
    observe(&mut store, "t", "region", "us-east-1", DAY);
    observe(&mut store, "t", "region", "us-east-1", 2 * DAY);
    observe(&mut store, "u", "ami", "ami-1", 3 * DAY);
    store.tenant("t").add("c", &[("alice", 600_000, 2)]);
    store.tenant("t").record_values(
        "s",
        &[ValueChange {
            bucket: 0,
            previous: 0,
            current: 2,
        }],
    );
    let mut first = Vec::new();
    store.export(None, &mut first).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut copy = BaselineStore::open(dir.path()).unwrap();
    let summary = copy.import(&mut first.as_slice()).unwrap();
    assert_eq!(summary.sightings, 2);
    copy.commit().unwrap();
    drop(copy);
    let copy = BaselineStore::open(dir.path()).unwrap();
    let mut second = Vec::new();
    copy.export(None, &mut second).unwrap();
    assert_eq!(
        String::from_utf8(first).unwrap(),
        String::from_utf8(second).unwrap()
    );
}

#[test]
fn import_reports_the_bad_line() {
    let mut store = BaselineStore::in_memory();
    let input = "{\"kind\":\"set\",\"tenant\":\"t\",\"set\":\"s\",\"learning_start\":\"2026-01-01T00:00:00Z\",\"forget_after_ms\":0,\"latest\":\"2026-01-01T00:00:00Z\"}\nnot json\n";
    let err = store.import(&mut input.as_bytes()).unwrap_err();
    assert!(format!("{err:#}").contains("line 2"), "{err:#}");
}

#[test]
fn prune_drops_keys_far_past_their_forget_window_and_old_counter_buckets() {
    let mut store = BaselineStore::in_memory();
    store
        .tenant("t")
        .observe("ids", DAY, &[("old", 0), ("recent", 5 * DAY)]);
    store
        .tenant("t")
        .add("c", &[("alice", 0, 1), ("alice", 30 * DAY, 1)]);
    store.prune();
    let keys: Vec<String> = store.keys("t", "ids").into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec!["recent"]);
    assert_eq!(store.tenant("t").add("c", &[("alice", 0, 1)]), vec![1]);
}
