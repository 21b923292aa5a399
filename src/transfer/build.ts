/**
 * Build the network and the optimizer a strategy trains: PlainConvUNet or HybridUNet for the
 * target label space, and an SGD over the trainable parameters only (frozen ones are not in it),
 * seeded with the carried momentum buffers when the plan carries the optimizer.
 */
import { fromArray, cast, scope, type Device } from '../tensor/index.js';
import { SGD, hostToFloat32, type SgdOptions, type Parameter } from '../nn/index.js';
import { buildArchitecture, type ArchitectureSpec, type FuseLevels, type HybridUNetOptions, type UNetConfig } from '../models/index.js';
import { TRANSFER_DEFAULTS, transferPlanShape, type TransferModelSpec, type TransferPlan, type TransferStrategy } from './plan.js';
import { type TransferModel, type TransferResult } from './apply.js';

export interface BuildOptions {
  device?: Device;
  /** hybrid: options of the Selective Fusion units (reduction r, minimum width, kernel of H). */
  fusion?: HybridUNetOptions['fusion'];
}

/** The network of a model spec with `targetClasses` output classes (background included). */
export function buildModel(spec: TransferModelSpec, config: UNetConfig, targetClasses: number, options: BuildOptions = {}): TransferModel {
  const targetConfig: UNetConfig = { ...config, numClasses: targetClasses };
  const device = options.device ?? { type: 'cpu' };
  // Through the one architecture registry, as every checkpoint reader builds it back; a spec with
  // fusion levels builds a hybrid (with the fusion units' options).
  const hybrid: Pick<ArchitectureSpec, 'hybrid'> = 'fuseLevels' in spec ? { hybrid: { fuseLevels: spec.fuseLevels, ...(options.fusion ? { fusion: options.fusion } : {}) } } : {};
  return buildArchitecture({ name: spec.kind, config: targetConfig, ...hybrid }, device) as TransferModel;
}

/** The network a plan trains. */
export function buildModelForPlan(plan: TransferPlan, config: UNetConfig, targetClasses: number, options: BuildOptions = {}): TransferModel {
  return buildModel(plan.model, config, targetClasses, options);
}

/** The network a strategy trains (its plan's model: HybridUNet for hybrid, else PlainConvUNet). */
export function buildModelForStrategy(
  strategy: TransferStrategy,
  config: UNetConfig,
  targetClasses: number,
  options: BuildOptions & { fuseLevels?: FuseLevels } = {},
): TransferModel {
  const spec: TransferModelSpec = transferPlanShape(strategy).model;
  const model = 'fuseLevels' in spec ? { ...spec, fuseLevels: options.fuseLevels ?? TRANSFER_DEFAULTS.fuseLevels } : spec;
  return buildModel(model, config, targetClasses, options);
}

/** Trainable parameters by name (what the optimizer may update). */
export function trainableParameters(model: TransferModel): Map<string, Parameter> {
  return new Map([...model.namedParameters()].filter(([, parameter]) => !parameter.frozen));
}

/**
 * SGD over the trainable parameters; with a carried optimizer state its momentum buffers are the
 * pre-trained ones (mapped to the new names by applyTransfer), on each parameter's device and dtype.
 */
export function buildTransferOptimizer(model: TransferModel, transfer: TransferResult, options: SgdOptions = {}): SGD {
  const parameters = trainableParameters(model);
  const optimizer = new SGD(parameters, options);
  for (const [name, buffer] of transfer.momentum) {
    const parameter = parameters.get(name);
    if (parameter === undefined) throw new Error(`momentum buffer for ${name}, which is not a trainable parameter`);
    const tensor = scope(() => {
      const values = fromArray(hostToFloat32(buffer), buffer.shape, { device: parameter.value.device });
      return parameter.value.dtype === 'float32' ? values : cast(values, parameter.value.dtype);
    });
    optimizer.buffers.set(name, tensor.keep());
  }
  return optimizer;
}
