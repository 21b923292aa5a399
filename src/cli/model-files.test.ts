/**
 * Hostile and damaged model files as a user meets them (`node --import tsx src/cli/main.ts`): an
 * nnU-Net model whose weights hold a NaN, or whose .pth holds a broadcast view of 2^31 elements,
 * is refused by `predict` with exit 2 and one line naming the file (before: an empty mask, exit
 * 0; or a RangeError); `train --pretrained` with a weight missing, of another shape or NaN is
 * refused before the run folder or the preprocessed cache exist (before: after preprocessing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { plainFixtureWeights, poison, writeNnunetModelCopy } from '../checkpoint/test-support.js';
import { storedZipChunks, pickle, type PickleValue } from '../io/index.js';
import { writeSynthDataset } from '../synth/index.js';
import { lesionseg, ROOT, STACK_LINE, type Run } from './test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-model-files-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...parts: string[]): string => path.join(tmp, ...parts);
const CASE = path.join(ROOT, 'test/fixtures/nnunet/case/case_0000.nii.gz');

/** Exit 2, one line on stderr without stack frames, matching `pattern`. */
function refused(run: Run, pattern: RegExp): void {
  assert.equal(run.code, 2, `exit ${run.code}\n${run.stderr}`);
  const lines = run.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr:\n${run.stderr}`);
  assert.ok(!run.stderr.includes(STACK_LINE), run.stderr);
  assert.match(lines[0]!, pattern);
}

test('predict: NaN weights and a broadcast view of 2^31 elements are refused, naming the .pth; no mask is written', async () => {
  const weights = plainFixtureWeights();
  const name = 'encoder.stages.0.0.convs.0.conv.weight';
  assert.ok(weights.has(name));
  poison(weights.get(name)!, 7, Number.NaN);
  const nan = writeNnunetModelCopy(at('nan-model'), weights);
  refused(await lesionseg('predict', '-m', at('nan-model'), '-i', CASE, '-o', at('nan.nii.gz'), '--no-tta'),
    new RegExp(`^lesionseg: ${nan.replace(/[.]/g, '\\.')}: weight 'encoder\\.stages\\.0\\.0\\.convs\\.0\\.conv\\.weight' holds NaN at element 7 of \\[`));
  assert.equal(fs.existsSync(at('nan.nii.gz')), false);

  // One float storage, viewed as 2^31 elements by stride 0 (8 GiB if copied).
  const bomb = writeNnunetModelCopy(at('bomb-model'), plainFixtureWeights());
  const root: PickleValue = new Map<string, PickleValue>([['network_weights', new Map([['w', { kind: 'tensor', storage: { key: '0', dtype: 'F32', numel: 1 }, storageOffset: 0, shape: [2 ** 31], stride: [0] }]])]]);
  fs.writeFileSync(bomb, Buffer.concat(storedZipChunks([{ name: 'archive/data.pkl', data: pickle(root) }, { name: 'archive/data/0', data: new Uint8Array(4) }])));
  refused(await lesionseg('predict', '-m', at('bomb-model'), '-i', CASE, '-o', at('bomb.nii.gz'), '--no-tta'),
    /checkpoint_final\.pth: tensor \[2147483648\] \(stride \[0\], offset 0\) of storage 0 has more elements than its storage's 1 \(a broadcast view/);
  assert.equal(fs.existsSync(at('bomb.nii.gz')), false);
});

test('train --pretrained: weights that do not fit or are not finite are refused before the run folder and the cache are written', async () => {
  await writeSynthDataset({ kind: 'covid', cases: 3, out: at('covid'), seed: 3, size: 'tiny' });
  const first = 'encoder.stages.1.0.convs.0.conv.weight';
  const missing = plainFixtureWeights();
  assert.ok(missing.delete(first));
  writeNnunetModelCopy(at('missing'), missing);
  const reshaped = plainFixtureWeights();
  const entry = reshaped.get(first)!;
  reshaped.set(first, { ...entry, shape: [entry.shape[1]!, entry.shape[0]!, ...entry.shape.slice(2)] });
  writeNnunetModelCopy(at('reshaped'), reshaped);
  const nan = plainFixtureWeights();
  poison(nan.get(first)!, 0, Number.NaN);
  writeNnunetModelCopy(at('nan'), nan);
  const train = (model: string, out: string) => lesionseg('train', '--dataset', at('covid'), '--strategy', 'finetune', '--pretrained', at(model, 'fold_0'), '--out', at(out),
    '--preprocessed', at(`${out}-cache`), '--fold', 'all', '--epochs', '1', '--iters-per-epoch', '1', '--val-iters', '0', '--workers', '0', '--threads', '1');
  const cases: [string, RegExp][] = [
    ['missing', new RegExp(`the pre-trained weights do not fit the PlainConvUNet of the finetune strategy:.*${first.replace(/\./g, '\\.')}: not in the checkpoint`)],
    ['reshaped', new RegExp(`${first.replace(/\./g, '\\.')}: shape \\[${entry.shape[1]}, ${entry.shape[0]}, 3, 3, 3\\] in the checkpoint, \\[${entry.shape.join(', ')}\\] in the model`)],
    ['nan', new RegExp(`weight '${first.replace(/\./g, '\\.')}' holds NaN at element 0`)],
  ];
  for (const [model, pattern] of cases) {
    const run = await train(model, `run-${model}`);
    assert.equal(run.code, 2, `${model}: exit ${run.code}\n${run.stderr}`);
    assert.ok(!run.stderr.includes(STACK_LINE), run.stderr);
    assert.match(run.stderr.replace(/\n/g, ' '), pattern, model);
    assert.equal(fs.existsSync(at(`run-${model}`)), false, `${model}: the run folder was created`);
    assert.equal(fs.existsSync(at(`run-${model}-cache`)), false, `${model}: the preprocessed cache was written`);
  }
});
