/**
 * One case of the preprocessed cache on disk: read its NIfTI files, preprocess, write
 * `<id>.npy` (float32 [C, z, y, x]), `<id>_seg.npy` (int8 [1, z, y, x]) and `<id>.json` (the
 * properties), each atomically and the JSON last, so a case counts as done only when all three
 * are complete and the JSON names the same plan digest. Used in the main thread and in workers.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteJsonSync, InputError, voxelCount, type InputErrorCode } from '../core/index.js';
import { readNifti, writeNpy } from '../io/index.js';
import { preprocessCase, type CaseProperties } from './preprocess.js';
import type { Plan } from './planning_schema.js';

export interface CaseTask {
  id: string;
  images: string[];
  label: string;
  dataset: string;
  foregroundLabels: number[];
  outDir: string;
  planDigest: string;
}

/** What `<id>.json` holds: the case properties plus the cache bookkeeping. */
export interface CachedCaseProperties extends CaseProperties {
  dataset: string;
  planDigest: string;
  dataShape: [number, number, number, number];
  segShape: [number, number, number, number];
  sourceImages: string[];
  sourceLabel: string;
}

/** A short digest of the plan parts that change the preprocessed arrays. */
export function planDigest(plan: Plan): string {
  const c = plan.configuration;
  // A 2d configuration keeps each case's slice spacing (a 3D one with the same in-plane spacing resamples it).
  const relevant = { targetSpacing: c.targetSpacing, transpose: c.transpose, normalization: c.normalization, resampling: c.resampling, ...(c.spatialDims === 2 ? { spatialDims: 2 } : {}) };
  return createHash('sha256').update(JSON.stringify(relevant)).digest('hex').slice(0, 16);
}

export function casePaths(outDir: string, id: string): { data: string; seg: string; properties: string } {
  return {
    data: path.join(outDir, `${id}.npy`),
    seg: path.join(outDir, `${id}_seg.npy`),
    properties: path.join(outDir, `${id}.json`),
  };
}

function npyLooksComplete(file: string, payloadBytes: number): boolean {
  try {
    const size = fs.statSync(file).size;
    // A version 1.0 header is a multiple of 64 bytes, far below 64 KiB for 4 dimensions.
    return size > payloadBytes && size <= payloadBytes + 65536;
  } catch {
    return false;
  }
}

/** True when the case's three files exist, match each other, and were made with this plan. */
export function isCaseComplete(outDir: string, id: string, digest: string): boolean {
  const paths = casePaths(outDir, id);
  let properties: CachedCaseProperties;
  try {
    properties = JSON.parse(fs.readFileSync(paths.properties, 'utf8')) as CachedCaseProperties;
  } catch {
    return false;
  }
  if (properties.planDigest !== digest || !Array.isArray(properties.dataShape) || !Array.isArray(properties.segShape)) return false;
  return npyLooksComplete(paths.data, voxelCount(properties.dataShape) * 4) && npyLooksComplete(paths.seg, voxelCount(properties.segShape));
}

/** Read, preprocess and write one case. */
export async function processCaseTask(task: CaseTask, plan: Plan): Promise<void> {
  const images = await Promise.all(task.images.map((file) => readNifti(file)));
  const label = await readNifti(task.label);
  const result = preprocessCase(images, label, plan, { caseId: task.id, foregroundLabels: task.foregroundLabels });
  const paths = casePaths(task.outDir, task.id);
  const segShape: [number, number, number, number] = [1, result.shape[1], result.shape[2], result.shape[3]];
  writeNpy(paths.data, result.data, [...result.shape]);
  writeNpy(paths.seg, result.seg!, [...segShape]);
  const properties: CachedCaseProperties = {
    ...result.properties,
    dataset: task.dataset,
    planDigest: task.planDigest,
    dataShape: result.shape,
    segShape,
    sourceImages: task.images,
    sourceLabel: task.label,
  };
  atomicWriteJsonSync(paths.properties, properties);
}

/** An error sent from a worker thread as plain data. */
export interface WorkerError {
  name: string;
  message: string;
  /** True for InputError (the user's to fix). */
  input: boolean;
  code: InputErrorCode | undefined;
  file: string | undefined;
  stack: string | undefined;
}

export type WorkerReply = { id: string; ok: true } | { id: string; ok: false; error: WorkerError };

export function errorAsData(error: unknown): WorkerError {
  if (error instanceof Error) {
    return {
      name: error.name,
      message: error.message,
      input: error instanceof InputError,
      code: (error as { code?: InputErrorCode }).code,
      file: error instanceof InputError ? error.file : undefined,
      stack: error.stack,
    };
  }
  return { name: 'Error', message: String(error), input: false, code: undefined, file: undefined, stack: undefined };
}

/** The InputError (or Error) a worker reported, rebuilt in the main thread. */
export function errorFromData(data: WorkerError): Error {
  if (data.input) {
    const prefix = `${data.file}: `;
    const message = data.file !== undefined && data.message.startsWith(prefix) ? data.message.slice(prefix.length) : data.message;
    return new InputError(message, { ...(data.file !== undefined ? { file: data.file } : {}), code: data.code ?? 'input' });
  }
  const error = new Error(data.message);
  error.name = data.name;
  if (data.stack !== undefined) error.stack = data.stack;
  return error;
}
