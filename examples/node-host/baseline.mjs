// The `minewatch:detector/baseline` import, in memory, for one tenant.
//
// Same semantics as the Rust host's store (host/src/store/mod.rs, `TenantBaseline`):
// first-seen sets with the forget-window rule of guest/src/baseline.rs `apply_sighting`,
// counters per key and bucket, and per-bucket histograms of a series. WIT s64/u64
// values arrive and leave as BigInt, so all arithmetic here is BigInt.

/** One observation applied to a key's state: `[next, isNew]` (the rule of `apply_sighting`). */
export function applySighting(previous, time, forgetAfter) {
  if (previous && (forgetAfter <= 0n || time - previous.lastSeen <= forgetAfter)) {
    const next = {
      firstSeen: previous.firstSeen < time ? previous.firstSeen : time,
      lastSeen: previous.lastSeen > time ? previous.lastSeen : time,
      count: previous.count + 1n,
    };
    return [next, false];
  }
  return [{ firstSeen: time, lastSeen: time, count: 1n }, true];
}

/** Fresh, empty baselines; the returned object is the import's implementation. */
export function createBaseline() {
  const sets = new Map(); // set -> { learningStart, keys: Map<key, sighting> }
  const counters = new Map(); // counter -> Map<key, Map<bucket, value>>
  const series = new Map(); // series -> Map<bucket, Map<value, frequency>>

  // Gets `map[key]`, creating it with `make()` when missing.
  const entry = (map, key, make) => {
    let value = map.get(key);
    if (value === undefined) {
      value = make();
      map.set(key, value);
    }
    return value;
  };

  return {
    // Records sightings in order; reports what the set knew before each.
    observe(set, forgetAfter, sightings) {
      const state = entry(sets, set, () => ({ learningStart: undefined, keys: new Map() }));
      return sightings.map(({ key, time }) => {
        const setSize = BigInt(state.keys.size); // before this observation
        const previous = state.keys.get(key);
        const [next, isNew] = applySighting(previous, time, forgetAfter);
        state.keys.set(key, next);
        if (state.learningStart === undefined || time < state.learningStart) {
          state.learningStart = time;
        }
        return { previous, isNew, setSize, learningStart: state.learningStart };
      });
    },

    // Adds to counters; returns each value after its addition.
    add(counter, increments) {
      const keys = entry(counters, counter, () => new Map());
      const values = increments.map(({ key, bucket, delta }) => {
        const buckets = entry(keys, key, () => new Map());
        const value = (buckets.get(bucket) ?? 0n) + delta;
        buckets.set(bucket, value);
        return value;
      });
      return BigUint64Array.from(values);
    },

    // Moves one value of a bucket's histogram from `previous` to `current` (0: none).
    recordValues(name, changes) {
      const buckets = entry(series, name, () => new Map());
      for (const { bucket, previous, current } of changes) {
        const histogram = entry(buckets, bucket, () => new Map());
        if (previous > 0n && histogram.has(previous)) {
          const left = histogram.get(previous) - 1n;
          if (left === 0n) histogram.delete(previous);
          else histogram.set(previous, left);
        }
        if (current > 0n) {
          histogram.set(current, (histogram.get(current) ?? 0n) + 1n);
        }
      }
    },

    // The histograms of buckets from..=to merged, ascending by value.
    histogram(name, from, to) {
      const merged = new Map();
      for (const [bucket, histogram] of series.get(name) ?? []) {
        if (bucket < from || bucket > to) continue;
        for (const [value, frequency] of histogram) {
          merged.set(value, (merged.get(value) ?? 0n) + frequency);
        }
      }
      return [...merged].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    },
  };
}
