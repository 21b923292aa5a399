/** Network architectures, built by pure functions from a config, with an explicit registry. */
export * from './plainConvUNet.js';
