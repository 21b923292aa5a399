/**
 * Reading a trained model for inference, the one door for every kind (STYLE rule 16): the
 * checkpoint set our trainer writes (src/train checkpoint.ts: `<base>.safetensors` with the
 * model's dotted PyTorch parameter names and the `<base>.json` sidecar with format
 * 'lesionseg-checkpoint', the architecture config and the plan), and nnU-Net v2 trained model
 * folders (nnunetCheckpoint.ts: plans.json, dataset.json, fold_K/checkpoint_final.pth).
 * infer may not import train (layer rule), so this is a minimal reader of the same files: it checks
 * the sidecar's format and version, the weight file's recorded size and sha256, builds the network
 * from the recorded architecture (explicit registry) and loads every weight, refusing anything
 * missing, unexpected or of another shape. Also resolves `-m` paths: a checkpoint file, a run folder
 * (its checkpoint_final, or checkpoint_best), a folder of fold_K runs (an ensemble), or an nnU-Net
 * model folder, one of its fold folders or one of its .pth files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { CheckpointError, InputError, type Device } from '../core/index.js';
import { nnunetModelFolderOf, readSafetensors, type SafetensorsEntry } from '../io/index.js';
import { validatePlan, type Plan } from '../data/index.js';
import { HybridUNet, isResidualEncoderConfig, PlainConvUNet, ResidualEncoderUNet, type FuseLevels, type UNetConfig } from '../models/index.js';
import { loadStateDict, type Module } from '../nn/index.js';
import type { Tensor } from '../tensor/index.js';
import type { SpatialAxis } from './mirroring.js';
import { readNnunetInferenceCheckpoint, resolveNnunetCheckpoints, type ModelFold } from './nnunetCheckpoint.js';

/** The sidecar `format` the trainer writes (src/train/checkpoint.ts CHECKPOINT_FORMAT). */
export const CHECKPOINT_FORMAT = 'lesionseg-checkpoint';
export const CHECKPOINT_VERSIONS: readonly number[] = [1];
/** The checkpoint a run folder is predicted with. */
export const FINAL_CHECKPOINT = 'checkpoint_final';

/** A network inference can run: forward returns logits (full resolution first). */
export interface SegmentationNetwork extends Module {
  readonly config: UNetConfig;
  deepSupervision: boolean;
  forward(x: Tensor): Tensor[];
}

export interface InferenceCheckpoint {
  /** The weights file (`<base>.safetensors`, or nnU-Net's `.pth`). */
  file: string;
  /** What describes the model: our sidecar, or nnU-Net's plans.json. */
  sidecarFile: string;
  kind: 'lesionseg' | 'nnunet';
  architecture: { name: string; config: UNetConfig };
  plan: Plan;
  weights: Map<string, SafetensorsEntry>;
  /** The mirroring axes the model allows (nnU-Net's inference_allowed_mirroring_axes; [] none); null: not recorded (all). */
  mirrorAxes: SpatialAxis[] | null;
  /** One line for logs. */
  description: string;
}

/** Which checkpoint of a run or fold to predict with (nnU-Net's -chk checkpoint_final.pth / checkpoint_best.pth). */
export type CheckpointChoice = 'final' | 'best';

export interface ReadCheckpointOptions {
  /** nnU-Net: the configuration the model must have been trained as (default: whatever it was). */
  configuration?: string;
}

type NetworkBuilder = (checkpoint: InferenceCheckpoint, device: Device) => SegmentationNetwork;

function hybridFuseLevels(checkpoint: InferenceCheckpoint): FuseLevels {
  // The fusion units present in the weights say which levels were fused (fusion.0. exists only with 'all').
  return [...checkpoint.weights.keys()].some((name) => name.startsWith('fusion.0.')) ? 'all' : 'bottleneck';
}

/** The architectures prediction can build, by the name the sidecar records. */
export const INFERENCE_ARCHITECTURES = {
  PlainConvUNet: (checkpoint, device) => new PlainConvUNet(checkpoint.architecture.config, { device }),
  HybridUNet: (checkpoint, device) => new HybridUNet(checkpoint.architecture.config, { device, fuseLevels: hybridFuseLevels(checkpoint) }),
  ResidualEncoderUNet: (checkpoint, device) => {
    const config = checkpoint.architecture.config;
    if (!isResidualEncoderConfig(config)) throw new Error('a ResidualEncoderUNet config needs nBlocksPerStage');
    return new ResidualEncoderUNet(config, { device });
  },
} satisfies Record<string, NetworkBuilder>;

export type InferenceArchitecture = keyof typeof INFERENCE_ARCHITECTURES;

