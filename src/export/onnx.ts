/**
 * `lesionseg export RUN --format onnx`: one trained network as an ONNX model (opset 17) that any
 * ONNX runtime runs on preprocessed patches, with what it takes to preprocess a case and tile it
 * in the model's metadata_props: the plan's normalization (scheme and intensity properties per
 * channel), target spacing, transpose, patch size, labels, mirroring axes and the whole plan.
 *
 * Exportable: the registry's entries with `onnx.exportable` (PlainConvUNet, ours and nnU-Net v2's;
 * its graph is onnxGraph.ts). Refused, naming the architecture and the entry's reason: the
 * multi-head pre-training model (no single label space; the checkpoint reader refuses it for
 * prediction too), HybridUNet (two encoders joined by Selective Fusion units) and
 * ResidualEncoderUNet, whose graphs are not written yet.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteFile, InputError, LesionsegError } from '../core/index.js';
import { readInferenceCheckpoint, resolveCheckpoints, type CheckpointChoice, type InferenceCheckpoint } from '../infer/index.js';
import { architectureEntry, ONNX_EXPORTABLE_ARCHITECTURES, type OnnxArchitectureName } from '../models/index.js';
import { encodeOnnxModel } from './onnxProto.js';
import { ONNX_IR_VERSION, ONNX_OPSET, plainConvUNetGraph } from './onnxGraph.js';

/** The format tag in metadata_props (`lesionseg.format`). */
export const ONNX_EXPORT_FORMAT = 'lesionseg-onnx';
export const ONNX_EXPORT_VERSION = 1;

/** The graph writer of each architecture the registry says is ONNX-exportable (a missing one does not compile). */
const GRAPH_WRITERS = { PlainConvUNet: plainConvUNetGraph } as const satisfies Record<OnnxArchitectureName, typeof plainConvUNetGraph>;

/** Refuse (InputError naming the sidecar) an architecture the registry says we cannot write as ONNX. */
export function assertOnnxExportable(checkpoint: Pick<InferenceCheckpoint, 'architecture' | 'sidecarFile'>): void {
  const name = checkpoint.architecture.name;
  const onnx = architectureEntry(name)?.onnx;
  if (onnx?.exportable === true) return;
  throw new InputError(
    `architecture '${name}' cannot be exported to ONNX (${onnx?.reason ?? 'unknown to the exporter'}); exportable: ${ONNX_EXPORTABLE_ARCHITECTURES.join(', ')}`,
    { file: checkpoint.sidecarFile, code: 'not-exportable' },
  );
}

/**
 * Refuse a cascade stage: its input is the previous stage's whole prediction, resampled, preprocessed
 * as a label map and one-hot encoded, which is no part of a network graph (nor of the consumer's
 * preprocessing that the metadata describes); one ONNX model holds one network.
 */
export function assertOneStage(checkpoint: Pick<InferenceCheckpoint, 'plan' | 'sidecarFile'>): void {
  const previous = checkpoint.plan.configuration.previousStage;
  if (previous === undefined) return;
  throw new InputError(
    `this is a 3d_cascade_fullres stage after '${previous}': its input needs the ${previous} prediction resampled and one-hot encoded between two networks, which one ONNX model cannot hold; ONNX exports one-stage models (3d_fullres, 3d_lowres, 2d): export the cascade with --format nnunet`,
    { file: checkpoint.sidecarFile, code: 'not-exportable' },
  );
}

/** The metadata_props of an exported model: the preprocessing and tiling a consumer must reproduce. */
export function onnxMetadata(checkpoint: InferenceCheckpoint): Record<string, string> {
  const plan = checkpoint.plan;
  const configuration = plan.configuration;
  const json = (value: unknown): string => JSON.stringify(value);
  return {
    'lesionseg.format': `${ONNX_EXPORT_FORMAT}/${ONNX_EXPORT_VERSION}`,
    architecture: checkpoint.architecture.name,
    source_checkpoint: path.basename(checkpoint.file),
    input_layout: 'preprocessed [batch, channel, z, y, x]: transposed by transpose_forward, resampled to target_spacing, normalized per channel',
    patch_size: json(configuration.patchSize),
    target_spacing: json(configuration.targetSpacing),
    transpose_forward: json(configuration.transpose.forward),
    transpose_backward: json(configuration.transpose.backward),
    normalization: json(configuration.normalization),
    channel_names: json(configuration.normalization.map((n) => n.channel)),
    num_classes: String(checkpoint.architecture.config.numClasses),
    labels: json(plan.datasets[0]?.labels ?? null),
    mirror_axes: json(checkpoint.mirrorAxes ?? [0, 1, 2]),
    sliding_window: json({ stepFraction: 0.5, gaussian: true, gaussianSigmaScale: 0.125, mirroring: 'mean of logits over the mirror_axes combinations' }),
    plan: json(plan),
  };
}

