/** Transfer strategies as data (scratch, continual, body fine-tuning, frozen encoder, hybrid), their execution and report. */
export * from './plan.js';
export * from './apply.js';
export * from './build.js';
export * from './strategies.js';
