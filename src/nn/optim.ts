/**
 * SGD with Nesterov momentum and weight decay exactly as torch.optim.SGD (nnU-Net: lr 0.01,
 * momentum 0.99, weight decay 3e-5), gradient-norm clipping as torch.nn.utils.clip_grad_norm_, and
 * the poly learning-rate schedule lr = lr0 * (1 - epoch / maxEpochs)^0.9.
 */
import { add, addInPlace, clone, mulInPlace, noGrad, norm, scope, type Tensor } from '../tensor/index.js';
import { type Parameter } from './module.js';

export const SGD_DEFAULTS = { lr: 0.01, momentum: 0.99, nesterov: true, weightDecay: 3e-5 } as const;

export interface SgdOptions {
  lr?: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export class SGD {
  lr: number;
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  /** Momentum buffers by parameter name (created on a parameter's first update, as PyTorch). */
  readonly buffers = new Map<string, Tensor>();

  constructor(private readonly parameters: ReadonlyMap<string, Parameter>, options: SgdOptions = {}) {
    this.lr = options.lr ?? SGD_DEFAULTS.lr;
    this.momentum = options.momentum ?? SGD_DEFAULTS.momentum;
    this.nesterov = options.nesterov ?? SGD_DEFAULTS.nesterov;
    this.weightDecay = options.weightDecay ?? SGD_DEFAULTS.weightDecay;
  }

  /** One update of every trainable parameter that has a gradient (others are skipped, as PyTorch). */
  step(): void {
    noGrad(() => {
      for (const [name, parameter] of this.parameters) {
        if (parameter.frozen) continue;
        scope(() => {
          const weight = parameter.value;
          const grad = weight.grad;
          if (grad === null) return;
          const direction = this.weightDecay !== 0 ? add(grad, weight, this.weightDecay) : grad;
          let update = direction;
          if (this.momentum !== 0) {
            const buffer = this.buffers.get(name);
            if (buffer === undefined) {
              const created = clone(direction).keep();
              this.buffers.set(name, created);
              update = this.nesterov ? add(direction, created, this.momentum) : created;
            } else {
              addInPlace(mulInPlace(buffer, this.momentum), direction);
              update = this.nesterov ? add(direction, buffer, this.momentum) : buffer;
            }
          }
          addInPlace(weight, update, -this.lr);
        });
      }
    });
  }

  dispose(): void {
    for (const buffer of this.buffers.values()) buffer.dispose();
    this.buffers.clear();
  }
}

/**
 * Scale all gradients so that their joint L2 norm is at most maxNorm (torch's clip_grad_norm_:
 * coefficient maxNorm / (norm + 1e-6), clamped to 1). Returns the norm before clipping.
 */
export function clipGradNorm(parameters: Iterable<Parameter>, maxNorm: number): number {
  return noGrad(() =>
    scope(() => {
      const grads: Tensor[] = [];
      for (const parameter of parameters) {
        if (parameter.frozen) continue;
        const grad = parameter.value.grad;
        if (grad !== null) grads.push(grad);
      }
      if (grads.length === 0) return 0;
      let squared = 0;
      for (const grad of grads) {
        const n = norm(grad).item();
        squared += n * n;
      }
      const total = Math.sqrt(squared);
      const coefficient = maxNorm / (total + 1e-6);
      if (coefficient < 1) for (const grad of grads) mulInPlace(grad, coefficient);
      return total;
    }),
  );
}

export const POLY_DEFAULTS = { initialLr: 0.01, exponent: 0.9 } as const;

/** nnU-Net's PolyLRScheduler, set at the start of each epoch: epoch 0 gives initialLr. */
export function polyLr(epoch: number, maxEpochs: number, initialLr: number = POLY_DEFAULTS.initialLr, exponent: number = POLY_DEFAULTS.exponent): number {
  if (maxEpochs <= 0) throw new RangeError(`polyLr: maxEpochs must be positive, got ${maxEpochs}`);
  const progress = Math.min(Math.max(epoch / maxEpochs, 0), 1);
  return initialLr * (1 - progress) ** exponent;
}
