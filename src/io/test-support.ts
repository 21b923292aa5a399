/**
 * Test support for DICOM: write a CT series from a volume and its NIfTI affine with the committed
 * test/fixtures/dicom/make_dicom_series.py (Debian's python3-pydicom), and read a SEG back with
 * check_seg.py and an SR with read_sr.py. Without pydicom the tests skip, except under CI=true where they fail. Only tests
 * import this file.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Affine } from '../core/index.js';
import { writeNpy } from './dataset/npy.js';

export const DICOM_FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/dicom');
export const PYTHON = '/usr/bin/python3';

/** Whether python3 with pydicom and numpy runs here; in CI (CI=true) its absence fails the test. */
export function pydicomAvailable(t: { skip(message: string): void }): boolean {
  const probe = spawnSync(PYTHON, ['-c', 'import pydicom, numpy'], { encoding: 'utf8' });
  if (probe.status === 0) return true;
  const why = `${PYTHON} cannot import pydicom and numpy (${(probe.stderr || String(probe.error ?? '')).trim().split('\n').pop()}); install python3-pydicom and python3-numpy (scripts/setup.sh)`;
  if (process.env.CI === 'true') assert.fail(why);
  t.skip(why);
  return false;
}

/** Whether dcm2niix runs here; the same rule. */
export function dcm2niixAvailable(t: { skip(message: string): void }): boolean {
  const probe = spawnSync('dcm2niix', ['-h'], { encoding: 'utf8' });
  if (probe.error === undefined) return true;
  const why = 'dcm2niix is not installed (apt-get install dcm2niix; scripts/setup.sh)';
  if (process.env.CI === 'true') assert.fail(why);
  t.skip(why);
  return false;
}

/** Whether dcmtk's and GDCM's encoders and decoders run here; the same rule. */
export function decodersAvailable(t: { skip(message: string): void }): boolean {
  const absent = ['dcmcjpeg', 'dcmdjpeg', 'dcmcjpls', 'dcmcrle', 'dcmconv', 'gdcmconv'].filter((tool) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).error !== undefined);
  if (absent.length === 0) return true;
  const why = `${absent.join(', ')} not installed (apt-get install dcmtk libgdcm-tools; scripts/setup.sh)`;
  if (process.env.CI === 'true') assert.fail(why);
  t.skip(why);
  return false;
}

export interface SeriesSpec {
  /** int16 voxels [z, y, x]. */
  data: Int16Array;
  shape: [number, number, number];
  affine: Affine;
  variant?: 'none' | 'tilt' | 'gap' | 'nonuniform' | 'mixed-orientation' | 'mixed-size';
  seriesNumber?: number;
  description?: string;
  modality?: string;
  implicit?: boolean;
  /** Specific Character Set (terms joined by a backslash); pydicom encodes the text by it. */
  charset?: string;
  /** Text attributes (PatientName, StudyDescription, ...) replacing the defaults. */
  text?: Record<string, string>;
  /** LossyImageCompression 01 with this ratio and method (pixels stored uncompressed). */
  lossy?: { ratio: string; method: string };
  laterality?: string;
  /** UID root of the study, series, frame of reference and instances (make_dicom_series.py's default otherwise). */
  uidRoot?: string;
}

