/**
 * `lesionseg predict`: segment images with a trained model, a fold ensemble, an nnU-Net v2 model folder or an ensemble of models (src/infer predictFiles),
 * through libtorch (--engine torch) or the same network exported to ONNX and run by onnxruntime-node (--engine onnx);
 * --summary, --view, --lungs, --lobes and --lobes-model write a summary and a viewer page per case (case-summary.ts, lobes-model.ts);
 * --postprocessing applies nnU-Net's.
 */
import * as os from 'node:os';
import { type Command, Option } from '@commander-js/extra-typings';
import { BYTES_PER_GIB, InputError, parseDevice, threadsForFreeCores } from '../core/index.js';
import { onnxEngineFactory } from '../export/index.js';
import { ENGINE_KINDS, FAST_MODE, OUTPUT_TYPES, PACS_OUTPUT_TYPES, SLIDING_WINDOW_DEFAULTS, TTA_MODES, ADAPTIVE_MIRROR_RULE, mirrorRuleOf, describePostprocessing, postprocessingFilesIn, predictFiles, readPostprocessing, resolvePostprocessingFile, type EngineKind, type ModelFold, type OutputType, type SpatialAxis } from '../infer/index.js';
import { DEFAULT_MAX_IMAGE_BYTES, nnunetModelFolderOf } from '../io/index.js';
import { setNumThreads } from '../tensor/index.js';
import { terminalProgress } from './progress.js';
import { caseOutputHooks, checkCaseOutputOptions, type CaseOutputOptions } from './case-summary.js';
import { precisionOption, resolvePredictPrecision } from './precision.js';
import { positiveIntOrAuto, threadCountOrAuto } from './parse.js';
import { predictFromPacs } from './pacs-commands.js';
import { stderrLogger } from './loggers.js';


function stepFraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 1)) throw new InputError(`--step must be a fraction of the patch in (0, 1], got '${value}'`, { code: 'bad-arguments' });
  return n;
}

/** A positive number of GiB, as bytes. */
function gibibytes(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !(Number.isFinite(n) && n > 0)) throw new InputError(`--${name} must be a positive number of GiB, got '${value}'`, { code: 'bad-arguments' });
    return n * BYTES_PER_GIB;
  };
}

/**
 * --max-memory-gib defaults to the machine's total memory: the estimate is a lower bound of what a
 * case needs, so a case above it cannot finish here without swapping for hours or being killed
 * (V8 aborted with exit 134 before); a shared machine can lower it, a machine with swap raise it.
 */
const DEFAULT_MAX_MEMORY_GIB = Number((os.totalmem() / BYTES_PER_GIB).toFixed(1));

function foldList(value: string): ModelFold[] {
  const folds = value.split(',').map((v) => (v.trim() === 'all' ? ('all' as const) : Number(v.trim())));
  if (folds.some((n) => n !== 'all' && (!Number.isInteger(n) || n < 0))) throw new InputError(`--folds must be fold numbers like 0,1,2,3,4 (or all, nnU-Net's fold_all), got '${value}'`);
  return folds;
}

function ttaMargin(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && Number.isFinite(n))) throw new InputError(`--tta-margin must be a non-negative number of logits, got '${value}'`, { code: 'bad-arguments' });
  return n;
}

function ttaShare(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && n <= 1)) throw new InputError(`--tta-share must be a fraction of the blend's weight in [0, 1], got '${value}'`, { code: 'bad-arguments' });
  return n;
}

function mirrorAxes(value: string): SpatialAxis[] {
  const parts = value.split(',').map((v) => v.trim());
  const axes = parts.map(Number);
  // Number('') is 0: an empty entry (or --mirror-axes '') is refused, not read as axis 0 (--no-tta turns mirroring off).
  if (parts.some((v) => v === '') || axes.some((a) => a !== 0 && a !== 1 && a !== 2)) throw new InputError(`--mirror-axes must list axes among 0 (z), 1 (y), 2 (x), got '${value}'`);
  return axes as SpatialAxis[];
}

