/**
 * DICOM text by Specific Character Set (0008,0005), PS3.5 6.1 and PS3.3 C.12.1.1.2: the bytes of a
 * SH, LO, ST, LT, UT, UC or PN value decoded into the characters they stand for, so that a derived
 * object written as UTF-8 (ISO_IR 192) names the same patient as its source.
 *   - single-byte sets without code extensions (ISO_IR 100 ... 203, ISO_IR 13, ISO_IR 166), UTF-8
 *     (ISO_IR 192), GB18030 and GBK by Node's TextDecoder (WHATWG encodings), ISO_IR 100 and no
 *     value at all as ISO 8859-1 (the default repertoire is its ASCII half; Latin-1 is what
 *     readers make of stray high bytes);
 *   - ISO 2022 code extensions (values "ISO 2022 IR n", several allowed): each escape sequence
 *     switches G0 or G1 to its set; the initial sets (value 1) return at each delimiter PS3.5
 *     6.1.2.5.3 names (CR, LF, TAB, FF, and in PN also ^ and =; a backslash between values).
 *     Supported: IR 6 (ASCII), IR 13 (JIS X 0201 katakana G1, romaji G0), IR 87 (JIS X 0208,
 *     ESC $ B), IR 159 (JIS X 0212), IR 149 (KS X 1001), IR 58 (GB 2312) and the ISO 8859 G1 sets.
 * A set or an escape sequence not listed is refused (InputError 'dicom-character-set' naming the
 * value): we never guess bytes into wrong characters.
 */
import { TextDecoder } from 'node:util';
import { InputError } from '../../core/index.js';

/** VRs whose values use the Specific Character Set (the rest is the default repertoire). */
export const CHARACTER_SET_VRS: ReadonlySet<string> = new Set(['SH', 'LO', 'ST', 'LT', 'UT', 'UC', 'PN']);

/** Single-byte and multi-byte sets without code extensions: the defined term -> TextDecoder label. */
const PLAIN_SETS: Readonly<Record<string, string>> = {
  'ISO_IR 6': 'latin1',
  'ISO_IR 100': 'latin1',
  'ISO_IR 101': 'iso-8859-2',
  'ISO_IR 109': 'iso-8859-3',
  'ISO_IR 110': 'iso-8859-4',
  'ISO_IR 144': 'iso-8859-5',
  'ISO_IR 127': 'iso-8859-6',
  'ISO_IR 126': 'iso-8859-7',
  'ISO_IR 138': 'iso-8859-8',
  'ISO_IR 148': 'iso-8859-9',
  'ISO_IR 203': 'iso-8859-15',
  'ISO_IR 13': 'shift_jis',
  'ISO_IR 166': 'windows-874',
  'ISO_IR 192': 'utf-8',
  GB18030: 'gb18030',
  GBK: 'gbk',
};

/** A graphic set reached through ISO 2022: how its bytes decode, and whether it takes two bytes a character. */
interface G {
  /** Decode the bytes (7-bit for G0 sets, 8-bit for G1 sets) of one run in this set. */
  decode: (bytes: Uint8Array) => string;
  multiByte: boolean;
}

const decoders = new Map<string, TextDecoder>();
function decoderFor(label: string): TextDecoder {
  let decoder = decoders.get(label);
  if (decoder === undefined) {
    decoder = new TextDecoder(label, { fatal: true });
    decoders.set(label, decoder);
  }
  return decoder;
}

const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('latin1');
const high = (label: string) => (bytes: Uint8Array): string => decoderFor(label).decode(bytes.map((b) => b | 0x80));
const ASCII: G = { decode: latin1, multiByte: false };
const JIS_ROMAN: G = { decode: (bytes) => decoderFor('shift_jis').decode(bytes), multiByte: false };
/** JIS X 0208 in G0 (ESC $ B): 7-bit pairs; EUC-JP carries the same pairs with the high bit set. */
const JIS_X_0208: G = { decode: high('euc-jp'), multiByte: true };
/** JIS X 0212 (ESC $ ( D): EUC-JP's 0x8F prefix then the pair, high bit set. */
const JIS_X_0212: G = { decode: (bytes) => { const out: number[] = []; for (let i = 0; i + 1 < bytes.length; i += 2) out.push(0x8f, bytes[i]! | 0x80, bytes[i + 1]! | 0x80); return decoderFor('euc-jp').decode(Uint8Array.from(out)); }, multiByte: true };

