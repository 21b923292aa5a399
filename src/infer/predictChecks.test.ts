/**
 * The header-only checks of predict: the arithmetic window count equals the length of the list
 * slidingWindowSteps builds (so the limit counts exactly the windows that would run), and a case's
 * extent follows the plan's transpose, target spacing and patch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { readNiftiHeader } from '../io/index.js';
import { caseExtent } from './predictChecks.js';
import { slidingWindowSteps, windowCountPerAxis } from './slidingWindow.js';
import { FIXTURES, tinyInferencePlan } from './test-support.js';

test('the arithmetic window count equals the number of steps slidingWindowSteps generates', () => {
  let compared = 0;
  for (const patch of [1, 8, 16, 128]) {
    for (const size of [patch, patch + 1, patch + 7, 2 * patch, 3 * patch + 5, 511]) {
      if (size < patch) continue;
      for (const step of [1, 0.5, 0.33, 0.25, 0.1]) {
        assert.equal(windowCountPerAxis(size, patch, step), slidingWindowSteps(size, patch, step).length, `size ${size} patch ${patch} step ${step}`);
        compared++;
      }
    }
  }
  assert.equal(compared, 4 * 6 * 5);
  assert.equal(windowCountPerAxis(5, 8, 0.5), 1, 'a volume smaller than the patch is padded to one window');
});

test('a case extent: resampled to the target spacing, padded to the patch, windows and bytes from the header', async () => {
  const header = await readNiftiHeader(path.join(FIXTURES, 'phantom.nii.gz'));
  const plan = tinyInferencePlan();
  const extent = caseExtent('p', [header], plan, { numClasses: 3, stepFraction: 0.5, probabilities: false });
  assert.deepEqual(extent.inputShape, [header.dims[2], header.dims[1], header.dims[0]]);
  for (let axis = 0; axis < 3; axis++) assert.ok(extent.networkShape[axis]! >= plan.configuration.patchSize[axis]!);
  const expectedWindows = extent.networkShape.reduce((n, size, axis) => n * slidingWindowSteps(size, plan.configuration.patchSize[axis]!, 0.5).length, 1);
  assert.equal(extent.windows, expectedWindows);
  const gridVoxels = extent.networkShape.reduce((a, b) => a * b, 1);
  assert.ok(extent.bytes >= 4 * 4 * gridVoxels, 'at least the 3 class accumulators and the weight map');
  const withProbabilities = caseExtent('p', [header], plan, { numClasses: 3, stepFraction: 0.5, probabilities: true });
  assert.equal(withProbabilities.bytes - extent.bytes, 3 * 4 * header.dims[0]! * header.dims[1]! * header.dims[2]!);
  assert.ok(caseExtent('p', [header], plan, { numClasses: 3, stepFraction: 0.0001, probabilities: false }).windows > 1e6);
});
