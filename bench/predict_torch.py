"""PyTorch side of the predict benchmark: the same sliding-window procedure (test/fixtures/infer/
sliding_window_ref.py: Gaussian sigma = patch/8, step 0.5, optional mirroring, float32 accumulators,
several windows per batch) with the same PlainConvUNet weights (read from lesionseg's safetensors).

Usage: /usr/bin/python3 bench/predict_torch.py --weights W.safetensors --volume V.npy --out LOGITS.npy
       [--patch 32,96,96] [--features 16,32,64,128,256] [--classes 2] [--batch 2] [--tta] [--threads 2]
       [--precision fp32|bf16] [--device cpu|cuda]
Prints one JSON object: seconds of the sliding window (after one warm-up forward), peak RSS.
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "fixtures", "pyref"))
sys.path.insert(0, os.path.join(HERE, "..", "test", "fixtures", "infer"))
from plain_conv_unet import PlainConvUNet  # noqa: E402
from safetensors_io import load_file  # noqa: E402
from sliding_window_ref import sliding_window  # noqa: E402

STRIDES = [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2], [1, 2, 2], [1, 2, 2]]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weights", required=True)
    p.add_argument("--volume", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--patch", default="32,96,96")
    p.add_argument("--features", default="16,32,64,128,256")
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--tta", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    features = [int(v) for v in args.features.split(",")]
    patch = [int(v) for v in args.patch.split(",")]
    model = PlainConvUNet(1, features, [[3, 3, 3]] * len(features), STRIDES[: len(features)], args.classes, deep_supervision=False)
    missing, unexpected = model.load_state_dict(load_file(args.weights), strict=False)
    missing = [k for k in missing if ".all_modules." not in k and not k.startswith("decoder.encoder.")]
    if missing or unexpected:
        raise SystemExit(f"weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model = model.to(device).eval()
    volume = torch.from_numpy(np.load(args.volume)).to(device)
    axes = (0, 1, 2) if args.tta else ()
    with torch.no_grad():
        model(volume[None, :, : patch[0], : patch[1], : patch[2]])  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    logits = sliding_window([model], volume, patch, args.classes, mirror_axes=axes, batch=args.batch, precision=args.precision)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    np.save(args.out, logits.float().cpu().numpy())
    print(json.dumps({"side": "pytorch", "seconds": seconds, "threads": torch.get_num_threads(), "torch_version": torch.__version__,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
