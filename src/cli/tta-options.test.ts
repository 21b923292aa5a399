/**
 * predict's mirroring options as a user meets them: an unknown `--tta` mode, a negative
 * `--tta-margin`, a `--tta-share` outside [0, 1], either beside `--tta full` or `--no-tta`, and an empty `--mirror-axes` entry are refused (exit 2, one line naming
 * the option, no stack frames) before any model or image is read (the paths given do not exist).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lesionseg, STACK_LINE } from './test-support.js';

const PREDICT = ['predict', '-m', 'no-such-model', '-i', 'no-such-image.nii.gz', '-o', 'no-such-output.nii.gz'];

test('--tta takes adaptive or full; --tta-margin a non-negative number, --tta-share a fraction, both only with adaptive mirroring', async () => {
  const cases = [
    { args: ['--tta', 'half'], message: /option '--tta \[mode\]' argument 'half' is invalid\. Allowed choices are adaptive, full/ },
    { args: ['--tta-margin', '-1'], message: /--tta-margin must be a non-negative number of logits, got '-1'/ },
    { args: ['--tta', 'full', '--tta-margin', '1'], message: /--tta-margin sets adaptive mirroring: it does not go with --tta full/ },
    { args: ['--no-tta', '--tta-margin', '1'], message: /--tta-margin sets adaptive mirroring: it does not go with --no-tta/ },
    { args: ['--tta-share', '1.5'], message: /--tta-share must be a fraction of the blend's weight in \[0, 1\], got '1.5'/ },
    { args: ['--tta-share', ''], message: /--tta-share must be a fraction of the blend's weight in \[0, 1\], got ''/ },
    { args: ['--no-tta', '--tta-share', '0.5'], message: /--tta-share sets adaptive mirroring: it does not go with --no-tta/ },
    // Number('') is 0: an empty list or entry must not become axis 0.
    { args: ['--mirror-axes', ''], message: /--mirror-axes must list axes among 0 \(z\), 1 \(y\), 2 \(x\), got ''/ },
    { args: ['--mirror-axes', '1,'], message: /--mirror-axes must list axes among 0 \(z\), 1 \(y\), 2 \(x\), got '1,'/ },
  ];
  const runs = await Promise.all(cases.map((c) => lesionseg(...PREDICT, ...c.args)));
  runs.forEach((run, i) => {
    assert.equal(run.code, 2, run.stderr);
    assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    assert.match(run.stderr, cases[i]!.message);
    assert.ok(!run.stderr.includes(STACK_LINE), run.stderr);
  });
});
