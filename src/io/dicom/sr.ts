/**
 * A DICOM Structured Report of a SEG's measurements: a TID 1500 Measurement Report (PS3.16) as a
 * Comprehensive 3D SR (SOP Class 1.2.840.10008.5.1.4.1.1.88.34, as dcmqi writes them), built from
 * the SEG file it reports on (read back by dicom-seg-read.ts, so that it references exactly what
 * was written):
 *   - the SEG's patient and study (same Study Instance UID; Patient's Name and the other text as the
 *     SEG holds it, UTF-8, itself decoded from the source's character set) in a new SR series;
 *   - Current Requested Procedure Evidence Sequence: the source series' instances and the SEG;
 *   - content tree: Language (en-US), Observer Context (a device: lesionseg), Procedure reported (a
 *     CT, LOINC), Image Library (every source instance), Imaging Measurements with the algorithm's
 *     name and version (TID 4019) and one Measurement Group per region: Tracking Identifier and UID,
 *     Finding (the segment's type code), the Referenced Segment (the SEG instance and segment
 *     number: TID 1411 Volumetric ROI Measurements) and Source series for segmentation, the Finding
 *     Site (with Laterality for a lobe of a paired lung) and the NUM measurements with UCUM units.
 * The ROI of a model with several infection labels (the summary counts them together) is their
 * union: its one Referenced Segment item lists each segment number (Referenced Segment Number is
 * 1-n, PS3.3 C.18.3.1); dcmqi and highdicom write one. PixelMed picks the measurement group's template
 * from the whole report (a Referenced Segment anywhere makes every group TID 1411), so the groups
 * cannot switch to TID 1501 one by one.
 *
 * A NUM's value is written as DS (Numeric Value, at most 16 characters) and, where that text does
 * not give back the same double, also as FD (Floating Point Value, PS3.3 C.18.1.2: required when DS
 * lacks the precision), so a reader gets the summary's number exactly. A value that does not exist
 * (the percentage of an empty region, null in the summary) is not written: PixelMed's TID 1419 check
 * calls a NUM without a value an error. The codes are in dicom-sr-codes.ts. Written atomically.
 */
import { atomicWriteFile, dicomText, InputError } from '../../core/index.js';
import { CODES, PRIVATE_SCHEME_IDENTIFICATION, type Site } from './sr-codes.js';
import { parseDicomSeg } from './seg-read.js';
import { dicomDateTime, encodeDicomSeg, newUid, SEGMENTATION_SOP_CLASS_UID, type CodedConcept } from './seg.js';

export const COMPREHENSIVE_3D_SR_SOP_CLASS_UID = '1.2.840.10008.5.1.4.1.1.88.34';
/** lesionseg as a device observer (TID 1004 Device Observer UID): one fixed UUID-derived UID. */
export const DEVICE_OBSERVER_UID = '2.25.243685880896999576841232373870611632327';

/** One NUM item: its concept, units and value, optionally with a method. */
export interface SrMeasurement {
  concept: CodedConcept;
  units: CodedConcept;
  value: number;
  method?: CodedConcept;
}

/** One Measurement Group: a region of the ROI (the segments given) and its measurements. */
export interface SrGroup {
  trackingIdentifier: string;
  site?: Site;
  measurements: SrMeasurement[];
}

export interface SrReport {
  /** The SEG's segment numbers whose union is the measured ROI. */
  segments: readonly number[];
  groups: readonly SrGroup[];
}

export interface DicomSrOptions {
  /** SeriesNumber of the SR (default: the SEG's + 1). */
  seriesNumber?: number;
  seriesDescription?: string;
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  date?: Date;
}

/** What the SR takes from its SEG. */
export interface SegReference {
  dataset: Record<string, any>;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  sourceSeriesUid: string;
  sourceInstances: { sopClassUid: string; sopInstanceUid: string }[];
  segments: Map<number, { label: string; type: CodedConcept }>;
  softwareVersion: string;
}

const PATIENT_AND_STUDY = ['PatientName', 'PatientID', 'PatientBirthDate', 'PatientSex', 'StudyDate', 'StudyTime', 'ReferringPhysicianName', 'StudyID', 'AccessionNumber', 'StudyDescription'] as const;

const first = (value: unknown): any => (Array.isArray(value) ? value[0] : value);

/** The SEG at `file` read back (dicom-seg-read's parser, its checks included): its UIDs, segments and source references. */
export function readSegReference(file: string): SegReference {
  const parsed = parseDicomSeg(file);
  const dataset = parsed.dataset as Record<string, any>;
  const referenced = first(dataset.ReferencedSeriesSequence);
  if (referenced === undefined) throw new InputError('has no ReferencedSeriesSequence (0008,1115): the SR could not name the source series', { file, code: 'dicom-missing-tag' });
  const segments = new Map<number, { label: string; type: CodedConcept }>();
  for (const segment of dataset.SegmentSequence ?? []) {
    const type = first(segment.SegmentedPropertyTypeCodeSequence);
    segments.set(Number(segment.SegmentNumber), { label: String(segment.SegmentLabel), type: { CodeValue: type.CodeValue, CodingSchemeDesignator: type.CodingSchemeDesignator, CodeMeaning: type.CodeMeaning } });
  }
  return {
    dataset,
    sopInstanceUid: parsed.sopInstanceUid,
    seriesInstanceUid: dataset.SeriesInstanceUID,
    sourceSeriesUid: referenced.SeriesInstanceUID,
    sourceInstances: ((referenced.ReferencedInstanceSequence ?? []) as any[]).map((item) => ({ sopClassUid: item.ReferencedSOPClassUID, sopInstanceUid: item.ReferencedSOPInstanceUID })),
    segments,
    softwareVersion: String(first(dataset.SoftwareVersions) ?? 'lesionseg'),
  };
}

