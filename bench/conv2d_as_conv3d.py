"""Why lesionseg runs nnU-Net's 2d networks as the 3D network with kernel depth 1 (src/models nnunetSpatialDims):
in the libtorch build the addon links (Debian's 1.13, the same as python3-torch), a Conv3d with kernel [1, 3, 3] over a
depth-1 input gives the Conv2d's bits and takes about its time; InstanceNorm3d over [1, y, x] likewise. Prints JSON.
    /usr/bin/python3 bench/conv2d_as_conv3d.py
"""
import json
import time

import torch
import torch.nn.functional as F


def seconds(f, n=5):
    f()
    start = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - start) / n


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rows = []
    with torch.no_grad():
        for cin, cout, size in ((32, 32, 256), (64, 64, 128), (256, 256, 32)):
            x = torch.randn(2, cin, size, size)
            w = torch.randn(cout, cin, 3, 3)
            b = torch.randn(cout)
            y2 = F.conv2d(x, w, b, padding=1)
            y3 = F.conv3d(x[:, :, None], w[:, :, None], b, padding=(0, 1, 1))[:, :, 0]
            rows.append({
                "shape": [2, cin, size, size], "out_channels": cout,
                "conv2d_s": seconds(lambda: F.conv2d(x, w, b, padding=1)),
                "conv3d_depth1_s": seconds(lambda: F.conv3d(x[:, :, None], w[:, :, None], b, padding=(0, 1, 1))),
                "conv_max_abs_difference": (y3 - y2).abs().max().item(),
                "instance_norm2d_s": seconds(lambda: F.instance_norm(x)),
                "instance_norm3d_depth1_s": seconds(lambda: F.instance_norm(x[:, :, None])),
                "norm_max_abs_difference": (F.instance_norm(x[:, :, None])[:, :, 0] - F.instance_norm(x)).abs().max().item(),
            })
    print(json.dumps({"torch": torch.__version__, "threads": 2, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
