"""Reference timing for bench/preprocess.ts: the same preprocessing steps in numpy/scipy, written
as nnU-Net does them (crop_to_nonzero with binary_fill_holes, CT normalisation, resampling with
separate-z: per-slice skimage-style resize = scipy.ndimage.zoom(order 3, mode 'nearest',
grid_mode=True) clipped to the slice range, then nearest along z with map_coordinates; labels by
one-hot linear zoom with a 0.5 threshold). skimage is used for the in-plane resize when installed.

  /usr/bin/python3 bench/preprocess_scipy.py IMAGE.npy LABEL.npy SZ,SY,SX TZ,TY,TX MEAN,STD,P005,P995 OUT_DIR

Prints one JSON object with the seconds per step (loading excluded); writes OUT_DIR/data.npy and
OUT_DIR/seg.npy for the comparison.
"""
import json
import sys
import time

import numpy as np
from scipy import ndimage

try:
    from skimage.transform import resize as sk_resize_impl

    def resize(x, shape, order):
        return sk_resize_impl(x, shape, order, mode='edge', anti_aliasing=False)
    RESIZE = 'skimage.transform.resize'
except ImportError:
    def resize(x, shape, order):
        x = x.astype(np.float64, copy=False)
        out = ndimage.zoom(x, np.array(shape) / np.array(x.shape), order=order, mode='nearest', grid_mode=True)
        return np.clip(out, x.min(), x.max()) if order > 0 else out
    RESIZE = 'scipy.ndimage.zoom(grid_mode=True) + clip'


def resize_segmentation(seg, shape):
    out = np.zeros(shape, dtype=seg.dtype)
    for label in np.unique(seg):
        out[resize((seg == label).astype(np.float64), shape, 1) >= 0.5] = label
    return out


def along_z_nearest(stacked, new_shape):
    z = np.arange(new_shape[0], dtype=np.float64)
    source = np.clip(np.floor(stacked.shape[0] / new_shape[0] * (z + 0.5) - 0.5 + 0.5), 0, stacked.shape[0] - 1).astype(int)
    return stacked[source]


def main():
    image = np.load(sys.argv[1])
    label = np.load(sys.argv[2])
    spacing = [float(v) for v in sys.argv[3].split(',')]
    target = [float(v) for v in sys.argv[4].split(',')]
    mean, std, p005, p995 = [float(v) for v in sys.argv[5].split(',')]
    out_dir = sys.argv[6]
    times = {}

    start = time.perf_counter()
    data = image.astype(np.float32)[None]
    seg = label.astype(np.int8)[None]
    mask = ndimage.binary_fill_holes(data[0] != 0)
    idx = np.argwhere(mask)
    lo, hi = idx.min(0), idx.max(0) + 1
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    data = data[(slice(None),) + box]
    seg = seg[(slice(None),) + box]
    seg[(seg == 0) & (~mask[box][None])] = -1
    times['crop'] = time.perf_counter() - start

    start = time.perf_counter()
    x = data[0]
    np.clip(x, p005, p995, out=x)
    x -= np.float32(mean)
    x /= np.float32(max(std, 1e-8))
    times['normalize'] = time.perf_counter() - start

    new_shape = [int(round(s / t * n)) for s, t, n in zip(spacing, target, x.shape)]
    start = time.perf_counter()
    in_plane = np.stack([resize(x[k], new_shape[1:], 3) for k in range(x.shape[0])])
    out = along_z_nearest(in_plane, new_shape).astype(np.float32)
    times['resample_image'] = time.perf_counter() - start

    start = time.perf_counter()
    seg_plane = np.stack([resize_segmentation(seg[0, k], new_shape[1:]) for k in range(seg.shape[1])])
    seg_out = along_z_nearest(seg_plane, new_shape).astype(np.int8)
    times['resample_labels'] = time.perf_counter() - start

    np.save(f'{out_dir}/data.npy', out)
    np.save(f'{out_dir}/seg.npy', seg_out)
    times['total'] = sum(times.values())
    print(json.dumps({'seconds': times, 'shape': list(out.shape), 'bbox': [[int(a), int(b)] for a, b in zip(lo, hi)], 'resize': RESIZE}))


if __name__ == '__main__':
    main()
