"""
The other side of bench/loader-compare.ts: nnU-Net v2's own training batches, made by its
nnUNetDataLoader (sampling with foreground oversampling 0.33, crop and pad) and the
batchgeneratorsv2 pipeline that nnUNetTrainer.get_training_transforms builds, on our preprocessed
cases (float32 [C, z, y, x] and int8 label .npy files plus the class locations of each case's .json).

Nothing of nnU-Net is copied here: the transforms come from running nnU-Net's own
get_training_transforms (its source read from nnunetv2/training/nnUNetTrainer/nnUNetTrainer.py and
executed with that file's own imports, because importing the trainer module itself needs
SimpleITK and other packages Debian does not ship), with the trainer's arguments for this plan:
the patch, rotation and dummy-2D choice of configure_rotation_dummyDA_mirroring_and_inital_patch_size,
mirror axes (0, 1, 2), use_mask_for_norm from the plan, no deep supervision (our trainer makes the
deep-supervision targets on the device, so the loaders do the same work), no cascade, no regions,
no ignore label. The enlarged patch is nnU-Net's get_patch_size.

blosc2 (nnU-Net's on-disk format) and SimpleITK (its image reader, imported by the plans handler
the data loader imports) are not packaged in Debian; nnU-Net and acvl_utils import them at module
level. The cases here are numpy arrays in memory and no image is read, so none of their code runs:
a stand-in module whose every attribute is one inert type (no object is an instance of it, calling
it raises) lets those imports succeed. The JSON lists the stand-ins used.

Measures wall-clock batches/s and batches per CPU second (this process and its workers: on a shared
machine the CPU time is what a core's share did), with torch on one thread per process (nnU-Net's loader also runs under
threadpool_limits(1)):
Before any of it, the Gaussian blur's one-time FFT-or-convolution benchmark is run for every (axis
length, kernel size) pair it can meet (prime_blur_benchmark), as it would have been long before in
a training run: otherwise it lands in the counted batches and dominates their mean.
- workers 1: generate_train_batch in this process, `--batches` batches after 2 warm-up batches;
- workers N > 1: NonDetMultiThreadedAugmenter with N processes, as nnUNetTrainer.get_dataloaders
  sets it up (wait_time 0.002, no pin_memory on a CPU) but with a queue of 1, after 2N warm-up
  batches and then until a batch had to be waited for (>= 20 ms: the queues are empty, so no batch
  made before the count is counted);
- the wait per step (mean, and the longest after the first step) of a consumer that sleeps `--step` seconds per batch (a GPU step), through
  the augmenter with nnU-Net's cache (num_cached max(6, N // 2); 1 worker: 1 process, so it
  prefetches too), after 2N warm-up batches.
Prints one JSON object.

Usage (PYTHONPATH = the batchgeneratorsv2, batchgenerators, acvl_utils, nnUNet and
dynamic-network-architectures sources):
  python3 bench/loader_bg2.py --preprocessed DIR --plan plan.json --cases a,b,c [--workers 1]
      [--batches 8] [--steps 8] [--step 0.8] [--seed 1]
"""
import argparse
import ast
import json
import os
import sys
import time
import types


class _InertType(type):
    def __getattr__(cls, name):
        return cls

    def __call__(cls, *args, **kwargs):
        raise RuntimeError('a stand-in for a module that is not installed was called: it only lets nnU-Net modules import')


class _InertModule(types.ModuleType):
    def __getattr__(self, name):
        return _InertType('blosc2_stand_in', (), {})


def install_stand_ins():
    """Stand-ins for the modules nnU-Net imports at module level that Debian does not ship."""
    installed = []
    for name in STAND_IN_MODULES:
        try:
            __import__(name)
        except ImportError:
            module = _InertModule(name)
            sys.modules[name] = module
            for sub in ('ndarray',):
                setattr(module, sub, _InertModule(name + '.' + sub))
                sys.modules[name + '.' + sub] = getattr(module, sub)
            installed.append(name)
    return installed


STAND_IN_MODULES = ('blosc2', 'SimpleITK', 'cc3d', 'fft_conv_pytorch', 'edt')
STAND_INS = install_stand_ins()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter  # noqa: E402
from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size  # noqa: E402
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader  # noqa: E402
from nnunetv2.utilities.label_handling.label_handling import LabelManager  # noqa: E402
import nnunetv2  # noqa: E402


