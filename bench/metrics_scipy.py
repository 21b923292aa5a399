"""Reference timing for bench/metrics.ts: the surface-distance algorithm in numpy/scipy
(test/fixtures/eval/surface_reference.py) plus confusion counts, on two .npy masks.

  /usr/bin/python3 bench/metrics_scipy.py PRED.npy REF.npy SZ,SY,SX TOLERANCE_MM

Prints one JSON object with the values and the seconds spent (loading excluded).
Note: the library itself sorts (distance, area) pairs with Python's sorted(zip(...)); the
reference uses np.lexsort for the same order, so the library would be slower than this.
"""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'eval'))
import surface_reference as ref  # noqa: E402


def main():
    pred = np.load(sys.argv[1]).astype(bool)
    gt = np.load(sys.argv[2]).astype(bool)
    spacing = [float(s) for s in sys.argv[3].split(',')]
    tolerance = float(sys.argv[4])
    start = time.perf_counter()
    tp = int(np.sum(pred & gt))
    fp = int(np.sum(pred & ~gt))
    fn = int(np.sum(~pred & gt))
    dsc = ref.dice(gt, pred)
    sd = ref.surface_distances(gt, pred, spacing)
    nsd = ref.surface_dice(sd, tolerance)
    hd95 = ref.robust_hausdorff(sd, 95)
    seconds = time.perf_counter() - start
    area_gt, area_pred = ref.surface_areas(sd)
    print(json.dumps({'seconds': seconds, 'dsc': dsc, 'nsd_3mm': nsd, 'hd95_mm': hd95,
                      'pred_surface_mm2': area_pred, 'ref_surface_mm2': area_gt, 'tp': tp, 'fp': fp, 'fn': fn}))


if __name__ == '__main__':
    main()
