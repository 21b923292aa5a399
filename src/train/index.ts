/** Training: the step, the trainer loop and its hooks, checkpoints, splits, strategies, runs. */
export * from './step.js';
export * from './benchmark.js';
export * from './selftest.js';
export * from './batches.js';
export * from './schedule.js';
export * from './pseudoDice.js';
export * from './trainer.js';
export * from './sidecar.js';
export * from './pretrained.js';
export * from './hooks.js';
export * from './split.js';
export * from './strategy.js';
export * from './run.js';
export * from './command.js';
export * from './multiTask.js';
export * from './sharedPlan.js';
export * from './pretrain.js';
