import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Shape3 } from '../core/index.js';
import { InputError } from '../core/index.js';
import { lungInvolvement } from './lungs.js';

const c = (JSON.parse(readFileSync(new URL('../../test/fixtures/eval/eval_fixtures.json', import.meta.url), 'utf8')) as {
  lungs: {
    shape: Shape3; spacing: Shape3; lungs: number[]; infection: number[]; infection_ml: number; left_ml: number; right_ml: number;
    infection_left_ml: number; infection_right_ml: number; percent_left: number; percent_right: number; percent_both: number;
  };
}).lungs;

test('lung involvement matches numpy: volumes in mL and % of each lung and of both', () => {
  const lungs = { data: Uint8Array.from(c.lungs), shape: c.shape };
  const infection = { data: new Uint8Array(c.lungs.length), shape: c.shape };
  for (const i of c.infection) infection.data[i] = 1;
  const r = lungInvolvement(lungs, infection, c.spacing);
  const near = (a: number, b: number) => assert.ok(Math.abs(a - b) <= 1e-12, `${a} vs ${b}`);
  near(r.infectionVolumeMl, c.infection_ml);
  near(r.leftLungVolumeMl, c.left_ml);
  near(r.rightLungVolumeMl, c.right_ml);
  near(r.infectionInLeftMl, c.infection_left_ml);
  near(r.infectionInRightMl, c.infection_right_ml);
  near(r.infectionOutsideLungsMl, c.infection_ml - c.infection_left_ml - c.infection_right_ml);
  near(r.percentLeftInvolved, c.percent_left);
  near(r.percentRightInvolved, c.percent_right);
  near(r.percentBothInvolved, c.percent_both);
});

test('no lung gives NaN percentages; mismatched shapes are an InputError', () => {
  const r = lungInvolvement({ data: new Uint8Array(8), shape: [2, 2, 2] }, { data: new Uint8Array(8).fill(1), shape: [2, 2, 2] }, [1, 1, 1]);
  assert.ok(Number.isNaN(r.percentLeftInvolved) && Number.isNaN(r.percentBothInvolved));
  assert.equal(r.infectionOutsideLungsMl, 0.008);
  assert.throws(() => lungInvolvement({ data: new Uint8Array(8), shape: [2, 2, 2] }, { data: new Uint8Array(8), shape: [1, 2, 4] }, [1, 1, 1]), InputError);
});