/**
 * `value` as DS text (PS3.5 6.2: at most 16 characters, decimal or exponent form): the shortest text
 * that gives back the double when it fits, else the most significant digits that fit.
 */
export function decimalString(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`decimalString: ${value} is not a finite number`);
  const shortest = String(value);
  if (shortest.length <= 16) return shortest;
  for (let digits = 16; digits >= 1; digits--) {
    const candidates = [Number(value.toPrecision(digits)).toString(), value.toPrecision(digits), value.toExponential(digits - 1)];
    const fitting = candidates.filter((text) => text.length <= 16).sort((a, b) => a.length - b.length);
    if (fitting.length > 0) return fitting[0]!;
  }
  throw new RangeError(`decimalString: ${value} does not fit 16 characters`);
}

type Item = Record<string, unknown>;
type Relationship = 'CONTAINS' | 'HAS OBS CONTEXT' | 'HAS CONCEPT MOD';

const contentItem = (relationship: Relationship | null, valueType: string, concept: CodedConcept | null, rest: Item): Item => ({
  ...(relationship !== null ? { RelationshipType: relationship } : {}),
  ValueType: valueType,
  ...(concept !== null ? { ConceptNameCodeSequence: [concept] } : {}),
  ...rest,
});
const container = (relationship: Relationship | null, concept: CodedConcept, children: Item[], rest: Item = {}): Item =>
  contentItem(relationship, 'CONTAINER', concept, { ContinuityOfContent: 'SEPARATE', ...rest, ContentSequence: children });
const text = (relationship: Relationship, concept: CodedConcept, value: string): Item => contentItem(relationship, 'TEXT', concept, { TextValue: dicomText(value, 'ST') });
const coded = (relationship: Relationship, concept: CodedConcept, value: CodedConcept, children: Item[] = []): Item =>
  contentItem(relationship, 'CODE', concept, { ConceptCodeSequence: [value], ...(children.length > 0 ? { ContentSequence: children } : {}) });
const uidref = (relationship: Relationship, concept: CodedConcept, uid: string): Item => contentItem(relationship, 'UIDREF', concept, { UID: uid });
const image = (concept: CodedConcept | null, reference: Item): Item => contentItem('CONTAINS', 'IMAGE', concept, { ReferencedSOPSequence: [reference] });

function numeric(measurement: SrMeasurement): Item {
  const children = measurement.method !== undefined ? [coded('HAS CONCEPT MOD', CODES.measurementMethod, measurement.method)] : [];
  const ds = decimalString(measurement.value);
  const measured = { MeasurementUnitsCodeSequence: [measurement.units], NumericValue: ds, ...(Number(ds) !== measurement.value ? { FloatingPointValue: measurement.value } : {}) };
  return contentItem('CONTAINS', 'NUM', measurement.concept, { MeasuredValueSequence: [measured], ...(children.length > 0 ? { ContentSequence: children } : {}) });
}

function siteItems(site: Site | undefined): Item[] {
  if (site === undefined) return [];
  return [coded('HAS CONCEPT MOD', CODES.findingSite, site.site, site.laterality !== undefined ? [coded('HAS CONCEPT MOD', CODES.laterality, site.laterality)] : [])];
}

