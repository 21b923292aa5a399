/** What every layer may import. */
export * from './errors.js';
export * from './environment.js';
export * from './schema.js';
export * from './rng.js';
export * from './device.js';
export * from './temporary.js';
export * from './atomic.js';
export * from './volume.js';
export * from './grid.js';
export * from './progress.js';
export * from './precision.js';
export * from './paths.js';
export * from './resources.js';
export * from './cpuLoad.js';
export * from './quote.js';
export * from './folderLock.js';
export * from './free-port.js';
