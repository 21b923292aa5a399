/**
 * Side by side with nnU-Net on the same model (issue 24 part 2): one `synth` phantom, a one-iteration
 * run of the `cpu` preset exported with `export --format nnunet`, then nnU-Net v2's
 * `nnUNetv2_predict_from_modelfolder` (its source, run by Debian's python3 + python3-torch) and
 * `lesionseg predict` on that folder and the same CT, default flags on both (mirroring on, step 0.5),
 * `--device cpu`/`-device cpu`, the same thread count, alternating which goes first per round.
 * Each side is timed from outside (wall); its memory is the peak over time of the summed PSS
 * (/proc/PID/smaps_rollup) of its process tree, sampled every --sample-ms (nnU-Net starts
 * preprocessing and export worker processes; PSS shares their common pages fairly), beside the peak of
 * its anonymous part (Pss_Anon: the file-backed rest, libtorch's code mostly, is split with whatever
 * else maps the same library at the time, so it moves with the machine's other work), and its CPU
 * seconds are the tree's summed utime + stime (less sensitive than wall time to a shared machine).
 * --crop Z,Y,X keeps the centre of the CT at its spacing (fewer windows at the same realistic
 * plan). Masks of the two are compared (fraction of equal voxels).
 * nnU-Net's sources are not part of lesionseg: --nnunet-src DIR names the folder holding nnUNet,
 * batchgeneratorsv2, batchgenerators, dynamic-network-architectures and acvl_utils. Modules nnU-Net
 * imports but never calls on this path and Debian lacks (blosc2, SimpleITK, cc3d; torch._dynamo in
 * torch 1.13) are stood in for by the sitecustomize.py of bench/nnunet-source.ts, written into the
 * run's temporary folder: consulted only when the real module is absent (see the results README).
 * --run DIR exports that trained run instead (e.g. the one bench/full-ct.ts --train-cases N --run DIR
 * trained), so that adaptive mirroring decides as it does on a trained model.
 * Usage: npx tsx bench/nnunet-side-by-side.ts --nnunet-src DIR [--size paper] [--crop Z,Y,X] [--run DIR]
 *        [--threads 2] [--workers 1] [--rounds 1] [--first nnunet|lesionseg] [--precisions fp32,auto] [--python /usr/bin/python3] [--out FILE]
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuInfo } from '../src/core/index.js';
import { writeSynthDataset, type SynthSize } from '../src/synth/index.js';
import { readNifti, writeNifti } from '../src/io/index.js';
import { args, ints, median, option, report } from './support.js';
import { nnunetEnvironment, nnunetSource, refuse as refuseAs, threadEnvironment } from './nnunet-source.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'bin/lesionseg.js');
const SCRIPT = 'bench/nnunet-side-by-side';
const { source, python } = nnunetSource(SCRIPT);
const refuse = (message: string): never => refuseAs(SCRIPT, message);
const size = option('size', 'paper') as SynthSize;
const crop = option('crop', '') === '' ? null : ints(option('crop', ''));
if (crop !== null && (crop.length !== 3 || crop.some((n) => !Number.isInteger(n) || n < 1))) refuse(`--crop ${option('crop', '')}: three positive integers Z,Y,X`);
const threads = Number(option('threads', '2'));
const workers = Number(option('workers', '1'));
const rounds = Number(option('rounds', '1'));
const precisions = option('precisions', 'fp32').split(',');
const sampleMs = Number(option('sample-ms', '200'));
// A trained run of the plan (e.g. bench/full-ct.ts --train-cases N --run DIR) instead of a one-iteration one.
const trainedRun = option('run', '');
const nice = Number(option('nice', '5'));
// Which side runs first in round 1 (then they alternate).
const first = option('first', 'nnunet');
if (first !== 'nnunet' && first !== 'lesionseg') refuse(`--first ${first}: nnunet or lesionseg`);

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

/** Parent pid and CPU ticks so far (utime + stime) of every process, from /proc/PID/stat. */
function processes(): Map<number, { parent: number; ticks: number }> {
  const map = new Map<number, { parent: number; ticks: number }>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after "(comm) ": state, ppid, ... utime (14th of the line), stime (15th).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      map.set(Number(entry), { parent: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch { /* the process ended */ }
  }
  return map;
}

/**
 * Summed PSS (KiB) of `pid` and its descendants, their summed anonymous PSS (Pss_Anon: heap and
 * tensors, shared only within the tree; the file-backed rest, mostly libtorch's code pages, is split
 * with every other process that maps the same library, so it moves with what else runs), and the CPU ticks of each.
 */
function sampleTree(pid: number): { kib: number; anonKib: number; ticks: Map<number, number> } {
  const all = processes();
  const tree = new Set([pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [child, { parent }] of all) if (tree.has(parent) && !tree.has(child)) { tree.add(child); grew = true; }
  }
  let kib = 0;
  let anonKib = 0;
  const ticks = new Map<number, number>();
  for (const member of tree) {
    try {
      const rollup = fs.readFileSync(`/proc/${member}/smaps_rollup`, 'utf8');
      const match = /^Pss:\s+(\d+) kB/m.exec(rollup);
      if (match) kib += Number(match[1]);
      const anon = /^Pss_Anon:\s+(\d+) kB/m.exec(rollup);
      if (anon) anonKib += Number(anon[1]);
      ticks.set(member, all.get(member)?.ticks ?? 0);
    } catch { /* the process ended */ }
  }
  return { kib, anonKib, ticks };
}

interface Measured { wall_seconds: number; cpu_seconds: number; peak_pss_mib: number; peak_anon_pss_mib: number; processes_seen: number; stdout: string }

/**
 * Run a command under `nice`, sampling its process tree: peak summed PSS, and CPU seconds (each process's
 * last sampled utime + stime, summed: the last sample interval of each is missed); wall seconds from outside.
 */
function measure(command: string, argv: string[], env: NodeJS.ProcessEnv): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('nice', ['-n', String(nice), command, ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    let peak = 0;
    let peakAnon = 0;
    const cpu = new Map<number, number>();
    const timer = setInterval(() => {
      const now = sampleTree(child.pid!);
      peak = Math.max(peak, now.kib);
      peakAnon = Math.max(peakAnon, now.anonKib);
      for (const [member, ticks] of now.ticks) cpu.set(member, Math.max(cpu.get(member) ?? 0, ticks));
    }, sampleMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(timer);
      const wall = (performance.now() - started) / 1000;
      if (code !== 0) return reject(new Error(`${command} ${argv.join(' ')} exited ${code}: ${stderr.slice(-3000)}`));
      resolve({ wall_seconds: wall, cpu_seconds: [...cpu.values()].reduce((a, b) => a + b, 0) / TICKS_PER_SECOND, peak_pss_mib: peak / 1024, peak_anon_pss_mib: peakAnon / 1024, processes_seen: cpu.size, stdout });
    });
  });
}


