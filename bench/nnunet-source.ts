/**
 * What the benchmarks that run nnU-Net v2 from its source share (bench/nnunet-side-by-side.ts,
 * bench/nnunet-trained.ts, bench/nnunet-cascade.ts): the --nnunet-src and --python checks, the stand-ins for modules
 * Debian lacks, written into the run's temporary folder as a sitecustomize.py, the environment
 * nnU-Net runs in, and the versions of the sources. Nothing of nnU-Net is part of lesionseg:
 * --nnunet-src DIR names the folder holding nnUNet, batchgeneratorsv2, batchgenerators,
 * dynamic-network-architectures and acvl_utils (see the results READMEs for how it was extracted).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { option } from './support.js';

export const NNUNET_SOURCES = ['nnUNet', 'batchgeneratorsv2', 'batchgenerators', 'dynamic-network-architectures', 'acvl_utils'];

/** What nnU-Net's plan, train and predict paths import, by the Debian package that has it. */
const DEBIAN: Record<string, string> = {
  torch: 'python3-torch', nibabel: 'python3-nibabel', scipy: 'python3-scipy', skimage: 'python3-skimage', tqdm: 'python3-tqdm',
  threadpoolctl: 'python3-threadpoolctl', pandas: 'python3-pandas', seaborn: 'python3-seaborn', sklearn: 'python3-sklearn',
  matplotlib: 'python3-matplotlib',
};

/** Print `script: message` and exit 2. */
export function refuse(script: string, message: string): never {
  process.stderr.write(`${script}: ${message}\n`);
  process.exit(2);
}

