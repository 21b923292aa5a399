/**
 * `npx lesionseg` in a checkout prints nothing of npm's own: the project's .npmrc holds only settings
 * npm knows (an unknown key made npm warn on every command), and onnxruntime-node's download stays off.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import test from 'node:test';

const ROOT = new URL('../../', import.meta.url);

test('npx lesionseg --version prints the version and no npm warning', () => {
  const result = spawnSync('npx', ['--no-install', 'lesionseg', '--version'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stderr, '');
  const version = (JSON.parse(fs.readFileSync(new URL('package.json', ROOT), 'utf8')) as { version: string }).version;
  assert.equal(result.stdout.trim(), version);
});

test(".npmrc keeps install scripts off with a key npm knows", () => {
  const result = spawnSync('npm', ['config', 'get', 'ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.trim(), 'true');
  assert.doesNotMatch(result.stderr, /warn/i);
});