/** The naturalized SR data set (dcmjs keywords) of `report` on the SEG `seg`. */
export function buildDicomSr(seg: SegReference, report: SrReport, options: DicomSrOptions = {}): Record<string, unknown> {
  if (report.segments.length === 0) throw new RangeError('buildDicomSr: no segment to report on');
  for (const number of report.segments) {
    if (!seg.segments.has(number)) throw new RangeError(`buildDicomSr: the SEG has no segment ${number} (it has ${[...seg.segments.keys()].join(', ')})`);
  }
  const made = dicomDateTime(options.date ?? new Date());
  const segReference = (numbers: readonly number[]): Item => ({ ReferencedSOPClassUID: SEGMENTATION_SOP_CLASS_UID, ReferencedSOPInstanceUID: seg.sopInstanceUid, ReferencedSegmentNumber: numbers.length === 1 ? numbers[0] : [...numbers] });
  const types = report.segments.map((number) => seg.segments.get(number)!.type);
  // One finding for the ROI: the segments' type when they share it, else Lesion.
  const finding = types.every((type) => type.CodeValue === types[0]!.CodeValue && type.CodingSchemeDesignator === types[0]!.CodingSchemeDesignator)
    ? types[0]!
    : { CodeValue: '52988006', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Lesion' };
  const groups = report.groups.map((group) => container('CONTAINS', CODES.measurementGroup, [
    text('HAS OBS CONTEXT', CODES.trackingIdentifier, group.trackingIdentifier),
    uidref('HAS OBS CONTEXT', CODES.trackingUid, newUid()),
    coded('CONTAINS', CODES.finding, finding),
    // TID 1411 rows 7 and 12.
    image(CODES.referencedSegment, segReference(report.segments)),
    uidref('CONTAINS', CODES.sourceSeriesForSegmentation, seg.sourceSeriesUid),
    ...siteItems(group.site),
    ...group.measurements.map(numeric),
  ]));
  const content = [
    coded('HAS CONCEPT MOD', CODES.language, CODES.english),
    coded('HAS OBS CONTEXT', CODES.observerType, CODES.device),
    uidref('HAS OBS CONTEXT', CODES.deviceObserverUid, DEVICE_OBSERVER_UID),
    text('HAS OBS CONTEXT', CODES.deviceObserverName, 'lesionseg'),
    text('HAS OBS CONTEXT', CODES.deviceObserverManufacturer, 'lesionseg'),
    text('HAS OBS CONTEXT', CODES.deviceObserverModelName, 'lesionseg'),
    coded('HAS CONCEPT MOD', CODES.procedureReported, CODES.ctProcedure),
    container('CONTAINS', CODES.imageLibrary, [
      container('CONTAINS', CODES.imageLibraryGroup, seg.sourceInstances.map((instance) => image(null, { ReferencedSOPClassUID: instance.sopClassUid, ReferencedSOPInstanceUID: instance.sopInstanceUid }))),
    ]),
    container('CONTAINS', CODES.imagingMeasurements, [
      text('HAS CONCEPT MOD', CODES.algorithmName, 'lesionseg'),
      text('HAS CONCEPT MOD', CODES.algorithmVersion, seg.softwareVersion),
      ...groups,
    ]),
  ];
  const source = seg.dataset;
  const patientAndStudy = Object.fromEntries(PATIENT_AND_STUDY.map((keyword) => [keyword, source[keyword] ?? '']));
  const segSeriesNumber = Number(source.SeriesNumber);
  return {
    SpecificCharacterSet: 'ISO_IR 192',
    InstanceCreationDate: made.date,
    InstanceCreationTime: made.time,
    SOPClassUID: COMPREHENSIVE_3D_SR_SOP_CLASS_UID,
    SOPInstanceUID: options.sopInstanceUid ?? newUid(),
    ...patientAndStudy,
    StudyInstanceUID: source.StudyInstanceUID,
    SeriesDate: made.date,
    SeriesTime: made.time,
    ContentDate: made.date,
    ContentTime: made.time,
    Modality: 'SR',
    Manufacturer: 'lesionseg',
    ManufacturerModelName: 'lesionseg',
    DeviceSerialNumber: '1',
    SoftwareVersions: dicomText(seg.softwareVersion, 'LO'),
    SeriesDescription: dicomText(options.seriesDescription ?? 'lesionseg measurements', 'LO'),
    SeriesInstanceUID: options.seriesInstanceUid ?? newUid(),
    SeriesNumber: options.seriesNumber ?? (Number.isFinite(segSeriesNumber) ? segSeriesNumber + 1 : 1001),
    InstanceNumber: 1,
    ReferencedPerformedProcedureStepSequence: [],
    CodingSchemeIdentificationSequence: [PRIVATE_SCHEME_IDENTIFICATION],
    CompletionFlag: 'COMPLETE',
    VerificationFlag: 'UNVERIFIED',
    PerformedProcedureCodeSequence: [],
    // Every instance the content tree references, by study and series (PS3.3 C.17.2.3).
    CurrentRequestedProcedureEvidenceSequence: [{
      StudyInstanceUID: source.StudyInstanceUID,
      ReferencedSeriesSequence: [
        { SeriesInstanceUID: seg.sourceSeriesUid, ReferencedSOPSequence: seg.sourceInstances.map((instance) => ({ ReferencedSOPClassUID: instance.sopClassUid, ReferencedSOPInstanceUID: instance.sopInstanceUid })) },
        { SeriesInstanceUID: seg.seriesInstanceUid, ReferencedSOPSequence: [{ ReferencedSOPClassUID: SEGMENTATION_SOP_CLASS_UID, ReferencedSOPInstanceUID: seg.sopInstanceUid }] },
      ],
    }],
    ...container(null, CODES.imagingMeasurementReport, content, { ContentTemplateSequence: [{ MappingResource: 'DCMR', TemplateIdentifier: '1500' }] }),
  };
}

/** Write the SR of `report` on the SEG `seg` (readSegReference) to `file`, atomically; returns its number of measurement groups. */
export async function writeDicomSr(file: string, seg: SegReference, report: SrReport, options: DicomSrOptions = {}): Promise<{ groups: number }> {
  const dataset = buildDicomSr(seg, report, options);
  await atomicWriteFile(file, encodeDicomSeg(dataset));
  return { groups: report.groups.length };
}
