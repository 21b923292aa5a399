/**
 * Execute a TransferPlan on a freshly built model: check that the pre-trained checkpoint has the
 * same topology, copy the weights mapping by prefix (never the heads), freeze, map the SGD momentum
 * buffers for strategies that carry the optimizer, and report everything (STYLE rule 5): one
 * LoadReport per prefix mapping, the checkpoint entries left out and why, the momentum buffers
 * carried and dropped, and the trainable and frozen weight counts. The report is plain JSON for
 * the checkpoint sidecar. A checkpoint that does not fit is refused with a CheckpointError listing
 * every difference. The topology is compared before anything is loaded; weights that contradict
 * their own architecture record are found while loading, so after such an error the model may hold
 * part of them and must be discarded (building a new one is cheap).
 */
import { CheckpointError, InputError } from '../core/index.js';
import { loadStateDict, type HostTensor, type LoadReport } from '../nn/index.js';
import { architectureNameOf, buildOptionsOf, headPrefixes, TRANSFER_SOURCE_ARCHITECTURES, UNET_DEFAULTS, type HybridUNet, type PlainConvUNet, type TransferSourceName, type UNetConfig } from '../models/index.js';
import { type TransferPlan, type TransferStrategy } from './plan.js';

/** The architectures a pre-trained checkpoint may have (the registry's `transferSource`; it says where their heads live). */
export const PRETRAINED_ARCHITECTURES = TRANSFER_SOURCE_ARCHITECTURES;

export type PretrainedArchitectureName = TransferSourceName;

export function isPretrainedArchitecture(name: string): name is PretrainedArchitectureName {
  return (PRETRAINED_ARCHITECTURES as readonly string[]).includes(name);
}

export interface PretrainedArchitecture {
  name: PretrainedArchitectureName;
  config: UNetConfig;
  /** MultiHeadUNet: classes per task head. */
  taskClasses?: number[];
}

/** A pre-trained run as the checkpoint reader hands it over. */
export interface PretrainedCheckpoint {
  state: ReadonlyMap<string, HostTensor>;
  /** SGD momentum buffers keyed by parameter name (needed by strategies that carry the optimizer). */
  optimizerState?: ReadonlyMap<string, HostTensor>;
  /** Epochs the pre-training ran (its poly schedule's length). */
  epochs: number;
  architecture: PretrainedArchitecture;
  /** Where it was read from, for error messages and the report. */
  file?: string;
}

export type TransferModel = PlainConvUNet | HybridUNet;

export interface CopyReport {
  from: string;
  to: string;
  /** `skipped` lists only the model names under `to` left alone on purpose (the heads). */
  load: LoadReport;
}

export interface TransferReport {
  strategy: TransferStrategy;
  plan: TransferPlan;
  source: { file: string | null; architecture: PretrainedArchitectureName; epochs: number } | null;
  copies: CopyReport[];
  /** Checkpoint head entries, never copied. */
  droppedHeads: string[];
  /** Checkpoint body entries no mapping of the plan uses (e.g. the decoder with decoderInit 'random'). */
  notCopied: string[];
  /** Model parameters left at their random initialisation. */
  randomInit: string[];
  frozenPrefixes: string[];
  /** For optimizer 'carry': momentum buffers mapped into the new model, and those dropped (heads). */
  momentum: { carried: number; dropped: string[] } | null;
  parameters: { trainable: number; frozen: number; total: number };
  decoderInit?: 'pretrained' | 'random';
}

export interface TransferResult {
  report: TransferReport;
  /** Momentum buffers by the new model's parameter names (empty for a fresh optimizer). */
  momentum: Map<string, HostTensor>;
}

const sameList = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);
const show = (value: unknown): string => JSON.stringify(value).replaceAll(',', ', ');

