"""nibabel side of bench/nifti-read-write.ts (run with /usr/bin/python3).

  nifti_nibabel.py read IN.nii.gz           time nib.load + np.asanyarray(img.dataobj)
  nifti_nibabel.py write IN.nii.gz OUT.nii.gz   time nib.save of the (already loaded) array, gzip level 1 (nibabel's default)
Prints one JSON line: {"seconds": ..., "sum": ...}. Imports and the untimed load are outside the timing.
"""
import json
import sys
import time

import nibabel as nib
import numpy as np

mode, source = sys.argv[1], sys.argv[2]
if mode == 'read':
    start = time.perf_counter()
    img = nib.load(source)
    data = np.asanyarray(img.dataobj)
    seconds = time.perf_counter() - start
    print(json.dumps({'seconds': seconds, 'sum': float(data.sum(dtype=np.float64)), 'dtype': str(data.dtype)}))
elif mode == 'write':
    img = nib.load(source)
    data = np.asanyarray(img.dataobj)
    start = time.perf_counter()
    nib.save(nib.Nifti1Image(data, img.affine, img.header), sys.argv[3])
    seconds = time.perf_counter() - start
    print(json.dumps({'seconds': seconds, 'sum': float(data.sum(dtype=np.float64))}))
else:
    sys.exit(f'unknown mode {mode}')
