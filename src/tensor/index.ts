/** Public API of the tensor layer (see CONTRACT.md): Tensor, creation, scopes, global switches, ops. */
export type { Device } from '../core/index.js';
export type { DType, HostArray } from './dtype.js';
export type { CpuCacheStats, NativeRuntimeInfo } from './binding.js';
export type { RuntimeLibraries } from './state.js';
export { Tensor, type HostTypedArray } from './tensor.js';
export { fromArray, zeros, ones, full, randn, rand, arange, zerosLike, onesLike, type TensorOptions } from './creation.js';
export { scope, liveTensors, finalizedTensors } from './scope.js';
export {
  noGrad, enableGrad, isGradEnabled, autocast, manualSeed, setNumThreads, getNumThreads, runtimeLibraries, parseTorchConfig, cudaIsAvailable, cudaDeviceCount,
  nativeLiveTensors, nativeFinalizedTensors, tuneAllocatorForTraining, emptyCpuCache, cpuCacheStats, profileOps, type OpProfileRow,
  setBf16Kernels, bf16KernelsActive,
} from './state.js';
export * from './ops_pointwise.js';
export * from './ops_nn.js';
export * from './ops_shape.js';
export { hostCropInto, hostPlaneLabels, hostGammaPrepare, hostGammaFinish, hostFlipInPlace, hostContrastInPlace, hostZeroNegative, hostBlurAxis } from './host_kernels.js';
export {
  distributedSupport, processGroupInitialized, initProcessGroup, allReduce, broadcast, allReduceSync, storeSet, storeTryGet,
  shutdownProcessGroup, killWithParent, DEFAULT_BUCKET_BYTES, type DistributedSupport, type ProcessGroupOptions,
} from './distributed.js';