/** Escape sequences (the bytes after ESC) -> the register they load and its set. */
const ESCAPES: Readonly<Record<string, { register: 0 | 1; set: G }>> = {
  '(B': { register: 0, set: ASCII },
  '(J': { register: 0, set: JIS_ROMAN },
  ')I': { register: 1, set: { decode: (bytes) => decoderFor('shift_jis').decode(bytes), multiByte: false } },
  '$B': { register: 0, set: JIS_X_0208 },
  '$(D': { register: 0, set: JIS_X_0212 },
  '$)C': { register: 1, set: { decode: (bytes) => decoderFor('euc-kr').decode(bytes), multiByte: true } },
  '$)A': { register: 1, set: { decode: (bytes) => decoderFor('gbk').decode(bytes), multiByte: true } },
  '-A': { register: 1, set: { decode: latin1, multiByte: false } },
  '-B': { register: 1, set: { decode: (bytes) => decoderFor('iso-8859-2').decode(bytes), multiByte: false } },
  '-C': { register: 1, set: { decode: (bytes) => decoderFor('iso-8859-3').decode(bytes), multiByte: false } },
  '-D': { register: 1, set: { decode: (bytes) => decoderFor('iso-8859-4').decode(bytes), multiByte: false } },
  '-L': { register: 1, set: { decode: (bytes) => decoderFor('iso-8859-5').decode(bytes), multiByte: false } },
  '-G': { register: 1, set: { decode: (bytes) => decoderFor('iso-8859-6').decode(bytes), multiByte: false } },
  '-F': { register: 1, set: { decode: (bytes) => decoderFor('iso-8859-7').decode(bytes), multiByte: false } },
  '-H': { register: 1, set: { decode: (bytes) => decoderFor('iso-8859-8').decode(bytes), multiByte: false } },
  '-M': { register: 1, set: { decode: (bytes) => decoderFor('iso-8859-9').decode(bytes), multiByte: false } },
  '-T': { register: 1, set: { decode: (bytes) => decoderFor('windows-874').decode(bytes), multiByte: false } },
  '-b': { register: 1, set: { decode: (bytes) => decoderFor('iso-8859-15').decode(bytes), multiByte: false } },
};

/** The sets an "ISO 2022 IR n" term loads at the start of a value: [G0, G1]. */
const ISO_2022_INITIAL: Readonly<Record<string, [G, G | null]>> = {
  'ISO 2022 IR 6': [ASCII, null],
  'ISO 2022 IR 13': [JIS_ROMAN, ESCAPES[')I']!.set],
  'ISO 2022 IR 87': [ASCII, null],
  'ISO 2022 IR 159': [ASCII, null],
  'ISO 2022 IR 149': [ASCII, ESCAPES['$)C']!.set],
  'ISO 2022 IR 58': [ASCII, ESCAPES['$)A']!.set],
  'ISO 2022 IR 100': [ASCII, ESCAPES['-A']!.set],
  'ISO 2022 IR 101': [ASCII, ESCAPES['-B']!.set],
  'ISO 2022 IR 109': [ASCII, ESCAPES['-C']!.set],
  'ISO 2022 IR 110': [ASCII, ESCAPES['-D']!.set],
  'ISO 2022 IR 144': [ASCII, ESCAPES['-L']!.set],
  'ISO 2022 IR 127': [ASCII, ESCAPES['-G']!.set],
  'ISO 2022 IR 126': [ASCII, ESCAPES['-F']!.set],
  'ISO 2022 IR 138': [ASCII, ESCAPES['-H']!.set],
  'ISO 2022 IR 148': [ASCII, ESCAPES['-M']!.set],
  'ISO 2022 IR 166': [ASCII, ESCAPES['-T']!.set],
  'ISO 2022 IR 203': [ASCII, ESCAPES['-b']!.set],
};

const ESC = 0x1b;
const DELIMITERS = new Set([0x0d, 0x0a, 0x09, 0x0c, 0x5c]);
const PN_DELIMITERS = new Set([0x5e, 0x3d]);

