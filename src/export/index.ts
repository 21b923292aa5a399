/**
 * export: trained lesionseg models in the formats of other tools: nnU-Net v2 model folders
 * (nnunet.ts), PyTorch state dicts (torch.ts) and ONNX (onnx.ts; onnxEngine.ts runs it for
 * `predict --engine onnx`, loading onnxruntime-node only then). Every format
 * starts from readExportModel (model.ts). Sits beside experiments in the layers: it imports
 * infer, train, models, data and io.
 */
export { readExportModel, type ExportModel, type ExportFold, type ExportArchitecture, type ReadExportOptions } from './model.js';
export { withNnunetAliases } from './state-dict.js';
export { nnunetPlansFromPlan, EXPORT_PLANS_NAME, exportConfiguration, type NnunetFiles } from './nnunet-plans.js';
export { CASCADE_CONFIGURATION, cascadePlans, readCascadeLowres, writeNnunetCascade, nnunetModelFolderName } from './nnunet-cascade.js';
export { exportNnunet, writeNnunetModel, checkNnunetOutput, nnunetCheckpointDict, NNUNET_TRAINER_NAME, type NnunetExportOptions, type NnunetExportResult } from './nnunet.js';
export { exportTorch, writeTorchStateDict, type TorchExportOptions, type TorchExportResult } from './torch.js';
export { exportOnnx, onnxModelBytes, onnxMetadata, assertOnnxExportable, ONNX_EXPORT_FORMAT, type OnnxExportResult } from './onnx.js';
export { ONNX_OPSET, ONNX_IR_VERSION, ONNX_INPUT, ONNX_OUTPUT } from './onnxGraph.js';
export { OnnxEngine, onnxEngineFactory, loadOnnxRuntime, type OnnxEngineOptions } from './onnxEngine.js';
