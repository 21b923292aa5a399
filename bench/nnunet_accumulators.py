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
  nnUNet_extTrainer=WORK/trainers python3 bench/nnunet_accumulators.py MODEL_FOLDER CONFIGURATION CASE_0000.nii.gz LESIONSEG_OUT_DIR
(not for 3d_cascade_fullres: its second input channel group is the 3d_lowres mask).
"""
import json
import os
import sys

import nibabel as nib
import numpy as np
import torch

import nnunetv2.inference.predict_from_raw_data as predict
from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor


def main():
    if len(sys.argv) != 5:
        sys.exit('usage: nnunet_accumulators.py MODEL_FOLDER CONFIGURATION CASE_0000.nii.gz LESIONSEG_OUT_DIR')
    model, configuration, image, ours = sys.argv[1:]
    if configuration == '3d_cascade_fullres':
        sys.exit('nnunet_accumulators.py: 3d_cascade_fullres needs the 3d_lowres mask as input; run it on the other configurations')
    torch.set_num_threads(1)
    predictor = predict.nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True, perform_everything_on_device=False,
                                        device=torch.device('cpu'), verbose=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(model, ('all',), 'checkpoint_final.pth')
    plans, config = predictor.plans_manager, predictor.configuration_manager
    data, _, properties = DefaultPreprocessor(verbose=False).run_case([image], None, plans, config, predictor.dataset_json)
    case = os.path.basename(image)[:-len('_0000.nii.gz')]
    classes = predictor.label_manager.num_segmentation_heads
    # lesionseg's NIfTI arrays are x, y, z; nnU-Net's NibabelIO arrays z, y, x.
    theirs = np.stack([np.asarray(nib.load(os.path.join(ours, f'{case}_probabilities_{k}.nii.gz')).dataobj) for k in range(classes)]).transpose(0, 3, 2, 1)
    mask = np.asarray(nib.load(os.path.join(ours, f'{case}.nii.gz')).dataobj).transpose(2, 1, 0)
    result = {}
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
    print(json.dumps({'model': model, 'configuration': configuration, 'case': case, 'torch': torch.__version__, 'nnunet_vs_lesionseg': result}, indent=1))


if __name__ == '__main__':
    main()