/** The serialized ONNX model of one checkpoint (refused if its architecture cannot be expressed). */
export function onnxModelBytes(checkpoint: InferenceCheckpoint): Uint8Array {
  assertOnnxExportable(checkpoint);
  const config = checkpoint.architecture.config;
  const patchSize = checkpoint.plan.configuration.patchSize;
  const graph = GRAPH_WRITERS[checkpoint.architecture.name as OnnxArchitectureName](config, checkpoint.weights, patchSize, checkpoint.file);
  return encodeOnnxModel({
    irVersion: ONNX_IR_VERSION,
    opsetVersion: ONNX_OPSET,
    producerName: 'lesionseg',
    producerVersion: '0.1.0',
    docString: `${checkpoint.architecture.name} from ${path.basename(checkpoint.file)}: logits of one ${patchSize.join('x')} patch; see metadata_props for the preprocessing`,
    graph: { name: checkpoint.architecture.name, ...graph },
    metadata: onnxMetadata(checkpoint),
  });
}

export interface OnnxExportResult {
  out: string;
  architecture: string;
  /** The weights file exported. */
  checkpoint: string;
  bytes: number;
  opset: number;
}

function checkOutputFile(outFile: string): void {
  let stat: fs.Stats | null = null;
  try {
    stat = fs.statSync(outFile);
  } catch {
    // Does not exist yet: its folder must be one (or creatable).
  }
  if (stat?.isDirectory()) throw new InputError('the ONNX output is a directory; give a file such as model.onnx', { file: outFile, code: 'bad-output' });
  let parent = path.dirname(path.resolve(outFile));
  while (!fs.existsSync(parent)) parent = path.dirname(parent);
  if (!fs.statSync(parent).isDirectory()) throw new InputError(`cannot create the ONNX output: ${parent} is not a directory`, { file: outFile, code: 'bad-output' });
}

/**
 * Write the network of a run (its checkpoint_final, or checkpoint_best) or of one checkpoint as an
 * ONNX model, through a temporary file renamed into place. A folder of fold runs needs `fold`:
 * one ONNX file holds one network. The output path is checked before any weight is read.
 */
export async function exportOnnx(
  runOrCheckpoint: string,
  outFile: string,
  options: { checkpoint?: 'final' | 'best'; fold?: number } = {},
): Promise<OnnxExportResult> {
  checkOutputFile(outFile);
  const choice: CheckpointChoice = options.checkpoint ?? 'final';
  const files = resolveCheckpoints(runOrCheckpoint, options.fold !== undefined ? [options.fold] : undefined, { checkpoint: choice });
  if (files.length !== 1) {
    throw new InputError(`holds ${files.length} checkpoints (${files.map((f) => path.relative(runOrCheckpoint, f)).join(', ')}); one ONNX model holds one network: choose one with --fold K`, { file: runOrCheckpoint, code: 'ensemble' });
  }
  const checkpoint = readInferenceCheckpoint(files[0]!);
  assertOneStage(checkpoint);
  const bytes = onnxModelBytes(checkpoint);
  fs.mkdirSync(path.dirname(path.resolve(outFile)), { recursive: true });
  try {
    await atomicWriteFile(outFile, bytes);
  } catch (cause) {
    if (cause instanceof LesionsegError) throw cause;
    throw new InputError(`cannot write the ONNX model (${(cause as Error).message})`, { file: outFile, code: 'bad-output', cause });
  }
  return { out: outFile, architecture: checkpoint.architecture.name, checkpoint: checkpoint.file, bytes: bytes.byteLength, opset: ONNX_OPSET };
}
