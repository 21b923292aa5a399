/**
 * core's one output rule (checkOutputs) on real files: an output that is an input (by path, by
 * symbolic or hard link), lies inside an input folder (also through a linked ancestor), or is a
 * folder holding an input is refused with code 'output-is-input'; '-' is refused; an output beside
 * the inputs passes. Nothing is created by the check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from './errors.js';
import { checkOutputs, realPathOf } from './paths.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'core-paths-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...parts: string[]): string => path.join(tmp, ...parts);

function refused(work: () => void, code: string, pattern: RegExp): void {
  assert.throws(work, (error: unknown) => error instanceof InputError && error.code === code && pattern.test(error.message));
}

test('checkOutputs: is, inside and holding an input are refused; links are followed; beside passes', () => {
  fs.mkdirSync(at('data', 'cases'), { recursive: true });
  fs.writeFileSync(at('data', 'cases', 'a.nii.gz'), 'a');
  fs.writeFileSync(at('data', 'plan.json'), '{}');
  fs.symlinkSync(at('data'), at('data-link'));
  fs.linkSync(at('data', 'plan.json'), at('plan-hard.json'));
  const inputs = [at('data', 'cases'), at('data', 'plan.json')];
  const file = (p: string) => ({ path: p, option: '--out', kind: 'file' as const });
  const folder = (p: string) => ({ path: p, option: '--out', kind: 'folder' as const });
  refused(() => checkOutputs([file(at('data', 'plan.json'))], inputs), 'output-is-input', /--out would overwrite the input .*plan\.json/);
  refused(() => checkOutputs([file(at('plan-hard.json'))], inputs), 'output-is-input', /would overwrite the input/);
  refused(() => checkOutputs([file(at('data-link', 'plan.json'))], inputs), 'output-is-input', /would overwrite the input/);
  refused(() => checkOutputs([file(at('data', 'cases', 'new', 'x.json'))], inputs), 'output-is-input', /lies inside the input folder .*cases/);
  refused(() => checkOutputs([file(at('data-link', 'cases', 'b.nii.gz'))], inputs), 'output-is-input', /lies inside the input folder/);
  refused(() => checkOutputs([folder(at('data'))], inputs), 'output-is-input', /--out holds the input .*cases, which writing this folder could replace/);
  refused(() => checkOutputs([folder('-')], []), 'bad-output', /--out -: results are not written to standard output; name a folder/);
  assert.doesNotThrow(() => checkOutputs([file(at('plan-out.json')), folder(at('run'))], inputs));
  assert.equal(fs.existsSync(at('run')), false, 'nothing created');
  // A file output that would sit inside a folder that is itself only an output is not an input matter.
  assert.doesNotThrow(() => checkOutputs([folder(at('run')), file(at('run', 'log.json'))], inputs));
});

test('realPathOf resolves links up to the nearest existing ancestor and appends the rest', () => {
  fs.mkdirSync(at('real', 'x'), { recursive: true });
  fs.symlinkSync(at('real'), at('alias'));
  assert.equal(realPathOf(at('alias', 'x', 'not', 'yet.json')), path.join(fs.realpathSync(at('real')), 'x', 'not', 'yet.json'));
});