/** Write the series into `out` (created); returns its SeriesInstanceUID. */
export function makeDicomSeries(out: string, spec: SeriesSpec): string {
  fs.mkdirSync(out, { recursive: true });
  const work = fs.mkdtempSync(path.join(path.dirname(out), '.series-'));
  try {
    writeNpy(path.join(work, 'volume.npy'), spec.data, [...spec.shape]);
    fs.writeFileSync(path.join(work, 'geometry.json'), JSON.stringify({ affine: spec.affine }));
    const args = [path.join(DICOM_FIXTURES, 'make_dicom_series.py'), '--volume', path.join(work, 'volume.npy'), '--geometry', path.join(work, 'geometry.json'), '--out', out];
    if (spec.variant !== undefined) args.push('--variant', spec.variant);
    if (spec.seriesNumber !== undefined) args.push('--series-number', String(spec.seriesNumber));
    if (spec.description !== undefined) args.push('--description', spec.description);
    if (spec.modality !== undefined) args.push('--modality', spec.modality);
    if (spec.implicit === true) args.push('--implicit');
    if (spec.charset !== undefined) args.push('--charset', spec.charset);
    if (spec.text !== undefined) args.push('--text', JSON.stringify(spec.text));
    if (spec.lossy !== undefined) args.push('--lossy', `${spec.lossy.ratio}:${spec.lossy.method}`);
    if (spec.laterality !== undefined) args.push('--laterality', spec.laterality);
    if (spec.uidRoot !== undefined) args.push('--uid-root', spec.uidRoot);
    const printed = execFileSync('nice', ['-n', '19', PYTHON, ...args], { encoding: 'utf8' });
    return (JSON.parse(printed) as { series: string }).series;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export interface SegCheck {
  sopClassUid: string;
  frameOfReferenceUid: string;
  studyInstanceUid: string;
  referencedSeries: string;
  referencedInstances: string[];
  segments: { number: number; label: string; category: string[]; type: string[] }[];
  frames: number;
  /** Largest |frame ImagePositionPatient - its source instance's| (mm). */
  maxPositionDifferenceMm: number;
  /** Frames whose position is not their source instance's. */
  misplacedFrames: number;
  /** Each SEG frame's ReferencedFrameNumber (null where the source is single-frame). */
  referencedFrameNumbers: (number | null)[];
}

/** Read `seg` with pydicom against the source `seriesDir`; the label volume by segment number goes to `volumeNpy`. */
export function checkSegWithPydicom(seg: string, seriesDir: string, volumeNpy: string): SegCheck {
  const printed = execFileSync('nice', ['-n', '19', PYTHON, path.join(DICOM_FIXTURES, 'check_seg.py'), seg, seriesDir, volumeNpy], { encoding: 'utf8' });
  return JSON.parse(printed) as SegCheck;
}

/** PixelMed's jar (Debian libpixelmed-java) and the JVM options its validator needs on Java 17+. */
export const PIXELMED_JAR = '/usr/share/java/pixelmed.jar';
/**
 * PixelMed's IOD rules are one XSLT whose XPath expressions exceed Java 17's default JAXP limits
 * (JAXP0801003, "accumulated '10,001' operators"); these lift the limits for that one run. A run is
 * short and spent compiling that XSLT once: the C1 compiler alone and the serial collector halve to
 * third its CPU time (DicomSRValidator 12.4 -> 6.0 s, DicomInstanceValidator on a SEG 6.3 -> 2.2 s
 * user, same report).
 */
const PIXELMED_JVM = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-Djdk.xml.xpathExprOpLimit=0', '-Djdk.xml.xpathExprGrpLimit=0', '-Djdk.xml.xpathTotalOpLimit=0'];

/** Whether dciodvfy (Debian dicom3tools) and PixelMed's validator (libpixelmed-java, java) run here; the same CI rule. */
export function validatorsAvailable(t: { skip(message: string): void }): boolean {
  const missing: string[] = [];
  if (spawnSync('dciodvfy', [], { encoding: 'utf8' }).error !== undefined) missing.push('dciodvfy (apt-get install dicom3tools)');
  if (spawnSync('java', ['-version'], { encoding: 'utf8' }).error !== undefined) missing.push('java (apt-get install default-jre-headless)');
  if (!fs.existsSync(PIXELMED_JAR)) missing.push(`${PIXELMED_JAR} (apt-get install libpixelmed-java)`);
  if (missing.length === 0) return true;
  const why = `the DICOM validators are missing: ${missing.join(', ')}; scripts/setup.sh installs them`;
  if (process.env.CI === 'true') assert.fail(why);
  t.skip(why);
  return false;
}

export interface ValidatorReport {
  /** Every line the validator printed. */
  lines: string[];
  errors: string[];
  warnings: string[];
}

function report(lines: string[], error: RegExp, warning: RegExp): ValidatorReport {
  return { lines, errors: lines.filter((line) => error.test(line)), warnings: lines.filter((line) => warning.test(line)) };
}

/** David Clunie's dciodvfy on `file`: its "Error - ..." and "Warning - ..." lines. */
export function dciodvfy(file: string): ValidatorReport {
  const run = spawnSync('dciodvfy', [file], { encoding: 'utf8' });
  return report(`${run.stdout}${run.stderr}`.split('\n').filter((line) => line !== ''), /^Error/, /^Warning/);
}

/**
 * PixelMed's DicomInstanceValidator (the IOD's modules and attributes) or DicomSRValidator (an SR's
 * content tree against its templates) on `file` (asynchronous: the JVM takes seconds, two can run at once).
 */
export async function pixelmedValidate(file: string, validator: 'DicomInstanceValidator' | 'DicomSRValidator' = 'DicomInstanceValidator'): Promise<ValidatorReport> {
  const { execFile } = await import('node:child_process');
  const output = await new Promise<string>((resolve, reject) => {
    execFile('java', [...PIXELMED_JVM, '-cp', PIXELMED_JAR, `com.pixelmed.validate.${validator}`, file], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null && stdout === '') reject(new Error(`PixelMed failed on ${file}: ${stderr || error.message}`));
      else resolve(`${stdout}${stderr}`);
    });
  });
  return report(output.split('\n').filter((line) => line !== ''), /^Error/, /^Warning/);
}

/** A Measurement Group of an SR as test/fixtures/dicom/read_sr.py reads it with pydicom. */
export interface SrGroupRead {
  relationship: string;
  tracking: string;
  trackingUid: string;
  finding: [string, string, string];
  segInstance: string;
  segClass: string;
  segments: number[];
  sourceSeries: string;
  site: [string, string, string] | null;
  laterality: [string, string, string] | null;
  measurements: { concept: string; units: string; value: number; ds: string; method: [string, string, string] | null }[];
}

export interface SrRead {
  sopClass: string;
  charset: string;
  modality: string;
  study: string;
  series: string;
  evidenceStudies: string[];
  evidence: Record<string, string[]>;
  codingSchemes: [string, string][];
  text: Record<string, string>;
  title: [string, string];
  template: [string, string];
  language: [string, string, string];
  observerType: [string, string, string];
  observerName: string;
  procedure: [string, string, string];
  imageLibrary: number;
  algorithm: [string, string];
  groups: SrGroupRead[];
}

/** Read an SR with pydicom (read_sr.py). */
export function readSrWithPydicom(sr: string): SrRead {
  return JSON.parse(execFileSync('nice', ['-n', '19', PYTHON, path.join(DICOM_FIXTURES, 'read_sr.py'), sr], { encoding: 'utf8' })) as SrRead;
}

/** The tests' Orthanc (io/dicom/dicomweb/orthanc-test-support.ts), for tests outside io. */
export { orthancAvailable, startOrthanc, type RunningOrthanc } from './dicom/dicomweb/orthanc-test-support.js';