def adapt_crop_and_pad_nd():
    """
    nnU-Net's data loader passes cast_cropped_to (acvl_utils >= 0.2.6); the acvl_utils beside it
    may be 0.2.5, which lacks it. The keyword asks for the crop in that dtype (int16 for label maps,
    so that the -1 padding fits); our label maps are int8, which holds -1 already, so casting after
    the crop gives the same array.
    """
    import inspect
    from nnunetv2.training.dataloading import data_loader
    original = data_loader.crop_and_pad_nd
    if 'cast_cropped_to' in inspect.signature(original).parameters:
        return False

    def crop_and_pad_nd(image, bbox, pad_value=0, cast_cropped_to=None, **kwargs):
        if cast_cropped_to is not None:
            assert np.can_cast(np.min_scalar_type(pad_value), image.dtype), 'the pad value must fit the label dtype'
        cropped = original(image, bbox, pad_value, **kwargs)
        return cropped if cast_cropped_to is None else cropped.astype(cast_cropped_to, copy=False)

    data_loader.crop_and_pad_nd = crop_and_pad_nd
    return True


DRAINED_WAIT_SECONDS = 0.02
ANISO_THRESHOLD = 3  # nnunetv2.configuration.ANISO_THRESHOLD (that module starts worker-count logic)


def nnunet_training_transforms_function():
    """nnUNetTrainer.get_training_transforms, executed from nnU-Net's source file."""
    source_file = os.path.join(os.path.dirname(nnunetv2.__file__), 'training', 'nnUNetTrainer', 'nnUNetTrainer.py')
    with open(source_file) as handle:
        tree = ast.parse(handle.read(), source_file)
    namespace = {}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names]
            module = getattr(node, 'module', None) or ''
            if module.startswith('batchgeneratorsv2') or module == 'typing' or names in (['numpy'], ['torch']):
                exec(compile(ast.Module(body=[node], type_ignores=[]), source_file, 'exec'), namespace)
    trainer = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == 'nnUNetTrainer')
    method = next(n for n in trainer.body if isinstance(n, ast.FunctionDef) and n.name == 'get_training_transforms')
    method.decorator_list = []
    exec(compile(ast.Module(body=[method], type_ignores=[]), source_file, 'exec'), namespace)
    return namespace['get_training_transforms']


class InMemoryDataset:
    """What nnUNetDataLoader asks of a dataset: identifiers and load_case, on numpy arrays."""

    def __init__(self, folder, identifiers):
        self.identifiers = list(identifiers)
        self.cases = {}
        for identifier in self.identifiers:
            data = np.load(os.path.join(folder, identifier + '.npy'))
            seg = np.load(os.path.join(folder, identifier + '_seg.npy'))
            with open(os.path.join(folder, identifier + '.json')) as handle:
                properties = json.load(handle)
            # nnU-Net keys class_locations by the label value and stores [channel, z, y, x] rows.
            locations = {}
            for label, voxels in properties['classLocations'].items():
                rows = np.asarray(voxels, dtype=np.int64).reshape(-1, 3)
                locations[int(label)] = np.concatenate([np.zeros((len(rows), 1), dtype=np.int64), rows], axis=1)
            self.cases[identifier] = (data, seg, {'class_locations': locations})

    def load_case(self, identifier):
        data, seg, properties = self.cases[identifier]
        return data, seg, None, properties


def prime_blur_benchmark(transforms, patch_size):
    """batchgeneratorsv2's GaussianBlurTransform (benchmark=True, as nnU-Net builds it) times FFT
    against direct convolution, 9 runs each, the first time it meets an (axis length, kernel size)
    pair, 1 to 4.5 CPU seconds each time; in training that happens once per worker process and then
    never again. Meet every pair the trainer's sigmas (0.5 to 1) can give here, before counting, so
    that the counted batches cost what they cost in a long run. Returns the pairs primed."""
    from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform, _compute_kernel_size
    primed = []
    for t in transforms.transforms:
        blur = getattr(t, 'transform', t)
        if not isinstance(blur, GaussianBlurTransform) or not blur.benchmark:
            continue
        low, high = blur.blur_sigma
        sigmas = {}
        for sigma in np.linspace(low, high, 101):
            sigmas.setdefault(_compute_kernel_size(float(sigma)), float(sigma))
        dummy = torch.zeros((1,) + tuple(patch_size))
        for dim in range(len(patch_size)):
            for kernel_size, sigma in sorted(sigmas.items()):
                blur._benchmark_wrapper(dummy, sigma, dim)
                primed.append([int(patch_size[dim]), int(kernel_size)])
    return primed


