'use strict';
// The command line shared by the Node peer scripts: argument parsing, the NDJSON records,
// the event time of record i, a deadline, and the one-line JSON summary on stdout that the
// Rust peer tests read (`{"sent": n, "acked": n, ...}`). Exit codes: 0 when every record was
// sent (and, with --ack, acknowledged), 1 when some were not, 2 on the deadline, 3 when the
// client reported an error (for example a refused shared key).

const fs = require('fs');
const { parseArgs } = require('util');

const USAGE = `usage: node SCRIPT --port PORT --tag TAG --records FILE.ndjson
  [--host 127.0.0.1] [--mode Message|Forward|PackedForward|CompressedPackedForward]
  [--ack] [--event-time] [--shared-key KEY] [--client-hostname NAME]
  [--time-base 1700000000] [--timeout-ms 20000]

Record i (0-based) is sent with time (time-base + i) seconds; with --event-time it is an
EventTime whose nanoseconds are i * 1000 + 7.`;

function parse() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string' },
        tag: { type: 'string' },
        records: { type: 'string' },
        mode: { type: 'string', default: 'Message' },
        ack: { type: 'boolean', default: false },
        'event-time': { type: 'boolean', default: false },
        'shared-key': { type: 'string' },
        'client-hostname': { type: 'string', default: 'minewatch-peer-client' },
        'time-base': { type: 'string', default: '1700000000' },
        'timeout-ms': { type: 'string', default: '20000' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    fail(64, `${error.message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  for (const required of ['port', 'tag', 'records']) {
    if (values[required] === undefined) {
      fail(64, `missing --${required}\n${USAGE}`);
    }
  }
  return {
    host: values.host,
    port: Number(values.port),
    tag: values.tag,
    records: values.records,
    mode: values.mode,
    ack: values.ack,
    eventTime: values['event-time'],
    sharedKey: values['shared-key'],
    clientHostname: values['client-hostname'],
    timeBase: Number(values['time-base']),
    timeoutMs: Number(values['timeout-ms']),
  };
}

function readRecords(path) {
  return fs
    .readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
}

function seconds(args, i) {
  return args.timeBase + i;
}

function nanos(i) {
  return i * 1000 + 7;
}

function fail(code, message) {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function deadline(args, progress) {
  setTimeout(() => fail(2, `timed out after ${args.timeoutMs} ms: ${progress()}`), args.timeoutMs).unref();
}

function report(summary, ok) {
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exit(ok ? 0 : 1);
}

module.exports = { parse, readRecords, seconds, nanos, fail, deadline, report };
