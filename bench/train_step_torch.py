"""PyTorch side of the training-step benchmark: the identical PlainConvUNet, loss and SGD step.

Usage: /usr/bin/python3 bench/train_step_torch.py [--precision fp32|bf16] [--threads 2] [--iterations 10]
       [--features 16,32,...] [--patch 32,96,96] [--batch 2] [--kernels JSON] [--strides JSON]
--kernels / --strides take a plan's per-stage lists as JSON (e.g. '[[1,3,3],[3,3,3]]'); by default
3x3x3 kernels and the strides of the cpu preset's topology.
Prints one JSON object with the same fields as `lesionseg bench train-step --json`.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "pyref"))
from plain_conv_unet import PlainConvUNet, he_init, ds_targets, ds_loss, make_sgd  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--features", default="16,32,64,128,256")
    p.add_argument("--patch", default="32,96,96")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--kernels", default=None, help="per-stage kernel sizes as JSON")
    p.add_argument("--strides", default=None, help="per-stage strides as JSON")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    features = [int(v) for v in args.features.split(",")]
    patch = [int(v) for v in args.patch.split(",")]
    strides = [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2], [1, 2, 2], [1, 2, 2]][: len(features)]
    kernels = [[3, 3, 3]] * len(features)
    if args.strides is not None:
        strides = json.loads(args.strides)
    if args.kernels is not None:
        kernels = json.loads(args.kernels)
    model = PlainConvUNet(1, features, kernels, strides, 2)
    he_init(model)
    opt = make_sgd(model)
    x = torch.randn([args.batch, 1, *patch])
    target = torch.zeros([args.batch, 1, *patch], dtype=torch.long)
    zz, yy, xx = torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in patch], indexing="ij")
    for b in range(args.batch):
        c = [s * (0.3 + 0.2 * b) for s in patch]
        r = min(patch) * 0.35
        target[b, 0] = (((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) < r * r).long()
    targets = ds_targets(target, strides, len(features) - 1)
    times, cpu_times, losses = [], [], []
    for i in range(args.warmup + args.iterations):
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            out = model(x)
            loss = ds_loss(out, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 12)
        opt.step()
        value = loss.item()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        if i >= args.warmup:
            times.append(dt)
            cpu_times.append(cpu)
            losses.append(value)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({
        "side": "pytorch", "precision": args.precision, "device": "cpu", "threads": torch.get_num_threads(),
        "patch_size": patch, "batch_size": args.batch, "features_per_stage": features, "params": params,
        "seconds_per_iter": statistics.median(times), "seconds_all": times,
        "cpu_seconds_per_iter": statistics.median(cpu_times),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "losses": losses,
        "torch_version": torch.__version__,
    }))


if __name__ == "__main__":
    main()
