"""Where nnUNetv2_predict and lesionseg predict differ on a trained nnU-Net model (results/nnunet-trained).

nnU-Net 2.8.1's sliding window (nnUNetPredictor.predict_sliding_window_return_logits) sums the windows'
logits and Gaussian weights in torch.half tensors and makes its Gaussian (compute_gaussian) in float16,
on the CPU too; lesionseg keeps both in float32 (src/infer/slidingWindowPredict.ts, gaussian.ts). This
script runs nnU-Net's own predictor in-process on one case twice, as shipped and with float32 sums and
Gaussian (torch.half rebound to float32 and compute_gaussian asked for float32 in this process only),
and prints each one's largest probability difference and differing mask voxels against lesionseg's
`predict --save-probabilities --tta full` output for the same case.

Run with nnU-Net's sources on PYTHONPATH and its environment (nnUNet_extTrainer for a custom trainer),
as bench/nnunet-trained.ts runs it (its --work folder holds site/ with the stand-ins):
  PYTHONPATH=WORK/site:SRC/nnUNet:SRC/batchgeneratorsv2:SRC/batchgenerators:SRC/dynamic-network-architectures:SRC/acvl_utils \
  nnUNet_extTrainer=WORK/trainers python3 bench/nnunet_accumulators.py MODEL_FOLDER CONFIGURATION CASE_0000.nii.gz LESIONSEG_OUT_DIR [PREV_MASK]
For 3d_cascade_fullres PREV_MASK is the 3d_lowres mask both sides take (e.g. lesionseg's, which equals
nnU-Net's with float32 sums), one-hot after the image channels as nnU-Net's preprocessing iterator does.
"""
import contextlib
import json
import os
import sys

import nibabel as nib
import numpy as np
import torch

import nnunetv2.inference.predict_from_raw_data as predict
from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor
from nnunetv2.utilities.label_handling.label_handling import convert_labelmap_to_one_hot


def main():
    if len(sys.argv) not in (5, 6) or (sys.argv[2] == '3d_cascade_fullres') != (len(sys.argv) == 6):
        sys.exit('usage: nnunet_accumulators.py MODEL_FOLDER CONFIGURATION CASE_0000.nii.gz LESIONSEG_OUT_DIR [PREVIOUS_STAGE_MASK, 3d_cascade_fullres only]')
    model, configuration, image, ours = sys.argv[1:5]
    torch.set_num_threads(1)
    with contextlib.redirect_stdout(sys.stderr):  # nnU-Net's messages; stdout holds only the JSON
        result = compare(model, configuration, image, ours, sys.argv[5] if len(sys.argv) == 6 else None)
    print(json.dumps(result, indent=1))


def compare(model, configuration, image, ours, previous):
    predictor = predict.nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True, perform_everything_on_device=False,
                                        device=torch.device('cpu'), verbose=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(model, ('all',), 'checkpoint_final.pth')
    plans, config = predictor.plans_manager, predictor.configuration_manager
    data, previous_seg, properties = DefaultPreprocessor(verbose=False).run_case([image], previous, plans, config, predictor.dataset_json)
    if previous is not None:  # the cascade's input, as nnU-Net's preprocessing iterator appends it
        data = np.vstack((data, convert_labelmap_to_one_hot(previous_seg[0], predictor.label_manager.foreground_labels, data.dtype)))
    case = os.path.basename(image)[:-len('_0000.nii.gz')]
    classes = predictor.label_manager.num_segmentation_heads
    # lesionseg's NIfTI arrays are x, y, z; nnU-Net's NibabelIO arrays z, y, x.
    theirs = np.stack([np.asarray(nib.load(os.path.join(ours, f'{case}_probabilities_{k}.nii.gz')).dataobj) for k in range(classes)]).transpose(0, 3, 2, 1)
    mask = np.asarray(nib.load(os.path.join(ours, f'{case}.nii.gz')).dataobj).transpose(2, 1, 0)
    result = {'previous_stage_mask': previous}
    for name in ('float16 sums and Gaussian (as shipped)', 'float32 sums and Gaussian'):
        if name.startswith('float32'):
            torch.half = torch.float32
            gaussian = predict.compute_gaussian
            predict.compute_gaussian = lambda *a, **k: gaussian(*a, dtype=torch.float32, **k)
        logits = predictor.predict_sliding_window_return_logits(torch.from_numpy(data)).float()
        segmentation, probabilities = convert_predicted_logits_to_segmentation_with_correct_shape(
            logits, plans, config, predictor.label_manager, properties, return_probabilities=True)
        result[name] = {'max_abs_probability_difference': float(np.abs(probabilities - theirs).max()),
                        'mask_voxels_differing': int((segmentation != mask).sum()), 'voxels': int(mask.size)}
    return {'model': model, 'configuration': configuration, 'case': case, 'torch': torch.__version__, 'nnunet_vs_lesionseg': result}


if __name__ == '__main__':
    main()
