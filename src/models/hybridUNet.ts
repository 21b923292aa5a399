/**
 * The network of Hybrid-encoder Learning: two PlainConvUNet encoders of the same architecture, a
 * Selective Fusion unit per resolution level, and one PlainConvUNet decoder.
 *
 * - `dedicated_encoder.` is randomly initialised and trained on the target data (keyToEncoder).
 * - `adapted_encoder.` receives the pre-trained encoder (`encoder.` in a PlainConvUNet or
 *   MultiHeadUNet checkpoint) and is frozen (keyToAdaptedEncoder).
 * - `fusion.{level}.` merges both encoders' features of encoder stage `level` (0 = full
 *   resolution, n-1 = bottleneck), see selectiveFusion.ts.
 * - `decoder.` has exactly the names of PlainConvUNet's decoder, heads at `decoder.seg_layers.`.
 *
 * `fuseLevels: 'all'` fuses every level whose features feed the decoder (each skip and the
 * bottleneck), as the paper does. `fuseLevels: 'bottleneck'` fuses only the bottleneck; the other
 * skips then come from the Dedicated encoder alone, so the pre-trained representation enters the
 * decoder only through its deepest features (a cheaper ablation with one fusion unit).
 */
import { Module } from '../nn/index.js';
import { noGrad, type Tensor, type Device } from '../tensor/index.js';
import { PlainConvEncoder, UNetDecoder, applyHeads, validateUNetConfig, type NetworkKeys, type UNetConfig } from './plainConvUNet.js';
import { SelectiveFusion, type SelectiveFusionOptions } from './selectiveFusion.js';

export type FuseLevels = 'all' | 'bottleneck';

export interface HybridUNetOptions {
  fuseLevels?: FuseLevels;
  /** Options of every Selective Fusion unit (reduction r, minimum width, kernel of H). */
  fusion?: Omit<SelectiveFusionOptions, 'device' | 'negativeSlope' | 'normEps'>;
  device?: Device;
}

export const HYBRID_DEFAULTS = { fuseLevels: 'all' } as const satisfies { fuseLevels: FuseLevels };

/** The encoder stages that get a fusion unit. */
export function fusedLevels(numStages: number, fuseLevels: FuseLevels): number[] {
  if (fuseLevels === 'bottleneck') return [numStages - 1];
  return Array.from({ length: numStages }, (_, level) => level);
}

/** Fusion units named by the encoder stage they serve (`fusion.3.` is the bottleneck of a 4-stage net). */
export class FusionLevels extends Module {
  readonly units = new Map<number, SelectiveFusion>();

  constructor(levels: readonly number[], channelsPerLevel: readonly number[], options: SelectiveFusionOptions) {
    super();
    for (const level of levels) this.units.set(level, this.addModule(String(level), new SelectiveFusion(channelsPerLevel[level]!, options)));
  }
}

export class HybridUNet extends Module implements NetworkKeys {
  readonly dedicated_encoder: PlainConvEncoder;
  readonly adapted_encoder: PlainConvEncoder;
  readonly fusion: FusionLevels;
  readonly decoder: UNetDecoder;
  readonly keyToEncoder = 'dedicated_encoder.';
  readonly keyToAdaptedEncoder = 'adapted_encoder.';
  readonly keyToFusion = 'fusion.';
  readonly keyToDecoder = 'decoder.';
  readonly keyToHeads = ['decoder.seg_layers.'];
  readonly fuseLevels: FuseLevels;
  deepSupervision: boolean;

  constructor(readonly config: UNetConfig, options: HybridUNetOptions = {}) {
    super();
    validateUNetConfig(config);
    const device = options.device ?? { type: 'cpu' };
    this.fuseLevels = options.fuseLevels ?? HYBRID_DEFAULTS.fuseLevels;
    this.dedicated_encoder = this.addModule('dedicated_encoder', new PlainConvEncoder(config, device));
    this.adapted_encoder = this.addModule('adapted_encoder', new PlainConvEncoder(config, device));
    const fusionOptions: SelectiveFusionOptions = { ...options.fusion, device };
    if (config.negativeSlope !== undefined) fusionOptions.negativeSlope = config.negativeSlope;
    if (config.normEps !== undefined) fusionOptions.normEps = config.normEps;
    this.fusion = this.addModule('fusion', new FusionLevels(fusedLevels(config.featuresPerStage.length, this.fuseLevels), config.featuresPerStage, fusionOptions));
    this.decoder = this.addModule('decoder', new UNetDecoder(config, device));
    this.deepSupervision = config.deepSupervision;
  }

  /** The skips the decoder sees: fused where a unit exists, else the Dedicated encoder's. */
  fusedSkips(x: Tensor): Tensor[] {
    const dedicated = this.dedicated_encoder.forward(x);
    // A frozen Adapted encoder needs no autograd graph: its activations are constants for the
    // fusion units, whose own weights still get gradients through a * Xde + b * Xad.
    const adaptedFrozen = this.adapted_encoder.parameters().every((p) => p.frozen);
    const adapted = adaptedFrozen ? noGrad(() => this.adapted_encoder.forward(x)) : this.adapted_encoder.forward(x);
    return dedicated.map((features, level) => {
      const unit = this.fusion.units.get(level);
      return unit ? unit.forward(features, adapted[level]!) : features;
    });
  }

  /** Logits: with deep supervision one per decoder level, full resolution first; else one. */
  forward(x: Tensor): Tensor[] {
    return applyHeads(this.decoder.seg_layers, this.decoder.levels(this.fusedSkips(x), !this.deepSupervision), this.deepSupervision);
  }
}

export function buildHybridUNet(config: UNetConfig, options: HybridUNetOptions = {}): HybridUNet {
  return new HybridUNet(config, options);
}
