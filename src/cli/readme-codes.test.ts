/**
 * The README's "Error codes" and "Environment variables" tables are the code's tables
 * (src/core/error-codes.ts, src/core/environment.ts): every code with its exit status and meaning,
 * every variable with its default, reader and meaning, in the same order, so a code or a variable
 * added, merged or renamed in one place and not the other fails here (STYLE rule 19, as
 * readme-numbers.test.ts does for numbers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ENVIRONMENT, ERROR_CODES, InputError, LesionsegError, ValidationError } from '../core/index.js';
import { ROOT } from './test-support.js';

/** The rows of the markdown table that follows `marker` in the README. */
export function readmeTableRows(marker: string): string[][] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(marker);
  assert.ok(at >= 0, `the README has the table marked ${marker}`);
  const lines = readme.slice(at + marker.length).trimStart().split('\n');
  const rows: string[][] = [];
  for (const line of lines.slice(2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.slice(1, -1).split(' | ').map((cell) => cell.trim()));
  }
  return rows;
}

test('the README lists every error code once, with its exit status and meaning, as src/core/error-codes.ts does', () => {
  const rows = readmeTableRows('<!-- error-codes: src/core/error-codes.ts -->');
  const expected = Object.entries(ERROR_CODES).map(([code, [exit, meaning]]) => [`\`${code}\``, String(exit), meaning]);
  assert.deepEqual(rows, expected);
  assert.equal(new Set(rows.map((row) => row[0])).size, rows.length, 'each code once');
});

test('the exit statuses in the table are the ones the classes carry: InputError codes exit 2', () => {
  // InputError's code is typed InputErrorCode (the codes with exit 2), so only those can reach it;
  // these are the defaults the classes set themselves.
  assert.equal(ERROR_CODES[new InputError('x').code][0], 2);
  assert.equal(ERROR_CODES[new ValidationError([]).code][0], 2);
  assert.equal(ERROR_CODES[new LesionsegError('addon-missing', 'x').code][0], 1);
  assert.ok(Object.values(ERROR_CODES).every(([exit]) => exit === 1 || exit === 2));
  // The union is closed, and an input error cannot carry an exit-1 code: the type-check
  // (tsconfig includes the tests) fails if either line below compiles.
  // @ts-expect-error a code that is not in the table
  assert.equal(new InputError('x', { code: 'no-such-code' }).code, 'no-such-code');
  // @ts-expect-error 'torch' exits 1, so it is no InputError's code
  assert.equal(new InputError('x', { code: 'torch' }).code, 'torch');
});

test('every code raised as a plain LesionsegError (not the input\'s fault) is listed with exit 1', () => {
  // InputError's codes are exit-2 codes by type; a plain LesionsegError ends with status 1 (main.ts),
  // so the codes constructed with it must say 1 in the table. Read from the sources, as written.
  const files = fs.readdirSync(path.join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
  const raised = new Set<string>();
  for (const file of files) {
    for (const match of fs.readFileSync(path.join(ROOT, 'src', file), 'utf8').matchAll(/new LesionsegError\(\s*'([a-z0-9-]+)'/g)) raised.add(match[1]!);
  }
  assert.ok(raised.size >= 10, `found ${raised.size} codes raised as LesionsegError`);
  for (const code of raised) assert.equal(ERROR_CODES[code as keyof typeof ERROR_CODES]?.[0], 1, code);
});

test('the README lists every environment variable once, with its default, reader and meaning, as src/core/environment.ts does', () => {
  const rows = readmeTableRows('<!-- environment: src/core/environment.ts -->');
  const expected = Object.entries(ENVIRONMENT).map(([name, v]) => [`\`${name}\``, v.defaultText, v.readBy, v.meaning]);
  assert.deepEqual(rows, expected);
  assert.equal(new Set(rows.map((row) => row[0])).size, rows.length, 'each variable once');
});
