/**
 * Our checkpoint sets: `<base>.safetensors` (weights under the model's dotted PyTorch names),
 * `<base>.optim.safetensors` (SGD momentum buffers under the same names; latest and final only)
 * and `<base>.json`, the sidecar holding everything needed to resume exactly and to know where the
 * weights came from. The sidecar records the size and sha256 of the weight files, so a set torn
 * by a kill (or a file changed by hand) is detected on load.
 *
 * Writing a set is journalled so that a kill at any moment leaves either the old set or the new
 * one, never a mix: every new file is first written completely (atomically) as `<file>.partial`;
 * the sidecar's `.partial` is written last and is the commit point; then the three files are
 * renamed into place, sidecar last. `recoverCheckpoint` (run by loadCheckpoint and before a run
 * decides to resume) finishes the renames of a committed set and deletes the partial files of an
 * uncommitted one.
 *
 * This layer knows the sidecar fields every reader needs (architecture, plan, strategy, files);
 * what only the trainer reads back (its state, history, schedule) is typed by src/train, which
 * writes and resumes it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { atomicWriteJsonSync, CheckpointError, integer, parseJson, z, type CpuInfo } from '../core/index.js';
import { readSafetensors, writeSafetensors } from '../io/index.js';
import { fromArray, type Device } from '../tensor/index.js';
import { hostToFloat32, stateDict, tensorToHost, type HostTensor, type LoadReport, type Module, type SGD } from '../nn/index.js';
import type { Plan } from '../data/index.js';
import type { ArchitectureSpec } from '../models/index.js';
import { assertFiniteWeights, loadWeightsStrict } from './weights.js';

export const CHECKPOINT_FORMAT = 'lesionseg-checkpoint';
export const CHECKPOINT_VERSION = 1;
/** The sidecar versions this lesionseg reads. */
export const CHECKPOINT_VERSIONS: readonly number[] = [CHECKPOINT_VERSION];

export type CheckpointName = 'latest' | 'best' | 'final';

export const FileDigestSchema = z.object({
  /** File name relative to the sidecar's folder. */
  file: z.string().min(1),
  bytes: integer().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a sha256 in hex'),
});
export type FileDigest = z.output<typeof FileDigestSchema>;

export const StrategyRecordSchema = z.looseObject({
  name: z.string(),
  /** The pre-trained checkpoint the strategy started from (as given), or null. */
  pretrained: z.string().nullable(),
  /** Strategy-specific facts (which weights were copied, decoder initialisation, ...). */
  details: z.record(z.string(), z.unknown()),
});
export type StrategyRecord = z.output<typeof StrategyRecordSchema>;

/** What the sidecar records of the network: the registry's name, its config and options. */
export type ArchitectureRecord = Omit<ArchitectureSpec, 'name' | 'taskClasses'> & { name: string; taskClasses: number[] | null };

/**
 * The sidecar as every reader sees it. `training`, `state` and `history` are the trainer's (its
 * types live in src/train, `TrainingSidecar`); here only the schedule length is read.
 */
export interface CheckpointSidecar {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  name: CheckpointName;
  architecture: ArchitectureRecord;
  plan: Plan | null;
  planDigest: string | null;
  strategy: StrategyRecord;
  training: { numEpochs: number } & Record<string, unknown>;
  /** The machine the run trained on (CPU name and flags; written since issue 9, absent in older runs). */
  hardware?: CpuInfo;
  state: unknown;
  parameters: { trainable: number; frozen: number; total: number; frozenPrefixes: string[] };
  loadReport: LoadReport | null;
  /** Which cases trained, validated and were held out for testing (split file, fold). */
  data: Record<string, unknown> | null;
  history: unknown[];
  files: { weights: FileDigest; optimizer: FileDigest | null };
  writtenAt: string;
}

export type SidecarContent<S extends CheckpointSidecar = CheckpointSidecar> = Omit<S, 'format' | 'version' | 'name' | 'files' | 'writtenAt'>;

export interface LoadedCheckpoint<S extends CheckpointSidecar = CheckpointSidecar> {
  /** Path without extension (`RUN/checkpoint_latest`). */
  base: string;
  sidecar: S;
  weights: Map<string, HostTensor>;
  /** Momentum buffers, when the checkpoint has them. */
  optimizer: Map<string, HostTensor> | null;
}

/** `RUN/checkpoint_latest` from `RUN/checkpoint_latest.safetensors`, `.json` or the base itself. */
export function checkpointBase(file: string): string {
  for (const ending of ['.optim.safetensors', '.safetensors', '.json']) if (file.endsWith(ending)) return file.slice(0, -ending.length);
  return file;
}