def children_cpu_seconds(pids):
    """User + system CPU seconds of these (running) processes, from /proc/PID/stat."""
    total = 0
    for pid in pids:
        with open(f'/proc/{pid}/stat') as handle:
            fields = handle.read().rsplit(')', 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf('SC_CLK_TCK')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--preprocessed', required=True)
    parser.add_argument('--plan', required=True)
    parser.add_argument('--cases', required=True)
    parser.add_argument('--workers', type=int, default=1)
    parser.add_argument('--batches', type=int, default=8)
    parser.add_argument('--steps', type=int, default=8)
    parser.add_argument('--step', type=float, default=0.8)
    parser.add_argument('--seed', type=int, default=1)
    args = parser.parse_args()

    adapted = adapt_crop_and_pad_nd()
    torch.set_num_threads(1)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    with open(args.plan) as handle:
        plan = json.load(handle)
    configuration = plan['configuration']
    patch_size = tuple(configuration['patchSize'])
    batch_size = configuration['batchSize']
    use_mask_for_norm = [channel['useMaskForNorm'] for channel in configuration['normalization']]
    labels = plan['datasets'][0]['labels']

    # nnUNetTrainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size for a 3D patch.
    dummy_2d = max(patch_size) / patch_size[0] > ANISO_THRESHOLD
    angle = (180. if dummy_2d else 30.) / 360 * 2. * np.pi
    rotation = (-angle, angle)
    initial_patch_size = get_patch_size(patch_size, rotation, rotation, rotation, (0.85, 1.25))
    if dummy_2d:
        initial_patch_size[0] = patch_size[0]
    mirror_axes = (0, 1, 2)

    label_manager = LabelManager(labels, regions_class_order=None)
    transforms = nnunet_training_transforms_function()(
        patch_size, rotation, None, mirror_axes, dummy_2d,
        use_mask_for_norm=use_mask_for_norm, is_cascaded=False,
        foreground_labels=label_manager.foreground_labels, regions=None, ignore_label=None)
    blur_benchmark_primed = prime_blur_benchmark(transforms, patch_size)
    dataset = InMemoryDataset(args.preprocessed, args.cases.split(','))
    loader = nnUNetDataLoader(dataset, batch_size, initial_patch_size, patch_size, label_manager,
                              oversample_foreground_percent=0.33, sampling_probabilities=None, pad_sides=None,
                              transforms=transforms, probabilistic_oversampling=False)

    def augmenter(num_cached):
        return NonDetMultiThreadedAugmenter(data_loader=loader, transform=None, num_processes=args.workers,
                                            num_cached=num_cached, seeds=None, pin_memory=False, wait_time=0.002)

    if args.workers == 1:
        for _ in range(2):
            loader.generate_train_batch()
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(args.batches):
            batch = loader.generate_train_batch()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    else:
        # A queue of 1: batches made while the consumer was not yet counting would inflate the rate.
        generator = augmenter(1)
        try:
            for _ in range(2 * args.workers):
                batch = next(generator)
            # Count from an empty queue: take batches until one had to be waited for.
            for _ in range(4 * args.workers + 4):
                start = time.perf_counter()
                batch = next(generator)
                if time.perf_counter() - start >= DRAINED_WAIT_SECONDS:
                    break
            pids = [process.pid for process in generator._processes]
            start, cpu_start = time.perf_counter(), time.process_time() + children_cpu_seconds(pids)
            for _ in range(args.batches):
                batch = next(generator)
            seconds = time.perf_counter() - start
            cpu_seconds = time.process_time() + children_cpu_seconds(pids) - cpu_start
        finally:
            generator._finish()
    batches_per_second = args.batches / seconds
    shape = list(batch['data'].shape)

    generator = augmenter(max(6, args.workers // 2))  # nnUNetTrainer.get_dataloaders' cache
    try:
        for _ in range(2 * args.workers):
            next(generator)
        waits = []
        for _ in range(args.steps):
            start = time.perf_counter()
            next(generator)
            waits.append(time.perf_counter() - start)
            time.sleep(args.step)
        waited = sum(waits)
    finally:
        generator._finish()

    print(json.dumps({
        'batchesPerSecond': batches_per_second,
        'batchesPerCpuSecond': args.batches / cpu_seconds,
        'waitPerStepSeconds': waited / args.steps,
        # The longest wait once the first step has given the workers a step's time (the warm-up drained the queue).
        'maxWaitAfterFirstStepSeconds': max(waits[1:], default=0.0),
        'batchShape': shape,
        'initialPatchSize': [int(v) for v in initial_patch_size],
        'dummy2d': bool(dummy_2d),
        'torchThreads': torch.get_num_threads(),
        'torchVersion': torch.__version__,
        'standInModules': STAND_INS,
        'cropAndPadAdapted': adapted,
        'blurBenchmarkPrimed': blur_benchmark_primed,
    }))


if __name__ == '__main__':
    main()
