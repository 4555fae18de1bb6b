// From input bytes to the events a detector receives: records, subscription, projection.
//
// Mirrors the Rust host: records are found as in host/src/intake (NDJSON lines or a JSON
// document; `{"Records": [...]}` delivery files, arrays, EventBridge envelopes), dropped
// unless their (eventSource, eventName) is subscribed, and projected to the declared
// field paths exactly as guest/src/projection.rs does.

import { gunzipSync } from 'node:zlib';

/** Longest NDJSON line the Rust host accepts (`max_record_bytes`). */
const MAX_RECORD_BYTES = 1048576;

/**
 * Yields every CloudTrail record of a file's bytes; calls `skip(reason)` for what is not one.
 * Gzip is detected by its magic bytes, like the Rust host does.
 */
export function* records(bytes, skip) {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
  const text = bytes.toString('utf8');
  const start = text.trimStart();
  if (start.startsWith('[') || (start.startsWith('{') && !parses(firstLine(start)))) {
    // One JSON document (an array, or a pretty-printed delivery file).
    let document;
    try {
      document = JSON.parse(text);
    } catch {
      skip('invalid-json');
      return;
    }
    yield* visit(document, skip);
    return;
  }
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let value;
    try {
      value = JSON.parse(line);
    } catch {
      skip('invalid-json');
      continue;
    }
    if (Buffer.byteLength(line) > MAX_RECORD_BYTES && value?.Records === undefined) {
      skip('oversized');
      continue;
    }
    yield* visit(value, skip);
  }
}

const firstLine = (text) => text.slice(0, (text.indexOf('\n') + 1 || text.length + 1) - 1);

function parses(text) {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The records inside one JSON value (host/src/intake `visit_value`). */
function* visit(value, skip) {
  if (Array.isArray(value)) {
    for (const item of value) {
      if (Array.isArray(item)) skip('not-an-object');
      else yield* visit(item, skip);
    }
  } else if (!isObject(value)) {
    skip('not-an-object');
  } else if (Array.isArray(value.Records)) {
    yield* visit(value.Records, skip);
  } else if ('detail-type' in value && isObject(value.detail)) {
    yield* visit(value.detail, skip);
  } else if ('eventName' in value || 'eventSource' in value) {
    yield value;
  } else {
    skip('not-cloudtrail');
  }
}

/** A predicate telling whether a record is for the detector (`describe().subscriptions`). */
export function subscriber(subscriptions) {
  const wanted = new Set(
    subscriptions.flatMap((s) => s.eventNames.map((name) => `${s.eventSource}\n${name}`)),
  );
  return (record) =>
    typeof record.eventSource === 'string' &&
    typeof record.eventName === 'string' &&
    wanted.has(`${record.eventSource}\n${record.eventName}`);
}

/**
 * Parses a declared field path: dot-separated keys, a `[]` suffix steps into every
 * element of an array. Throws on an empty segment, as the Rust host refuses such a path.
 */
export function parsePath(path) {
  return path.split('.').map((segment) => {
    const each = segment.endsWith('[]');
    const key = each ? segment.slice(0, -2) : segment;
    if (key === '') throw new Error(`field path ${JSON.stringify(path)} has an empty segment`);
    return { key, each };
  });
}

// `value.get(key)` of serde_json: only objects have keys.
const get = (value, key) => (isObject(value) && Object.hasOwn(value, key) ? value[key] : undefined);

/** The WIT `field` at one parsed path of a record. */
export function projectPath(steps, record) {
  let current = [record];
  let throughArray = false;
  for (const { key, each } of steps) {
    const next = [];
    for (const value of current) {
      const found = get(value, key);
      if (found === undefined || found === null) continue;
      if (each && Array.isArray(found)) next.push(...found);
      else if (each) return { tag: 'other', val: compactJson(found) };
      else next.push(found);
    }
    throughArray ||= each;
    current = next;
  }
  if (throughArray) {
    const texts = [];
    for (const value of current) {
      if (typeof value !== 'string') return { tag: 'other', val: compactJson(value) };
      texts.push(value);
    }
    return texts.length === 0 ? { tag: 'absent' } : { tag: 'texts', val: texts };
  }
  const [first] = current;
  if (first === undefined) return { tag: 'absent' };
  if (typeof first === 'string') return { tag: 'text', val: first };
  return { tag: 'other', val: compactJson(first) };
}

/** A WIT `event`: the record projected to every path, in declaration order. */
export const project = (paths, record) => ({ fields: paths.map((p) => projectPath(p, record)) });

/**
 * Compact JSON as serde_json writes it for the `other` case: object keys sorted (its
 * maps are ordered). Numbers are written by JavaScript, which can differ from Rust for
 * floats (`1.0` here is `1`); detectors only use this text to say what was wrong.
 */
function compactJson(value) {
  if (Array.isArray(value)) return `[${value.map(compactJson).join(',')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${compactJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
