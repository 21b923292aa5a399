/**
 * Cases of the preprocessed cache, read on first use and kept in memory (one store per loader
 * thread), least recently used first out once the store holds more than `budgetBytes`. Whole-case
 * caching fits the datasets this project trains on (a 64x128x128 synthetic case is 5 MiB); with a
 * budget smaller than the dataset each patch costs a re-read of its case, which is still correct.
 */
import * as fs from 'node:fs';
import { InputError } from '../../core/index.js';
import { readNpy } from '../../io/index.js';
import { casePaths, type CachedCaseProperties } from '../preprocess_case_io.js';
import { previousStageFile } from '../previous_stage.js';
import type { Triple } from '../planning_topology.js';
import type { ClassLocations } from './patch_sampler.js';

export interface LoadedCase {
  id: string;
  /** float32 [C, z, y, x]. */
  data: Float32Array;
  /** int8 [1, z, y, x], -1 outside the nonzero region. */
  seg: Int8Array;
  /** A cascade's previous stage's label map on the same grid (int8 [1, z, y, x]). */
  previous?: Int8Array;
  channels: number;
  shape: Triple;
  classLocations: ClassLocations;
}

export const DEFAULT_CACHE_BYTES = 2 * 1024 ** 3;

/** Read one case of a preprocessed folder (and its previous stage's map from `previousDir`), checking that the arrays agree with each other. */
export function loadCase(dir: string, id: string, previousDir: string | null = null): LoadedCase {
  const paths = casePaths(dir, id);
  let properties: CachedCaseProperties;
  try {
    properties = JSON.parse(fs.readFileSync(paths.properties, 'utf8')) as CachedCaseProperties;
  } catch (error) {
    throw new InputError(`cannot read the case properties: ${(error as Error).message}`, { file: paths.properties, code: 'bad-case', cause: error });
  }
  const data = readNpy(paths.data);
  const seg = readNpy(paths.seg);
  if (!(data.data instanceof Float32Array) || data.shape.length !== 4) {
    throw new InputError(`expected a float32 [C, z, y, x] array, got ${data.dtype} [${data.shape.join(', ')}]`, { file: paths.data, code: 'bad-case' });
  }
  if (!(seg.data instanceof Int8Array) || seg.shape.length !== 4 || seg.shape[0] !== 1) {
    throw new InputError(`expected an int8 [1, z, y, x] array, got ${seg.dtype} [${seg.shape.join(', ')}]`, { file: paths.seg, code: 'bad-case' });
  }
  if (seg.shape.slice(1).join() !== data.shape.slice(1).join()) {
    throw new InputError(`label map shape [${seg.shape.join(', ')}] does not match the image [${data.shape.join(', ')}]`, { file: paths.seg, code: 'bad-case' });
  }
  let previous: Int8Array | undefined;
  if (previousDir !== null) {
    const file = previousStageFile(previousDir, id);
    const array = readNpy(file);
    if (!(array.data instanceof Int8Array) || array.shape.join() !== seg.shape.join()) {
      throw new InputError(`expected the previous stage's int8 [${seg.shape.join(', ')}] label map, got ${array.dtype} [${array.shape.join(', ')}]`, { file, code: 'bad-case' });
    }
    previous = array.data;
  }
  const classLocations = properties.classLocations;
  if (typeof classLocations !== 'object' || classLocations === null) {
    throw new InputError('classLocations is missing', { file: paths.properties, code: 'bad-case' });
  }
  return {
    id,
    data: data.data,
    seg: seg.data,
    ...(previous !== undefined ? { previous } : {}),
    channels: data.shape[0]!,
    shape: [data.shape[1]!, data.shape[2]!, data.shape[3]!],
    classLocations,
  };
}

function bytesOf(loaded: LoadedCase): number {
  return loaded.data.byteLength + loaded.seg.byteLength + (loaded.previous?.byteLength ?? 0);
}

export class CaseStore {
  private readonly cases = new Map<string, LoadedCase>();
  private bytes = 0;

  constructor(readonly budgetBytes: number = DEFAULT_CACHE_BYTES) {}

  get(dir: string, id: string, previousDir: string | null = null): LoadedCase {
    const key = `${dir}\u0000${id}\u0000${previousDir ?? ''}`;
    const cached = this.cases.get(key);
    if (cached !== undefined) {
      // Re-insert to mark it most recently used (a Map iterates in insertion order).
      this.cases.delete(key);
      this.cases.set(key, cached);
      return cached;
    }
    const loaded = loadCase(dir, id, previousDir);
    this.cases.set(key, loaded);
    this.bytes += bytesOf(loaded);
    for (const [oldKey, old] of this.cases) {
      if (this.bytes <= this.budgetBytes || oldKey === key) break;
      this.cases.delete(oldKey);
      this.bytes -= bytesOf(old);
    }
    return loaded;
  }

  get cachedBytes(): number {
    return this.bytes;
  }
}
