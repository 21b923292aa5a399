/**
 * Which packaged decoder turns an instance of each transfer syntax into explicit VR little endian
 * before dcm2niix reads it (dicom-convert.ts), and running it. dcm2niix reads the uncompressed
 * syntaxes itself; every other syntax is decoded first, into the conversion's temporary folder
 * (never beside the user's files), by a Debian decoder given its arguments as an array (no shell):
 *
 *   JPEG (baseline, extended 12-bit, progressive, lossless)   dcmdjpeg   (dcmtk, libjpeg/IJG)
 *   JPEG-LS (lossless, near-lossless)                          dcmdjpls   (dcmtk, CharLS)
 *   RLE lossless                                               dcmdrle    (dcmtk)
 *   explicit VR big endian, deflated explicit little endian     dcmconv +te (dcmtk)
 *   JPEG 2000 (lossless, lossy)                                gdcmconv --raw (GDCM, OpenJPEG)
 *
 * dcm2niix decodes lossy JPEG with its own decoder, which differs from libjpeg by hundreds of HU on
 * some series; JPEG-LS and 12-bit JPEG it does not decode at all. What no decoder reads is refused
 * from the header (decoderFor), before any model is loaded, naming the file and the syntax.
 */
import { execFile } from 'node:child_process';
import { InputError, LesionsegError } from '../../core/index.js';
import { TRANSFER_SYNTAX, type DicomHeader } from './header.js';

export interface Decoder {
  /** The executable (on the PATH). */
  tool: string;
  /** Its Debian package, for the message when it is missing. */
  debianPackage: string;
  /** Arguments before the input and output files. */
  args: readonly string[];
}

const DCMDJPEG: Decoder = { tool: 'dcmdjpeg', debianPackage: 'dcmtk', args: [] };
const DCMDJPLS: Decoder = { tool: 'dcmdjpls', debianPackage: 'dcmtk', args: [] };
const DCMDRLE: Decoder = { tool: 'dcmdrle', debianPackage: 'dcmtk', args: [] };
const DCMCONV: Decoder = { tool: 'dcmconv', debianPackage: 'dcmtk', args: ['+te'] };
const GDCMCONV: Decoder = { tool: 'gdcmconv', debianPackage: 'libgdcm-tools', args: ['--raw'] };

/** Transfer syntax UID -> [its name, its decoder (null: dcm2niix reads it as it is)]. */
export const TRANSFER_SYNTAXES: ReadonlyMap<string, readonly [string, Decoder | null]> = new Map<string, readonly [string, Decoder | null]>([
  [TRANSFER_SYNTAX.implicitLittle, ['implicit VR little endian', null]],
  [TRANSFER_SYNTAX.explicitLittle, ['explicit VR little endian', null]],
  [TRANSFER_SYNTAX.explicitBig, ['explicit VR big endian', DCMCONV]],
  [TRANSFER_SYNTAX.deflatedExplicitLittle, ['deflated explicit VR little endian', DCMCONV]],
  ['1.2.840.10008.1.2.4.50', ['JPEG baseline (process 1)', DCMDJPEG]],
  ['1.2.840.10008.1.2.4.51', ['JPEG extended (process 2 & 4)', DCMDJPEG]],
  ['1.2.840.10008.1.2.4.53', ['JPEG spectral selection, non-hierarchical (process 6 & 8)', DCMDJPEG]],
  ['1.2.840.10008.1.2.4.55', ['JPEG full progression, non-hierarchical (process 10 & 12)', DCMDJPEG]],
  ['1.2.840.10008.1.2.4.57', ['JPEG lossless, non-hierarchical (process 14)', DCMDJPEG]],
  ['1.2.840.10008.1.2.4.70', ['JPEG lossless, first-order prediction (process 14, selection value 1)', DCMDJPEG]],
  ['1.2.840.10008.1.2.4.80', ['JPEG-LS lossless', DCMDJPLS]],
  ['1.2.840.10008.1.2.4.81', ['JPEG-LS near-lossless', DCMDJPLS]],
  ['1.2.840.10008.1.2.4.90', ['JPEG 2000 lossless', GDCMCONV]],
  ['1.2.840.10008.1.2.4.91', ['JPEG 2000', GDCMCONV]],
  ['1.2.840.10008.1.2.5', ['RLE lossless', DCMDRLE]],
]);

/** The decoder of `header`'s transfer syntax (null: none needed); an InputError naming the file and the syntax where none reads it. */
export function decoderFor(header: Pick<DicomHeader, 'file' | 'transferSyntaxUid'>): Decoder | null {
  const known = TRANSFER_SYNTAXES.get(header.transferSyntaxUid);
  if (known === undefined) {
    throw new InputError(`is stored in transfer syntax ${header.transferSyntaxUid} (0002,0010), which no decoder lesionseg uses reads (it reads ${[...TRANSFER_SYNTAXES.keys()].join(', ')}); convert it to one of them first`, { file: header.file, code: 'dicom-transfer-syntax' });
  }
  return known[1];
}

/** The name of a transfer syntax, or its UID. */
export function transferSyntaxName(uid: string): string {
  return TRANSFER_SYNTAXES.get(uid)?.[0] ?? uid;
}

function run(executable: string, args: readonly string[], timeoutSeconds: number): Promise<{ ok: true } | { ok: false; missing: boolean; why: string }> {
  return new Promise((resolve) => {
    execFile(executable, args, { timeout: timeoutSeconds * 1000, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) {
        resolve({ ok: true });
        return;
      }
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      const lastLines = `${stdout}${stderr}`.trim().split('\n').slice(-2).join(' / ');
      resolve({ ok: false, missing, why: error.killed ? `killed after ${timeoutSeconds} s` : `exit ${String(error.code)}${lastLines === '' ? '' : `: ${lastLines}`}` });
    });
  });
}

/** Whether the decoders of these transfer syntaxes run (before any long work); a LesionsegError naming the Debian package otherwise. */
export async function assertDecoders(transferSyntaxUids: Iterable<string>): Promise<void> {
  const decoders = new Map<string, Decoder>();
  for (const uid of transferSyntaxUids) {
    const decoder = TRANSFER_SYNTAXES.get(uid)?.[1];
    if (decoder != null) decoders.set(decoder.tool, decoder);
  }
  for (const decoder of decoders.values()) {
    const result = await run(decoder.tool, ['--version'], 30);
    if (!result.ok && result.missing) {
      throw new LesionsegError('missing-tool', `${decoder.tool} not found: DICOM series in ${[...TRANSFER_SYNTAXES.values()].filter(([, d]) => d?.tool === decoder.tool).map(([name]) => name).join(', ')} are decoded by it (apt-get install ${decoder.debianPackage}; scripts/setup.sh installs it)`);
    }
  }
}

/**
 * Decode `file` (the user's) into `output` (in a temporary folder) with `decoder`. A decoder that
 * fails is an InputError naming the user's file and its syntax (a truncated or corrupt stream).
 */
export async function decodeInstance(file: string, transferSyntaxUid: string, decoder: Decoder, output: string, timeoutSeconds = 120): Promise<void> {
  const result = await run(decoder.tool, [...decoder.args, file, output], timeoutSeconds);
  if (result.ok) return;
  if (result.missing) throw new LesionsegError('missing-tool', `${decoder.tool} not found (apt-get install ${decoder.debianPackage}; scripts/setup.sh installs it)`);
  throw new InputError(`${decoder.tool} cannot decode its ${transferSyntaxName(transferSyntaxUid)} pixel data (${result.why.replaceAll(output, 'the decoded copy')}): a truncated or corrupt file`, { file, code: 'dicom-undecodable' });
}
