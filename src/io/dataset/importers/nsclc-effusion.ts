/**
 * NSCLC-Radiomics pleural effusions (PleThora masks) with their CT:
 *   SRC/Effusions/LUNG1-xxx/LUNG1-xxx_effusion_first_reviewer.nii.gz   (the masks, as released)
 *   CT as NIfTI, one LUNG1-xxx.nii.gz per patient, in --images DIR or else in SRC, SRC/images,
 *   SRC/NSCLC-Radiomics or SRC/CT. Make them from the TCIA DICOM with Debian's dcm2niix package:
 *     dcm2niix -z y -f %i -o CT_DIR PATIENT_DICOM_DIR     (%i = patient id, i.e. LUNG1-xxx)
 *
 * Only patients with an effusion mask are imported (the CT of the others is not needed). The masks
 * are stored in another orientation than the CT (PleThora documents RPI against the DICOM's RAI): each
 * mask is put onto its CT's grid by the axis permutation/flips found from both affines (reorient.ts);
 * a pair whose spacing or field of view cannot be matched that way is refused, naming both files.
 * Non-binary masks are thresholded at 0.5. Case ids are the patient ids (LUNG1-001).
 */
import * as path from 'node:path';
import type { Issue } from '../../../core/index.js';
import { holdsDicom } from '../../dicom/series.js';
import { findNifti, firstFolder, folderNames, niftiNames, niftiStem } from './scan-helpers.js';
import type { Importer, ImportOptions, ScanResult, SourceCase } from './types.js';

const PATIENT = /^LUNG1-\d{3}$/;
const MASK_SUFFIX = '_effusion_first_reviewer';

function imagesFolder(source: string, options: ImportOptions): string | undefined {
  if (options.imagesDir !== undefined) return path.resolve(options.imagesDir);
  const candidates = [source, 'images', 'NSCLC-Radiomics', 'CT'].map((name) => path.resolve(source, name));
  return candidates.find((folder) => niftiNames(folder).some((name) => PATIENT.test(niftiStem(name))) || folderNames(folder).some((name) => PATIENT.test(name) && holdsDicom(path.join(folder, name))));
}

function scan(source: string, options: ImportOptions): ScanResult {
  const issues: Issue[] = [];
  const effusions = firstFolder([path.join(source, 'Effusions')]);
  const images = imagesFolder(source, options);
  if (!effusions) issues.push({ file: path.join(source, 'Effusions'), path: '', code: 'not-found', message: 'the PleThora Effusions folder was not found' });
  if (!images) {
    issues.push({
      file: options.imagesDir ?? source,
      path: '',
      code: 'not-found',
      message: 'no CT NIfTI files LUNG1-xxx.nii.gz found (convert the DICOM with `dcm2niix -z y -f %i`, then pass the folder with --images)',
    });
  }
  const cases: SourceCase[] = [];
  const ignored: string[] = [];
  for (const patient of effusions ? folderNames(effusions) : []) {
    if (!PATIENT.test(patient)) {
      ignored.push(path.join(effusions!, patient));
      continue;
    }
    const mask = findNifti(path.join(effusions!, patient), `${patient}${MASK_SUFFIX}`);
    if (!mask) {
      issues.push({ file: path.join(effusions!, patient, `${patient}${MASK_SUFFIX}.nii.gz`), path: '', code: 'not-found', message: 'first reviewer effusion mask not found' });
      continue;
    }
    if (!images) continue;
    // The CT as NIfTI (LUNG1-xxx.nii.gz), else as the patient's DICOM folder (LUNG1-xxx/, as TCIA ships it; run-import converts it).
    const dicomFolder = path.join(images, patient);
    const image = findNifti(images, patient) ?? (holdsDicom(dicomFolder) ? dicomFolder : undefined);
    if (!image) {
      issues.push({ file: path.join(images, `${patient}.nii.gz`), path: '', code: 'not-found', message: `CT of ${patient} not found (its effusion mask is ${mask})` });
      continue;
    }
    cases.push({ id: patient, image, label: { file: mask, rule: { kind: 'threshold', threshold: 0.5 } }, extras: [], facts: {} });
  }
  if (effusions && folderNames(effusions).length === 0) {
    issues.push({ file: effusions, path: '', code: 'no-cases', message: 'no LUNG1-xxx folders found' });
  }
  return {
    cases,
    issues,
    notes: {
      release: 'NSCLC-Radiomics (TCIA) CT with PleThora pleural effusion masks (first reviewer)',
      labels: 'labelsTr: 1 = pleural effusion (mask > 0.5)',
      images: images ?? null,
      ctConversion: 'dcm2niix -z y -f %i (Debian package dcm2niix)',
      orientation: 'masks reoriented to the CT grid from both affines (axis permutation and flips)',
      ...(ignored.length > 0 ? { ignoredFolders: ignored } : {}),
    },
  };
}

export const NSCLC_EFFUSION_IMPORTER: Importer = {
  kind: 'nsclc-effusion',
  scan,
  alignment: 'reorient',
  detectRadiopaediaWindow: false,
  datasetJson: {
    channel_names: { '0': 'CT' },
    labels: { background: 0, effusion: 1 },
    file_ending: '.nii.gz',
    name: 'NSCLCPleuralEffusion',
    description: 'NSCLC-Radiomics CT with PleThora pleural effusion masks (first reviewer), label 1 = effusion',
    reference: 'https://doi.org/10.7937/tcia.2020.6c7y-gq39',
  },
};
