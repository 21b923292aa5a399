/**
 * A small, bounded reader of DICOM file headers: the 128-byte preamble and `DICM`, the file meta
 * group (explicit VR little endian), then the data set in explicit or implicit VR little endian
 * (also for compressed transfer syntaxes, whose elements before PixelData are explicit VR little
 * endian), explicit VR big endian, or deflated (inflated whole first: offsets and `fileBytes` then
 * count in the inflated data set), up to PixelData and no further. It keeps the top-level
 * attributes series selection, geometry checks and a Segmentation's references need (DICOM_TAGS,
 * dicom-tags.ts), the same attributes inside each item of an Enhanced CT's functional groups, and
 * skips everything else, other sequences included, by their lengths.
 *
 * A header that cannot be read exactly is refused with an InputError naming the file, the byte
 * offset and what is wrong (truncated element, unknown VR, nesting deeper than 16, elements out of
 * order, a malformed DS/IS/UID value, a deflated stream cut short), never read as something
 * plausible. Pixel data is not decoded here: dcm2niix and the decoders do that (dicom-convert.ts,
 * dicom-decode.ts); where it starts and how long it says it is are kept, so that dicom-voxels.ts
 * can check it against the tags first.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { InputError } from '../../core/index.js';
import { CHARACTER_SET_VRS, characterSetTerms, checkCharacterSet, decodeDicomText } from './charset.js';
import { DICOM_TAGS, type DicomKeyword, TRANSFER_SYNTAX } from './tags.js';

export { DICOM_TAGS, TRANSFER_SYNTAX, type DicomKeyword } from './tags.js';

/** Attributes kept from one item (DICOM_TAGS, at any depth inside it). */
export interface DicomValues {
  text: Partial<Record<DicomKeyword, string>>;
  numbers: Partial<Record<DicomKeyword, number[]>>;
}

/** Text attributes as strings, DS/IS as number arrays, US as numbers; absent attributes are missing. */
export interface DicomHeader {
  file: string;
  transferSyntaxUid: string;
  /** (0002,0002) of the file meta. */
  mediaStorageSopClassUid: string;
  /** Whether the data set holds (7FE0,0010) PixelData (where reading stopped). */
  hasPixelData: boolean;
  /** Where PixelData's value starts (byte offset) and its length (null: undefined length, encapsulated). */
  pixelData: { offset: number; length: number | null } | null;
  /** The file's size in bytes. */
  fileBytes: number;
  text: Partial<Record<DicomKeyword, string>>;
  numbers: Partial<Record<DicomKeyword, number[]>>;
  /**
   * A multi-frame image's functional groups (Enhanced CT): SharedFunctionalGroupsSequence's item and
   * each PerFrameFunctionalGroupsSequence item, with the DICOM_TAGS found inside their macros
   * (Plane Position, Plane Orientation, Pixel Measures, Pixel Value Transformation); null without them.
   */
  functionalGroups: { shared: DicomValues | null; perFrame: DicomValues[] } | null;
}

export interface DicomReadLimits {
  /** Most bytes read before PixelData (default 16 MiB; CT headers are a few KiB). */
  maxHeaderBytes: number;
  /** Deepest sequence nesting skipped (default 16). */
  maxDepth: number;
}

