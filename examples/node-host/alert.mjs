// Alerts in minewatch's native format, as host/src/alert.rs `Renderer::native` writes them.
//
// The detector's alert is enriched with its catalogue entry (from `describe()`), the
// tenant and the detector's name and version; times become RFC 3339 text. The JSON text
// is written here rather than by JSON.stringify, because WIT u64/s64 arrive as BigInt
// and f64 fields must stay floats (`2.0`, not `2`) to read back as the Rust host's do.

/** Marks a number as an f64, written with a fraction or exponent. */
class F64 {
  constructor(value) {
    this.value = value;
  }
}

/** Writes `%Y` as chrono does: 4 digits, with a sign outside 0..=9999. */
function year(y) {
  if (y >= 0 && y <= 9999) return String(y).padStart(4, '0');
  return (y < 0 ? '-' : '+') + String(Math.abs(y)).padStart(4, '0');
}

/** The range of chrono's `DateTime<Utc>` in milliseconds; outside it Rust prints the number. */
const CHRONO_MIN_MS = -8334601228800000n;
const CHRONO_MAX_MS = 8210266876799999n;

/**
 * Formats milliseconds since the epoch (BigInt) like guest/src/time.rs `format_time`:
 * `YYYY-MM-DDTHH:MM:SSZ`, with `.mmm` before the `Z` when the milliseconds are not zero.
 */
export function formatTime(ms) {
  if (ms < CHRONO_MIN_MS || ms > CHRONO_MAX_MS) return ms.toString();
  const date = new Date(Number(ms));
  const two = (n) => String(n).padStart(2, '0');
  const seconds =
    `${year(date.getUTCFullYear())}-${two(date.getUTCMonth() + 1)}-${two(date.getUTCDate())}` +
    `T${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}`;
  return ms % 1000n === 0n
    ? `${seconds}Z`
    : `${seconds}.${String(date.getUTCMilliseconds()).padStart(3, '0')}Z`;
}

/** The catalogue entry the Rust host assumes for a slug `describe()` did not list. */
const unknown = (slug) => ({
  slug,
  splunkId: '',
  name: slug,
  severity: 'medium',
  riskScore: 50,
  mitreAttack: [],
});

const sighting = (s) =>
  s === undefined
    ? null
    : { first_seen: formatTime(s.firstSeen), last_seen: formatTime(s.lastSeen), count: s.count };

/** The evidence with times in RFC 3339 (alert.rs `evidence`). */
function evidence({ tag, val }) {
  if (tag === 'unseen') {
    return {
      baseline: val.baseline,
      baseline_size: val.baselineSize,
      learning_start: formatTime(val.learningStart),
      previous: sighting(val.previous),
    };
  }
  return {
    window_start: formatTime(val.windowStart),
    count: val.count,
    history_windows: val.historyWindows,
    mean: new F64(val.mean),
    stdev: new F64(val.stdev),
    threshold: new F64(val.threshold),
    tail_probability: val.tailProbability === undefined ? null : new F64(val.tailProbability),
    method: val.method,
  };
}

/** A renderer for the alerts of the detector `info` (the result of `describe()`). */
export function nativeRenderer(info, tenant) {
  const catalogue = new Map(info.detections.map((d) => [d.slug, d]));
  return (alert) => {
    const detection = catalogue.get(alert.detection) ?? unknown(alert.detection);
    const e = alert.event;
    return {
      detection: alert.detection,
      detection_id: detection.splunkId,
      name: detection.name,
      severity: detection.severity,
      risk_score: detection.riskScore,
      mitre_attack: detection.mitreAttack,
      key: alert.key,
      message: alert.message,
      time: formatTime(alert.time),
      tenant,
      event: {
        event_id: e.eventId,
        event_name: e.eventName,
        principal: e.principal,
        arn: e.arn,
        account: e.account,
        region: e.region,
        source_ip: e.sourceIp,
        user_agent: e.userAgent,
        instance_ids: e.instanceIds,
        instance_type: e.instanceType,
        image_ids: e.imageIds,
      },
      evidence: evidence(alert.evidence),
      detector: { name: info.name, version: info.version },
    };
  };
}

/** Compact JSON text of a rendered alert (BigInt as integers, F64 as floats). */
export function jsonText(value) {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof F64) {
    if (!Number.isFinite(value.value)) return 'null'; // as serde_json writes NaN and infinities
    const text = String(value.value);
    return /[.e]/.test(text) ? text : `${text}.0`;
  }
  if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`;
  if (typeof value === 'object') {
    const members = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${jsonText(v)}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}