export function checkpointPaths(base: string): { weights: string; optimizer: string; sidecar: string } {
  return { weights: `${base}.safetensors`, optimizer: `${base}.optim.safetensors`, sidecar: `${base}.json` };
}

function digestBytes(bytes: Uint8Array, name: string): FileDigest {
  return { file: name, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
}

function digestFile(file: string, folder: string): FileDigest {
  return digestBytes(fs.readFileSync(file), path.relative(folder, file));
}

/** Momentum buffers as host tensors under the parameter names. */
export function optimizerState(optimizer: SGD): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, buffer] of optimizer.buffers) out.set(name, tensorToHost(buffer));
  return out;
}

const PARTIAL = '.partial';

/**
 * Write a checkpoint set (journalled, see the file comment). `optimizer` null writes no momentum
 * file (and removes a stale one).
 */
export function writeCheckpoint<S extends CheckpointSidecar>(base: string, name: CheckpointName, model: Module, optimizer: SGD | null, content: SidecarContent<S>): S {
  const paths = checkpointPaths(base);
  recoverCheckpoint(base);
  writeSafetensors(paths.weights + PARTIAL, stateDict(model), { format: 'pt', producer: 'lesionseg' });
  if (optimizer !== null) writeSafetensors(paths.optimizer + PARTIAL, optimizerState(optimizer), { format: 'pt', producer: 'lesionseg', content: 'sgd-momentum' });
  const sidecar = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    name,
    ...content,
    files: {
      weights: digestBytes(fs.readFileSync(paths.weights + PARTIAL), path.basename(paths.weights)),
      optimizer: optimizer !== null ? digestBytes(fs.readFileSync(paths.optimizer + PARTIAL), path.basename(paths.optimizer)) : null,
    },
    writtenAt: new Date().toISOString(),
  } as unknown as S;
  atomicWriteJsonSync(paths.sidecar + PARTIAL, sidecar);
  commitPartials(paths, optimizer !== null);
  return sidecar;
}

function commitPartials(paths: ReturnType<typeof checkpointPaths>, withOptimizer: boolean): void {
  if (fs.existsSync(paths.weights + PARTIAL)) fs.renameSync(paths.weights + PARTIAL, paths.weights);
  if (withOptimizer) {
    if (fs.existsSync(paths.optimizer + PARTIAL)) fs.renameSync(paths.optimizer + PARTIAL, paths.optimizer);
  } else {
    fs.rmSync(paths.optimizer, { force: true });
  }
  fs.renameSync(paths.sidecar + PARTIAL, paths.sidecar);
}

/**
 * Bring a checkpoint set interrupted while being written to a consistent state: a committed set
 * (its sidecar's `.partial` exists) is renamed into place; partial files of an uncommitted set are
 * deleted (the previous set was not touched). Returns what it did.
 */
export function recoverCheckpoint(base: string): 'clean' | 'completed' | 'discarded' {
  const paths = checkpointPaths(base);
  if (fs.existsSync(paths.sidecar + PARTIAL)) {
    let committed: Partial<CheckpointSidecar> | null = null;
    try {
      committed = JSON.parse(fs.readFileSync(paths.sidecar + PARTIAL, 'utf8')) as Partial<CheckpointSidecar>;
    } catch (cause) {
      throw new CheckpointError(`the journal of an interrupted checkpoint write is not valid JSON (${(cause as Error).message})`, { file: paths.sidecar + PARTIAL, cause });
    }
    commitPartials(paths, committed.files?.optimizer != null);
    return 'completed';
  }
  const strays = [paths.weights, paths.optimizer].map((file) => file + PARTIAL).filter((file) => fs.existsSync(file));
  for (const file of strays) fs.rmSync(file, { force: true });
  return strays.length > 0 ? 'discarded' : 'clean';
}

/**
 * What every reader of a sidecar needs (validated by readSidecar). The rest of the sidecar
 * (training, state, history, ...) passes through: its readers type it (src/train TrainingSidecar).
 */
const SidecarSchema = z.looseObject({
  name: z.enum(['latest', 'best', 'final']),
  architecture: z.looseObject({ name: z.string().min(1), config: z.record(z.string(), z.unknown()) }),
  strategy: StrategyRecordSchema,
  files: z.looseObject({ weights: FileDigestSchema, optimizer: FileDigestSchema.nullable() }),
});

/** The trainer's part, needed to resume or to continue a schedule (assertTrainingRecord). */
const TrainingRecordSchema = z.looseObject({
  training: z.looseObject({ numEpochs: integer().min(0) }),
  state: z.record(z.string(), z.unknown()),
  parameters: z.record(z.string(), z.unknown()),
  history: z.array(z.unknown()),
});