/** --nnunet-src and --python, checked before any work (the sources present, the Python's modules importable). */
export function nnunetSource(script: string): { source: string; python: string } {
  const source = option('nnunet-src', '');
  if (source === '') refuse(script, `--nnunet-src DIR is required: the folder holding ${NNUNET_SOURCES.join(', ')}`);
  for (const name of NNUNET_SOURCES) {
    if (!fs.existsSync(path.join(source, name))) refuse(script, `--nnunet-src ${source}: ${name} not found there (needs ${NNUNET_SOURCES.join(', ')})`);
  }
  const python = option('python', '/usr/bin/python3');
  if (!fs.existsSync(python)) refuse(script, `--python ${python}: not found`);
  const missing = Object.keys(DEBIAN).filter((module) => {
    try { return execFileSync(python, ['-c', `import ${module}; print('imported')`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== 'imported'; } catch { return true; }
  });
  if (missing.length > 0) refuse(script, `${python} lacks ${missing.join(', ')}: apt-get install ${missing.map((m) => DEBIAN[m]).join(' ')}`);
  return { source: path.resolve(source), python };
}

/**
 * The sitecustomize.py the benchmarks put first on nnU-Net's PYTHONPATH. Two kinds of help, each
 * consulted only where the real thing is missing:
 * - stood-in modules: blosc2, SimpleITK, cc3d (Debian lacks them; nnU-Net imports them at module
 *   level), huggingface_hub, einops, timm (imported by the pretraining and Primus trainers, which
 *   nnU-Net's trainer lookup imports while searching for a trainer class by name) and torch._dynamo
 *   (torch 1.13 lacks it; nnU-Net only checks isinstance against OptimizedModule). A stood-in module
 *   resolves any attribute, and any call into it raises ImportError naming it: nothing of them runs.
 * - two shims for versions: torch 1.13's lr_scheduler lacks `_enable_get_lr_call` (imported by the
 *   warm-up schedulers of the pretraining trainers, never called here: stood in the same way), and
 *   acvl_utils 0.2.5 (the newest in the mirror; nnU-Net 2.8.1 asks for 0.2.6) lacks crop_and_pad_nd's
 *   `cast_cropped_to` keyword, which nnU-Net's data loader passes for the int16 segmentation: the shim
 *   crops and pads with 0.2.5's function, then casts into a new array (the same values for an int16
 *   input). It also copies a crop that is a read-only view: 0.2.5 returns the slice itself when no
 *   padding is needed, which from blosc2 is a new array but from the numpy storage's read-only memory
 *   maps is a view the augmentation writes into (torch then segfaults).
 * - torch 1.13 reads a numpy bool array as a tensor index differently from torch 2 (which nnU-Net's
 *   cascade augmentation, batchgeneratorsv2's RemoveRandomConnectedComponentFromOneHotEncodingTransform,
 *   assumes): before 2.0, Tensor.__setitem__ is given such an index as torch.from_numpy(index), the
 *   boolean mask torch 2 makes of it.
 * - with BENCH_TORCH_THREADS_CAP=N (set by nnunetEnvironment when asked): torch.set_num_threads
 *   capped at N, since nnU-Net's CPU entry points set os.cpu_count() threads and a shared machine runs
 *   two oversubscribed threads several times slower than one; both sides then use the same count.
 */
const SITECUSTOMIZE = `# Written by lesionseg's bench/nnunet-source.ts (see its comment): stand-ins for modules Debian lacks,
# consulted only after every real finder failed, and two version shims applied right after the real
# module is imported. Any call into a stood-in module raises ImportError.
import os, sys, inspect, importlib.abc, importlib.machinery
class _Absent:
    def __init__(self, name): self._name = name
    def __getattr__(self, attr): return _Absent(self._name + '.' + attr)
    def __call__(self, *a, **k): raise ImportError(self._name + ': not installed (stood in by the lesionseg bench)')
    def __mro_entries__(self, bases): return (object,)
class OptimizedModule: pass
ABSENT = ('blosc2', 'SimpleITK', 'cc3d', 'huggingface_hub', 'einops', 'timm')
PRESENT = {'torch._dynamo': {'OptimizedModule': OptimizedModule}}
def _absent_attribute(module, attr):
    if attr.startswith('__'): raise AttributeError(attr)
    return _Absent(module + '.' + attr)
class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name not in PRESENT and name.split('.')[0] not in ABSENT: return None
        return importlib.machinery.ModuleSpec(name, self, is_package=name not in PRESENT)
    def create_module(self, spec): return None
    def exec_module(self, module):
        if module.__name__ in PRESENT: module.__dict__.update(PRESENT[module.__name__])
        else: module.__getattr__ = lambda attr, n=module.__name__: _absent_attribute(n, attr)
sys.meta_path.append(_Finder())
def _after_lr_scheduler(module):
    if not hasattr(module, '_enable_get_lr_call'): module._enable_get_lr_call = _Absent('torch.optim.lr_scheduler._enable_get_lr_call')
def _after_bounding_boxes(module):
    import numpy
    crop = module.crop_and_pad_nd
    if 'cast_cropped_to' in inspect.signature(crop).parameters: return
    def crop_and_pad_nd(image, bbox, pad_value=0, *args, cast_cropped_to=None, **kwargs):
        out = crop(image, bbox, pad_value, *args, **kwargs)
        if isinstance(out, numpy.ndarray) and (cast_cropped_to is not None or not out.flags.writeable):
            out = numpy.array(out, dtype=out.dtype if cast_cropped_to is None else cast_cropped_to)
        return out
    module.crop_and_pad_nd = crop_and_pad_nd
def _after_torch(module):
    if int(module.__version__.split('.')[0]) < 2:
        import numpy
        setitem = module.Tensor.__setitem__
        def __setitem__(self, index, value):
            if isinstance(index, numpy.ndarray) and index.dtype == bool: index = module.from_numpy(index)
            return setitem(self, index, value)
        module.Tensor.__setitem__ = __setitem__
    cap = int(os.environ.get('BENCH_TORCH_THREADS_CAP', '0'))
    if cap < 1: return
    set_threads = module.set_num_threads
    module.set_num_threads = lambda n: set_threads(min(int(n), cap))
    set_threads(cap)
AFTER = {'torch': _after_torch, 'torch.optim.lr_scheduler': _after_lr_scheduler, 'acvl_utils.cropping_and_padding.bounding_boxes': _after_bounding_boxes}
class _After(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in AFTER: return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'): continue
            spec = finder.find_spec(name, path, target)
            if spec is not None: break
        else: return None
        run = spec.loader.exec_module
        def exec_module(module): run(module); AFTER[name](module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, _After())
`;

/**
 * The environment nnU-Net runs in: the sitecustomize.py written into `dir`/site, then `extraPaths`,
 * then the sources on PYTHONPATH; nnUNet_raw/preprocessed/results under `dir`; `threads` for OpenMP
 * (and torch's intra-op threads capped at it with `capTorchThreads`).
 */
export function nnunetEnvironment(dir: string, source: string, threads: number, extraPaths: string[] = [], capTorchThreads = false): NodeJS.ProcessEnv {
  const hook = path.join(dir, 'site');
  fs.mkdirSync(hook, { recursive: true });
  fs.writeFileSync(path.join(hook, 'sitecustomize.py'), SITECUSTOMIZE);
  return {
    ...process.env, ...threadEnvironment(threads),
    PYTHONPATH: [hook, ...extraPaths, ...NNUNET_SOURCES.map((name) => path.join(source, name))].join(':'),
    nnUNet_raw: path.join(dir, 'raw'), nnUNet_preprocessed: path.join(dir, 'pre'), nnUNet_results: path.join(dir, 'results'),
    ...(capTorchThreads ? { BENCH_TORCH_THREADS_CAP: String(threads) } : {}),
  };
}

/** OMP/MKL/OpenBLAS thread counts. */
export function threadEnvironment(threads: number): Record<string, string> {
  return { OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
}

/** The version each source declares (pyproject.toml or setup.py), by folder name. */
export function sourceVersions(source: string): Record<string, string | null> {
  const versions: Record<string, string | null> = {};
  for (const name of NNUNET_SOURCES) {
    let version: string | null = null;
    for (const file of ['pyproject.toml', 'setup.py']) {
      const at = path.join(source, name, file);
      if (!fs.existsSync(at)) continue;
      const match = /^\s*version\s*=\s*["']([^"']+)["']/m.exec(fs.readFileSync(at, 'utf8'));
      if (match) { version = match[1]!; break; }
    }
    versions[name] = version;
  }
  return versions;
}
