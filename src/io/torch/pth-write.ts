/**
 * PyTorch checkpoints written as torch.save writes them (the zip format of PyTorch >= 1.6, read by
 * pth.ts): a stored zip whose records are `archive/data.pkl` (the object, pickle-write.ts),
 * `archive/byteorder` ("little"), one `archive/data/<key>` per storage (the raw little-endian
 * elements) and `archive/version` ("3", torch.save's format version), every record's data 64-byte
 * aligned. Tensors are added first (`PthBuilder.tensor`), each getting a storage of its own unless
 * it is given the same host buffer as an earlier one (aliases of a state dict share storage, as in
 * PyTorch, so they cost no space); then the object that refers to them is written atomically.
 */
import { atomicWriteFileSync } from '../../core/index.js';
import { pickle, pickleTensor, type PickleStorage, type PickleTensor, type PickleValue } from './pickle-write.js';
import { DTYPE_BYTES } from './pth.js';
import type { SafetensorsEntry } from './safetensors.js';
import { storedZipChunks, type ZipWriteEntry } from './zip-write.js';

/** The record prefix torch.save uses when saving to a file object ('archive'). */
export const PTH_ARCHIVE_NAME = 'archive';
/** torch.save's serialization format version record. */
const FORMAT_VERSION = '3\n';

export class PthBuilder {
  private readonly storages: { storage: PickleStorage; data: Uint8Array }[] = [];
  private readonly byBuffer = new Map<Uint8Array, PickleStorage>();

  /** A tensor over `entry`'s bytes (C order), in a new storage or in the one made for the same buffer. */
  tensor(entry: SafetensorsEntry): PickleTensor {
    const numel = entry.shape.reduce((a, b) => a * b, 1);
    const bytes = numel * DTYPE_BYTES[entry.dtype];
    if (entry.data.byteLength !== bytes) throw new RangeError(`a ${entry.dtype} tensor of shape [${entry.shape.join(', ')}] needs ${bytes} bytes, got ${entry.data.byteLength}`);
    let storage = this.byBuffer.get(entry.data);
    if (storage === undefined || storage.dtype !== entry.dtype || storage.numel !== numel) {
      storage = { key: String(this.storages.length), dtype: entry.dtype, numel };
      this.storages.push({ storage, data: entry.data });
      this.byBuffer.set(entry.data, storage);
    }
    return pickleTensor(storage, entry.shape);
  }

  /** The zip chunks of a checkpoint holding `root` (whose tensors came from this builder). */
  chunks(root: PickleValue): Uint8Array[] {
    const prefix = PTH_ARCHIVE_NAME;
    const entries: ZipWriteEntry[] = [
      { name: `${prefix}/data.pkl`, data: pickle(root) },
      { name: `${prefix}/byteorder`, data: Buffer.from('little') },
      ...this.storages.map(({ storage, data }) => ({ name: `${prefix}/data/${storage.key}`, data })),
      { name: `${prefix}/version`, data: Buffer.from(FORMAT_VERSION) },
    ];
    return storedZipChunks(entries, { alignment: 64 });
  }

  /** Write the checkpoint to `file` atomically (a temporary file renamed into place). */
  write(file: string, root: PickleValue): void {
    atomicWriteFileSync(file, this.chunks(root));
  }
}
