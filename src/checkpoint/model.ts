/**
 * A trained model of either kind, read through one door (STYLE rule 16): the checkpoint set our
 * trainer writes (sets.ts: `<base>.safetensors`, `<base>.optim.safetensors` and the `<base>.json`
 * sidecar) or an nnU-Net v2 trained model (nnunet.ts: a `.pth` in fold_K/ of a folder with
 * plans.json and dataset.json). Both come out as one ModelCheckpoint: weights under PyTorch's
 * names, the momentum buffers when asked for, the architecture record the registry builds, the
 * plan, the length of the schedule it trained and the mirroring axes it allows. Prediction,
 * `train --pretrained` and export all read models here, and build their networks with
 * `buildNetwork`, through the one architecture registry (src/models registry.ts), loading every
 * weight strictly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError, InputError, type Device } from '../core/index.js';
import { DEFAULT_CONFIGURATION, validatePlan, type Plan } from '../data/index.js';
import type { NnunetRegions } from '../io/index.js';
import { architectureEntry, ARCHITECTURES, buildArchitecture, isArchitectureName, PREDICTING_ARCHITECTURES, type ArchitectureModel, type ArchitectureSpec, type FuseLevels, type UNetConfig } from '../models/index.js';
import type { Tensor } from '../tensor/index.js';
import type { HostTensor, Module } from '../nn/index.js';
import { checkpointBase, checkpointPaths, loadCheckpoint, type ArchitectureRecord, type CheckpointName, type CheckpointSidecar } from './sets.js';
import { readNnunetModelCheckpoint } from './nnunet.js';
import { loadWeightsStrict } from './weights.js';

/** A spatial axis of the network input (0 = z), as nnU-Net's inference_allowed_mirroring_axes. */
export type MirrorAxis = 0 | 1 | 2;

export interface ModelCheckpoint {
  kind: 'lesionseg' | 'nnunet';
  /** The weights file (`<base>.safetensors`, or nnU-Net's `.pth`). */
  file: string;
  /** What describes the model, named by refusals: our sidecar, or nnU-Net's plans.json. */
  sidecarFile: string;
  name: CheckpointName;
  architecture: ArchitectureRecord;
  plan: Plan | null;
  /** The length (epochs) of the poly schedule the model trained with; null when not recorded. */
  numEpochs: number | null;
  weights: Map<string, HostTensor>;
  /** SGD momentum buffers by parameter name; null when not asked for or absent. */
  optimizer: Map<string, HostTensor> | null;
  /** The mirroring axes the model allows (nnU-Net's inference_allowed_mirroring_axes; [] none); null: not recorded (all). */
  mirrorAxes: MirrorAxis[] | null;
  /** Our sidecar, whole (null for nnU-Net models). */
  sidecar: CheckpointSidecar | null;
  /** nnU-Net region-based models: one sigmoid head per region and the label each writes (absent or null: softmax over labels). */
  regions?: NnunetRegions | null;
  /** One line for logs. */
  description: string;
}

export interface ReadModelOptions {
  /** Also read the SGD momentum buffers (continual learning carries them). */
  optimizer?: boolean;
  /** nnU-Net: the configuration the model must have been trained as (default: whatever it was). */
  configuration?: string;
}

function readPlanJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new CheckpointError(`plan is not valid JSON (${(cause as Error).message})`, { file, cause });
  }
}

/** The sidecar's plan, or (older sidecars) the plan.json of the run folder; null when neither. */
function planOf(sidecar: CheckpointSidecar, sidecarFile: string): Plan | null {
  let plan: unknown = sidecar.plan;
  let planFile = sidecarFile;
  if (plan === null || plan === undefined) {
    planFile = path.join(path.dirname(sidecarFile), 'plan.json');
    if (!fs.existsSync(planFile)) return null;
    plan = readPlanJson(planFile);
  }
  const issues = validatePlan(plan, planFile === sidecarFile ? `${sidecarFile} [plan]` : planFile);
  if (issues.length > 0) {
    throw new CheckpointError(`the checkpoint's plan is invalid: ${issues.slice(0, 5).map((i) => `${i.path}: ${i.message}`).join('; ')}`, { file: planFile });
  }
  return plan as Plan;
}

/**
 * The hybrid's fusion levels as the sidecar records them: `architecture.hybrid.fuseLevels` (written
 * since the checkpoint module was merged), else the transfer plan's model in the strategy record
 * (every hybrid run wrote that). Never guessed from the weight names.
 */
function hybridOptions(sidecar: CheckpointSidecar, name: string, file: string): ArchitectureRecord['hybrid'] {
  if (sidecar.architecture.hybrid?.fuseLevels !== undefined) return sidecar.architecture.hybrid;
  const details = sidecar.strategy.details as { transfer?: { plan?: { model?: { kind?: string; fuseLevels?: FuseLevels } } } };
  const model = details.transfer?.plan?.model;
  if (model?.kind === name && (model.fuseLevels === 'all' || model.fuseLevels === 'bottleneck')) return { ...sidecar.architecture.hybrid, fuseLevels: model.fuseLevels };
  throw new CheckpointError(`the sidecar records a ${name} but not its fusion levels (architecture.hybrid.fuseLevels, or the strategy's transfer plan)`, { file });
}

