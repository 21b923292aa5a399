/**
 * The explicit registry of architectures a checkpoint may name (STYLE rule 11): a checkpoint's
 * sidecar stores `architecture.name` and the options, and loading looks the builder up here.
 */
import { type Device } from '../core/index.js';
import { MultiHeadUNet, PlainConvUNet, type UNetConfig } from './plainConvUNet.js';
import { HybridUNet, type HybridUNetOptions } from './hybridUNet.js';
import { isResidualEncoderConfig, ResidualEncoderUNet } from './residualEncoderUNet.js';

export interface ArchitectureSpec {
  name: ArchitectureName;
  /** ResidualEncoderUNet: a ResidualEncoderUNetConfig (with nBlocksPerStage). */
  config: UNetConfig;
  /** MultiHeadUNet: classes (incl. background) of each task's head. */
  taskClasses?: number[];
  /** HybridUNet options (fusion levels, fusion widths). */
  hybrid?: Omit<HybridUNetOptions, 'device'>;
}

export const ARCHITECTURES = {
  PlainConvUNet: (spec: ArchitectureSpec, device: Device) => new PlainConvUNet(spec.config, { device }),
  MultiHeadUNet: (spec: ArchitectureSpec, device: Device) => {
    if (!spec.taskClasses) throw new Error('MultiHeadUNet needs taskClasses');
    return new MultiHeadUNet(spec.config, spec.taskClasses, { device });
  },
  HybridUNet: (spec: ArchitectureSpec, device: Device) => new HybridUNet(spec.config, { ...spec.hybrid, device }),
  ResidualEncoderUNet: (spec: ArchitectureSpec, device: Device) => {
    if (!isResidualEncoderConfig(spec.config)) throw new Error('ResidualEncoderUNet needs nBlocksPerStage in its config');
    return new ResidualEncoderUNet(spec.config, { device });
  },
} as const;

export type ArchitectureName = keyof typeof ARCHITECTURES;

export function isArchitectureName(name: string): name is ArchitectureName {
  return Object.hasOwn(ARCHITECTURES, name);
}

export function buildArchitecture(spec: ArchitectureSpec, device: Device = { type: 'cpu' }): PlainConvUNet | MultiHeadUNet | HybridUNet | ResidualEncoderUNet {
  if (!isArchitectureName(spec.name)) {
    throw new Error(`unknown architecture '${String(spec.name)}' (known: ${Object.keys(ARCHITECTURES).join(', ')})`);
  }
  return ARCHITECTURES[spec.name](spec, device);
}
