/** Network architectures, built by pure functions from a config, with an explicit registry. */
export * from './plainConvUNet.js';
export * from './selectiveFusion.js';
export * from './hybridUNet.js';
export * from './residualEncoderUNet.js';
export * from './registry.js';
export * from './nnunetArchitecture.js';
