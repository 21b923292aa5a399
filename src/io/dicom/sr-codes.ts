/**
 * The coded concepts of lesionseg's DICOM Structured Report (dicom-sr.ts), each from the table of
 * PS3.16 that names it:
 *   - DCM (PS3.16 Annex D): the TID 1500 document title (CID 7021), its containers and context
 *     (Language TID 1204, Observer Context TID 1002/1004, Procedure reported, Image Library TID 1600,
 *     Imaging Measurements, Measurement Group, Tracking Identifier TID 4108, Finding, Referenced
 *     Segment, Source series for segmentation TID 1411, Algorithm Name/Version TID 4019);
 *   - SCT (SNOMED CT): Volume (CID 7469), Finding Site, Measurement Method, Laterality (CID 244:
 *     Left, Right), the lungs (as the SEG's segments name them) and the lobes (CID 6170 Lobe of
 *     Lung: upper and lower lobe paired with a laterality, the middle lobe of the right lung
 *     unpaired);
 *   - LOINC: the procedure reported, 25045-6 "CT unspecified body region" (CID 100: PixelMed
 *     refuses a code outside its list, such as SNOMED's CT of chest, though the group is extensible);
 *   - UCUM: ml, % and 1 (no units, the score);
 *   - 99LESIONSEG, our private scheme (PS3.16 8.2: a designator starting with 99), declared in the
 *     SR's Coding Scheme Identification Sequence, for what no standard code names: the volume of the
 *     finding site, the percentage of it involved, the lobe and total CT severity score and its
 *     method (Pan et al. 2020), and the infection volume outside the lungs.
 */
import type { CodedConcept } from './seg.js';

const code = (CodingSchemeDesignator: string) => (CodeValue: string, CodeMeaning: string): CodedConcept => ({ CodeValue, CodingSchemeDesignator, CodeMeaning });
const DCM = code('DCM');
const SCT = code('SCT');
const UCUM = code('UCUM');
export const PRIVATE_SCHEME = '99LESIONSEG';
const OURS = code(PRIVATE_SCHEME);

/** The Coding Scheme Identification Sequence item declaring our private scheme (SOP Common module, PS3.3 C.12.1). */
export const PRIVATE_SCHEME_IDENTIFICATION = {
  CodingSchemeDesignator: PRIVATE_SCHEME,
  CodingSchemeName: 'lesionseg measurements',
  CodingSchemeResponsibleOrganization: 'lesionseg',
} as const;

export const CODES = {
  imagingMeasurementReport: DCM('126000', 'Imaging Measurement Report'),
  language: DCM('121049', 'Language of Content Item and Descendants'),
  english: code('RFC5646')('en-US', 'English (United States)'),
  observerType: DCM('121005', 'Observer Type'),
  device: DCM('121007', 'Device'),
  deviceObserverUid: DCM('121012', 'Device Observer UID'),
  deviceObserverName: DCM('121013', 'Device Observer Name'),
  deviceObserverManufacturer: DCM('121014', 'Device Observer Manufacturer'),
  deviceObserverModelName: DCM('121015', 'Device Observer Model Name'),
  procedureReported: DCM('121058', 'Procedure reported'),
  ctProcedure: code('LN')('25045-6', 'CT unspecified body region'),
  imageLibrary: DCM('111028', 'Image Library'),
  imageLibraryGroup: DCM('126200', 'Image Library Group'),
  imagingMeasurements: DCM('126010', 'Imaging Measurements'),
  algorithmName: DCM('111001', 'Algorithm Name'),
  algorithmVersion: DCM('111003', 'Algorithm Version'),
  measurementGroup: DCM('125007', 'Measurement Group'),
  trackingIdentifier: DCM('112039', 'Tracking Identifier'),
  trackingUid: DCM('112040', 'Tracking Unique Identifier'),
  finding: DCM('121071', 'Finding'),
  referencedSegment: DCM('121191', 'Referenced Segment'),
  sourceSeriesForSegmentation: DCM('121232', 'Source series for segmentation'),
  findingSite: SCT('363698007', 'Finding Site'),
  laterality: SCT('272741003', 'Laterality'),
  measurementMethod: SCT('370129005', 'Measurement Method'),
  volume: SCT('118565006', 'Volume'),
  milliliter: UCUM('ml', 'milliliter'),
  percent: UCUM('%', 'percent'),
  noUnits: UCUM('1', 'no units'),
  siteVolume: OURS('SITEVOL', 'Volume of finding site'),
  percentInvolved: OURS('INVOLVED', 'Percentage of finding site volume involved'),
  volumeOutsideLungs: OURS('OUTSIDE', 'Volume outside the lungs'),
  lobeSeverityScore: OURS('LOBESCORE', 'Lobe CT severity score (0-5)'),
  totalSeverityScore: OURS('CTSS', 'CT severity score (0-25)'),
  panMethod: OURS('PAN2020', 'Pan et al. Radiology 2020;295:715-721'),
} as const satisfies Record<string, CodedConcept>;

const LEFT = SCT('7771000', 'Left');
const RIGHT = SCT('24028007', 'Right');

/** A finding site and, for a paired structure named without its side, its laterality (TID 1419 rows 2-3). */
export interface Site {
  site: CodedConcept;
  laterality?: CodedConcept;
}

export const LUNG_SITES = {
  left: { site: SCT('44029006', 'Left lung') },
  right: { site: SCT('3341006', 'Right lung') },
  both: { site: SCT('39607008', 'Lung') },
} as const satisfies Record<string, Site>;

/** TotalSegmentator's lobe names (eval LOBE_NAMES) as CID 6170 sites. */
export const LOBE_SITES = {
  lung_upper_lobe_left: { site: SCT('45653009', 'Upper lobe of lung'), laterality: LEFT },
  lung_lower_lobe_left: { site: SCT('90572001', 'Lower lobe of lung'), laterality: LEFT },
  lung_upper_lobe_right: { site: SCT('45653009', 'Upper lobe of lung'), laterality: RIGHT },
  lung_middle_lobe_right: { site: SCT('72481006', 'Middle lobe of right lung') },
  lung_lower_lobe_right: { site: SCT('90572001', 'Lower lobe of lung'), laterality: RIGHT },
} as const satisfies Record<string, Site>;