/** `RUN/checkpoint_final` from `RUN/checkpoint_final.safetensors`, `.json` or the base itself. */
export function checkpointBase(file: string): string {
  for (const ending of ['.optim.safetensors', '.safetensors', '.json']) if (file.endsWith(ending)) return file.slice(0, -ending.length);
  return file;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new CheckpointError(`${what} not found`, { file, cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new CheckpointError(`${what} is not valid JSON (${(cause as Error).message})`, { file, cause });
  }
}

function checkDigest(weightsFile: string, recorded: unknown, sidecarFile: string): void {
  if (!isRecord(recorded) || typeof recorded.sha256 !== 'string' || typeof recorded.bytes !== 'number') return;
  const bytes = fs.readFileSync(weightsFile);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (bytes.byteLength !== recorded.bytes || sha256 !== recorded.sha256) {
    throw new CheckpointError(
      `the weights ${path.basename(weightsFile)} (${bytes.byteLength} bytes) are not the ones this sidecar recorded (${recorded.bytes} bytes, sha256 ${recorded.sha256.slice(0, 12)}...)`,
      { file: sidecarFile },
    );
  }
}

function planOf(sidecar: Record<string, unknown>, sidecarFile: string): Plan {
  let plan: unknown = sidecar.plan;
  let planFile = sidecarFile;
  if (plan === null || plan === undefined) {
    // Older sidecars may leave the plan out; a run folder keeps it beside the checkpoint.
    planFile = path.join(path.dirname(sidecarFile), 'plan.json');
    if (!fs.existsSync(planFile)) throw new CheckpointError('the checkpoint records no plan and there is no plan.json beside it', { file: sidecarFile });
    plan = readJson(planFile, 'plan');
  }
  const issues = validatePlan(plan, planFile === sidecarFile ? `${sidecarFile} [plan]` : planFile);
  if (issues.length > 0) {
    throw new CheckpointError(`the checkpoint's plan is invalid: ${issues.slice(0, 5).map((i) => `${i.path}: ${i.message}`).join('; ')}`, { file: planFile });
  }
  return plan as Plan;
}

/**
 * Read a checkpoint for inference (no optimizer state): ours (a set) or an nnU-Net `.pth` in its
 * model folder. CheckpointError names the file for anything that cannot be read.
 */
export function readInferenceCheckpoint(file: string, options: ReadCheckpointOptions = {}): InferenceCheckpoint {
  if (file.endsWith('.pth')) return readNnunetInferenceCheckpoint(file, options);
  if (options.configuration !== undefined && options.configuration !== '3d_fullres') {
    throw new InputError(`--configuration ${options.configuration}: a lesionseg checkpoint is one 3D full-resolution model (configurations belong to nnU-Net model folders)`, { file, code: 'bad-configuration' });
  }
  const base = checkpointBase(file);
  const weightsFile = `${base}.safetensors`;
  const sidecarFile = `${base}.json`;
  if (!fs.existsSync(weightsFile) && !fs.existsSync(sidecarFile)) {
    throw new CheckpointError('no checkpoint here (expected <name>.safetensors with its <name>.json sidecar)', { file });
  }
  if (!fs.existsSync(sidecarFile)) {
    throw new CheckpointError(`not a lesionseg checkpoint: the sidecar ${path.basename(sidecarFile)} is missing (the weights alone do not say the architecture and the plan)`, { file: weightsFile });
  }
  const sidecar = readJson(sidecarFile, 'checkpoint sidecar');
  if (!isRecord(sidecar) || sidecar.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(`not a lesionseg checkpoint sidecar (its "format" must be "${CHECKPOINT_FORMAT}")`, { file: sidecarFile });
  }
  if (!CHECKPOINT_VERSIONS.includes(sidecar.version as number)) {
    throw new CheckpointError(`checkpoint version ${JSON.stringify(sidecar.version)} is not supported (this lesionseg reads ${CHECKPOINT_VERSIONS.join(', ')})`, { file: sidecarFile });
  }
  const architecture = sidecar.architecture;
  if (!isRecord(architecture) || typeof architecture.name !== 'string' || !isRecord(architecture.config)) {
    throw new CheckpointError('the sidecar has no architecture { name, config }', { file: sidecarFile });
  }
  if (!Object.hasOwn(INFERENCE_ARCHITECTURES, architecture.name)) {
    throw new CheckpointError(
      `architecture '${architecture.name}' cannot predict (a multi-head pre-training model has no single label space); prediction builds ${Object.keys(INFERENCE_ARCHITECTURES).join(', ')}`,
      { file: sidecarFile },
    );
  }
  const plan = planOf(sidecar, sidecarFile);
  if (!fs.existsSync(weightsFile)) throw new CheckpointError(`the weights ${path.basename(weightsFile)} named by this sidecar are missing`, { file: sidecarFile });
  checkDigest(weightsFile, isRecord(sidecar.files) ? sidecar.files.weights : undefined, sidecarFile);
  const weights = readSafetensors(weightsFile).tensors;
  return {
    file: weightsFile,
    sidecarFile,
    kind: 'lesionseg',
    architecture: { name: architecture.name, config: architecture.config as unknown as UNetConfig },
    plan,
    weights,
    mirrorAxes: null,
    description: `${architecture.name} ${path.basename(base)}`,
  };
}

/** Build the checkpoint's network on `device` with its weights, deep supervision off. */
export function buildInferenceNetwork(checkpoint: InferenceCheckpoint, device: Device): SegmentationNetwork {
  const builder: NetworkBuilder = INFERENCE_ARCHITECTURES[checkpoint.architecture.name as InferenceArchitecture];
  let network: SegmentationNetwork;
  try {
    network = builder(checkpoint, device);
  } catch (cause) {
    throw new CheckpointError(`cannot build ${checkpoint.architecture.name} from the recorded config: ${(cause as Error).message}`, { file: checkpoint.sidecarFile, cause });
  }
  const report = loadStateDict(network, checkpoint.weights);
  const problems = [
    ...report.missing.map((n) => `missing ${n}`),
    ...report.unexpected.map((n) => `unexpected ${n}`),
    ...report.shapeMismatch.map((m) => `${m.name} has shape [${m.found.join(', ')}], the model [${m.expected.join(', ')}]`),
  ];
  if (problems.length > 0) {
    network.dispose();
    const shown = problems.slice(0, 6).join('; ');
    throw new CheckpointError(`the weights do not fit the recorded ${checkpoint.architecture.name}: ${shown}${problems.length > 6 ? `; and ${problems.length - 6} more` : ''}`, { file: checkpoint.file });
  }
  network.deepSupervision = false;
  return network;
}

/**
 * The checkpoint files `-m` names: a checkpoint (`.safetensors`, `.json` or the base), a run folder
 * (RUN/checkpoint_final, or _best), a folder holding fold_K run folders (one checkpoint per fold
 * in `folds`, default every fold_K found, in K order), or an nnU-Net model folder (its folds'
 * checkpoint_final.pth or _best.pth, see nnunetCheckpoint.ts).
 */
export function resolveCheckpoints(modelPath: string, folds?: readonly ModelFold[], options: { checkpoint?: CheckpointChoice } = {}): string[] {
  if (nnunetModelFolderOf(modelPath) !== null) {
    return resolveNnunetCheckpoints(modelPath, { ...(folds !== undefined ? { folds } : {}), ...(options.checkpoint !== undefined ? { checkpoint: options.checkpoint } : {}) });
  }
  if (folds?.includes('all')) throw new InputError('--folds all names an nnU-Net fold_all; this is not an nnU-Net model folder', { file: modelPath, code: 'bad-folds' });
  const chosen = options.checkpoint === 'best' ? 'checkpoint_best' : FINAL_CHECKPOINT;
  let stat: fs.Stats;
  try {
    stat = fs.statSync(modelPath);
  } catch {
    const base = checkpointBase(modelPath);
    if (fs.existsSync(`${base}.safetensors`) || fs.existsSync(`${base}.json`)) return [`${base}.safetensors`];
    throw new InputError('model not found: give a checkpoint, a run folder or a folder of fold_K runs', { file: modelPath, code: 'missing-model' });
  }
  if (stat.isFile()) {
    if (folds !== undefined) throw new InputError('--folds needs -m to be a folder of fold_K runs, not a checkpoint file', { file: modelPath, code: 'bad-folds' });
    return [`${checkpointBase(modelPath)}.safetensors`];
  }
  const final = path.join(modelPath, chosen);
  const foldDirs = fs.readdirSync(modelPath)
    .map((name) => /^fold_(\d+)$/.exec(name))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ fold: Number(match[1]), dir: path.join(modelPath, match[0]) }))
    .sort((a, b) => a.fold - b.fold);
  if (foldDirs.length === 0 || (folds === undefined && fs.existsSync(`${final}.json`))) {
    if (folds !== undefined) throw new InputError(`--folds ${folds.join(',')}: there are no fold_K folders here`, { file: modelPath, code: 'bad-folds' });
    if (!fs.existsSync(`${final}.json`) && !fs.existsSync(`${final}.safetensors`)) {
      throw new CheckpointError(`no ${chosen}.safetensors and no fold_K folders: not a lesionseg run folder nor an nnU-Net model folder (plans.json, dataset.json)`, { file: modelPath });
    }
    return [`${final}.safetensors`];
  }
  const wanted = folds ?? foldDirs.map((f) => f.fold);
  return wanted.map((fold) => {
    const found = foldDirs.find((f) => f.fold === fold);
    if (found === undefined) {
      throw new InputError(`fold ${fold} is not here: found ${foldDirs.map((f) => `fold_${f.fold}`).join(', ')}`, { file: modelPath, code: 'bad-folds' });
    }
    return path.join(found.dir, `${chosen}.safetensors`);
  });
}
