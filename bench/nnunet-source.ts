/**
 * What the benchmarks that run nnU-Net v2 from its source share (nothing of nnU-Net is part of
 * lesionseg: the scripts take the folder holding its repositories as an argument): the
 * repositories put on PYTHONPATH, and the stand-in import hook written as sitecustomize.py into a
 * run's temporary folder (never into committed files) for modules nnU-Net imports but never calls
 * on the paths we run and Debian does not package.
 */

/** The repositories, as folders of the source root, that go on PYTHONPATH. */
export const NNUNET_SOURCES = ['nnUNet', 'batchgeneratorsv2', 'batchgenerators', 'dynamic-network-architectures', 'acvl_utils'];

export const STANDIN = `# Written by lesionseg's bench (bench/nnunet-source.ts): a fallback import hook for modules nnU-Net imports
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