function readOurs(file: string, options: ReadModelOptions): ModelCheckpoint {
  const base = checkpointBase(file);
  const paths = checkpointPaths(base);
  if (!fs.existsSync(paths.weights) && !fs.existsSync(paths.sidecar)) {
    throw new CheckpointError('no checkpoint here (expected <name>.safetensors with its <name>.json sidecar)', { file });
  }
  if (!fs.existsSync(paths.sidecar)) {
    throw new CheckpointError(`not a lesionseg checkpoint: the sidecar ${path.basename(paths.sidecar)} is missing (the weights alone do not say the architecture and the plan)`, { file: paths.weights });
  }
  const loaded = loadCheckpoint(base, { optimizer: options.optimizer === true });
  const sidecar = loaded.sidecar;
  let architecture: ArchitectureRecord = sidecar.architecture;
  if (architectureEntry(architecture.name)?.needs.includes('hybrid') === true) architecture = { ...architecture, hybrid: hybridOptions(sidecar, architecture.name, paths.sidecar) };
  const numEpochs = typeof sidecar.training?.numEpochs === 'number' ? sidecar.training.numEpochs : null;
  const plan = planOf(sidecar, paths.sidecar);
  // The configuration a run trained is its plan's (train --configuration).
  const trained = plan?.configuration.name ?? DEFAULT_CONFIGURATION;
  if (options.configuration !== undefined && options.configuration !== trained) {
    throw new InputError(`--configuration ${options.configuration}: this lesionseg checkpoint is a ${trained} model (its plan's configuration)`, { file, code: 'bad-configuration' });
  }
  return {
    kind: 'lesionseg',
    file: paths.weights,
    sidecarFile: paths.sidecar,
    name: sidecar.name,
    architecture,
    plan,
    numEpochs,
    weights: loaded.weights,
    optimizer: loaded.optimizer,
    // A 2d model's windows are one slice deep: it mirrors over y and x, as nnU-Net's 2D trainer allows.
    mirrorAxes: plan?.configuration.spatialDims === 2 ? [1, 2] : null,
    sidecar,
    description: `${architecture.name} ${path.basename(base)}`,
  };
}

/** Read one model checkpoint: ours (a set; any of its files or its base) or an nnU-Net `.pth` in its model folder. */
export function readModelCheckpoint(file: string, options: ReadModelOptions = {}): ModelCheckpoint {
  return file.endsWith('.pth') ? readNnunetModelCheckpoint(file, options) : readOurs(file, options);
}

/** A model prediction can run: one label space and a plan. */
export type InferenceCheckpoint = ModelCheckpoint & { plan: Plan };
export type ReadCheckpointOptions = Pick<ReadModelOptions, 'configuration'>;

/** Read a checkpoint for inference (no optimizer state); refuses models without one label space or without a plan. */
export function readInferenceCheckpoint(file: string, options: ReadCheckpointOptions = {}): InferenceCheckpoint {
  const checkpoint = readModelCheckpoint(file, { ...options, optimizer: false });
  const name = checkpoint.architecture.name;
  if (!isArchitectureName(name) || !ARCHITECTURES[name].predicts) {
    throw new CheckpointError(
      `architecture '${name}' cannot predict (a multi-head pre-training model has no single label space); prediction builds ${PREDICTING_ARCHITECTURES.join(', ')}`,
      { file: checkpoint.sidecarFile },
    );
  }
  if (checkpoint.plan === null) throw new CheckpointError('the checkpoint records no plan and there is no plan.json beside it', { file: checkpoint.sidecarFile });
  return checkpoint as InferenceCheckpoint;
}

/** A network inference can run: forward returns logits (full resolution first). */
export interface SegmentationNetwork extends Module {
  readonly config: UNetConfig;
  deepSupervision: boolean;
  forward(x: Tensor): Tensor[];
}

/** The registry's spec of a recorded architecture; CheckpointError when the name is not in the registry. */
export function architectureSpec(checkpoint: Pick<ModelCheckpoint, 'architecture' | 'sidecarFile'>): ArchitectureSpec {
  const { name, config, taskClasses, hybrid } = checkpoint.architecture;
  if (!isArchitectureName(name)) throw new CheckpointError(`unknown architecture '${name}' (known: ${Object.keys(ARCHITECTURES).join(', ')})`, { file: checkpoint.sidecarFile });
  return { name, config, ...(taskClasses !== null ? { taskClasses } : {}), ...(hybrid !== undefined ? { hybrid } : {}) };
}

/** Build the checkpoint's network on `device` with all its weights (strict), deep supervision off. */
export function buildNetwork(checkpoint: ModelCheckpoint, device: Device): ArchitectureModel {
  let network: ArchitectureModel;
  try {
    network = buildArchitecture(architectureSpec(checkpoint), device);
  } catch (cause) {
    if (cause instanceof CheckpointError) throw cause;
    throw new CheckpointError(`cannot build ${checkpoint.architecture.name} from the recorded config: ${(cause as Error).message}`, { file: checkpoint.sidecarFile, cause });
  }
  try {
    // An nnU-Net trainer variant that builds another network than plans.json says (nnUNetTrainerBN) is named here.
    const what = checkpoint.kind === 'nnunet' ? `the ${checkpoint.architecture.name} plans.json describes (${checkpoint.description})` : `the recorded ${checkpoint.architecture.name}`;
    loadWeightsStrict(network, checkpoint.weights, checkpoint.file, what);
  } catch (error) {
    network.dispose();
    throw error;
  }
  network.deepSupervision = false;
  return network;
}

/** Build an inference checkpoint's network (one label space; see readInferenceCheckpoint). */
export function buildInferenceNetwork(checkpoint: InferenceCheckpoint, device: Device): SegmentationNetwork {
  return buildNetwork(checkpoint, device) as SegmentationNetwork;
}
