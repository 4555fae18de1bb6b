//! The Redis baseline scripts under any interleaving of two sidecars (a property test
//! against a real `redis-server`): each sidecar runs batches of first-seen and counter
//! calls, the two advance in an order proptest draws call by call, and a batch may be
//! run a second time as the retry after a failure. Whatever the order, every key is
//! answered new exactly once between them, every counter ends at the sum of what was
//! added to it, each addition sees a value no other addition saw, and a retried batch
//! gets the answers of its first attempt without applying anything twice.

use std::collections::BTreeMap;

use minewatch::store::BaselineBackend;
use minewatch::store::redis::{RedisConfig, RedisStore};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::fleet::Redis;
use crate::util::setup;

const SETS: [&str; 2] = ["region", "ami"];
const COUNTER: &str = "launches";
const KEYS: [&str; 6] = ["k0", "k1", "k2", "k3", "k4", "k5"];
/// Event time of every call (ms); the scripts' answers here do not depend on it.
const TIME: i64 = 1_767_225_600_000;

/// One baseline call of a batch.
#[derive(Debug, Clone)]
enum Call {
    /// Sightings of keys in one first-seen set.
    Observe(usize, Vec<usize>),
    /// `(key, delta)` increments of the counter.
    Add(Vec<(usize, u64)>),
}

/// What a call answered: per key, new or not; or the counter values after each addition.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Observed(Vec<bool>),
    Added(Vec<u64>),
}

/// A batch of calls, and whether it is run again as a retry before its commit.
#[derive(Debug, Clone)]
struct Batch {
    calls: Vec<Call>,
    retried: bool,
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        (0..SETS.len(), prop::collection::vec(0..KEYS.len(), 1..4))
            .prop_map(|(set, keys)| Call::Observe(set, keys)),
        prop::collection::vec((0..KEYS.len(), 1..5u64), 1..4).prop_map(Call::Add),
    ]
}

fn batches() -> impl Strategy<Value = Vec<Batch>> {
    let batch = (
        prop::collection::vec(call(), 1..5),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(calls, retried)| Batch { calls, retried });
    prop::collection::vec(batch, 1..5)
}

fn run(store: &mut RedisStore, tenant: &str, call: &Call) -> Answer {
    let mut baseline = store.tenant(tenant);
    match call {
        Call::Observe(set, keys) => {
            let sightings: Vec<(&str, i64)> = keys.iter().map(|&k| (KEYS[k], TIME)).collect();
            let observed = baseline.observe(SETS[*set], 0, &sightings);
            Answer::Observed(observed.iter().map(|o| o.is_new).collect())
        }
        Call::Add(increments) => {
            let increments: Vec<(&str, i64, u64)> = increments
                .iter()
                .map(|&(k, d)| (KEYS[k], TIME, d))
                .collect();
            Answer::Added(baseline.add(COUNTER, &increments))
        }
    }
}

/// One sidecar working through its batches a step at a time.
struct Sidecar {
    store: RedisStore,
    batches: Vec<Batch>,
    /// The batch in progress and the answers of its calls so far.
    batch: usize,
    answers: Vec<Answer>,
    /// The first attempts' answers of every committed batch, with their calls.
    committed: Vec<(Call, Answer)>,
}

impl Sidecar {
    fn done(&self) -> bool {
        self.batch == self.batches.len()
    }

    /// Makes the next call of the current batch, or finishes the batch (a retry if it
    /// is drawn so, then the commit).
    fn step(&mut self, tenant: &str) -> Result<(), TestCaseError> {
        let batch = self.batches[self.batch].clone();
        if self.answers.is_empty() {
            self.store.begin_batch(false);
        }
        if let Some(call) = batch.calls.get(self.answers.len()) {
            let answer = run(&mut self.store, tenant, call);
            prop_assert!(self.store.take_failure().is_none());
            self.answers.push(answer);
            return Ok(());
        }
        if batch.retried {
            self.store.begin_batch(true);
            let again: Vec<Answer> = batch
                .calls
                .iter()
                .map(|call| run(&mut self.store, tenant, call))
                .collect();
            prop_assert!(self.store.take_failure().is_none());
            prop_assert_eq!(
                &again,
                &self.answers,
                "a retry answers as its first attempt"
            );
        }
        self.store
            .commit()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let answers = std::mem::take(&mut self.answers);
        self.committed.extend(batch.calls.into_iter().zip(answers));
        self.batch += 1;
        Ok(())
    }
}

