/**
 * The arms of a study. An entry of the spec's `strategies` is a strategy's name ("hybrid") or an
 * object naming a variant of one:
 *   { "strategy": "hybrid", "name": "hybrid-random-decoder", "options": { "decoderInit": "random" },
 *     "pretrained": ["multi"] }
 * - name: keys the arm's run folders (runs/<model>/<name>/...), logs and step times; default the
 *   strategy's name. Unique in the spec, and never another strategy's name.
 * - options: the strategy's options (decoderInit for frozen-encoder and hybrid, fuseLevels for
 *   hybrid), passed to `lesionseg train` as its flags (--decoder-init, --fuse-levels) and checked
 *   against finished runs by the runner's stale-run check; validated by transferPlanShape.
 * - pretrained: the models (of the spec's `pretrained`) the arm runs with; default all of them.
 * A plain name is the arm { name: strategy, strategy, options: {}, pretrained: null }, so a spec
 * written before arms had options means what it meant, and writes back the same (armToJson).
 */
import { InputError } from '../core/index.js';
import { TRANSFER_STRATEGIES, transferPlanShape, type TransferStrategy, type TransferStrategyOptions } from '../transfer/index.js';
import { join, type Checker } from './specCheck.js';

export const DECODER_INITS = ['pretrained', 'random'] as const;
export const FUSE_LEVELS = ['all', 'bottleneck'] as const;

export interface ArmSpec {
  name: string;
  strategy: TransferStrategy;
  options: TransferStrategyOptions;
  /** The pre-trained models this arm runs with; null: every model of the spec (scratch: 'none'). */
  pretrained: string[] | null;
}

const NAME = /^[A-Za-z0-9_-]+$/;
const isStrategy = (value: unknown): value is TransferStrategy => typeof value === 'string' && (TRANSFER_STRATEGIES as readonly string[]).includes(value);

/** The `lesionseg train` flags of an arm's options. */
export function armTrainArgs(options: TransferStrategyOptions): string[] {
  return [...(options.decoderInit !== undefined ? ['--decoder-init', options.decoderInit] : []), ...(options.fuseLevels !== undefined ? ['--fuse-levels', options.fuseLevels] : [])];
}

/** The arm as spec JSON: a plain strategy name when it is one. */
export function armToJson(arm: ArmSpec): string | Record<string, unknown> {
  const hasOptions = Object.keys(arm.options).length > 0;
  if (arm.name === arm.strategy && !hasOptions && arm.pretrained === null) return arm.strategy;
  return { strategy: arm.strategy, name: arm.name, ...(hasOptions ? { options: { ...arm.options } } : {}), ...(arm.pretrained !== null ? { pretrained: [...arm.pretrained] } : {}) };
}

function armOptions(check: Checker, value: unknown, at: string, strategy: TransferStrategy): TransferStrategyOptions {
  if (value === undefined) return {};
  const record = check.object(value, at);
  if (record === null) return {};
  check.keys(record, at, ['decoderInit', 'fuseLevels']);
  const options: TransferStrategyOptions = {};
  if (record.decoderInit !== undefined) options.decoderInit = check.choice(record, 'decoderInit', at, DECODER_INITS, 'pretrained');
  if (record.fuseLevels !== undefined) options.fuseLevels = check.choice(record, 'fuseLevels', at, FUSE_LEVELS, 'all');
  try {
    transferPlanShape(strategy, options);
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    check.add(at, 'bad-arguments', error.message);
  }
  return options;
}

function armEntry(check: Checker, entry: unknown, at: string, models: readonly string[], none: string): ArmSpec | null {
  if (typeof entry === 'string') {
    if (isStrategy(entry)) return { name: entry, strategy: entry, options: {}, pretrained: null };
    check.add(at, 'unknown-strategy', `unknown strategy '${entry}' (valid: ${TRANSFER_STRATEGIES.join(', ')})`);
    return null;
  }
  const record = check.object(entry, at);
  if (record === null) return null;
  check.keys(record, at, ['strategy', 'name', 'options', 'pretrained'], ['strategy']);
  if (!isStrategy(record.strategy)) {
    if (record.strategy !== undefined) check.add(join(at, 'strategy'), 'unknown-strategy', `unknown strategy ${JSON.stringify(record.strategy)} (valid: ${TRANSFER_STRATEGIES.join(', ')})`);
    return null;
  }
  const strategy = record.strategy;
  const name = check.string(record, 'name', at, strategy);
  if (!NAME.test(name)) check.add(join(at, 'name'), 'bad-name', `arm names use letters, digits, '-' and '_', got ${JSON.stringify(name)}`);
  else if (name !== strategy && isStrategy(name)) check.add(join(at, 'name'), 'bad-name', `'${name}' is another strategy's name; name the ${strategy} variant otherwise`);
  const options = armOptions(check, record.options, join(at, 'options'), strategy);
  let pretrained: string[] | null = null;
  if (record.pretrained !== undefined) {
    pretrained = check.stringList(record, 'pretrained', at);
    const valid = strategy === 'scratch' ? [none] : models.filter((m) => m !== none);
    pretrained.forEach((model, i) => {
      if (!valid.includes(model)) check.add(join(join(at, 'pretrained'), i), 'unknown-model', `the ${strategy} arm cannot run with '${model}' (valid: ${valid.join(', ') || 'none'}; the spec's pretrained list)`);
    });
    if (pretrained.length === 0) check.add(join(at, 'pretrained'), 'bad-value', 'must name at least one pre-trained model (leave it out for all of them)');
  }
  return { name, strategy, options, pretrained };
}

/** Validate the spec's `strategies` (names or arm objects) against its pre-trained models; every problem goes to `check`. */
export function parseArms(check: Checker, value: unknown, models: readonly string[], none: string): ArmSpec[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    check.add('strategies', 'bad-value', 'must be a list of strategy names or arm objects { strategy, name, options, pretrained }');
    return [];
  }
  const arms: ArmSpec[] = [];
  value.forEach((entry, i) => {
    const arm = armEntry(check, entry, join('strategies', i), models, none);
    if (arm === null) return;
    if (arms.some((a) => a.name === arm.name)) check.add(join('strategies', i), 'duplicate-arm', `two arms are named '${arm.name}' (each arm needs its own name: it keys its run folders)`);
    else if (arm.strategy === 'scratch' && arms.some((a) => a.strategy === 'scratch')) check.add(join('strategies', i), 'duplicate-scratch', 'a study has one from-scratch arm (every comparison is against it)');
    arms.push(arm);
  });
  return arms;
}
