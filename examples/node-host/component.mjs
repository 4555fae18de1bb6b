// Loading a transpiled detector component in a sandbox.
//
// The component gets the same two imports as in the Rust host's wasmtime linker:
// `minewatch:detector/baseline` and `minewatch:detector/log`. Every other import (the
// WASI interfaces Rust's std declares: cli, io, ...) is denied: each of its functions
// throws when called, as the Rust host's `define_unknown_imports_as_traps` traps.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { pack } from './events.mjs';

const LEVELS = ['debug', 'info', 'warn', 'error'];

/** An import object for one interface that is not granted: every function throws. */
function denied(iface) {
  return new Proxy(
    {},
    {
      get(_, name) {
        if (typeof name !== 'string' || name === 'then') return undefined;
        // A function also serves as a resource class: instanceof checks simply fail.
        return function trap() {
          throw new Error(`${iface}#${name} is not granted to detectors`);
        };
      },
    },
  );
}

/** The imports of a detector: `baseline` (an implementation of it) and `log`, nothing else. */
export function sandbox(baseline, logLevel = 'info') {
  const log = {
    emit(level, message) {
      if (LEVELS.indexOf(level) >= LEVELS.indexOf(logLevel)) {
        process.stderr.write(`guest ${level}: ${message}\n`);
      }
    },
  };
  const granted = {
    'minewatch:detector/baseline': baseline,
    'minewatch:detector/log': log,
    'minewatch:detector/types': {},
  };
  // jco may ask with or without the `@version` suffix.
  return new Proxy(granted, {
    get(_, iface) {
      const name = String(iface);
      return granted[name.replace(/@[^/@]*$/, '')] ?? denied(name);
    },
  });
}

/**
 * Instantiates the transpiled component in `dir` (see build.mjs); returns its `detector`
 * export, whose `detect` takes projected events (`[{ fields: [...] }]`) whichever contract
 * the component was built against: packed into a batch for 0.2.0 (events.mjs `pack`),
 * passed as they are to a component of 0.1.0.
 */
export async function instantiate(dir, imports) {
  const compiled = new Map();
  const getCoreModule = (name) => {
    if (!compiled.has(name)) compiled.set(name, WebAssembly.compile(readFileSync(join(dir, name))));
    return compiled.get(name);
  };
  const { instantiate } = await import(pathToFileURL(join(dir, 'detector.js')).href);
  const root = await instantiate(getCoreModule, imports);
  const legacy = root['minewatch:detector/detector@0.1.0'];
  if (legacy !== undefined) return legacy;
  const detector = root['minewatch:detector/detector@0.2.0'] ?? root.detector;
  const width = detector.describe().fields.length;
  return {
    describe: () => detector.describe(),
    configure: (settings) => detector.configure(settings),
    detect: (events) => detector.detect(pack(events, width)),
  };
}
