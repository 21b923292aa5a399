/**
 * The layer arrows of STYLE.md ("Allowed imports"), enforced so that reviewers do not have to:
 * every import of a source file from another folder under src/ goes to a folder its layer may use,
 * and through that folder's index.ts. Tests may use any layer's index or test-support.ts (fixtures
 * are read through io, models are built in nn's tests), but not reach into other files.
 *
 * `checkpoint` (the one door to every model format, STYLE rule 16) sits between the layers it reads
 * through (models, nn, data, io, tensor) and those that read models (train, infer, transfer,
 * experiments, export); `export` writes our models in other ecosystems' formats. `data` reads the
 * architecture registry (src/models/registry.ts, the one list of architectures): a plan's network
 * section and nnU-Net's arch_kwargs are validated by the entry of the architecture they name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = path.dirname(fileURLToPath(import.meta.url));

/** Layer -> the layers it may import (besides core, which all may). null: anything (cli). */
const ALLOWED: Readonly<Record<string, readonly string[] | null>> = {
  core: [],
  tensor: [],
  nn: ['tensor'],
  models: ['nn', 'tensor'],
  io: [],
  synth: ['io'],
  data: ['models', 'io', 'tensor'],
  checkpoint: ['models', 'nn', 'data', 'io', 'tensor'],
  train: ['checkpoint', 'models', 'nn', 'data', 'io', 'tensor'],
  infer: ['checkpoint', 'models', 'nn', 'data', 'io', 'tensor'],
  eval: ['io'],
  transfer: ['train', 'checkpoint', 'models', 'nn', 'tensor'],
  experiments: ['transfer', 'train', 'infer', 'eval', 'checkpoint', 'data', 'io', 'synth'],
  export: ['checkpoint', 'infer', 'models', 'nn', 'data', 'io', 'tensor'],
  report: [],
  cli: null,
};
/** report reads the results' shapes only (type-only imports). */
const TYPE_ONLY: Readonly<Record<string, readonly string[]>> = { report: ['eval', 'experiments'] };
/** Test files that need one internal file, and why. */
const TEST_EXCEPTIONS: Readonly<Record<string, string>> = {
  'cli/main.test.ts -> tensor/binding.js': 'checks the message when the addon is missing, which only the loader itself can simulate',
};

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

interface Violation { file: string; target: string; why: string }

function violations(root: string): Violation[] {
  const found: Violation[] = [];
  const importPattern = /^(?:import|export)(\s+type)?\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gms;
  for (const file of sourceFiles(root)) {
    const relative = path.relative(root, file);
    const layer = relative.split(path.sep)[0]!;
    if (!relative.includes(path.sep)) continue; // this file
    const isTest = file.endsWith('.test.ts') || path.basename(file) === 'test-support.ts';
    for (const match of fs.readFileSync(file, 'utf8').matchAll(importPattern)) {
      const typeOnly = match[1] !== undefined;
      const target = path.relative(root, path.resolve(path.dirname(file), match[2]!));
      const targetLayer = target.split(path.sep)[0]!;
      if (targetLayer === layer) continue;
      const inner = target.split(path.sep).slice(1).join('/');
      const key = `${relative} -> ${target}`;
      if (isTest) {
        if (inner !== 'index.js' && inner !== 'test-support.js' && TEST_EXCEPTIONS[key] === undefined) found.push({ file: relative, target, why: 'a test reaches into another folder (use its index.ts or test-support.ts)' });
        continue;
      }
      if (inner !== 'index.js') found.push({ file: relative, target, why: 'imports another folder past its index.ts' });
      const allowed = ALLOWED[layer];
      if (allowed === undefined) {
        found.push({ file: relative, target, why: `folder '${layer}' has no place in the layer table of this test` });
        continue;
      }
      if (allowed === null || targetLayer === 'core' || allowed.includes(targetLayer)) continue;
      if (typeOnly && (TYPE_ONLY[layer] ?? []).includes(targetLayer)) continue;
      found.push({ file: relative, target, why: `${layer} may not import ${targetLayer}${TYPE_ONLY[layer] ? ' (except type-only)' : ''}` });
    }
  }
  return found;
}

test('every import follows the layer arrows and goes through index.ts', () => {
  const found = violations(SRC);
  assert.deepEqual(found.map((v) => `${v.file} -> ${v.target}: ${v.why}`), []);
});

test('the checker finds an upward import and a reach past index.ts (it is not vacuous)', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'layers-'));
  try {
    fs.mkdirSync(path.join(root, 'io'));
    fs.mkdirSync(path.join(root, 'models'));
    fs.writeFileSync(path.join(root, 'io', 'a.ts'), "import { PlainConvUNet } from '../models/index.js';\nexport const probe = PlainConvUNet;\n");
    fs.writeFileSync(path.join(root, 'models', 'b.ts'), "import type { Volume } from '../core/volume.js';\nexport type Probe = Volume;\n");
    const found = violations(root).map((v) => `${v.file}: ${v.why}`).sort();
    assert.deepEqual(found, [path.join('io', 'a.ts') + ': io may not import models', path.join('models', 'b.ts') + ': imports another folder past its index.ts']);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