const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-nnunet-'));
try {
  const dataset = path.join(dir, 'ct');
  await writeSynthDataset({ kind: 'covid', cases: 1, out: dataset, seed: 0, size });
  const run = trainedRun !== '' ? path.resolve(trainedRun) : path.join(dir, 'run');
  if (trainedRun !== '') {
    if (!fs.existsSync(path.join(run, 'checkpoint_final.safetensors'))) refuse(`--run ${trainedRun}: holds no checkpoint_final.safetensors`);
  } else {
    process.stderr.write('bench/nnunet-side-by-side: a one-iteration run of the cpu preset ...\n');
    execFileSync(process.execPath, [cli, 'train', '--dataset', dataset, '--out', run, '--preset', 'cpu', '--epochs', '1', '--iters-per-epoch', '1', '--val-iters', '1', '--fold', 'all'], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const model = path.join(dir, 'model');
  execFileSync(process.execPath, [cli, 'export', run, '--format', 'nnunet', '--out', model], { stdio: ['ignore', 'ignore', 'inherit'] });
  const folds = fs.readdirSync(model).filter((name) => /^fold_/.test(name)).map((name) => name.slice(5));

  // The CT: the phantom, or its centre cropped at its own spacing.
  const ct = await readNifti(path.join(dataset, 'imagesTr', 'covid_000_0000.nii.gz'));
  const input = path.join(dir, 'in');
  fs.mkdirSync(input);
  const image = path.join(input, 'case_0000.nii.gz');
  let shape = [...ct.shape];
  if (crop === null) fs.copyFileSync(path.join(dataset, 'imagesTr', 'covid_000_0000.nii.gz'), image);
  else {
    const start = ct.shape.map((n, axis) => Math.max(0, (n - crop[axis]!) >> 1));
    shape = ct.shape.map((n, axis) => Math.min(n, crop[axis]!));
    const [, Y, X] = ct.shape;
    const out = new Int16Array(shape[0]! * shape[1]! * shape[2]!);
    let k = 0;
    for (let z = 0; z < shape[0]!; z++) for (let y = 0; y < shape[1]!; y++) for (let x = 0; x < shape[2]!; x++) {
      out[k++] = Number(ct.data[((z + start[0]!) * Y! + y + start[1]!) * X! + x + start[2]!]);
    }
    // The affine's origin moves to the first kept voxel.
    const affine = ct.affine.map((row) => [row[0], row[1], row[2], row[3] + row[0] * start[2]! + row[1] * start[1]! + row[2] * start[0]!]);
    await writeNifti(image, { data: out, shape: shape as [number, number, number], spacing: ct.spacing, affine: affine as typeof ct.affine }, { header: ct.header });
  }
  const plans = JSON.parse(fs.readFileSync(path.join(model, 'plans.json'), 'utf8')) as { configurations: Record<string, { patch_size: number[]; spacing: number[] }> };
  const configuration = plans.configurations['3d_fullres']!;

  const threadEnv = threadEnvironment(threads);
  const nnunetEnv = nnunetEnvironment(dir, source, threads);
  const nnunetArgs = (out: string) => ['-c', 'from nnunetv2.inference.predict_from_raw_data import predict_entry_point_modelfolder as m; m()',
    '-i', input, '-o', out, '-m', model, '-f', ...folds, '-device', 'cpu', '-npp', String(workers), '-nps', String(workers), '--disable_progress_bar'];
  const oursArgs = (out: string, precision: string) => [cli, 'predict', '-m', model, '-i', image, '-o', out, '--device', 'cpu', '--threads', String(threads), '--precision', precision, '--json'];

  const sides: Record<string, { wall: number[]; cpu: number[]; pss: number[]; anon: number[]; processes: number[]; windows?: unknown }> = {};
  const add = (name: string, m: Measured) => {
    const side = (sides[name] ??= { wall: [], cpu: [], pss: [], anon: [], processes: [] });
    side.wall.push(m.wall_seconds); side.cpu.push(m.cpu_seconds); side.pss.push(m.peak_pss_mib); side.anon.push(m.peak_anon_pss_mib); side.processes.push(m.processes_seen);
    return side;
  };
  const equal: Record<string, number> = {};
  for (let round = 0; round < rounds; round++) {
    const order = (round % 2 === 0) === (first === 'nnunet') ? ['nnunet', ...precisions] : [...precisions, 'nnunet'];
    for (const name of order) {
      process.stderr.write(`bench/nnunet-side-by-side: round ${round + 1}: ${name} ...\n`);
      const out = path.join(dir, `out-${name}-${round}`);
      if (name === 'nnunet') add('nnunet', await measure(python, nnunetArgs(out), nnunetEnv));
      else {
        fs.mkdirSync(out);
        const m = await measure(process.execPath, oursArgs(path.join(out, 'case.nii.gz'), name), { ...process.env, ...threadEnv });
        add(`lesionseg_${name}`, m).windows = (JSON.parse(m.stdout) as { cases: { windows: unknown }[] }).cases[0]!.windows;
      }
    }
    const reference = await readNifti(path.join(dir, `out-nnunet-${round}`, 'case.nii.gz'));
    for (const precision of precisions) {
      const mask = await readNifti(path.join(dir, `out-${precision}-${round}`, 'case.nii.gz'));
      let same = 0;
      for (let i = 0; i < mask.data.length; i++) if (Number(mask.data[i]) === Number(reference.data[i])) same++;
      equal[precision] = Math.min(equal[precision] ?? 1, same / mask.data.length);
    }
  }
  const windows = shape.map((n, axis) => {
    const scaled = Math.round((n * ct.spacing[axis]!) / configuration.spacing[axis]!);
    return Math.max(1, Math.ceil((scaled - configuration.patch_size[axis]!) / (configuration.patch_size[axis]! * 0.5)) + 1);
  });
  const summary = (name: string) => ({ wall_seconds: median(sides[name]!.wall), wall_seconds_rounds: sides[name]!.wall, cpu_seconds: median(sides[name]!.cpu), cpu_seconds_rounds: sides[name]!.cpu, peak_pss_mib: median(sides[name]!.pss), peak_pss_mib_rounds: sides[name]!.pss, peak_anon_pss_mib: median(sides[name]!.anon), peak_anon_pss_mib_rounds: sides[name]!.anon, processes_seen: Math.max(...sides[name]!.processes), ...(sides[name]!.windows ? { windows: sides[name]!.windows } : {}) });
  const result: Record<string, unknown> = {
    benchmark: 'nnunet-side-by-side',
    cpu: cpuInfo(),
    load_average_at_end: os.loadavg(),
    model: trainedRun !== '' ? { trained_run: run, log: 'its log.jsonl' } : { iterations: 1 },
    case: { image: `synth --kind covid --size ${size} --seed 0${crop ? `, centre cropped to ${shape.join('x')}` : ''}`, shape, spacing_zyx_mm: ct.spacing },
    plan: { preset: 'cpu', patch: configuration.patch_size, spacing: configuration.spacing, windows_per_axis: windows, windows: windows.reduce((a, b) => a * b, 1), folds },
    config: { threads, nnunet_workers_npp_nps: workers, rounds, first, niceness_of_both_sides: os.getPriority() + nice, sample_ms: sampleMs, mirroring: 'on (defaults of both)', step: 0.5, args: args.join(' ') },
    nnunet: summary('nnunet'),
  };
  for (const precision of precisions) {
    const name = `lesionseg_${precision}`;
    result[name] = summary(name);
    result[`ratio_${precision}`] = {
      time_lesionseg_over_nnunet: median(sides[name]!.wall) / median(sides.nnunet!.wall),
      cpu_time_lesionseg_over_nnunet: median(sides[name]!.cpu) / median(sides.nnunet!.cpu),
      memory_lesionseg_over_nnunet: median(sides[name]!.pss) / median(sides.nnunet!.pss),
      anonymous_memory_lesionseg_over_nnunet: median(sides[name]!.anon) / median(sides.nnunet!.anon),
      equal_voxels_fraction: equal[precision],
    };
  }
  report(result);
} finally {
  if (!args.includes('--keep')) fs.rmSync(dir, { recursive: true, force: true });
  else process.stderr.write(`bench/nnunet-side-by-side: kept ${dir}\n`);
}
