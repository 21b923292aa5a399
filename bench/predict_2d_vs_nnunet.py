"""predict of an nnU-Net 2d model folder: lesionseg (CLI, libtorch, fp32) against nnU-Net's own nnUNetPredictor (PyTorch,
CPU, fp32 network, its fp16 accumulators, the Gaussian in fp32 as make_nnunet_zoo_fixtures.import_nnunet patches it) on the same folder and case, same machine, same thread count. Prints JSON.
    /usr/bin/python3 bench/predict_2d_vs_nnunet.py /work/ext [--slices 16] [--threads 2]
A 5-stage 2D PlainConvUNet (32..256 features, patch 128 x 128, random weights) on a [slices, 256, 256] CT at its plan's
spacing; mirroring over y and x (4 passes per window), step 0.5. Needs `bash scripts/build.sh` first.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import nibabel as nib
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "fixtures", "nnunet"))
import make_nnunet_zoo_fixtures as zoo  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("nnunet_sources")
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    Predictor, get_network_from_plans, PlansManager = zoo.import_nnunet(args.nnunet_sources)
    torch.set_num_threads(args.threads)
    work = tempfile.mkdtemp(prefix="bench-2d-")
    shape, spacing = [args.slices, 256, 256], [3.0, 1.0, 1.0]
    arch = zoo.architecture(2, [[3, 3]] * 5, [[1, 1]] + [[2, 2]] * 4)
    arch["arch_kwargs"].update({"n_stages": 5, "features_per_stage": [32, 64, 128, 256, 256], "n_conv_per_stage": [2] * 5,
                                "n_conv_per_stage_decoder": [2] * 4})
    plans = zoo.plans_json()
    plans["configurations"] = {"2d": zoo.configuration("nnUNetPlans_2d", spacing[1:], [128, 128], shape[1:], arch)}
    manager = PlansManager(plans)
    config = manager.get_configuration("2d")
    network = get_network_from_plans(config.network_arch_class_name, config.network_arch_init_kwargs,
                                     config.network_arch_init_kwargs_req_import, 1, 3, deep_supervision=True)
    zoo.base.randomize(network, 5)
    folder = os.path.join(work, "Dataset903_Bench", "nnUNetTrainer__nnUNetPlans__2d")
    os.makedirs(os.path.join(folder, "fold_0"))
    for file, content in (("plans.json", plans), ("dataset.json", zoo.DATASET_JSON)):
        with open(os.path.join(folder, file), "w") as f:
            json.dump(content, f)
    torch.save({"network_weights": network.state_dict(), "optimizer_state": None, "grad_scaler_state": None, "logging": {},
                "_best_ema": 0.5, "current_epoch": 1,
                "init_args": {"plans": plans, "configuration": "2d", "fold": 0, "dataset_json": zoo.DATASET_JSON},
                "trainer_name": "nnUNetTrainer", "inference_allowed_mirroring_axes": (0, 1)},
               os.path.join(folder, "fold_0", "checkpoint_final.pth"))
    rng = np.random.RandomState(0)
    volume = (40 + 300 * rng.randn(*shape)).round().astype(np.int16)
    volume[volume == 0] = 1
    image = nib.Nifti1Image(volume.transpose(2, 1, 0), np.diag([spacing[2], spacing[1], spacing[0], 1.0]))
    nib.save(image, os.path.join(work, "case_0000.nii.gz"))

    network.decoder.deep_supervision = False
    predictor = Predictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True, perform_everything_on_device=False,
                          device=torch.device("cpu"), verbose=False, allow_tqdm=False)
    predictor.manual_initialization(network, manager, config, [network.state_dict()], zoo.DATASET_JSON, "nnUNetTrainer", (0, 1))
    start = time.perf_counter()
    reference = predictor.predict_single_npy_array(volume[None].astype(np.float32), {"spacing": spacing}, None, None, False)
    nnunet_seconds = time.perf_counter() - start

    output = os.path.join(work, "ours.nii.gz")
    command = ["node", os.path.join(HERE, "..", "bin", "lesionseg.js"), "predict", "-m", folder, "-i",
               os.path.join(work, "case_0000.nii.gz"), "-o", output, "--configuration", "2d", "--precision", "fp32",
               "--threads", str(args.threads)]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    ours_seconds = time.perf_counter() - start
    ours = np.asarray(nib.load(output).dataobj).transpose(2, 1, 0)
    print(json.dumps({
        "case": shape, "patch": [128, 128], "windows": args.slices * 9, "threads": args.threads,
        "nnunet_predict_single_npy_array_s": round(nnunet_seconds, 2),
        "lesionseg_predict_cli_s": round(ours_seconds, 2), "ratio": round(ours_seconds / nnunet_seconds, 2),
        "voxels_equal_fraction": float((ours == reference).mean()),
    }, indent=1))


if __name__ == "__main__":
    main()