/** Every way two U-Net configs differ in topology (what the body's weights depend on). The heads' class count is not compared. */
export function topologyDifferences(pretrained: UNetConfig, target: UNetConfig): string[] {
  const differences: string[] = [];
  const compare = (what: string, a: unknown, b: unknown): void => {
    if (show(a) !== show(b)) differences.push(`${what}: checkpoint ${show(a)}, model ${show(b)}`);
  };
  compare('inputChannels', pretrained.inputChannels, target.inputChannels);
  compare('number of stages', pretrained.featuresPerStage.length, target.featuresPerStage.length);
  compare('featuresPerStage', pretrained.featuresPerStage, target.featuresPerStage);
  compare('kernelSizes', pretrained.kernelSizes, target.kernelSizes);
  compare('strides', pretrained.strides, target.strides);
  compare('nConvPerStage', pretrained.nConvPerStage ?? UNET_DEFAULTS.nConvPerStage, target.nConvPerStage ?? UNET_DEFAULTS.nConvPerStage);
  compare('nConvPerStageDecoder', pretrained.nConvPerStageDecoder ?? UNET_DEFAULTS.nConvPerStageDecoder, target.nConvPerStageDecoder ?? UNET_DEFAULTS.nConvPerStageDecoder);
  return differences;
}

function modelKind(model: TransferModel): string {
  return architectureNameOf(model);
}

function fail(pretrained: PretrainedCheckpoint, what: string, problems: readonly string[]): never {
  const shown = problems.slice(0, 12);
  if (problems.length > 12) shown.push(`... and ${problems.length - 12} more`);
  throw new CheckpointError(what, { ...(pretrained.file !== undefined ? { file: pretrained.file } : {}), items: shown });
}

/**
 * Load `pretrained` into `model` as `plan` says, freeze, and map the momentum buffers. `model` must
 * be freshly built for the plan (buildModelForPlan). Throws InputError when the plan needs a
 * checkpoint and none is given, CheckpointError when the checkpoint does not fit.
 */
export function applyTransfer(model: TransferModel, pretrained: PretrainedCheckpoint | null, plan: TransferPlan): TransferResult {
  if (modelKind(model) !== plan.model.kind) throw new Error(`the ${plan.strategy} plan needs a ${plan.model.kind}, got a ${modelKind(model)}`);
  const built = buildOptionsOf(model).hybrid?.fuseLevels;
  if ('fuseLevels' in plan.model && built !== plan.model.fuseLevels) {
    throw new Error(`the plan fuses at '${plan.model.fuseLevels}' levels, the model at '${String(built)}'`);
  }
  const usesCheckpoint = plan.copy.length > 0 || plan.optimizer === 'carry';
  if (usesCheckpoint && pretrained === null) throw new InputError(`the ${plan.strategy} strategy needs a pre-trained checkpoint (--pretrained)`);
  const source = usesCheckpoint ? pretrained : null;

  const copies: CopyReport[] = [];
  const droppedHeads: string[] = [];
  const notCopied: string[] = [];
  const loadedNames = new Set<string>();
  let momentum: TransferResult['momentum'] = new Map();
  let momentumReport: TransferReport['momentum'] = null;

  if (source) {
    checkSource(model, source, plan);
    const heads = headPrefixes(source.architecture.name);
    const isHead = (name: string): boolean => heads.some((prefix) => name.startsWith(prefix));
    const problems: string[] = [];
    for (const name of source.state.keys()) {
      if (isHead(name)) droppedHeads.push(name);
      else if (!plan.copy.some((m) => name.startsWith(m.from))) notCopied.push(name);
    }
    for (const mapping of plan.copy) {
      const subset = new Map([...source.state].filter(([name]) => name.startsWith(mapping.from) && !isHead(name)));
      const load = loadStateDict(model, subset, { only: [mapping.to], skip: plan.skip, rename: (name) => mapping.from + name.slice(mapping.to.length) });
      load.skipped = load.skipped.filter((name) => name.startsWith(mapping.to));
      copies.push({ from: mapping.from, to: mapping.to, load });
      for (const name of load.loaded) loadedNames.add(name);
      for (const name of load.missing) problems.push(`${name}: not in the checkpoint (looked for ${mapping.from}${name.slice(mapping.to.length)})`);
      for (const name of load.unexpected) problems.push(`${name}: in the checkpoint but not in the model`);
      for (const m of load.shapeMismatch) problems.push(`${m.name}: shape [${m.found.join(', ')}] in the checkpoint, [${m.expected.join(', ')}] in the model`);
    }
    if (problems.length) fail(source, `the pre-trained weights do not fit the ${plan.model.kind} of the ${plan.strategy} strategy`, problems);
  }

  model.freeze([''], false);
  for (const prefix of plan.freeze) {
    if (model.freeze(prefix) === 0) throw new Error(`the ${plan.strategy} plan freezes '${prefix}', which names no parameter`);
  }

  if (plan.optimizer === 'carry' && source) ({ momentum, report: momentumReport } = mapMomentum(model, source, plan));

  const randomInit = [...model.namedParameters()].map(([name]) => name).filter((name) => !loadedNames.has(name));
  const report: TransferReport = {
    strategy: plan.strategy,
    plan,
    source: source ? { file: source.file ?? null, architecture: source.architecture.name, epochs: source.epochs } : null,
    copies,
    droppedHeads,
    notCopied,
    randomInit,
    frozenPrefixes: [...plan.freeze],
    momentum: momentumReport,
    parameters: model.countParameters(),
  };
  if (plan.decoderInit !== undefined) report.decoderInit = plan.decoderInit;
  return { report, momentum };
}