/** The Specific Character Set's values as the standard spells them (value 1 may be empty: the default repertoire). */
export function characterSetTerms(value: string | undefined): string[] {
  return value === undefined ? [] : value.split('\\').map((term) => term.trim());
}

/**
 * Refuse a Specific Character Set this module cannot decode, naming it (before any value is
 * decoded, so a file fails on its set, not on the first name that happens to use it).
 */
export function checkCharacterSet(terms: readonly string[], file: string): void {
  for (const [index, term] of terms.entries()) {
    if (term === '' && index === 0) continue;
    if (terms.length === 1 && term in PLAIN_SETS) continue;
    if (term in ISO_2022_INITIAL) continue;
    throw new InputError(`Specific Character Set (0008,0005) ${JSON.stringify(terms.join('\\'))}: ${JSON.stringify(term)} is not a character set lesionseg decodes (supported: ${Object.keys(PLAIN_SETS).join(', ')}, and ISO 2022 with ${Object.keys(ISO_2022_INITIAL).map((t) => t.slice(9)).join(', ')})`, { file, code: 'dicom-character-set' });
  }
}

function refuse(file: string, terms: readonly string[], message: string): never {
  throw new InputError(`a text value cannot be decoded by Specific Character Set (0008,0005) ${JSON.stringify(terms.join('\\'))}: ${message}`, { file, code: 'dicom-character-set' });
}

/** Decode one value's bytes (all its multiple values, backslashes included) by `terms` (checkCharacterSet first). */
export function decodeDicomText(bytes: Uint8Array, terms: readonly string[], vr: string, file: string): string {
  const first = terms[0] ?? '';
  const iso2022 = terms.some((term) => term.startsWith('ISO 2022'));
  if (!iso2022) {
    const label = first === '' ? 'latin1' : PLAIN_SETS[first];
    if (label === undefined) refuse(file, terms, `${first} is not supported`);
    if (label === 'latin1') return latin1(bytes);
    try {
      return decoderFor(label).decode(bytes);
    } catch {
      refuse(file, terms, `the bytes are not valid ${first}`);
    }
  }
  const initial: [G, G | null] = first === '' ? [ASCII, null] : ISO_2022_INITIAL[first] ?? refuse(file, terms, `${first} cannot begin an ISO 2022 value`);
  const delimiters = vr === 'PN' ? new Set([...DELIMITERS, ...PN_DELIMITERS]) : DELIMITERS;
  let [g0, g1] = initial;
  let out = '';
  let run: number[] = [];
  let runSet: G | null = null;
  const flush = (): void => {
    if (run.length === 0) return;
    if (runSet!.multiByte && run.length % 2 !== 0) refuse(file, terms, 'a two-byte set ends after an odd number of bytes');
    try {
      out += runSet!.decode(Uint8Array.from(run));
    } catch {
      refuse(file, terms, 'bytes outside the set its escape sequence named');
    }
    run = [];
  };
  const push = (set: G, byte: number): void => {
    if (set !== runSet) flush();
    runSet = set;
    run.push(byte);
  };
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (byte === ESC) {
      const rest = Buffer.from(bytes.subarray(i + 1, i + 4)).toString('latin1');
      const sequence = Object.keys(ESCAPES).find((key) => rest.startsWith(key));
      if (sequence === undefined) refuse(file, terms, `the escape sequence ESC ${JSON.stringify(rest)} at byte ${i} is not supported`);
      const { register, set } = ESCAPES[sequence]!;
      if (register === 0) g0 = set;
      else g1 = set;
      i += sequence.length;
      continue;
    }
    if (byte < 0x80) {
      if (!g0.multiByte && delimiters.has(byte)) {
        push(ASCII, byte);
        [g0, g1] = initial;
        continue;
      }
      if (byte < 0x20) {
        push(ASCII, byte);
        continue;
      }
      push(g0, byte);
      continue;
    }
    if (g1 === null) refuse(file, terms, `byte 0x${byte.toString(16)} at ${i} with no G1 set invoked`);
    push(g1, byte);
  }
  flush();
  return out;
}
