/**
 * COVID-19-CT-Seg (Ma et al., Zenodo record 3757476), unpacked as released:
 *   SRC/COVID-19-CT-Seg_20cases/coronacases_org_001.nii.gz ... coronacases_org_010.nii.gz
 *   SRC/COVID-19-CT-Seg_20cases/radiopaedia_org_covid-19-pneumonia-<ID>-dcm.nii.gz (10 IDs such as 4_85506_1)
 *   SRC/Infection_Mask/<stem>.nii.gz        1 = infection
 *   SRC/Lung_Mask/<stem>.nii.gz             1 = left lung, 2 = right lung
 *   SRC/Lung_and_Infection_Mask/<stem>.nii.gz  1 = left, 2 = right, 3 = infection
 * where the mask stem (and our case id) is coronacases_001 or radiopaedia_<ID>, the ids of the
 * benchmark's 5-fold split file. The images may also lie directly in SRC, the mask folders in SRC or
 * in the image folder; .nii works as well as .nii.gz.
 *
 * Output: labelsTr = infection (1) from Infection_Mask (else value 3 of Lung_and_Infection_Mask),
 * lungsTr = Lung_Mask (1 left, 2 right) when that folder exists. With `labels: 'lungs+infection'`
 * labelsTr is Lung_and_Infection_Mask as released (1 left lung, 2 right lung, 3 infection; that folder
 * is then required), so a model learns both lungs and the infection. The Radiopaedia scans were windowed
 * to [-1250, 250] HU and rescaled to 0..255; an image whose values all lie in [0, 255] is mapped back
 * to HU (see convert.ts), which import_meta.json records per case, with the patients scanned twice.
 */
import * as path from 'node:path';
import type { Issue } from '../../../core/index.js';
import { findNifti, firstFolder, niftiNames, niftiStem } from './scan-helpers.js';
import type { ImportOptions, Importer, ScanResult, SourceCase, SourceMask } from './types.js';

/** The 20 case ids of the release (equal to the ids of the benchmark's split file). */
export const COVID19_CTSEG_CASE_IDS: readonly string[] = [
  ...Array.from({ length: 10 }, (_, i) => `coronacases_${String(i + 1).padStart(3, '0')}`),
  ...['4_85506_1', '7_85703_0', '10_85902_1', '10_85902_3', '14_85914_0', '27_86410_0', '29_86490_1', '29_86491_1', '36_86526_0', '40_86625_0'].map(
    (id) => `radiopaedia_${id}`,
  ),
];

/** Scans of one patient, as the benchmark documents them. */
export const COVID19_CTSEG_SAME_PATIENT: readonly (readonly string[])[] = [['radiopaedia_10_85902_1', 'radiopaedia_10_85902_3']];

const IMAGE_FOLDER = 'COVID-19-CT-Seg_20cases';
const CORONACASES = /^coronacases_org_(\d{3})\.nii(\.gz)?$/;
const RADIOPAEDIA = /^radiopaedia_org_covid-19-pneumonia-(\d+_\d+_\d+)-dcm\.nii(\.gz)?$/;

/** The case id of a release image file name, or undefined when the name is not one of the release's. */
export function covidCaseId(imageName: string): string | undefined {
  const corona = CORONACASES.exec(imageName);
  if (corona) return `coronacases_${corona[1]}`;
  const radio = RADIOPAEDIA.exec(imageName);
  if (radio) return `radiopaedia_${radio[1]}`;
  return undefined;
}

/** dataset.json labels of `--labels lungs+infection` (the values of Lung_and_Infection_Mask). */
export const COVID19_CTSEG_LUNG_LABELS = { background: 0, 'left lung': 1, 'right lung': 2, infection: 3 } as const;