/** The checks that need no loading: known architecture, same topology, the schedule's epoch count. */
function checkSource(model: TransferModel, source: PretrainedCheckpoint, plan: TransferPlan): void {
  const name = source.architecture.name;
  if (!isPretrainedArchitecture(name)) {
    fail(source, 'unsupported pre-trained architecture', [`'${String(name)}'; transfer reads ${PRETRAINED_ARCHITECTURES.join(' or ')} checkpoints`]);
  }
  const differences = topologyDifferences(source.architecture.config, model.config);
  if (differences.length) fail(source, `the pre-trained ${name} has another topology than the ${plan.model.kind} to train`, differences);
  if (plan.schedule.kind === 'continue' && plan.schedule.pretrainEpochs !== source.epochs) {
    fail(source, 'the continued schedule does not match the checkpoint', [`the plan continues ${plan.schedule.pretrainEpochs} pre-training epochs, the checkpoint ran ${source.epochs}`]);
  }
}

/** Momentum buffers renamed through the plan's mappings; head buffers (and those of frozen weights) dropped. */
function mapMomentum(model: TransferModel, source: PretrainedCheckpoint, plan: TransferPlan): { momentum: Map<string, HostTensor>; report: NonNullable<TransferReport['momentum']> } {
  if (!source.optimizerState) fail(source, `the ${plan.strategy} strategy carries the optimizer state`, ['the checkpoint has no SGD momentum buffers']);
  const heads = headPrefixes(source.architecture.name);
  const parameters = model.parameterDict();
  const momentum = new Map<string, HostTensor>();
  const dropped: string[] = [];
  const problems: string[] = [];
  for (const [name, buffer] of source.optimizerState) {
    const mapping = plan.copy.find((m) => name.startsWith(m.from));
    const target = mapping ? mapping.to + name.slice(mapping.from.length) : undefined;
    if (heads.some((prefix) => name.startsWith(prefix)) || target === undefined || plan.skip.some((prefix) => target.startsWith(prefix))) {
      dropped.push(name);
      continue;
    }
    const parameter = parameters.get(target);
    if (parameter === undefined) problems.push(`momentum buffer ${name}: no parameter ${target} in the model`);
    else if (!sameList(parameter.value.shape, buffer.shape)) problems.push(`momentum buffer ${name}: shape [${buffer.shape.join(', ')}], parameter [${parameter.value.shape.join(', ')}]`);
    else if (parameter.frozen) dropped.push(name);
    else momentum.set(target, buffer);
  }
  if (problems.length) fail(source, 'the optimizer state does not fit the model', problems);
  return { momentum, report: { carried: momentum.size, dropped } };
}
