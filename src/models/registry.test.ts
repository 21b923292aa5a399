/**
 * Every entry of the architecture registry, checked against what the rest of lesionseg does with it,
 * so that a new entry is tested the moment it is added:
 * - nnU-Net entries: config -> arch_kwargs -> config is the identity (no problem reported), and
 *   config -> our plan -> nnU-Net's plans.json (export) -> our plan and config (data's reader) too;
 *   an unknown dynamic_network_architectures class is refused naming it and every class the
 *   registry builds;
 * - plan entries: a plan without one of the entry's own fields is refused naming the field;
 * - the transfer key rule: the built network declares the entry's keys, and each prefix (encoder,
 *   decoder, every head, the adapted encoder) names at least one parameter of its state dict;
 * - ONNX: an exportable entry's network is written (a non-empty model naming it), any other is
 *   refused with InputError 'not-exportable' naming the architecture, the entry's reason and the
 *   exportable ones.
 * The networks are 3-stage toys (4-8-16 features) on the CPU: a few milliseconds each.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CPU, InputError, z } from '../core/index.js';
import { planFromNnunet, validatePlan, type Plan } from '../data/index.js';
import type { DatasetJson } from '../io/index.js';
import { onnxModelBytes, nnunetPlansFromPlan } from '../export/index.js';
import { tinyInferencePlan } from '../infer/test-support.js';
import { stateDict } from '../nn/index.js';
import {
  architectureEntry,
  ARCHITECTURES,
  buildArchitecture,
  networkFromNnunet,
  nnunetArchitectureOf,
  NNUNET_CLASS_NAMES,
  ONNX_EXPORTABLE_ARCHITECTURES,
  ownConfigFields,
  type ArchitectureConfig,
  type ArchitectureName,
  type ArchitectureSpec,
} from './index.js';

const NAMES = Object.keys(ARCHITECTURES) as ArchitectureName[];
const PATCH = [8, 16, 16] as const;
/** Per-stage sample of an entry's own fields (every own field is a list with one entry per stage). */
const OWN_FIELD_SAMPLE = [1, 2, 2];

