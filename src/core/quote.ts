/**
 * A value from outside (a spec's partition name, a case id, a label name) reaches a shell, an
 * sbatch directive, a CSV cell or a DICOM text element only through the one function for that
 * target here (STYLE rule 20); control characters are refused at the edge (controlCharacterIssues,
 * called by every reader of such values) and again by the quoting functions, which never let a
 * newline turn one value into two lines.
 *
 *   shellQuote     bash word: bare when it holds only safe characters, else in single quotes.
 *   sbatchQuote    one argument of an `#SBATCH` line, as sbatch's own parser reads it (double quotes,
 *                  backslash escapes; an unescaped # starts a comment even inside quotes in older Slurm).
 *   csvText        a text cell: a formula lead (= + - @, tab, CR) gets a ' prefix (OWASP's CSV
 *                  injection advice), then RFC 4180 quoting where the cell holds , " CR or LF.
 *   dicomText      a DICOM text value (LO/SH/ST/LT): no backslash (the value delimiter, PS3.5 6.2)
 *                  in LO/SH, no control character other than the ones the VR allows, cut to its length.
 */
import { CONTROL_CHARACTER, InputError } from './errors.js';
import { formatPath, type PathStyle } from './schema.js';

/** The first control character of `text` as U+XXXX, or null. */
export function controlCharacterIn(text: string): string | null {
  const match = CONTROL_CHARACTER.exec(text);
  return match === null ? null : `U+${match[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

export interface TextIssue {
  /** JSON path of the value (a.b.0.c), or of the key for a key. */
  path: string;
  message: string;
}

/**
 * Every string (and object key) of parsed JSON holding a control character: its JSON path and which
 * character. Reader-independent, so a spec validator (hand-written or a schema library's) adds them as issues.
 */
export function controlCharacterIssues(value: unknown, style: PathStyle = 'dots'): TextIssue[] {
  const issues: TextIssue[] = [];
  const visit = (item: unknown, keys: readonly (string | number)[]): void => {
    if (typeof item === 'string') {
      const found = controlCharacterIn(item);
      if (found !== null) issues.push({ path: formatPath(keys, style), message: `holds the control character ${found} (a newline or another control character in a value could end a line of a generated script); remove it` });
    } else if (Array.isArray(item)) {
      item.forEach((element, index) => visit(element, [...keys, index]));
    } else if (typeof item === 'object' && item !== null) {
      for (const [key, element] of Object.entries(item)) {
        const found = controlCharacterIn(key);
        if (found !== null) issues.push({ path: formatPath([...keys, key], style), message: `the key ${JSON.stringify(key)} holds the control character ${found}; remove it` });
        visit(element, [...keys, key]);
      }
    }
  };
  visit(value, []);
  return issues;
}

/** Throws an InputError (code 'control-character') naming `what` when `text` holds a control character. */
export function assertNoControlCharacters(text: string, what: string, file?: string): void {
  const found = controlCharacterIn(text);
  if (found !== null) throw new InputError(`${what} ${JSON.stringify(text)} holds the control character ${found}`, { ...(file !== undefined ? { file } : {}), code: 'control-character' });
}

/** One bash word whose value is exactly `word`. */
export function shellQuote(word: string): string {
  assertNoControlCharacters(word, 'a shell word');
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** One argument of an `#SBATCH` line whose value, as sbatch parses the line, is exactly `argument`. */
export function sbatchQuote(argument: string): string {
  assertNoControlCharacters(argument, 'an sbatch option');
  return `"${argument.replace(/[\\"'#]/g, '\\$&')}"`;
}

/** Cell leads a spreadsheet reads as the start of a formula (OWASP, CSV injection). */
const FORMULA_LEAD = /^[=+\-@\t\r]/;

/** One CSV text cell (RFC 4180), safe to open in a spreadsheet. Numbers are written as numbers, not through this. */
export function csvText(value: string): string {
  const cell = FORMULA_LEAD.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(cell) ? `"${cell.replaceAll('"', '""')}"` : cell;
}

/** DICOM text VRs written from outside values, with their length limits in characters (PS3.5 table 6.2-1). */
export const DICOM_TEXT_VRS = { SH: 16, LO: 64, ST: 1024, LT: 10240 } as const;
export type DicomTextVr = keyof typeof DICOM_TEXT_VRS;

/**
 * `text` as one value of `vr`: in SH/LO a backslash (the value delimiter) becomes '/', so one name
 * stays one value; control characters become spaces (ST/LT keep CR and LF, which they allow); cut
 * to the VR's length in characters.
 */
export function dicomText(text: string, vr: DicomTextVr): string {
  const multiLine = vr === 'ST' || vr === 'LT';
  let out = text.replace(multiLine ? /[\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f]/g : /[\u0000-\u001f\u007f-\u009f]/g, ' ');
  if (!multiLine) out = out.replaceAll('\\', '/');
  return [...out].slice(0, DICOM_TEXT_VRS[vr]).join('');
}
