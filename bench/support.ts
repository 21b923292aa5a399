/**
 * What the benchmarks share: their command line (`--name value` options and flags), the
 * median they report, and how the scripts that drive nnU-Net from its source run it.
 */
import { writeFileSync } from 'node:fs';

/** The benchmark's arguments (after the script). */
export const args = process.argv.slice(2);

/** The value after `--name`, or `fallback` when it is not given. */
export function option(name: string, fallback: string): string {
  const index = args.indexOf(`--${name}`);
  return index >= 0 && args[index + 1] !== undefined ? args[index + 1]! : fallback;
}

/** Comma-separated integers ("32,96,96"). */
export function ints(text: string): number[] {
  return text.split(',').map(Number);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Print the benchmark's JSON on stdout, and into the file after `--out` when given. */
export function report(result: unknown): void {
  const text = `${JSON.stringify(result, null, 2)}\n`;
  const outFile = option('out', '');
  if (outFile !== '') writeFileSync(outFile, text);
  process.stdout.write(text);
}

/** nnU-Net's source folders a driver script puts on PYTHONPATH (under its --nnunet-src). */
export const NNUNET_SOURCES = ['nnUNet', 'batchgeneratorsv2', 'batchgenerators', 'dynamic-network-architectures', 'acvl_utils'];

/** The sitecustomize.py a driver writes into its run's temporary folder (see bench/nnunet-side-by-side.ts). */
export const NNUNET_STANDIN = `# Written by a lesionseg bench driver (bench/support.ts): a fallback import hook for modules nnU-Net imports
# but never calls when predicting NIfTI on a CPU, and which Debian does not package (blosc2, SimpleITK, cc3d)
# or torch 1.13 lacks (torch._dynamo: only isinstance checks against OptimizedModule). Consulted only
# after every real finder failed; any call into a stood-in module raises ImportError.
import sys, importlib.abc, importlib.machinery
class _Absent:
    def __init__(self, name): self._name = name
    def __getattr__(self, attr): return _Absent(self._name + '.' + attr)
    def __call__(self, *a, **k): raise ImportError(self._name + ': not installed (stood in by the lesionseg bench)')
class OptimizedModule: pass
NAMES = {'torch._dynamo': {'OptimizedModule': OptimizedModule}, 'blosc2': None, 'SimpleITK': None, 'cc3d': None}
class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name in NAMES else None
    def create_module(self, spec): return None
    def exec_module(self, module):
        if NAMES[module.__name__] is None: module.__getattr__ = lambda attr, n=module.__name__: _Absent(n + '.' + attr)
        else: module.__dict__.update(NAMES[module.__name__])
sys.meta_path.append(_Finder())
`;