/** A 3-stage config with the entry's own fields filled from OWN_FIELD_SAMPLE (checked against the entry's zod piece). */
function configOf(name: ArchitectureName): ArchitectureConfig {
  const own: Record<string, unknown> = {};
  for (const [field, schema] of Object.entries(architectureEntry(name)!.plan?.fields ?? {})) {
    assert.ok(z.safeParse(schema, OWN_FIELD_SAMPLE).success, `${name}.${field}: the test's per-stage sample does not fit its zod piece; give this test a sample for it`);
    own[field] = [...OWN_FIELD_SAMPLE];
  }
  return {
    inputChannels: 1,
    numClasses: 3,
    featuresPerStage: [4, 8, 16],
    kernelSizes: [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
    strides: [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
    nConvPerStage: 2,
    nConvPerStageDecoder: 1,
    ...own,
    deepSupervision: false,
    negativeSlope: 0.02,
    normEps: 1e-4,
  };
}

function specOf(name: ArchitectureName): ArchitectureSpec {
  const needs = architectureEntry(name)!.needs;
  return { name, config: configOf(name), ...(needs.includes('taskClasses') ? { taskClasses: [3, 2] } : {}), ...(needs.includes('hybrid') ? { hybrid: { fuseLevels: 'all' } } : {}) };
}

/** The plan of tinyInferencePlan with `name`'s network of configOf(name). */
function planOf(name: ArchitectureName): Plan {
  const plan = tinyInferencePlan();
  const config = configOf(name);
  plan.configuration.network = {
    ...plan.configuration.network,
    architecture: name as Plan['configuration']['network']['architecture'],
    nStages: 3,
    featuresPerStage: config.featuresPerStage,
    kernelSizes: config.kernelSizes as [number, number, number][],
    strides: config.strides as [number, number, number][],
    nConvPerStage: config.nConvPerStage!,
    nConvPerStageDecoder: config.nConvPerStageDecoder!,
    ...ownConfigFields(name, config),
    norm: { kind: 'instance', eps: config.normEps!, affine: true },
    nonlin: { kind: 'leaky_relu', negativeSlope: config.negativeSlope! },
  };
  return plan;
}

test('the registry lists the four architectures with their parts', () => {
  assert.deepEqual(NAMES, ['PlainConvUNet', 'MultiHeadUNet', 'HybridUNet', 'ResidualEncoderUNet']);
  assert.deepEqual(ONNX_EXPORTABLE_ARCHITECTURES, ['PlainConvUNet']);
  assert.deepEqual(NNUNET_CLASS_NAMES, [
    'dynamic_network_architectures.architectures.unet.PlainConvUNet',
    'dynamic_network_architectures.architectures.unet.ResidualEncoderUNet',
    'dynamic_network_architectures.architectures.residual_unet.ResidualEncoderUNet',
  ]);
});

for (const name of NAMES) {
  const entry = architectureEntry(name)!;

  if (entry.nnunet !== null) {
    test(`${name}: config -> nnU-Net arch_kwargs -> config is the identity`, () => {
      const config = configOf(name);
      const architecture = nnunetArchitectureOf(name, config);
      assert.equal(architecture.network_class_name, entry.nnunet!.classNames[0]);
      const problems: string[] = [];
      const back = networkFromNnunet(architecture, { at: 'architecture', report: (path, message) => problems.push(`${path}: ${message}`), inputChannels: 1, numClasses: 3, patchSize: [...PATCH] });
      assert.deepEqual(problems, []);
      assert.equal(back.name, name);
      assert.deepEqual(back.config, config);
      // Every class path the entry reads builds the same network.
      const aliasProblems: string[] = [];
      for (const className of entry.nnunet!.classNames) {
        assert.deepEqual(networkFromNnunet({ ...architecture, network_class_name: className }, { at: 'a', report: (p, m) => aliasProblems.push(`${p}: ${m}`), inputChannels: 1, numClasses: 3, patchSize: null }), back);
      }
      assert.deepEqual(aliasProblems, []);
    });
  }

  if (entry.nnunet !== null && entry.plan !== null) {
    test(`${name}: our plan -> nnU-Net plans.json (export) -> our plan and config (reader) is the identity`, () => {
      const plan = planOf(name);
      assert.deepEqual(validatePlan(plan), []);
      const config = configOf(name);
      const files = nnunetPlansFromPlan(plan, name, config, plan.datasets[0]!);
      const back = planFromNnunet(files.plans, files.datasetJson as unknown as DatasetJson, { plansFile: 'plans.json' });
      assert.equal(back.network.name, name);
      assert.deepEqual(back.network.config, config);
      assert.deepEqual(back.plan.configuration.network, plan.configuration.network);
    });
  }

  for (const field of Object.keys(entry.plan?.fields ?? {})) {
    test(`${name}: a plan without its own field ${field} is refused naming it`, () => {
      const plan = planOf(name);
      delete (plan.configuration.network as Record<string, unknown>)[field];
      const issues = validatePlan(plan);
      assert.deepEqual(issues.map((issue) => [issue.path, issue.message]), [[`configuration.network.${field}`, `'${field}' is required for ${name}`]]);
    });
  }

  test(`${name}: the built network declares the entry's keys, and each names parameters of its state dict`, () => {
    const network = buildArchitecture(specOf(name), CPU);
    try {
      const declared = network as unknown as { keyToEncoder: string; keyToDecoder: string; keyToHeads: string[]; keyToAdaptedEncoder?: string };
      assert.equal(declared.keyToEncoder, entry.keys.encoder);
      assert.equal(declared.keyToDecoder, entry.keys.decoder);
      assert.deepEqual(declared.keyToHeads, [...entry.keys.heads]);
      assert.equal(declared.keyToAdaptedEncoder, entry.keys.adaptedEncoder);
      const keys = [...stateDict(network).keys()];
      const prefixes: string[] = [entry.keys.encoder, entry.keys.decoder, ...entry.keys.heads, ...(entry.keys.adaptedEncoder !== undefined ? [entry.keys.adaptedEncoder] : [])];
      for (const prefix of prefixes) assert.ok(keys.some((key) => key.startsWith(prefix)), `${name}: no parameter under '${prefix}'`);
      // The encoder is not empty and is not the decoder: frozen-encoder freezes something, and not the heads.
      const encoder = keys.filter((key) => key.startsWith(entry.keys.encoder));
      assert.ok(encoder.length >= 2 && encoder.every((key) => !entry.keys.heads.some((head) => key.startsWith(head))));
    } finally {
      network.dispose();
    }
  });

  test(`${name}: ONNX support as the registry says (${entry.onnx.exportable ? 'written' : 'refused'})`, () => {
    const spec = specOf(name);
    const network = buildArchitecture(spec, CPU);
    const checkpoint = {
      kind: 'lesionseg' as const,
      file: `/runs/${name}/checkpoint_final.safetensors`,
      sidecarFile: `/runs/${name}/checkpoint_final.json`,
      name: 'final' as const,
      architecture: { name, config: spec.config, taskClasses: spec.taskClasses ?? null },
      plan: planOf(entry.plan !== null ? name : 'PlainConvUNet'),
      numEpochs: 1,
      weights: stateDict(network),
      optimizer: null,
      mirrorAxes: null,
      sidecar: null,
      description: name,
    };
    network.dispose();
    if (entry.onnx.exportable) {
      const bytes = onnxModelBytes(checkpoint);
      assert.ok(bytes.byteLength > 1000);
      assert.ok(Buffer.from(bytes).includes(`${name} from checkpoint_final.safetensors`));
      return;
    }
    const reason = entry.onnx.reason;
    assert.throws(() => onnxModelBytes(checkpoint), (error: unknown) => {
      assert.ok(error instanceof InputError && error.code === 'not-exportable');
      assert.equal(error.message, `${checkpoint.sidecarFile}: architecture '${name}' cannot be exported to ONNX (${reason}); exportable: ${ONNX_EXPORTABLE_ARCHITECTURES.join(', ')}`);
      assert.equal(error.file, checkpoint.sidecarFile);
      return true;
    });
  });
}

test('an nnU-Net class the registry does not build is refused naming it and every class it builds', () => {
  const problems: string[] = [];
  const architecture = { ...nnunetArchitectureOf('PlainConvUNet', configOf('PlainConvUNet')), network_class_name: 'my_networks.CustomUNet' };
  networkFromNnunet(architecture, { at: 'configurations.3d_fullres.architecture', report: (path, message) => problems.push(`${path}: ${message}`), inputChannels: 1, numClasses: 3, patchSize: [...PATCH] });
  assert.deepEqual(problems, [`configurations.3d_fullres.architecture.network_class_name: architecture 'my_networks.CustomUNet' is not supported: lesionseg builds ${NNUNET_CLASS_NAMES.join(', ')}`]);
});
