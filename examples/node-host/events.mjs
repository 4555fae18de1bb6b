// From input bytes to the events a detector receives: records, subscription, projection.
//
// Mirrors the Rust host: records are found as in host/src/intake (NDJSON lines or a JSON
// document; `{"Records": [...]}` delivery files, Azure's `{"records": [...]}` and Cloud
// Logging's `{"entries": [...]}`, arrays, EventBridge envelopes), dropped unless their
// call is subscribed (guest/src/audit/call.rs: CloudTrail's eventSource/eventName,
// Google's protoPayload serviceName/methodName, Azure's operationName without case), and
// projected to the declared field paths exactly as guest/src/projection.rs does.

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

/** Keys of arrays of records: delivery files, Event Hubs exports, `entries.list` pages. */
const RECORD_ARRAYS = ['Records', 'records', 'entries'];

/** Keys beside `operationName` that make an object an Azure Activity Log record. */
const AZURE_KEYS = ['resourceId', 'correlationId', 'caller', 'eventTimestamp'];

/** The cloud whose audit-log record `value` is, or undefined (guest/src/audit/call.rs). */
function cloudOf(value) {
  if ('eventSource' in value) return 'aws';
  // Before `eventName`: Azure's REST form has one too (`{"value": "EndRequest"}`).
  if ('operationName' in value && AZURE_KEYS.some((k) => k in value)) return 'azure';
  if ('eventName' in value) return 'aws';
  if (isObject(value.protoPayload)) return 'gcp';
  return undefined;
}

/** The records inside one JSON value (host/src/intake `visit_value`). */
function* visit(value, skip) {
  if (Array.isArray(value)) {
    for (const item of value) {
      if (Array.isArray(item)) skip('not-an-object');
      else yield* visit(item, skip);
    }
  } else if (!isObject(value)) {
    skip('not-an-object');
  } else if (RECORD_ARRAYS.some((k) => Array.isArray(value[k]))) {
    yield* visit(value[RECORD_ARRAYS.find((k) => Array.isArray(value[k]))], skip);
  } else if ('detail-type' in value && isObject(value.detail)) {
    yield* visit(value.detail, skip);
  } else if (cloudOf(value) !== undefined) {
    yield value;
  } else {
    skip('not-cloudtrail');
  }
}

/** The (source, name) of the call a record logs, or undefined (guest/src/audit/call.rs). */
function callOf(record) {
  const text = (v) => (typeof v === 'string' ? v : undefined);
  switch (cloudOf(record)) {
    case 'aws':
      return [text(record.eventSource), text(record.eventName)];
    case 'gcp':
      return [text(record.protoPayload.serviceName), text(record.protoPayload.methodName)];
    case 'azure': {
      const op = record.operationName;
      const name = text(op) ?? (isObject(op) ? text(op.value) : undefined);
      return [name?.split('/')[0], name];
    }
    default:
      return undefined;
  }
}

/**
 * A predicate telling whether a record is for the detector (`describe().subscriptions`):
 * its call's source and name are subscribed; Azure's compared without case.
 */
export function subscriber(subscriptions) {
  const key = (source, name) => `${source}\n${name}`;
  const wanted = new Set(
    subscriptions.flatMap((s) => s.eventNames.map((name) => key(s.eventSource, name))),
  );
  const folded = new Set([...wanted].map((k) => k.toLowerCase()));
  return (record) => {
    const call = callOf(record);
    if (call === undefined || call[0] === undefined || call[1] === undefined) return false;
    return cloudOf(record) === 'azure'
      ? folded.has(key(...call).toLowerCase())
      : wanted.has(key(...call));
  };
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

/** Tags of a packed batch's fields (guest/src/batch.rs). */
const TAGS = { absent: 0, text: 1, texts: 2, other: 3 };

/**
 * Packs projected events into the WIT `batch` of minewatch:detector@0.2.0: every string
 * in one text, three numbers per field (tag, then a span of the text or of `items`), two
 * per string of a `texts` field. Spans count UTF-8 bytes; each string is encoded on its
 * own, so a lone surrogate stays one replacement character wherever it sits.
 */
export function pack(events, width) {
  const pieces = [];
  let bytes = 0;
  const push = (s) => {
    const piece = Buffer.from(s, 'utf8');
    pieces.push(piece);
    bytes += piece.length;
    return [bytes - piece.length, bytes];
  };
  const fields = new Uint32Array(events.length * width * 3);
  const items = [];
  events.forEach((event, i) => {
    for (let j = 0; j < width; j += 1) {
      const { tag, val } = event.fields[j] ?? { tag: 'absent' };
      let span = [0, 0];
      if (tag === 'text' || tag === 'other') span = push(val);
      if (tag === 'texts') {
        const first = items.length / 2;
        for (const s of val) items.push(...push(s));
        span = [first, items.length / 2];
      }
      fields.set([TAGS[tag], ...span], (i * width + j) * 3);
    }
  });
  return { text: Buffer.concat(pieces).toString('utf8'), fields, items: Uint32Array.from(items) };
}