/** Every problem `schema` finds in a sidecar, as one CheckpointError line naming the file. */
function checkSidecar(schema: z.ZodType, sidecar: unknown, file: string, what: string): void {
  const result = parseJson(schema, sidecar, file);
  if (!result.ok) throw new CheckpointError(`${what}: ${result.issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`, { file });
}

/** Read and validate a sidecar (format, version, the fields every reader needs); CheckpointError names the file. */
export function readSidecar(file: string): CheckpointSidecar {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    throw new CheckpointError(missing ? 'checkpoint sidecar not found' : `checkpoint sidecar is not valid JSON (${(cause as Error).message})`, { file, cause });
  }
  const sidecar = parsed as Partial<CheckpointSidecar>;
  if (typeof parsed !== 'object' || parsed === null || sidecar.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(`not a lesionseg checkpoint sidecar (format must be '${CHECKPOINT_FORMAT}')`, { file });
  }
  if (!CHECKPOINT_VERSIONS.includes(sidecar.version as number)) throw new CheckpointError(`checkpoint version ${JSON.stringify(sidecar.version)} is not supported (this lesionseg reads ${CHECKPOINT_VERSIONS.join(', ')})`, { file });
  checkSidecar(SidecarSchema, parsed, file, 'checkpoint sidecar is incomplete');
  return sidecar as CheckpointSidecar;
}

/** The trainer's part of a sidecar (needed to resume, or to continue its schedule); CheckpointError names what lacks. */
export function assertTrainingRecord(sidecar: CheckpointSidecar, file: string): void {
  checkSidecar(TrainingRecordSchema, sidecar, file, "checkpoint sidecar lacks the trainer's record (not written by lesionseg's trainer?)");
}

function verifyDigest(digest: FileDigest, folder: string, sidecarFile: string): string {
  const file = path.join(folder, digest.file);
  let actual: FileDigest;
  try {
    actual = digestFile(file, folder);
  } catch (cause) {
    throw new CheckpointError(`torn checkpoint set: ${digest.file} named by the sidecar is missing`, { file: sidecarFile, cause });
  }
  if (actual.bytes !== digest.bytes || actual.sha256 !== digest.sha256) {
    throw new CheckpointError(
      `torn checkpoint set: ${digest.file} has ${actual.bytes} bytes and sha256 ${actual.sha256.slice(0, 12)}..., the sidecar recorded ${digest.bytes} bytes and ${digest.sha256.slice(0, 12)}... (was the run killed while writing it?)`,
      { file: sidecarFile },
    );
  }
  return file;
}

/**
 * Read and validate a checkpoint set (sidecar, weights, momentum if present and not declined with
 * `optimizer: false`); CheckpointError on any mismatch or non-finite value.
 */
export function loadCheckpoint<S extends CheckpointSidecar = CheckpointSidecar>(file: string, options: { optimizer?: boolean } = {}): LoadedCheckpoint<S> {
  const base = checkpointBase(file);
  recoverCheckpoint(base);
  const paths = checkpointPaths(base);
  const folder = path.dirname(base);
  const sidecar = readSidecar(paths.sidecar);
  const weightsFile = verifyDigest(sidecar.files.weights, folder, paths.sidecar);
  const optimizerFile = sidecar.files.optimizer && options.optimizer !== false ? verifyDigest(sidecar.files.optimizer, folder, paths.sidecar) : null;
  const weights = readSafetensors(weightsFile).tensors;
  assertFiniteWeights(weights, weightsFile);
  const optimizer = optimizerFile !== null ? readSafetensors(optimizerFile).tensors : null;
  if (optimizer !== null) assertFiniteWeights(optimizer, optimizerFile!, 'momentum buffer');
  return { base, sidecar: sidecar as S, weights, optimizer };
}

/** Load every weight into the model; anything missing, unexpected or of another shape is a CheckpointError. */
export function restoreWeights(model: Module, checkpoint: LoadedCheckpoint): LoadReport {
  return loadWeightsStrict(model, checkpoint.weights, `${checkpoint.base}.safetensors`, 'the model');
}

/** Replace the optimizer's momentum buffers by the checkpoint's (names must be model parameters). */
export function restoreOptimizer(optimizer: SGD, buffers: ReadonlyMap<string, HostTensor>, parameterNames: ReadonlySet<string>, device: Device, file: string): void {
  const unknown = [...buffers.keys()].filter((name) => !parameterNames.has(name));
  if (unknown.length > 0) throw new CheckpointError(`momentum buffers for unknown parameters: ${unknown.slice(0, 5).join(', ')}`, { file });
  optimizer.dispose();
  for (const [name, entry] of buffers) optimizer.buffers.set(name, fromArray(hostToFloat32(entry), entry.shape, { device }).keep());
}
