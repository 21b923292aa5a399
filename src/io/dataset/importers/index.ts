/**
 * Importers: public releases (COVID-19-CT-Seg, MSD Task06_Lung, StructSeg 2019 Lung_GTV, NSCLC
 * PleThora effusions) into the nnU-Net v2 raw layout (`lesionseg import KIND SRC --out DIR`).
 */
import { InputError } from '../../../core/index.js';
import { COVID19_CTSEG_IMPORTER } from './covid19-ctseg.js';
import { MSD_LUNG_IMPORTER } from './msd-lung.js';
import { NSCLC_EFFUSION_IMPORTER } from './nsclc-effusion.js';
import { STRUCTSEG_GTV_IMPORTER } from './structseg-gtv.js';
import { runImport } from './run-import.js';
import { COVID_LABEL_SETS, IMPORT_KINDS, type Importer, type ImportKind, type ImportOptions, type ImportResult } from './types.js';

export const IMPORTERS = {
  'covid19-ctseg': COVID19_CTSEG_IMPORTER,
  'msd-lung': MSD_LUNG_IMPORTER,
  'structseg-gtv': STRUCTSEG_GTV_IMPORTER,
  'nsclc-effusion': NSCLC_EFFUSION_IMPORTER,
} satisfies Record<ImportKind, Importer>;

/** Import the release in `sourceDir` of `kind` into `outDir`; a ValidationError lists every problem found. */
export async function importDataset(kind: string, sourceDir: string, outDir: string, options: ImportOptions = {}): Promise<ImportResult> {
  if (!Object.hasOwn(IMPORTERS, kind)) {
    throw new InputError(`unknown import kind '${kind}': use one of ${IMPORT_KINDS.join(', ')}`, { code: 'bad-kind' });
  }
  if (options.labels !== undefined && kind !== 'covid19-ctseg') {
    throw new InputError(`--labels applies to covid19-ctseg only (the other releases have one lesion label), not to ${kind}`, { code: 'bad-arguments' });
  }
  if (options.labels !== undefined && !(COVID_LABEL_SETS as readonly string[]).includes(options.labels)) {
    throw new InputError(`--labels must be one of ${COVID_LABEL_SETS.join(', ')}, got '${options.labels}'`, { code: 'bad-arguments' });
  }
  return runImport(IMPORTERS[kind as ImportKind], sourceDir, outDir, options);
}

export { COVID_LABEL_SETS, IMPORT_KINDS, IMPORTER_VERSION, type CovidLabelSet, type ImportKind, type ImportOptions, type ImportResult, type Importer } from './types.js';
export { IMPORT_META_FILE, type ImportMeta } from './run-import.js';
export { COVID19_CTSEG_CASE_IDS, COVID19_CTSEG_LUNG_LABELS, COVID19_CTSEG_SAME_PATIENT, covidCaseId } from './covid19-ctseg.js';
export { radiopaediaValueToHu } from './convert.js';
export { findAxisMapping, reorientToImage, describeMapping, type AxisMapping } from './reorient.js';
