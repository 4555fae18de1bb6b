// Transpiles a detector component to JavaScript with jco, once per component.
//
// The output (an ES module plus the component's core wasm modules) goes to
// `.transpiled/<hash>/` beside this file (gitignored), keyed by the component's bytes
// and the jco version, so running the same component again skips the transpile.
// Usage on its own: `node examples/node-host/build.mjs COMPONENT.wasm` prints the folder.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const INSTALL = 'npm ci --prefix examples/node-host';

/** The folder holding `detector.js` for this component, transpiling it if needed. */
export async function transpiled(componentPath) {
  const jcoPackage = join(here, 'node_modules/@bytecodealliance/jco/package.json');
  if (!existsSync(jcoPackage)) {
    throw new Error(`jco is not installed; run \`${INSTALL}\` from the repository root`);
  }
  const { version } = JSON.parse(await readFile(jcoPackage, 'utf8'));
  const bytes = await readFile(componentPath);
  const hash = createHash('sha256').update(`jco ${version}\n`).update(bytes).digest('hex');
  const dir = join(here, '.transpiled', hash.slice(0, 24));
  if (existsSync(join(dir, 'detector.js'))) return dir;

  // Instantiation mode: the module exports `instantiate(getCoreModule, imports)` and
  // takes every import from us, WASI included (no WASI shim is bundled or granted).
  const { transpile } = await import('@bytecodealliance/jco');
  const { files } = await transpile(bytes, {
    name: 'detector',
    instantiation: 'async',
    wasiShim: false,
    quiet: true,
  });

  // Write to a private folder, then rename, so concurrent runs never see half a build.
  const staging = `${dir}.${process.pid}.tmp`;
  for (const [name, contents] of Object.entries(files)) {
    await mkdir(dirname(join(staging, name)), { recursive: true });
    await writeFile(join(staging, name), contents);
  }
  try {
    await rename(staging, dir);
  } catch (error) {
    if (!existsSync(join(dir, 'detector.js'))) throw error;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return dir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [component] = process.argv.slice(2);
  if (!component) {
    console.error('usage: node build.mjs COMPONENT.wasm');
    process.exit(2);
  }
  console.log(await transpiled(component));
}
