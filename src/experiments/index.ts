/**
 * experiments: the study (`lesionseg experiment`): the spec and its presets, the study folder and
 * its jobs, the runner (pre-training and training as spawned `lesionseg` steps, prediction and
 * evaluation here), the paired comparisons and the paper's findings, and the results.json types
 * the report renders.
 */
export * from './spec.js';
export * from './presets.js';
export * from './layout.js';
export * from './results.js';
export * from './steps.js';
export * from './arms.js';
export * from './comparisons.js';
export * from './findings.js';
export { busiestSlice, displaySlice, writeOverlay, type OverlayArm } from './overlays.js';
export { runExperiment, startExperiment, type ExperimentOutcome, type RunExperimentOptions } from './runner.js';
export * from './executor.js';
export * from './studySteps.js';
export * from './slurm.js';
export * from './slurmJobs.js';
export * from './status.js';
