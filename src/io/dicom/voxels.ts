/**
 * The tags of a CT instance that decide its voxels, checked from the header before dcm2niix decodes
 * anything (each refusal names the file and the tag, InputError, exit 2):
 *   - its transfer syntax is one that dcm2niix or a packaged decoder reads (dicom-decode.ts);
 *   - SOPClassUID is CT Image Storage (1.2.840.10008.5.1.4.1.1.2): Modality CT on another kind of
 *     object (a secondary capture of a CT screen) holds no Hounsfield units;
 *   - RescaleIntercept and RescaleSlope are present (both Type 1 in the CT Image module, PS3.3
 *     C.8.2.1: without the intercept, HU are off by 1024 on scanners storing unsigned values), finite,
 *     and the slope is not 0;
 *   - BitsAllocated is present, 8, 16 or 32, and BitsStored does not exceed it;
 *   - uncompressed PixelData (native transfer syntaxes) holds Rows x Columns x BitsAllocated/8 bytes
 *     (plus one pad byte where that is odd): shorter or longer means the tags misdescribe the pixels;
 *   - the file holds every byte PixelData declares (a copy cut short, often the last slice); for
 *     encapsulated (compressed) pixel data, every fragment item and the sequence delimiter.
 * Enhanced CT (multi-frame) is checked frame by frame (dicom-enhanced.ts), its PixelData once, for
 * all its frames.
 * decodedImageBytes gives the memory of the decoded volume from the same headers, so that
 * `--max-image-gib` is checked before the series is converted.
 */
import * as fs from 'node:fs';
import { InputError, type InputErrorCode } from '../../core/index.js';
import { TRANSFER_SYNTAX, type DicomHeader } from './header.js';
import { decoderFor, transferSyntaxName } from './decode.js';
import { ENHANCED_CT_IMAGE_STORAGE, type FrameHeader } from './enhanced.js';

export const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
const NATIVE_SYNTAXES = new Set<string>([TRANSFER_SYNTAX.implicitLittle, TRANSFER_SYNTAX.explicitLittle, TRANSFER_SYNTAX.explicitBig, TRANSFER_SYNTAX.deflatedExplicitLittle]);
/** Most fragments one encapsulated frame's pixel data is walked through. */
const MAX_FRAGMENTS = 100_000;
const BITS_ALLOCATED = [8, 16, 32];

function refuse(header: DicomHeader, message: string, code: InputErrorCode): never {
  throw new InputError(message, { file: header.file, code });
}

/** Check one CT instance's voxel tags, or one frame's of an Enhanced CT image (see the file comment). */
export function checkVoxelTags(header: DicomHeader | FrameHeader): void {
  const sopClass = header.text.SOPClassUID ?? '';
  if (sopClass !== CT_IMAGE_STORAGE && sopClass !== ENHANCED_CT_IMAGE_STORAGE) {
    refuse(header, `SOPClassUID (0008,0016) is ${sopClass || '(none)'}, not CT Image Storage (${CT_IMAGE_STORAGE}) or Enhanced CT (${ENHANCED_CT_IMAGE_STORAGE}), though Modality is CT: such an object (a secondary capture, a screenshot) holds no Hounsfield units`, 'dicom-not-ct');
  }
  for (const [keyword, tag] of [['RescaleIntercept', '(0028,1052)'], ['RescaleSlope', '(0028,1053)']] as const) {
    const values = header.numbers[keyword];
    if (values === undefined) {
      refuse(header, `has no ${keyword} ${tag}, which a CT image must have (PS3.3 C.8.2.1): its Hounsfield units are unknown (off by 1024 where the scanner stores unsigned values)`, 'dicom-missing-tag');
    }
    if (values.length !== 1 || !Number.isFinite(values[0])) refuse(header, `${keyword} ${tag} is ${header.text[keyword]}, one finite number is needed`, 'dicom-bad-tag');
  }
  if (header.numbers.RescaleSlope![0] === 0) refuse(header, 'RescaleSlope (0028,1053) is 0: every voxel would be the intercept', 'dicom-bad-tag');

  const bitsAllocated = header.numbers.BitsAllocated?.[0];
  if (bitsAllocated === undefined) refuse(header, 'has no BitsAllocated (0028,0100): the size of a pixel is unknown', 'dicom-missing-tag');
  if (!BITS_ALLOCATED.includes(bitsAllocated)) refuse(header, `BitsAllocated (0028,0100) is ${bitsAllocated}; a CT image has 16 (8 and 32 are read too)`, 'dicom-bad-tag');
  const bitsStored = header.numbers.BitsStored?.[0];
  if (bitsStored !== undefined && (bitsStored < 1 || bitsStored > bitsAllocated)) refuse(header, `BitsStored (0028,0101) is ${bitsStored}, outside 1..BitsAllocated (${bitsAllocated})`, 'dicom-bad-tag');

  const pixels = header.pixelData;
  if (pixels === null) return; // no PixelData: refused by the series check
  if ('frame' in header && header.frame !== null && header.frame > 1) return; // one file's PixelData, checked with its first frame
  const frames = 'frame' in header && header.frame !== null ? header.numbers.NumberOfFrames![0]! : 1;
  if (pixels.length !== null && pixels.offset + pixels.length > header.fileBytes) {
    refuse(header, `the file ends inside PixelData (7FE0,0010): ${Math.max(0, header.fileBytes - pixels.offset)} of its ${pixels.length} bytes are there (a truncated copy)`, 'dicom-truncated');
  }
  decoderFor(header); // refuses a syntax nothing here decodes
  if (!NATIVE_SYNTAXES.has(header.transferSyntaxUid)) {
    checkFragments(header, pixels.offset);
    return;
  }
  const rows = header.numbers.Rows?.[0] ?? 0;
  const columns = header.numbers.Columns?.[0] ?? 0;
  const expected = (rows * columns * bitsAllocated * frames) / 8;
  if (pixels.length === null) refuse(header, 'PixelData (7FE0,0010) has an undefined length in an uncompressed transfer syntax', 'dicom-bad-pixel-data');
  if (pixels.length !== expected && pixels.length !== expected + (expected % 2)) {
    refuse(header, `PixelData (7FE0,0010) holds ${pixels.length} bytes, but Rows x Columns x BitsAllocated/8 (0028,0010/0011/0100)${frames > 1 ? ' x NumberOfFrames' : ''} = ${rows} x ${columns} x ${bitsAllocated}/8${frames > 1 ? ` x ${frames}` : ''} = ${expected}: the tags do not describe these pixels`, 'dicom-bad-pixel-data');
  }
}

