/**
 * StructSeg 2019 Task 4 (lung gross target volume), unpacked as released:
 *   SRC (or SRC/Lung_GTV)/<n>/data.nii.gz    CT
 *   SRC (or SRC/Lung_GTV)/<n>/label.nii.gz   1 = GTV
 * with <n> = 1..50. Case ids are structseg_<n> with n zero-padded to 3 digits (structseg_001), so
 * they sort as the numbers do; import_meta.json keeps the original folder.
 */
import * as path from 'node:path';
import type { Issue } from '../../../core/index.js';
import { findNifti, firstFolder, folderNames } from './scan-helpers.js';
import type { Importer, ScanResult, SourceCase } from './types.js';

function scan(source: string): ScanResult {
  const issues: Issue[] = [];
  const root = firstFolder([path.join(source, 'Lung_GTV')]) ?? source;
  const cases: SourceCase[] = [];
  const ignored: string[] = [];
  const numbered = folderNames(root).filter((name) => {
    if (/^\d+$/.test(name)) return true;
    ignored.push(path.join(root, name));
    return false;
  });
  for (const name of numbered.sort((a, b) => Number(a) - Number(b))) {
    const folder = path.join(root, name);
    const image = findNifti(folder, 'data');
    const label = findNifti(folder, 'label');
    if (!image) issues.push({ file: path.join(folder, 'data.nii.gz'), path: '', code: 'not-found', message: 'CT of this case not found' });
    if (!label) issues.push({ file: path.join(folder, 'label.nii.gz'), path: '', code: 'not-found', message: 'GTV label of this case not found' });
    if (!image || !label) continue;
    cases.push({
      id: `structseg_${name.padStart(3, '0')}`,
      image,
      label: { file: label, rule: { kind: 'values', allowed: [0, 1] } },
      extras: [],
      facts: { sourceFolder: folder },
    });
  }
  if (numbered.length === 0) {
    issues.push({ file: root, path: '', code: 'no-cases', message: 'no numbered case folders (<n>/data.nii.gz, <n>/label.nii.gz) found; give the Lung_GTV folder' });
  }
  return {
    cases,
    issues,
    notes: {
      release: 'StructSeg 2019, Task 4: lung gross target volume (Lung_GTV)',
      labels: 'labelsTr: 1 = GTV',
      ...(ignored.length > 0 ? { ignoredFolders: ignored } : {}),
    },
  };
}

export const STRUCTSEG_GTV_IMPORTER: Importer = {
  kind: 'structseg-gtv',
  scan,
  alignment: 'same-grid',
  detectRadiopaediaWindow: false,
  datasetJson: {
    channel_names: { '0': 'CT' },
    labels: { background: 0, GTV: 1 },
    file_ending: '.nii.gz',
    name: 'StructSegLungGTV',
    description: 'StructSeg 2019 Task 4: lung cancer gross target volume, label 1 = GTV',
    reference: 'https://structseg2019.grand-challenge.org/',
  },
};
