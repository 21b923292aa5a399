/**
 * The `--precision` option every computing command shares: fp32, bf16, fp16 or auto (bf16 where the
 * CPU computes it natively, else fp32; fp16 on CUDA). Resolved once per command; asking for bf16 on
 * a CPU that only emulates it prints one warning (it stays the user's choice).
 */
import { Option } from '@commander-js/extra-typings';
import { PRECISION_REQUESTS, resolvePrecision, type Device, type Precision, type PrecisionRequest } from '../core/index.js';
import { nnunetConfigurationFolder } from '../checkpoint/index.js';
import { nnunetModelFolderOf } from '../io/index.js';

export function precisionOption(defaultValue: PrecisionRequest = 'fp32') {
  return new Option('--precision <p>', 'fp32, bf16, fp16 (CUDA) or auto: bf16 where the CPU has it natively (AVX512-BF16, AMX), else fp32; fp16 on CUDA')
    .choices(PRECISION_REQUESTS)
    .default(defaultValue);
}

let warned = false;

/** The precision to run for `request` on `device`; warns once on stderr when bf16 would be emulated. */
export function resolvePrecisionFlag(request: PrecisionRequest, device: Device): Precision {
  const { precision, warning } = resolvePrecision(request, device);
  if (warning !== null && !warned) {
    warned = true;
    process.stderr.write(`lesionseg: warning: ${warning}\n`);
  }
  return precision;
}

/**
 * `predict`'s precision. `auto` is resolvePrecisionFlag's (bf16 where native), except that a model
 * nnU-Net wrote predicts as nnU-Net does on that device, fp32 on a CPU (nnU-Net autocasts on CUDA
 * only, which auto's fp16 there matches), and the ONNX engine runs fp32. results/precision/ holds
 * the comparison that keeps bf16 for our own models: on the demo's trained models, bf16 differs
 * from fp32 on 0.004 % of voxels and by +0.0006 DSC mean.
 */
export function resolvePredictPrecision(request: PrecisionRequest, device: Device, models: readonly string[], engine: 'torch' | 'onnx', configuration?: string): Precision {
  if (request === 'auto' && engine === 'onnx') return 'fp32';
  // An nnU-Net model folder, one of its folds or checkpoints, or (with --configuration) an nnUNet_results dataset folder.
  const byNnunet = (model: string): boolean => nnunetModelFolderOf(model) !== null || (configuration !== undefined && nnunetConfigurationFolder(model, configuration) !== null);
  if (request === 'auto' && device.type === 'cpu' && models.some(byNnunet)) return 'fp32';
  return resolvePrecisionFlag(request, device);
}
