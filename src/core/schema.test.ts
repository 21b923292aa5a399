/**
 * zod issues as ours (src/core/schema.ts): each zod issue kind maps to its code and JSON path, every
 * problem is listed at once, unknown keys name the valid ones, and default messages read as ours.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addIssue, ALWAYS, formatPath, integer, parseJson, strictObject, z } from './index.js';

const Schema = strictObject({
  count: integer().min(0),
  name: z.string(),
  inner: strictObject({ size: z.number() }),
  kind: z.enum(['a', 'b']).optional(),
  triple: z.array(integer()).length(3).optional(),
}).superRefine((value, ctx) => {
  if (typeof value === 'object' && value !== null && (value as { name?: unknown }).name === 'same') addIssue(ctx, 'duplicate-case', 'a rule of the schema', ['name']);
}, ALWAYS);

test('every problem at once, with its code and path, in our words', () => {
  const result = parseJson(Schema, { count: -1, inner: { size: 'x', colour: 1 }, extra: 2, kind: 'c', triple: [1], name: 'same' }, 'f.json');
  assert.equal(result.ok, false);
  assert.deepEqual(!result.ok && result.issues.map((i) => [i.path, i.code, i.message]), [
    ['count', 'bad-value', 'must be >= 0, got -1'],
    ['inner.size', 'wrong-type', 'must be a number, got "x"'],
    ['inner.colour', 'unknown-key', "unknown key 'colour' (valid: size)"],
    ['kind', 'unknown-name', 'unknown value "c" (valid: a, b)'],
    ['triple', 'bad-value', 'must have 3 entries, got [1]'],
    ['extra', 'unknown-key', "unknown key 'extra' (valid: count, name, inner, kind, triple)"],
    ['name', 'duplicate-case', 'a rule of the schema'],
  ]);
  assert.ok(!result.ok && result.issues.every((i) => i.file === 'f.json'));
});

test('a missing key is missing-field, a value of another type wrong-type; a valid value parses to its type', () => {
  const missing = parseJson(Schema, { count: 1.5, inner: {} }, 'f.json');
  assert.deepEqual(!missing.ok && missing.issues.map((i) => `${i.code} ${i.path} ${i.message}`), [
    'wrong-type count must be an integer, got 1.5',
    "missing-field name 'name' is required",
    "missing-field inner.size 'size' is required",
  ]);
  const parsed = parseJson(Schema, { count: 2, name: 'x', inner: { size: 1.5 } }, 'f.json');
  assert.deepEqual(parsed, { ok: true, value: { count: 2, name: 'x', inner: { size: 1.5 } } });
});

test('a union reports the problems of the alternative the value fits, or says what the value may be', () => {
  const Entry = z.union([z.enum(['x', 'y']), strictObject({ kind: z.enum(['x', 'y']), size: integer().optional() })], { error: 'must be a name or an object { kind, size }' });
  const found = (value: unknown) => {
    const result = parseJson(z.array(Entry), [value], 'f.json', 'brackets');
    return result.ok ? [] : result.issues.map((i) => `${i.code} ${i.path} ${i.message}`);
  };
  assert.deepEqual(found('z'), ['unknown-name [0] unknown value "z" (valid: x, y)']);
  assert.deepEqual(found({ size: 1.5 }), ["missing-field [0].kind 'kind' is required", 'wrong-type [0].size must be an integer, got 1.5']);
  assert.deepEqual(found(5), ['wrong-type [0] must be a name or an object { kind, size }']);
  assert.deepEqual(found({ kind: 'x' }), []);
});

test('paths are written with dots or with brackets for list indices', () => {
  assert.equal(formatPath(['strategies', 4, 'options']), 'strategies.4.options');
  assert.equal(formatPath(['strategies', 4, 'options'], 'brackets'), 'strategies[4].options');
  assert.equal(formatPath([]), '');
});
