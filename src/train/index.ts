/** Training: the step, the trainer loop, checkpoints. */
export * from './step.js';
export * from './benchmark.js';
export * from './selftest.js';