/** `--output-type nifti,dicom-seg,dicom-sr`: any of them, comma-separated. */
function outputTypeList(value: string): OutputType[] {
  const types = value.split(',').map((v) => v.trim());
  const unknown = types.filter((t) => !(OUTPUT_TYPES as readonly string[]).includes(t));
  if (unknown.length > 0 || types.length === 0) throw new InputError(`--output-type takes ${OUTPUT_TYPES.join(', ')} (comma-separated), got '${value}'`, { code: 'bad-arguments' });
  return [...new Set(types)] as OutputType[];
}

/** `-m A -m B`: every model given, in order. */
function collectModels(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** nnUNetv2_predict does not postprocess: say so when a model folder holds the postprocessing nnU-Net chose. */
function noteUnappliedPostprocessing(models: readonly string[]): void {
  for (const model of models) {
    const where = nnunetModelFolderOf(model);
    const found = where === null ? [] : postprocessingFilesIn(where.folder);
    if (found.length > 0) stderrLogger.info(`${found[0]} is nnU-Net's postprocessing for this model; not applied (as nnUNetv2_predict): add --postprocessing ${found[0]} to apply it`);
  }
}

/** -i and -o, or --pacs and --study (-o optional): refused, naming the option, before anything is read. */
function checkInputOptions(options: { input?: string; output?: string; pacs?: string; study?: string; caFile?: string }): { kind: 'path'; input: string; output: string } | { kind: 'pacs'; url: string; study: string } {
  if (options.pacs !== undefined) {
    if (options.input !== undefined) throw new InputError('-i and --pacs both name the input: give one of them', { code: 'bad-arguments' });
    if (options.study === undefined) throw new InputError('--pacs needs --study UID (the StudyInstanceUID whose CT series is predicted)', { code: 'bad-arguments' });
    return { kind: 'pacs', url: options.pacs, study: options.study };
  }
  for (const name of ['study', 'caFile'] as const) {
    if (options[name] !== undefined) throw new InputError(`--${name === 'caFile' ? 'ca-file' : name} goes with --pacs`, { code: 'bad-arguments' });
  }
  if (options.input === undefined) throw new InputError("-i (an image, a folder of cases or a DICOM folder) or --pacs URL --study UID is needed (see 'lesionseg predict --help')", { code: 'bad-arguments' });
  if (options.output === undefined) throw new InputError('-o (where the masks go) is needed with -i', { code: 'bad-arguments' });
  return { kind: 'path', input: options.input, output: options.output };
}


export function registerPredictCommands(program: Command): void {
  program
    .command('predict')
    .description('segment CT images: preprocessing from the model\'s plan, Gaussian sliding window, mirroring TTA, masks in the input geometry')
    .requiredOption('-m, --model <path>', 'a checkpoint (.safetensors with its .json), a run folder (uses checkpoint_final), a folder of fold_K runs (ensemble), or an nnU-Net v2 model folder (dataset.json, plans.json, fold_K/checkpoint_final.pth), one of its fold_K folders or .pth files; repeat -m to ensemble models (their probabilities averaged, as nnUNetv2_ensemble; the labels must agree)', collectModels)
    .option('-i, --input <path>', 'an image (.nii/.nii.gz; case_0000.nii.gz picks up case_0001... as further channels), a folder of <case>_0000.nii.gz, or a DICOM series folder (converted by dcm2niix); or --pacs')
    .option('-o, --output <path>', 'a .nii.gz file (one case) or a folder for <case>.nii.gz (with --pacs: a folder keeping local copies, <SeriesInstanceUID>.seg.dcm ...)')
    .option('--pacs <url>', 'instead of -i: a DICOMweb service (http:// or https://; credentials from LESIONSEG_DICOMWEB_*): the CT series of --study is retrieved, predicted, and its DICOM outputs stored back into the study')
    .option('--study <uid>', 'with --pacs: the StudyInstanceUID')
    .option('--ca-file <pem>', 'with --pacs https://: the CA certificate(s) to trust instead of the system\'s')
    .addOption(new Option('--tta [mode]', 'mirroring test-time augmentation (default: adaptive, the 7 mirrored passes only for windows that weigh where the un-mirrored blend comes near a class boundary; full: every window\'s 8 passes, nnU-Net\'s exact result)').choices(TTA_MODES))
    .option('--no-tta', 'no mirroring: one pass per window')
    .option('--tta-margin <logits>', `adaptive TTA: a window gets its mirrored passes when, where it holds at least ${ADAPTIVE_MIRROR_RULE.share} of the blend's weight, the un-mirrored blend's top-two class logits come closer than this (default ${ADAPTIVE_MIRROR_RULE.margin}; 0: no window, larger: more windows)`, ttaMargin)
    .option('--tta-share <fraction>', `adaptive TTA: the share of the blend's weight a window must hold where the blend comes near a boundary to get its mirrored passes (default ${ADAPTIVE_MIRROR_RULE.share}; larger: fewer windows, 0: every window weighing there)`, ttaShare)
    .option('--mirror-axes <axes>', 'axes mirrored with TTA (0 z, 1 y, 2 x; default: the model\'s, an nnU-Net checkpoint\'s inference_allowed_mirroring_axes, else 0,1,2)', mirrorAxes)
    .option('--step <fraction>', `window step as a fraction of the patch (default ${SLIDING_WINDOW_DEFAULTS.stepFraction}, ${FAST_MODE.stepFraction} with --fast)`, stepFraction)
    .option('--fast', `no mirroring and step ${FAST_MODE.stepFraction} unless --tta, --mirror-axes or --step say otherwise (see the README for its cost in DSC)`)
    .option('--skip-background', 'do not run windows wholly outside the body (CT-normalised plans: farther than 4 voxels from the largest component above -500 HU; the mask is unchanged inside the body); the default for lesionseg models and with --fast')
    .option('--no-skip-background', 'run every window, as nnU-Net does (the default for nnU-Net models without --fast)')
    .option('--verbose', 'print each case\'s stages: seconds, process RSS high-water, windows run and windows per second')
    .option('--folds <list>', 'folds to ensemble when -m is a folder of fold_K runs or an nnU-Net model folder (default: all found; all = fold_all)', foldList)
    .addOption(new Option('--checkpoint <which>', 'checkpoint_final or checkpoint_best of each run or fold').choices(['final', 'best'] as const).default('final' as const))
    .option('--configuration <name>', 'nnU-Net models: the configuration the model was trained as (2d, 3d_fullres, 3d_lowres, or 3d_cascade_fullres, which runs the 3d_lowres folder beside it first); with -m an nnUNet_results dataset folder, the one of its <trainer>__<plans>__<configuration> folders to use')
    .option('--postprocessing <file>', 'apply nnU-Net\'s postprocessing to each mask, as nnUNetv2_apply_postprocessing: a postprocessing.pkl (read without running it) or postprocessing.json, or a folder holding one (nnUNetv2_find_best_configuration writes it)')
    .option('--save-probabilities', 'also write softmax probabilities (a region model: sigmoid ones; an ensemble: their mean): one float32 <case>_probabilities_<k>.nii.gz per class or region')
    .addOption(new Option('--engine <engine>', 'torch: our libtorch network; onnx: the network exported to ONNX in memory and run by onnxruntime-node (CPU, fp32), same preprocessing, sliding window and TTA').choices(ENGINE_KINDS).default('torch' as EngineKind))
    .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
    .addOption(precisionOption('auto'))
    .option('--batch <n>', 'windows per forward batch, or auto: 1 for fp32 on the CPU (as nnU-Net), else the faster of 2 and 4 per window, measured on the first batches (2 on CUDA); every size from 2 gives the same logits, 1 may differ in fp32 by ~1e-5', positiveIntOrAuto('batch'), 'auto' as number | 'auto')
    .addOption(new Option('--accumulate-on <where>', 'where the sliding-window sums live').choices(['device', 'cpu'] as const).default('device' as const))
    .option('--threads <n>', 'intra-op CPU threads (at most 4 per CPU; default: every CPU this process may use), or auto: the cores not busy with other work, measured for 0.2 s at start', threadCountOrAuto('threads'))
    .addOption(new Option('--max-memory-gib <gib>', 'refuse a case whose images, logits accumulators and weight map (estimated from its headers) need more memory').argParser(gibibytes('max-memory-gib')).default(os.totalmem(), `${DEFAULT_MAX_MEMORY_GIB}, this machine's total`))
    .addOption(new Option('--max-image-gib <gib>', 'refuse an image that decodes to more than this').argParser(gibibytes('max-image-gib')).default(DEFAULT_MAX_IMAGE_BYTES, `${DEFAULT_MAX_IMAGE_BYTES / BYTES_PER_GIB}`))
    .option('--output-type <types>', `nifti (the mask as .nii.gz), dicom-seg (a DICOM Segmentation referencing the input series) and dicom-sr (a DICOM SR with the --summary numbers referencing the SEG; needs dicom-seg), comma-separated; the DICOM ones need DICOM input (default nifti; with --pacs ${PACS_OUTPUT_TYPES.join(',')}, nifti needing -o)`, outputTypeList)
    .option('--series <uid>', 'DICOM input: the SeriesInstanceUID to predict when the folder holds several series (with --pacs: when the study holds several CT series)')
    .option('--summary', 'also write <case>.summary.json (infection mL; each lung\'s mL and % involved, from the model\'s lung labels or --lungs; each lobe\'s % and the CT severity score 0-25 with --lobes or --lobes-model) and, for a folder of cases, summary.csv')
    .option('--view', 'also write <case>.html beside each mask: a self-contained viewer page (CT, mask overlay, 3D, the summary)')
    .option('--lungs <fileOrDir>', 'lung masks for --summary, --view and dicom-sr: a label map (1 left, 2 right) on the CT\'s grid, or a folder of <case>.nii.gz')
    .option('--lobes <dir>', 'lobe masks for --summary and dicom-sr (TotalSegmentator names: lung_upper_lobe_left.nii.gz, ...; a folder, or a folder of <case>/ folders)')
    .option('--lobes-model <folder>', 'instead of --lobes: a lobe model (an nnU-Net v2 model folder such as TotalSegmentator\'s, or ours) whose labels include the five lobe names, predicted on each CT under the options above')
    .option('--json', 'print a JSON summary on stdout')
    .action(async (options) => {
      // The thread count comes from the machine, not its load, unless asked (--threads auto): libtorch
      // runs a fp32 1x1x1 convolution through its own kernels at one thread and oneDNN's at several
      // (ATen's use_mkldnn rule). They gave the same bits on the CPUs measured, but the masks must not
      // hang on that (README, "What a result depends on").
      const threadChoice = options.threads === 'auto' ? threadsForFreeCores() : null;
      const threads = threadChoice !== null ? threadChoice.threads : (options.threads as number | undefined) ?? os.availableParallelism();
      setNumThreads(threads);
      if (options.verbose === true) {
        const why = threadChoice !== null
          ? `--threads auto: ${threadChoice.busy === null ? 'load unknown' : `${threadChoice.busy.toFixed(1)} of ${threadChoice.cores} cores busy with other work`}`
          : options.threads !== undefined ? '--threads' : 'every CPU';
        stderrLogger.info(`threads: ${threads} (${why})`);
      }
      // How every model of this command predicts: -m, and --lobes-model when given (each resolves its own precision).
      const device = parseDevice(options.device);
      const predictorChoices = {
        device,
        ...(options.tta === false
          ? { mirrorAxes: [] }
          : options.mirrorAxes !== undefined
            ? { mirrorAxes: options.mirrorAxes }
            : options.fast === true && options.tta === undefined
              ? { mirrorAxes: FAST_MODE.mirrorAxes }
              : {}),
        ...(options.tta === 'full'
          ? { mirrorRule: mirrorRuleOf('full') }
          : options.ttaMargin !== undefined || options.ttaShare !== undefined
            ? { mirrorRule: { margin: options.ttaMargin ?? ADAPTIVE_MIRROR_RULE.margin, share: options.ttaShare ?? ADAPTIVE_MIRROR_RULE.share } }
            : {}),
        stepFraction: options.step ?? (options.fast === true ? FAST_MODE.stepFraction : SLIDING_WINDOW_DEFAULTS.stepFraction),
        // Default by model (Predictor.fromCheckpoints): on for ours, off for nnU-Net models (nnU-Net runs every window); on with --fast.
        ...(options.skipBackground !== undefined ? { skipBackground: options.skipBackground } : options.fast === true ? { skipBackground: true } : {}),
        windowsPerBatch: options.batch,
        accumulateOn: options.accumulateOn,
        maxImageBytes: options.maxImageGib,
        ...(options.engine === 'onnx' ? { engine: onnxEngineFactory({ threads }) } : {}),
      };
      const outputTypes = options.outputType ?? (options.pacs !== undefined ? [...PACS_OUTPUT_TYPES] : ['nifti' as const]);
      const caseOutputs: CaseOutputOptions = {
        summary: options.summary === true,
        view: options.view === true,
        dicomSr: outputTypes.includes('dicom-sr'),
        ...(options.lungs !== undefined ? { lungs: options.lungs } : {}),
        ...(options.lobes !== undefined ? { lobes: options.lobes } : {}),
        ...(options.lobesModel !== undefined
          ? { lobesModel: { model: options.lobesModel, ...predictorChoices, precision: resolvePredictPrecision(options.precision, device, [options.lobesModel], options.engine), maxMemoryBytes: options.maxMemoryGib, logger: stderrLogger } }
          : {}),
      };
      checkCaseOutputOptions(caseOutputs, outputTypes);
      for (const [flag, value] of [['--tta-margin', options.ttaMargin], ['--tta-share', options.ttaShare]] as const) {
        if (value !== undefined && (options.tta === 'full' || options.tta === false)) {
          throw new InputError(`${flag} sets adaptive mirroring: it does not go with ${options.tta === false ? '--no-tta' : '--tta full'}`, { code: 'bad-arguments' });
        }
      }
      const source = checkInputOptions(options);
      const postprocessing = options.postprocessing !== undefined ? readPostprocessing(resolvePostprocessingFile(options.postprocessing)) : undefined;
      if (postprocessing !== undefined) stderrLogger.info(`postprocessing: ${describePostprocessing(postprocessing)}`);
      else noteUnappliedPostprocessing(options.model);
      const caseHooks = caseOutputHooks(caseOutputs);
      const predictOptions = {
        model: options.model.length === 1 ? options.model[0]! : options.model,
        ...(postprocessing !== undefined ? { postprocessing } : {}),
        ...(options.folds !== undefined ? { folds: options.folds } : {}),
        checkpoint: options.checkpoint,
        ...(options.configuration !== undefined ? { configuration: options.configuration } : {}),
        saveProbabilities: options.saveProbabilities === true,
        ...predictorChoices,
        // auto: bf16 where the CPU computes it natively, else fp32 (fp16 on CUDA); fp32 for the ONNX engine and for nnU-Net's models on a CPU.
        precision: resolvePredictPrecision(options.precision, device, options.model, options.engine, options.configuration),
        verbose: options.verbose === true,
        maxMemoryBytes: options.maxMemoryGib,
        outputTypes,
        softwareVersion: `lesionseg ${program.version() ?? ''}`.trim(),
        progress: terminalProgress(),
        ...caseHooks.hooks,
      };
      if (source.kind === 'pacs') {
        await predictFromPacs({ url: source.url, study: source.study, ...(options.series !== undefined ? { series: options.series } : {}), ...(options.output !== undefined ? { output: options.output } : {}), ...(options.caFile !== undefined ? { caFile: options.caFile } : {}), json: options.json === true }, predictOptions, stderrLogger);
        return;
      }
      const result = await predictFiles({ ...predictOptions, input: source.input, output: source.output, ...(options.series !== undefined ? { series: options.series } : {}) }, stderrLogger);
      const csv = caseHooks.finish();
      if (csv !== null) stderrLogger.info(`summary of ${result.cases.length} case(s): ${csv}`);
      if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else process.stdout.write(`predicted ${result.cases.length} case(s) with ${result.checkpoints.length} model(s)\n`);
    });
}