/**
 * Walk the items of encapsulated PixelData from `offset` (the basic offset table, then the
 * fragments) to the sequence delimiter: a file that ends inside them is a truncated copy.
 */
function checkFragments(header: DicomHeader, offset: number): void {
  const fd = fs.openSync(header.file, 'r');
  const item = Buffer.alloc(8);
  const syntax = transferSyntaxName(header.transferSyntaxUid);
  try {
    let at = offset;
    for (let count = 0; count <= MAX_FRAGMENTS; count++) {
      if (fs.readSync(fd, item, 0, 8, at) < 8) {
        refuse(header, `the file ends inside its ${syntax} PixelData (7FE0,0010) at byte ${at}, before the sequence delimiter (a truncated copy)`, 'dicom-truncated');
      }
      const tag = ((item.readUInt16LE(0) << 16) | item.readUInt16LE(2)) >>> 0;
      const length = item.readUInt32LE(4);
      if (tag === 0xfffee0dd) return;
      if (tag !== 0xfffee000) refuse(header, `its ${syntax} PixelData (7FE0,0010) holds ${tag.toString(16).toUpperCase()} at byte ${at} where a fragment item (FFFE,E000) belongs`, 'dicom-bad-pixel-data');
      at += 8 + length;
      if (at > header.fileBytes) {
        refuse(header, `the file ends inside its ${syntax} PixelData (7FE0,0010): a fragment of ${length} bytes runs ${at - header.fileBytes} bytes past the end (a truncated copy)`, 'dicom-truncated');
      }
    }
    refuse(header, `its ${syntax} PixelData (7FE0,0010) holds more than ${MAX_FRAGMENTS} fragments`, 'dicom-bad-pixel-data');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Bytes of the decoded volume: int16 (2 per voxel), as the conversion stores CT, where every
 * instance's slope and intercept are integers and pixels have at most 16 bits; float32 (4) otherwise.
 */
export function decodedImageBytes(headers: readonly DicomHeader[], rows: number, columns: number): number {
  const integral = headers.every((h) => Number.isInteger(h.numbers.RescaleSlope?.[0]) && Number.isInteger(h.numbers.RescaleIntercept?.[0]) && (h.numbers.BitsAllocated?.[0] ?? 16) <= 16);
  return headers.length * rows * columns * (integral ? 2 : 4);
}

/** Refuse (code 'too-large') a series whose decoded volume exceeds `maxBytes`, before it is converted. */
export function checkDicomImageSize(series: { folder: string; seriesInstanceUid: string; shape: readonly number[]; decodedBytes: number }, maxBytes: number): void {
  if (series.decodedBytes <= maxBytes) return;
  // As the NIfTI size check words it: bytes below 1 MiB, else MiB or GiB to three significant digits.
  const size = (bytes: number): string => (bytes < 2 ** 20 ? `${Math.round(bytes)} bytes` : bytes < 2 ** 30 ? `${Number((bytes / 2 ** 20).toPrecision(3))} MiB` : `${Number((bytes / 2 ** 30).toPrecision(3))} GiB`);
  throw new InputError(`series ${series.seriesInstanceUid}: ${series.shape.join(' x ')} voxels decode to ${size(series.decodedBytes)}, over the limit of ${size(maxBytes)} per image (predict --max-image-gib raises it)`, { file: series.folder, code: 'too-large' });
}
