/**
 * The checkpoint sidecar's schema: readSidecar lists every missing or malformed field a reader needs
 * in one CheckpointError line naming the file, and passes the rest of the sidecar through;
 * assertTrainingRecord does the same for the trainer's part.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CheckpointError } from '../core/index.js';
import { assertTrainingRecord, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, readSidecar, type CheckpointSidecar } from './index.js';

const digest = (file: string) => ({ file, bytes: 4, sha256: 'ab'.repeat(32) });
const good = {
  format: CHECKPOINT_FORMAT,
  version: CHECKPOINT_VERSION,
  name: 'final',
  architecture: { name: 'PlainConvUNet', config: { nStages: 2 } },
  strategy: { name: 'scratch', pretrained: null, details: {} },
  files: { weights: digest('checkpoint_final.safetensors'), optimizer: null },
  training: { numEpochs: 3, seed: 1 },
  state: { epoch: 3 },
  parameters: { trainable: 1, frozen: 0, total: 1, frozenPrefixes: [] },
  history: [],
  somethingNewer: { kept: true },
};

function withSidecar(json: unknown, run: (file: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-sidecar-'));
  try {
    const file = path.join(dir, 'checkpoint_final.json');
    fs.writeFileSync(file, JSON.stringify(json));
    run(file);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('a complete sidecar reads with its other keys passed through', () => {
  withSidecar(good, (file) => {
    const sidecar = readSidecar(file);
    assert.deepEqual(sidecar, good);
    assert.doesNotThrow(() => assertTrainingRecord(sidecar, file));
  });
});

test('every problem of a sidecar at once, with its JSON path, in one line naming the file', () => {
  const bad = { ...good, name: 'other', architecture: { name: 'PlainConvUNet' }, strategy: undefined, files: { weights: { ...digest('w'), sha256: 'x' }, optimizer: null } };
  withSidecar(bad, (file) => {
    assert.throws(
      () => readSidecar(file),
      (error: unknown) =>
        error instanceof CheckpointError &&
        error.message.startsWith(`${file}: checkpoint sidecar is incomplete: name: unknown value "other" (valid: latest, best, final); architecture.config: 'config' is required; strategy: 'strategy' is required; files.weights.sha256: must be a sha256 in hex`) &&
        !error.message.includes('\n'),
    );
  });
  const { history: _history, ...noHistory } = good;
  const untrained = { ...noHistory, training: { seed: 1 } } as unknown as CheckpointSidecar;
  assert.throws(
    () => assertTrainingRecord(untrained, 'c.json'),
    (error: unknown) => error instanceof CheckpointError && /training\.numEpochs: 'numEpochs' is required; history: 'history' is required$/.test(error.message),
  );
});