function scan(source: string, options: ImportOptions): ScanResult {
  const issues: Issue[] = [];
  const withLungs = options.labels === 'lungs+infection';
  const imageFolder = firstFolder([path.join(source, IMAGE_FOLDER)]) ?? source;
  const maskFolder = (name: string) => firstFolder([path.join(source, name), path.join(imageFolder, name)]);
  const infectionFolder = maskFolder('Infection_Mask');
  const lungFolder = maskFolder('Lung_Mask');
  const combinedFolder = maskFolder('Lung_and_Infection_Mask');
  if (withLungs && !combinedFolder) {
    issues.push({ file: path.join(source, 'Lung_and_Infection_Mask'), path: '', code: 'not-found', message: '--labels lungs+infection needs the release\'s Lung_and_Infection_Mask folder (1 left lung, 2 right lung, 3 infection)' });
  } else if (!infectionFolder && !combinedFolder) {
    issues.push({ file: path.join(source, 'Infection_Mask'), path: '', code: 'not-found', message: 'neither Infection_Mask nor Lung_and_Infection_Mask found' });
  }
  const ignored: string[] = [];
  const cases: SourceCase[] = [];
  const imageIds = new Set<string>();
  for (const name of niftiNames(imageFolder)) {
    const id = covidCaseId(name);
    if (id === undefined) {
      ignored.push(path.join(imageFolder, name));
      continue;
    }
    imageIds.add(id);
    const image = path.join(imageFolder, name);
    const mask = (folder: string | undefined, rule: SourceMask['rule']): SourceMask | undefined => {
      if (!folder) return undefined;
      const file = findNifti(folder, id);
      if (file) return { file, rule };
      issues.push({ file: path.join(folder, `${id}.nii.gz`), path: '', code: 'not-found', message: `mask of case ${id} (image ${image}) not found` });
      return undefined;
    };
    const label = withLungs
      ? mask(combinedFolder, { kind: 'values', allowed: [0, 1, 2, 3] })
      : infectionFolder
        ? mask(infectionFolder, { kind: 'values', allowed: [0, 1] })
        : mask(combinedFolder, { kind: 'values', allowed: [0, 1, 2, 3], map: { 0: 0, 1: 0, 2: 0, 3: 1 } });
    const lungs = mask(lungFolder, { kind: 'values', allowed: [0, 1, 2] });
    if (!label) continue;
    const patient = COVID19_CTSEG_SAME_PATIENT.find((group) => group.includes(id));
    cases.push({
      id,
      image,
      label,
      extras: lungs ? [{ folder: 'lungsTr', mask: lungs }] : [],
      facts: {
        source: id.startsWith('radiopaedia') ? 'radiopaedia.org' : 'coronacases.org',
        ...(patient ? { samePatientAs: patient.filter((other) => other !== id) } : {}),
      },
    });
  }
  const found = new Set(cases.map((c) => c.id));
  // Masks without an image are a problem: the release pairs every mask with a scan.
  for (const folder of [infectionFolder, lungFolder, combinedFolder]) {
    for (const name of folder ? niftiNames(folder) : []) {
      const stem = niftiStem(name);
      if (!imageIds.has(stem)) {
        issues.push({ file: path.join(folder!, name), path: '', code: 'missing-image', message: `mask has no image in ${imageFolder}` });
      }
    }
  }
  const missing = COVID19_CTSEG_CASE_IDS.filter((id) => !found.has(id));
  return {
    cases,
    issues,
    notes: {
      release: 'COVID-19-CT-Seg, Zenodo record 3757476 (doi:10.5281/zenodo.3757476)',
      labels: withLungs ? 'labelsTr: 1 = left lung, 2 = right lung, 3 = infection; lungsTr: 1 = left lung, 2 = right lung' : 'labelsTr: 1 = infection; lungsTr: 1 = left lung, 2 = right lung',
      labelSource: withLungs ? 'Lung_and_Infection_Mask (as released)' : infectionFolder ? 'Infection_Mask' : 'Lung_and_Infection_Mask (value 3)',
      lungs: lungFolder ? 'Lung_Mask -> lungsTr' : 'no Lung_Mask folder: no lungsTr',
      samePatient: COVID19_CTSEG_SAME_PATIENT.filter((group) => group.every((id) => found.has(id))),
      samePatientSource: 'COVID-19-CT-Seg benchmark documentation: radiopaedia 10_85902_1 and 10_85902_3 are the same patient',
      radiopaediaWindow: 'images with all values in [0, 255] are read as the [-1250, 250] HU window rescaled to 0..255 and mapped back to HU',
      ...(missing.length > 0 ? { casesNotInSource: missing } : {}),
      ...(ignored.length > 0 ? { ignoredFiles: ignored } : {}),
    },
    ...(withLungs
      ? { datasetJson: { labels: { ...COVID19_CTSEG_LUNG_LABELS }, description: 'COVID-19 CT Lung and Infection Segmentation Dataset (Ma et al. 2020), 20 CT scans, labels 1 left lung, 2 right lung, 3 infection (Lung_and_Infection_Mask); lungs also in lungsTr' } }
      : {}),
  };
}

export const COVID19_CTSEG_IMPORTER: Importer = {
  kind: 'covid19-ctseg',
  scan,
  alignment: 'same-grid',
  detectRadiopaediaWindow: true,
  datasetJson: {
    channel_names: { '0': 'CT' },
    labels: { background: 0, infection: 1 },
    file_ending: '.nii.gz',
    name: 'COVID19CTSeg',
    description: 'COVID-19 CT Lung and Infection Segmentation Dataset (Ma et al. 2020), 20 CT scans, infection label; lungs in lungsTr',
    reference: 'https://zenodo.org/record/3757476',
  },
};
