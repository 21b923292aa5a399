"""PyTorch side of bench/allocator.ts: the same PlainConvUNet forward passes (no grad) on random
windows, reporting seconds and minor page faults per pass and the peak RSS.

Usage: /usr/bin/python3 bench/allocator_torch.py [--patch 32,96,96] [--features 16,32,64,128,256]
       [--batch 2] [--passes 6] [--threads 2] [--precision fp32|bf16]
"""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "pyref"))
from plain_conv_unet import PlainConvUNet  # noqa: E402

STRIDES = [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2], [1, 2, 2], [1, 2, 2]]


def rss_mib():
    with open("/proc/self/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--patch", default="32,96,96")
    p.add_argument("--features", default="16,32,64,128,256")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--passes", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    features = [int(v) for v in args.features.split(",")]
    patch = [int(v) for v in args.patch.split(",")]
    model = PlainConvUNet(1, features, [[3, 3, 3]] * len(features), STRIDES[: len(features)], 2, deep_supervision=False).eval()
    base = rss_mib()
    seconds, faults = [], []
    with torch.no_grad():
        for _ in range(args.passes):
            x = torch.randn([args.batch, 1, *patch])
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
                model(x)
            seconds.append(time.perf_counter() - t0)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
            del x
    print(json.dumps({"side": "pytorch", "torch_version": torch.__version__, "seconds": seconds, "minor_faults": faults,
                      "base_rss_mib": base, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
