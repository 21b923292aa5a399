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
 * The JSON's shape is declared in specSchema.ts (ArmJson); the rules across keys are here (checkArms).
 */
import { addIssue, InputError, type z } from '../core/index.js';
import { TRANSFER_STRATEGIES, transferPlanShape, type TransferStrategy, type TransferStrategyOptions } from '../transfer/index.js';
import type { ArmJsonValue } from './specSchema.js';

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
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
export const isStrategy = (value: unknown): value is TransferStrategy => typeof value === 'string' && (TRANSFER_STRATEGIES as readonly string[]).includes(value);

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

/** An arm of the parsed spec JSON (specSchema.ts ArmJson) as an ArmSpec. */
export function armFromJson(entry: ArmJsonValue): ArmSpec {
  if (typeof entry === 'string') return { name: entry, strategy: entry as TransferStrategy, options: {}, pretrained: null };
  const strategy = entry.strategy as TransferStrategy;
  return { name: entry.name ?? strategy, strategy, options: { ...(entry.options ?? {}) }, pretrained: entry.pretrained ?? null };
}

/**
 * The arms' rules across keys, on the spec's `strategies` as given (possibly malformed; the schema
 * reports its shape): names, options that apply to the strategy (transferPlanShape), models among
 * the spec's, one arm per name and one from-scratch arm. Returns the strategies of the arms.
 */
export function checkArms(ctx: z.RefinementCtx, value: unknown, models: readonly string[], none: string): TransferStrategy[] {
  if (!Array.isArray(value)) return [];
  const arms: { name: string; strategy: TransferStrategy }[] = [];
  value.forEach((entry: unknown, i) => {
    const record = isRecord(entry) ? entry : null;
    const strategy = typeof entry === 'string' ? entry : record?.strategy;
    if (!isStrategy(strategy)) return;
    const name = typeof record?.name === 'string' ? record.name : strategy;
    if (!NAME.test(name)) addIssue(ctx, 'bad-name', `arm names use letters, digits, '-' and '_', got ${JSON.stringify(name)}`, ['strategies', i, 'name']);
    else if (name !== strategy && isStrategy(name)) addIssue(ctx, 'bad-name', `'${name}' is another strategy's name; name the ${strategy} variant otherwise`, ['strategies', i, 'name']);
    if (record !== null && isRecord(record.options)) {
      const options: TransferStrategyOptions = {};
      const { decoderInit, fuseLevels } = record.options;
      if ((DECODER_INITS as readonly unknown[]).includes(decoderInit)) options.decoderInit = decoderInit as (typeof DECODER_INITS)[number];
      if ((FUSE_LEVELS as readonly unknown[]).includes(fuseLevels)) options.fuseLevels = fuseLevels as (typeof FUSE_LEVELS)[number];
      try {
        transferPlanShape(strategy, options);
      } catch (error) {
        if (!(error instanceof InputError)) throw error;
        addIssue(ctx, 'bad-arguments', error.message, ['strategies', i, 'options']);
      }
    }
    if (record !== null && Array.isArray(record.pretrained)) {
      const valid = strategy === 'scratch' ? [none] : models.filter((m) => m !== none);
      record.pretrained.forEach((model: unknown, j) => {
        if (typeof model === 'string' && !valid.includes(model)) {
          addIssue(ctx, 'unknown-model', `the ${strategy} arm cannot run with '${model}' (valid: ${valid.join(', ') || 'none'}; the spec's pretrained list)`, ['strategies', i, 'pretrained', j]);
        }
      });
      if (record.pretrained.length === 0) addIssue(ctx, 'bad-value', 'must name at least one pre-trained model (leave it out for all of them)', ['strategies', i, 'pretrained']);
    }
    if (arms.some((a) => a.name === name)) addIssue(ctx, 'duplicate-arm', `two arms are named '${name}' (each arm needs its own name: it keys its run folders)`, ['strategies', i]);
    else if (strategy === 'scratch' && arms.some((a) => a.strategy === 'scratch')) addIssue(ctx, 'duplicate-scratch', 'a study has one from-scratch arm (every comparison is against it)', ['strategies', i]);
    arms.push({ name, strategy });
  });
  return arms.map((a) => a.strategy);
}
