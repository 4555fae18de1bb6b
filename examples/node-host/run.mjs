#!/usr/bin/env node
// minewatch in Node.js: runs a detector component over CloudTrail records with jco.
//
// The very component the Rust host embeds (or your own) is transpiled by jco (build.mjs)
// and given the same two imports as in wasmtime (component.mjs): `baseline`, in memory
// (baseline.mjs), and `log`; every other import is denied. Records are filtered and
// projected as the Rust host does (events.mjs). Alerts go to stdout, one JSON object
// per line in minewatch's native format (alert.mjs); a summary goes to stderr.
//
// usage: node examples/node-host/run.mjs --component FILE.wasm --input FILE [--input FILE]...
//          [--settings JSON] [--tenant NAME] [--batch-events N]
// MINEWATCH_COMPONENT names the component when --component is not given.

import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

import { jsonText, nativeRenderer } from './alert.mjs';
import { createBaseline } from './baseline.mjs';
import { transpiled } from './build.mjs';
import { instantiate, sandbox } from './component.mjs';
import { parsePath, project, records, subscriber } from './events.mjs';

const USAGE = `usage: node examples/node-host/run.mjs --component FILE.wasm --input FILE...
         [--settings JSON] [--tenant NAME] [--batch-events N]`;

/** `configure`, with the component's error message instead of jco's wrapper. */
function configure(detector, settings) {
  try {
    detector.configure(settings);
  } catch (error) {
    throw new Error(`invalid detector settings: ${error.payload ?? error.message}`);
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      component: { type: 'string', default: process.env.MINEWATCH_COMPONENT },
      input: { type: 'string', multiple: true, default: [] },
      settings: { type: 'string', default: '{}' },
      tenant: { type: 'string', default: 'default' },
      'batch-events': { type: 'string', default: '512' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || !values.component || values.input.length === 0) {
    console.error(USAGE);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const batchEvents = Number.parseInt(values['batch-events'], 10);
  if (!(batchEvents > 0)) throw new Error('--batch-events must be a positive number');
  const logLevel = /debug/.test(process.env.MINEWATCH_LOG ?? '') ? 'debug' : 'info';

  // 1. Transpile (cached) and instantiate the component over fresh in-memory baselines.
  const dir = await transpiled(values.component);
  const imports = sandbox(createBaseline(), logLevel);
  let detector = await instantiate(dir, imports);

  // 2. Ask what it wants, and configure it.
  const info = detector.describe();
  const paths = info.fields.map(parsePath);
  const subscribed = subscriber(info.subscriptions);
  const render = nativeRenderer(info, values.tenant);
  configure(detector, values.settings);

  // 3. Feed it subscribed, projected records in batches; print its alerts.
  const summary = { records: 0, processed: 0, failed: 0, unsubscribed: 0, skipped: {}, alerts: 0 };
  const skip = (reason) => {
    summary.skipped[reason] = (summary.skipped[reason] ?? 0) + 1;
  };
  let batch = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const events = batch;
    batch = [];
    let outcome;
    try {
      outcome = detector.detect(events);
    } catch (error) {
      // A trap: the batch is lost (counted), the instance rebuilt; baselines remain.
      console.error(`Detector failed on a batch of ${events.length} events: ${error.message}`);
      summary.skipped['detector-trap'] = (summary.skipped['detector-trap'] ?? 0) + events.length;
      detector = await instantiate(dir, imports);
      configure(detector, values.settings);
      return;
    }
    summary.processed += events.length;
    summary.failed += outcome.failedCalls;
    outcome.skipped.forEach((s) => skip(s.reason));
    summary.alerts += outcome.alerts.length;
    const lines = outcome.alerts.map((alert) => `${jsonText(render(alert))}\n`);
    if (lines.length > 0) process.stdout.write(lines.join(''));
  };

  for (const input of values.input) {
    const bytes = input === '-' ? readFileSync(0) : await readFile(input);
    for (const record of records(bytes, skip)) {
      summary.records += 1;
      if (!subscribed(record)) {
        summary.unsubscribed += 1;
        continue;
      }
      batch.push(project(paths, record));
      if (batch.length >= batchEvents) await flush();
    }
  }
  await flush();

  const skipped = Object.values(summary.skipped).reduce((a, b) => a + b, 0);
  console.error(
    `minewatch (node): ${summary.records} records read, ${summary.processed} for the detector ` +
      `(${summary.failed} failed calls), ${summary.unsubscribed} not subscribed, ` +
      `${skipped} skipped, ${summary.alerts} alerts`,
  );
  for (const [reason, count] of Object.entries(summary.skipped)) {
    console.error(`  skipped ${reason}: ${count}`);
  }
}

main().catch((error) => {
  console.error(`minewatch (node): ${error.message}`);
  process.exitCode = 1;
});
