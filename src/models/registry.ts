/**
 * The explicit registry of architectures a checkpoint may name (STYLE rules 11 and 16): a
 * checkpoint's sidecar stores `architecture.name` and the options, and training, transfer and
 * inference all build through this one table. Each entry says how to build the network, where its
 * output heads live (the weights a transfer never copies), and whether it predicts one label space
 * (the multi-head pre-training model has one head per task, so it cannot predict by itself).
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
  taskClasses?: number[] | null;
  /** HybridUNet options (fusion levels, fusion widths). */
  hybrid?: Omit<HybridUNetOptions, 'device'>;
}

export type ArchitectureModel = PlainConvUNet | MultiHeadUNet | HybridUNet | ResidualEncoderUNet;

interface ArchitectureEntry {
  build: (spec: ArchitectureSpec, device: Device) => ArchitectureModel;
  /** Prefixes of the output heads (the layers that depend on the label space). */
  heads: readonly string[];
  /** Whether the network's output is one label space that prediction can argmax. */
  predicts: boolean;
}

export const ARCHITECTURES = {
  PlainConvUNet: { build: (spec, device) => new PlainConvUNet(spec.config, { device }), heads: ['decoder.seg_layers.'], predicts: true },
  MultiHeadUNet: {
    build: (spec, device) => {
      if (!spec.taskClasses) throw new Error('MultiHeadUNet needs taskClasses');
      return new MultiHeadUNet(spec.config, spec.taskClasses, { device });
    },
    heads: ['decoder.task_heads.'],
    predicts: false,
  },
  HybridUNet: { build: (spec, device) => new HybridUNet(spec.config, { ...spec.hybrid, device }), heads: ['decoder.seg_layers.'], predicts: true },
  ResidualEncoderUNet: {
    build: (spec, device) => {
      if (!isResidualEncoderConfig(spec.config)) throw new Error('ResidualEncoderUNet needs nBlocksPerStage in its config');
      return new ResidualEncoderUNet(spec.config, { device });
    },
    heads: ['decoder.seg_layers.'],
    predicts: true,
  },
} as const satisfies Record<string, ArchitectureEntry>;

export type ArchitectureName = keyof typeof ARCHITECTURES;

export function isArchitectureName(name: string): name is ArchitectureName {
  return Object.hasOwn(ARCHITECTURES, name);
}

/** The architectures whose output prediction can use (one label space). */
export const PREDICTING_ARCHITECTURES: readonly ArchitectureName[] = (Object.keys(ARCHITECTURES) as ArchitectureName[]).filter((name) => ARCHITECTURES[name].predicts);

/** Where the heads of architecture `name` live. */
export function headPrefixes(name: ArchitectureName): readonly string[] {
  return ARCHITECTURES[name].heads;
}

export function buildArchitecture(spec: ArchitectureSpec, device: Device = { type: 'cpu' }): ArchitectureModel {
  if (!isArchitectureName(spec.name)) {
    throw new Error(`unknown architecture '${String(spec.name)}' (known: ${Object.keys(ARCHITECTURES).join(', ')})`);
  }
  return ARCHITECTURES[spec.name].build(spec, device);
}
