/** The plan loader lists every problem at once, naming the file and the JSON path. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ValidationError, InputError } from '../core/index.js';
import { loadPlan, validatePlan } from './planning_schema.js';
import { planExperiment } from './planning.js';
import type { DatasetFingerprint } from './fingerprint.js';

function fingerprint(): DatasetFingerprint {
  const cases = Array.from({ length: 4 }, (_, i) => ({
    dataset: 'Dataset010_X',
    id: `c${i}`,
    spacing: [1, 3.2, 1] as [number, number, number],
    shapeAfterCrop: [120, 40, 110] as [number, number, number],
  }));
  return {
    datasets: [{ name: 'Dataset010_X', path: '/x', labels: { background: 0, a: 1 }, channelNames: { '0': 'T2' }, numTraining: 4, fileEnding: '.nii.gz' }],
    summary: {
      numCases: 4,
      medianSpacing: [1, 3.2, 1],
      medianShapeAfterCrop: [120, 40, 110],
      medianRelativeSizeAfterCropping: 0.5,
      foregroundIntensityPropertiesPerChannel: [{ mean: 1, median: 1, std: 1, min: 0, max: 2, percentile_00_5: 0, percentile_99_5: 2 }],
      intensitySampling: { samplesPerCase: 1, seed: 1234, generator: 'test' },
      cases,
    },
  };
}

test('planExperiment transposes the lowest-resolution axis first and picks z-score with mask', () => {
  const plan = planExperiment(fingerprint(), 'cpu');
  assert.deepEqual(validatePlan(plan), []);
  assert.deepEqual(plan.configuration.transpose, { forward: [1, 0, 2], backward: [1, 0, 2] });
  assert.deepEqual(plan.configuration.targetSpacing, [3.2, 1, 1]);
  assert.deepEqual(plan.configuration.medianShape, [40, 120, 110]);
  assert.equal(plan.configuration.normalization[0]!.scheme, 'zscore');
  assert.equal(plan.configuration.normalization[0]!.useMaskForNorm, true);
  assert.equal(plan.configuration.network.kernelSizes[0]![0], 1);
});

test('validatePlan reports every problem; loadPlan throws ValidationError naming the file', () => {
  const plan = planExperiment(fingerprint(), 'tiny') as unknown as Record<string, any>;
  plan.version = 7;
  plan.configuration.patchSize = [16, -1, 32];
  plan.configuration.network.strides.pop();
  plan.configuration.normalization[0].scheme = 'magic';
  delete plan.configuration.batchSize;
  const issues = validatePlan(plan, 'p.json');
  const paths = issues.map((i) => i.path).sort();
  assert.deepEqual(paths, [
    'configuration.batchSize',
    'configuration.network.strides',
    'configuration.normalization.0.scheme',
    'configuration.patchSize.1',
    'version',
  ]);
  const byPath = new Map(issues.map((i) => [i.path, i]));
  assert.equal(byPath.get('configuration.patchSize.1')!.message, 'must be > 0, got -1');
  assert.equal(byPath.get('configuration.network.strides')!.message, 'strides has 3 entries, nStages is 4');
  assert.equal(byPath.get('configuration.batchSize')!.code, 'missing-field');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-plan-'));
  try {
    const file = path.join(dir, 'plan.json');
    fs.writeFileSync(file, JSON.stringify(plan));
    assert.throws(() => loadPlan(file), (e: unknown) => e instanceof ValidationError && e.issues.length === 5 && e.message.includes(file));
    fs.writeFileSync(file, '{ not json');
    assert.throws(() => loadPlan(file), (e: unknown) => e instanceof InputError && /plan\.json: the plan is not valid JSON/.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a plan is our own format: an unknown key is refused with the valid keys, a wrong type named by its path', () => {
  const plan = planExperiment(fingerprint(), 'tiny') as unknown as Record<string, any>;
  plan.configuration.batchsize = 2;
  plan.configuration.network.norm.eps = 'small';
  plan.datasets[0].labels = { a: 1 };
  const issues = validatePlan(plan, 'p.json').map((i) => `${i.code} ${i.path}`);
  assert.deepEqual(issues, ['missing-background datasets.0.labels', 'wrong-type configuration.network.norm.eps', 'unknown-key configuration.batchsize']);
  assert.match(validatePlan(plan, 'p.json').find((i) => i.code === 'unknown-key')!.message, /unknown key 'batchsize' \(valid: patchSize, batchSize, /);
});