export const DICOM_READ_DEFAULTS: DicomReadLimits = { maxHeaderBytes: 16 * 1024 * 1024, maxDepth: 16 };

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const SHORT_VRS = new Set(['AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'PN', 'SH', 'SL', 'SS', 'ST', 'TM', 'UI', 'UL', 'US']);
const UNDEFINED_LENGTH = 0xffffffff;
const ITEM = 0xfffee000;
const ITEM_DELIMITATION = 0xfffee00d;
const SEQUENCE_DELIMITATION = 0xfffee0dd;
const PIXEL_DATA = 0x7fe00010;
const SHARED_FUNCTIONAL_GROUPS = 0x52009229;
const PER_FRAME_FUNCTIONAL_GROUPS = 0x52009230;
/** (7FE0,0008) FloatPixelData and (7FE0,0009) DoubleFloatPixelData end the header too. */
const FIRST_PIXEL_TAG = 0x7fe00008;

const WANTED = new Map<number, DicomKeyword>(
  (Object.entries(DICOM_TAGS) as [DicomKeyword, readonly [number, number, string]][]).map(([keyword, [group, element]]) => [((group << 16) | element) >>> 0, keyword]),
);

const DS_VALUE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const IS_VALUE = /^[+-]?\d+$/;
const UID_VALUE = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/;

/** Thrown when the bytes read so far end inside the header; the reader then reads more. */
class NeedMoreBytes {}

function tagText(tag: number): string {
  return `(${(tag >>> 16).toString(16).toUpperCase().padStart(4, '0')},${(tag & 0xffff).toString(16).toUpperCase().padStart(4, '0')})`;
}

/** True when `file` starts with a 128-byte preamble and `DICM` (a DICOM Part 10 file). */
export function isDicomFile(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const magic = Buffer.alloc(4);
    return fs.readSync(fd, magic, 0, 4, 128) === 4 && magic.toString('latin1') === 'DICM';
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

class HeaderParser {
  private offset = 132;
  readonly text: Partial<Record<DicomKeyword, string>> = {};
  readonly numbers: Partial<Record<DicomKeyword, number[]>> = {};
  transferSyntaxUid = '';
  mediaStorageSopClassUid = '';
  hasPixelData = false;
  pixelData: { offset: number; length: number | null } | null = null;
  private characterSet: string[] = [];
  private bigEndian = false;

  constructor(
    private bytes: Buffer,
    /** True when `bytes` holds the whole file (running out is then truncation, not a reason to read more). */
    private readonly complete: boolean,
    private readonly file: string,
    private readonly limits: DicomReadLimits,
  ) {}

  private refuse(message: string, at = this.offset): never {
    throw new InputError(`malformed DICOM header at byte ${at}: ${message}`, { file: this.file, code: 'dicom-malformed' });
  }

  /** Ensure `count` bytes from `at` are there. */
  private need(at: number, count: number, what: string): void {
    if (at + count <= this.bytes.length) return;
    if (!this.complete) throw new NeedMoreBytes();
    this.refuse(`the file ends inside ${what} (${count} bytes needed, ${Math.max(0, this.bytes.length - at)} left)`, at);
  }

  functionalGroups: DicomHeader['functionalGroups'] = null;
  /** The data set's size in bytes where it was inflated (then the caller reports it as the file's). */
  inflatedBytes: number | null = null;

  private u16(at: number): number {
    return this.bigEndian ? this.bytes.readUInt16BE(at) : this.bytes.readUInt16LE(at);
  }

  private u32(at: number): number {
    return this.bigEndian ? this.bytes.readUInt32BE(at) : this.bytes.readUInt32LE(at);
  }

  parse(): void {
    this.parseMeta();
    const syntax = this.transferSyntaxUid;
    if (syntax === TRANSFER_SYNTAX.deflatedExplicitLittle) this.inflate();
    this.bigEndian = syntax === TRANSFER_SYNTAX.explicitBig;
    // Every other transfer syntax (the compressed ones included) encodes the data set explicitly.
    const explicit = syntax !== TRANSFER_SYNTAX.implicitLittle;
    this.parseDataSet(explicit);
  }

  /** Replace the deflated data set after the file meta by its inflated bytes (the whole file is read first). */
  private inflate(): void {
    if (!this.complete) throw new NeedMoreBytes();
    let inflated: Buffer;
    try {
      inflated = zlib.inflateRawSync(this.bytes.subarray(this.offset), { maxOutputLength: INFLATED_LIMIT });
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? `it inflates to more than ${INFLATED_LIMIT} bytes` : (error as Error).message;
      throw new InputError(`its deflated data set cannot be inflated (${why}): a truncated or corrupt file`, { file: this.file, code: 'dicom-truncated' });
    }
    this.bytes = Buffer.concat([this.bytes.subarray(0, this.offset), inflated]);
    this.inflatedBytes = this.bytes.length;
  }

  private parseMeta(): void {
    this.need(0, 132, 'the preamble');
    if (this.bytes.toString('latin1', 128, 132) !== 'DICM') {
      throw new InputError("is not a DICOM file (no 'DICM' after the 128-byte preamble)", { file: this.file, code: 'not-dicom' });
    }
    for (;;) {
      this.need(this.offset, 2, 'the file meta group');
      if (this.bytes.readUInt16LE(this.offset) !== 0x0002) break; // the meta group is little endian in every syntax
      const start = this.offset;
      const element = this.readElementHeader(true);
      this.need(this.offset, element.length, `element ${tagText(element.tag)}`);
      if (element.length === UNDEFINED_LENGTH) this.refuse(`file meta element ${tagText(element.tag)} has an undefined length`, start);
      if (element.tag === 0x00020010 || element.tag === 0x00020002) {
        const value = this.bytes.toString('latin1', this.offset, this.offset + element.length).replace(/[\0 ]+$/, '');
        if (!UID_VALUE.test(value) || value.length > 64) this.refuse(`${tagText(element.tag)} is not a UID: ${JSON.stringify(value)}`, start);
        if (element.tag === 0x00020010) this.transferSyntaxUid = value;
        else this.mediaStorageSopClassUid = value;
      }
      this.offset += element.length;
    }
    if (this.transferSyntaxUid === '') this.refuse('the file meta group has no TransferSyntaxUID (0002,0010)');
  }

  /** Tag, VR and length of the element at the current offset; moves past them. */
  private readElementHeader(explicit: boolean): { tag: number; vr: string | null; length: number } {
    this.need(this.offset, 8, 'an element header');
    const group = this.u16(this.offset);
    const element = this.u16(this.offset + 2);
    const tag = ((group << 16) | element) >>> 0;
    if (group === 0xfffe) {
      // Item and delimitation tags carry no VR, in either encoding.
      const length = this.u32(this.offset + 4);
      this.offset += 8;
      return { tag, vr: null, length };
    }
    if (!explicit) {
      const length = this.u32(this.offset + 4);
      this.offset += 8;
      return { tag, vr: null, length };
    }
    const vr = this.bytes.toString('latin1', this.offset + 4, this.offset + 6);
    if (LONG_VRS.has(vr)) {
      this.need(this.offset, 12, 'an element header');
      const length = this.u32(this.offset + 8);
      this.offset += 12;
      return { tag, vr, length };
    }
    if (!SHORT_VRS.has(vr)) this.refuse(`element ${tagText(tag)} has an unknown VR ${JSON.stringify(vr)}`);
    const length = this.u16(this.offset + 6);
    this.offset += 8;
    return { tag, vr, length };
  }

  private parseDataSet(explicit: boolean): void {
    let previous = -1;
    for (;;) {
      if (this.offset >= this.bytes.length) {
        if (!this.complete) throw new NeedMoreBytes();
        return; // a header without pixel data (a SEG's references, an RT structure set) ends with the file
      }
      const start = this.offset;
      const { tag, vr, length } = this.readElementHeader(explicit);
      if (tag >= FIRST_PIXEL_TAG && (tag >>> 16) === 0x7fe0) {
        this.hasPixelData = tag === PIXEL_DATA || this.hasPixelData;
        if (tag === PIXEL_DATA) this.pixelData = { offset: this.offset, length: length === UNDEFINED_LENGTH ? null : length };
        return;
      }
      if ((tag >>> 16) === 0xfffe) this.refuse(`item tag ${tagText(tag)} outside a sequence`, start);
      if (tag <= previous) this.refuse(`element ${tagText(tag)} follows ${tagText(previous)} (elements must be in ascending order)`, start);
      previous = tag;
      if (vr === 'SQ' || (length === UNDEFINED_LENGTH && (vr === null || vr === 'UN'))) {
        const groups = tag === SHARED_FUNCTIONAL_GROUPS || tag === PER_FRAME_FUNCTIONAL_GROUPS ? ([] as DicomValues[]) : null;
        this.skipSequence(length, explicit && vr !== 'UN', 1, tag, groups === null ? null : () => {
          const item: DicomValues = { text: {}, numbers: {} };
          groups.push(item);
          return item;
        });
        if (groups !== null) {
          this.functionalGroups ??= { shared: null, perFrame: [] };
          if (tag === SHARED_FUNCTIONAL_GROUPS) this.functionalGroups.shared = groups[0] ?? null;
          else this.functionalGroups.perFrame = groups;
        }
        continue;
      }
      if (length === UNDEFINED_LENGTH) this.refuse(`element ${tagText(tag)} (${vr}) has an undefined length`, start);
      this.need(this.offset, length, `element ${tagText(tag)}`);
      const keyword = WANTED.get(tag);
      if (keyword !== undefined) this.keep(keyword, vr, length, start, this);
      this.offset += length;
    }
  }

  /**
   * Skip a sequence's items (defined or undefined lengths), nested sequences included; with
   * `collect`, each item's DICOM_TAGS (at any depth) are kept in the record it returns for the item.
   */
  private skipSequence(length: number, explicit: boolean, depth: number, tag: number, collect: (() => DicomValues) | null = null): void {
    if (depth > this.limits.maxDepth) this.refuse(`sequences nest deeper than ${this.limits.maxDepth} levels at ${tagText(tag)}`);
    if (length !== UNDEFINED_LENGTH) {
      this.need(this.offset, length, `sequence ${tagText(tag)}`);
      const end = this.offset + length;
      while (this.offset < end) this.skipItem(explicit, depth, end, tag, collect);
      if (this.offset !== end) this.refuse(`the items of sequence ${tagText(tag)} overrun its length`);
      return;
    }
    for (;;) {
      const start = this.offset;
      this.need(this.offset, 8, `sequence ${tagText(tag)}`);
      const itemTag = ((this.u16(this.offset) << 16) | this.u16(this.offset + 2)) >>> 0;
      if (itemTag === SEQUENCE_DELIMITATION) {
        this.offset += 8;
        return;
      }
      this.skipItem(explicit, depth, Infinity, tag, collect);
      if (this.offset <= start) this.refuse(`no progress inside sequence ${tagText(tag)}`);
    }
  }

  private skipItem(explicit: boolean, depth: number, end: number, sequenceTag: number, collect: (() => DicomValues) | null): void {
    const start = this.offset;
    const item = this.readElementHeader(explicit);
    if (item.tag !== ITEM) this.refuse(`sequence ${tagText(sequenceTag)} holds ${tagText(item.tag)} where an item (FFFE,E000) belongs`, start);
    let itemEnd = end;
    if (item.length !== UNDEFINED_LENGTH) {
      if (this.offset + item.length > end) this.refuse(`an item of sequence ${tagText(sequenceTag)} overruns the sequence`, start);
      this.need(this.offset, item.length, `an item of sequence ${tagText(sequenceTag)}`);
      if (collect === null) {
        this.offset += item.length;
        return;
      }
      itemEnd = this.offset + item.length;
    }
    const into = collect?.() ?? null;
    const intoItem = into === null ? null : (): DicomValues => into;
    for (;;) {
      if (item.length !== UNDEFINED_LENGTH && this.offset === itemEnd) return;
      const elementStart = this.offset;
      const { tag, vr, length } = this.readElementHeader(explicit);
      if (tag === ITEM_DELIMITATION && item.length === UNDEFINED_LENGTH) return;
      if ((tag >>> 16) === 0xfffe) this.refuse(`unexpected ${tagText(tag)} inside an item of ${tagText(sequenceTag)}`, elementStart);
      if (vr === 'SQ' || (length === UNDEFINED_LENGTH && (vr === null || vr === 'UN'))) {
        this.skipSequence(length, explicit && vr !== 'UN', depth + 1, tag, intoItem);
        if (this.offset > itemEnd) this.refuse(`an item of sequence ${tagText(sequenceTag)} overruns the sequence`, elementStart);
        continue;
      }
      if (length === UNDEFINED_LENGTH) this.refuse(`element ${tagText(tag)} (${vr}) has an undefined length`, elementStart);
      this.need(this.offset, length, `element ${tagText(tag)}`);
      const keyword = into === null ? undefined : WANTED.get(tag);
      if (keyword !== undefined) this.keep(keyword, vr, length, elementStart, into!);
      this.offset += length;
      if (this.offset > itemEnd) this.refuse(`an item of sequence ${tagText(sequenceTag)} overruns the sequence`, elementStart);
    }
  }

  private keep(keyword: DicomKeyword, explicitVr: string | null, length: number, start: number, into: DicomValues): void {
    const expectedVr = DICOM_TAGS[keyword][2];
    const vr = explicitVr ?? expectedVr;
    const label = `${keyword} ${tagText(WANTED_TAG[keyword])}`;
    if (vr !== expectedVr && vr !== 'UN') this.refuse(`${label} has VR ${vr}, the standard's is ${expectedVr}`, start);
    const raw = this.bytes.subarray(this.offset, this.offset + length);
    if (expectedVr === 'US') {
      if (length !== 2) this.refuse(`${label} (US) is ${length} bytes long, not 2`, start);
      into.numbers[keyword] = [this.bigEndian ? raw.readUInt16BE(0) : raw.readUInt16LE(0)];
      return;
    }
    // Text VRs by the Specific Character Set (read first: (0008,0005) precedes every other text attribute).
    const decoded = CHARACTER_SET_VRS.has(expectedVr) ? decodeDicomText(raw, this.characterSet, expectedVr, this.file) : raw.toString('latin1');
    const value = decoded.replace(/[\0 ]+$/, '').replace(/^ +/, '');
    if (expectedVr === 'DS' || expectedVr === 'IS') {
      if (value === '') return; // present but empty (type 2): as good as absent
      const parts = value.split('\\').map((part) => part.trim());
      const pattern = expectedVr === 'DS' ? DS_VALUE : IS_VALUE;
      const bad = parts.find((part) => !pattern.test(part));
      if (bad !== undefined) this.refuse(`${label} holds ${JSON.stringify(bad)}, not a${expectedVr === 'DS' ? ' decimal' : 'n integer'} string`, start);
      into.numbers[keyword] = parts.map(Number);
      into.text[keyword] = value;
      return;
    }
    if (expectedVr === 'UI') {
      if (!UID_VALUE.test(value) || value.length > 64) this.refuse(`${label} is not a UID: ${JSON.stringify(value)}`, start);
    }
    if (keyword === 'SpecificCharacterSet') {
      this.characterSet = characterSetTerms(value);
      checkCharacterSet(this.characterSet, this.file);
    }
    into.text[keyword] = value;
  }
}

/** Most bytes a deflated data set may inflate to (a CT slice is well under 1 MiB). */
const INFLATED_LIMIT = 256 * 1024 * 1024;

const WANTED_TAG = Object.fromEntries([...WANTED].map(([tag, keyword]) => [keyword, tag])) as Record<DicomKeyword, number>;

/**
 * The header of one DICOM Part 10 file, read up to PixelData. Reads 64 KiB first and more only when
 * the header goes on (bounded by `maxHeaderBytes`).
 */
export function readDicomHeader(file: string, limits: Partial<DicomReadLimits> = {}): DicomHeader {
  const bounds = { ...DICOM_READ_DEFAULTS, ...limits };
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    throw new InputError(`cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { file, code: 'unreadable' });
  }
  try {
    const size = fs.fstatSync(fd).size;
    let want = Math.min(size, 64 * 1024);
    for (;;) {
      const bytes = Buffer.alloc(want);
      const read = fs.readSync(fd, bytes, 0, want, 0);
      const parser = new HeaderParser(bytes.subarray(0, read), read >= size, file, bounds);
      try {
        parser.parse();
        return {
          file,
          transferSyntaxUid: parser.transferSyntaxUid,
          mediaStorageSopClassUid: parser.mediaStorageSopClassUid,
          hasPixelData: parser.hasPixelData,
          pixelData: parser.pixelData,
          fileBytes: parser.inflatedBytes ?? size,
          text: parser.text,
          numbers: parser.numbers,
          functionalGroups: parser.functionalGroups,
        };
      } catch (error) {
        if (!(error instanceof NeedMoreBytes)) throw error;
        if (want >= size || want >= bounds.maxHeaderBytes) {
          throw new InputError(`the DICOM header goes on past ${bounds.maxHeaderBytes} bytes without reaching PixelData; refusing to read further`, { file, code: 'dicom-header-too-large' });
        }
        want = Math.min(size, want * 4, bounds.maxHeaderBytes);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}
