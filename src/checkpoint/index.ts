/**
 * checkpoint: the one door to trained models of every kind (STYLE rule 16). Our checkpoint sets
 * (journalled writing, torn-set detection, resume), nnU-Net v2 model folders (.pth through io's
 * code-free unpickler), the paths `-m` and `--pretrained` name, and the networks built from them
 * through the models registry. Layer: imports models, nn, data, io, tensor; train, infer and
 * transfer import it.
 */
export * from './sets.js';
export * from './model.js';
export * from './nnunet.js';
export * from './resolve.js';
export * from './weights.js';
export * from './previousStage.js';
