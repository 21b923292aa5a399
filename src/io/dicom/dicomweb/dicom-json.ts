/**
 * The DICOM JSON model (PS3.18 F.2) as QIDO-RS and STOW-RS replies carry it: an array of data sets,
 * each keyed by 8 hexadecimal digits, each value `{ vr, Value? }` (or BulkDataURI / InlineBinary).
 * A reply is checked whole before use, and what is wrong is named with its place (item 3, tag
 * 0020000D), so a malformed reply is refused rather than read as an empty or partial answer.
 */

/** One data set of a QIDO-RS or STOW-RS reply. */
export type DicomJson = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string }>;

/** Tags (PS3.6) the client reads from replies and queries. */
export const TAGS = {
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  SOPInstanceUID: '00080018',
  SOPClassUID: '00080016',
  Modality: '00080060',
  ReferencedSOPSequence: '00081199',
  FailedSOPSequence: '00081198',
  ReferencedSOPInstanceUID: '00081155',
  ReferencedSOPClassUID: '00081150',
  FailureReason: '00081197',
  WarningReason: '00081196',
} as const;

/** Deepest sequence nesting accepted in a reply (QIDO replies are flat; STOW replies nest once). */
const MAX_DEPTH = 8;

function problemIn(value: unknown, where: string, depth: number): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${where} is not a JSON object`;
  if (depth > MAX_DEPTH) return `${where} nests sequences deeper than ${MAX_DEPTH}`;
  for (const [tag, element] of Object.entries(value)) {
    if (!/^[0-9A-Fa-f]{8}$/.test(tag)) return `${where} has the key ${JSON.stringify(tag.slice(0, 40))}, not a tag of 8 hexadecimal digits`;
    if (typeof element !== 'object' || element === null || Array.isArray(element)) return `${where}, tag ${tag} is not an object`;
    const { vr, Value } = element as { vr?: unknown; Value?: unknown };
    if (typeof vr !== 'string' || !/^[A-Z]{2}$/.test(vr)) return `${where}, tag ${tag} has no valid "vr"`;
    if (Value === undefined) continue;
    if (!Array.isArray(Value)) return `${where}, tag ${tag}'s "Value" is not an array`;
    if (vr === 'SQ') {
      for (let i = 0; i < Value.length; i++) {
        const problem = problemIn(Value[i], `${where}, tag ${tag} item ${i + 1}`, depth + 1);
        if (problem !== null) return problem;
      }
    }
  }
  return null;
}

/** The data sets of a reply body, or a message saying what is wrong (not JSON, not an array, a bad item). */
export function parseDicomJsonArray(text: string): { items: DicomJson[] } | { problem: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { problem: `the reply is not JSON (${(error as Error).message})` };
  }
  if (!Array.isArray(parsed)) return { problem: 'the reply is JSON but not an array of data sets' };
  for (let i = 0; i < parsed.length; i++) {
    const problem = problemIn(parsed[i], `item ${i + 1}`, 0);
    if (problem !== null) return { problem: `the reply is not DICOM JSON: ${problem}` };
  }
  return { items: parsed as DicomJson[] };
}

/** The first value of `tag` as text (a PN's Alphabetic group), or undefined when absent or empty. */
export function dicomJsonString(item: DicomJson, tag: string): string | undefined {
  const first = item[tag]?.Value?.[0];
  if (typeof first === 'string') return first;
  if (typeof first === 'number') return String(first);
  if (typeof first === 'object' && first !== null && typeof (first as { Alphabetic?: unknown }).Alphabetic === 'string') return (first as { Alphabetic: string }).Alphabetic;
  return undefined;
}

/** Every value of `tag` as text (a multi-valued CS such as ModalitiesInStudy). */
export function dicomJsonStrings(item: DicomJson, tag: string): string[] {
  return (item[tag]?.Value ?? []).filter((value): value is string | number => typeof value === 'string' || typeof value === 'number').map(String);
}

/** The items of a sequence `tag` (empty when absent). */
export function dicomJsonItems(item: DicomJson, tag: string): DicomJson[] {
  const element = item[tag];
  return element?.vr === 'SQ' ? ((element.Value ?? []) as DicomJson[]) : [];
}

/** A DICOM UID (PS3.5 9.1): digits and dots, components without leading zeros, at most 64 characters. */
export function isUid(text: string): boolean {
  return text.length > 0 && text.length <= 64 && /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/.test(text);
}