fn sidecar(redis: &Redis, batches: Vec<Batch>) -> Sidecar {
    let store = RedisStore::new(RedisConfig {
        url: redis.url(),
        timeout_ms: 2000,
        ..RedisConfig::default()
    })
    .unwrap();
    Sidecar {
        store,
        batches,
        batch: 0,
        answers: Vec::new(),
        committed: Vec::new(),
    }
}

#[test]
fn any_interleaving_of_two_sidecars_gives_one_new_per_key_and_summed_counters() {
    let (dir, _) = setup();
    let redis = Redis::start(&dir.path().join("redis"));
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicUsize::new(0);
    let strategy = (
        batches(),
        batches(),
        prop::collection::vec(any::<bool>(), 64),
    );
    runner
        .run(&strategy, |(first, second, order)| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tenant = format!("case-{n}");
            let mut sidecars = [sidecar(&redis, first), sidecar(&redis, second)];
            let mut order = order.into_iter().cycle();
            while sidecars.iter().any(|s| !s.done()) {
                let pick = usize::from(order.next().unwrap_or(false));
                let side = if sidecars[pick].done() {
                    1 - pick
                } else {
                    pick
                };
                sidecars[side].step(&tenant)?;
            }

            let mut news: BTreeMap<(usize, usize), usize> = BTreeMap::new();
            let mut sums: BTreeMap<usize, u64> = BTreeMap::new();
            let mut seen_values: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
            for (call, answer) in sidecars.iter().flat_map(|s| s.committed.iter()) {
                match (call, answer) {
                    (Call::Observe(set, keys), Answer::Observed(new)) => {
                        for (&key, &is_new) in keys.iter().zip(new) {
                            *news.entry((*set, key)).or_default() += usize::from(is_new);
                        }
                    }
                    (Call::Add(increments), Answer::Added(values)) => {
                        for (&(key, delta), &value) in increments.iter().zip(values) {
                            *sums.entry(key).or_default() += delta;
                            seen_values.entry(key).or_default().push(value);
                        }
                    }
                    other => prop_assert!(false, "an answer of the wrong kind: {other:?}"),
                }
            }
            for ((set, key), count) in &news {
                prop_assert_eq!(
                    *count,
                    1,
                    "{} {} answered new {} times",
                    SETS[*set],
                    KEYS[*key],
                    count
                );
            }
            for (set_index, set) in SETS.iter().enumerate() {
                let stored: Vec<String> = sidecars[0]
                    .store
                    .keys(&tenant, set)
                    .into_iter()
                    .map(|(key, _)| key)
                    .collect();
                let observed: Vec<String> = news
                    .keys()
                    .filter(|(s, _)| *s == set_index)
                    .map(|(_, k)| KEYS[*k].to_string())
                    .collect();
                prop_assert_eq!(stored, observed);
            }
            let reader = &mut sidecars[0].store;
            reader.begin_batch(false);
            for (key, sum) in &sums {
                let now = reader
                    .tenant(&tenant)
                    .add(COUNTER, &[(KEYS[*key], TIME, 0)]);
                prop_assert_eq!(
                    now,
                    vec![*sum],
                    "counter {} is the sum of its additions",
                    KEYS[*key]
                );
                let values = &seen_values[key];
                let mut distinct = values.clone();
                distinct.sort_unstable();
                distinct.dedup();
                prop_assert_eq!(
                    distinct.len(),
                    values.len(),
                    "two additions saw the same value"
                );
                prop_assert_eq!(distinct.last(), Some(sum));
            }
            prop_assert!(reader.take_failure().is_none());
            Ok(())
        })
        .unwrap();
}
