/**
 * Test support (imported by the sampling tests only): a tiny preprocessed dataset made by the real
 * pipeline - synthetic phantom cases (synth) -> fingerprint -> 'tiny' plan -> preprocessDataset.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeSynthDataset, type LesionKind } from '../../synth/index.js';
import { computeFingerprint } from '../fingerprint.js';
import { planExperiment } from '../planning.js';
import type { Plan } from '../planning_schema.js';
import { preprocessDataset } from '../preprocess_dataset.js';

export interface TestDataset {
  root: string;
  plan: Plan;
  preprocessedDirs: string[];
  caseIds: string[][];
  remove(): void;
}

/** Two small synthetic datasets (tumor and effusion by default), preprocessed under one plan. */
export async function makeTestDataset(kinds: LesionKind[] = ['tumor', 'effusion'], casesPerDataset = 2): Promise<TestDataset> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-sampling-'));
  const rawDirs: string[] = [];
  const caseIds: string[][] = [];
  for (const [index, kind] of kinds.entries()) {
    const dir = path.join(root, `Dataset00${index + 1}_${kind}`);
    const written = await writeSynthDataset({ kind, cases: casesPerDataset, out: dir, seed: 11 + index, size: 'tiny' });
    rawDirs.push(dir);
    caseIds.push(written.caseIds);
  }
  const fingerprint = await computeFingerprint(rawDirs, { sampleBudget: 20_000 });
  const plan = planExperiment(fingerprint, 'tiny');
  const preprocessedDirs: string[] = [];
  for (const dir of rawDirs) {
    const out = path.join(root, 'preprocessed', path.basename(dir));
    await preprocessDataset(dir, plan, out, { workers: 0 });
    preprocessedDirs.push(out);
  }
  return { root, plan, preprocessedDirs, caseIds, remove: () => fs.rmSync(root, { recursive: true, force: true }) };
}
