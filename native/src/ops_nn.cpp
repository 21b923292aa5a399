// Neural-network ops, calling the same at:: functions PyTorch's torch.nn.functional uses:
// convolutions, normalisation, linear, softmax, losses, resampling, padding, pooling.
#include "common.h"

namespace ls {
namespace {

std::vector<int64_t> IntsOr(const Args& a, size_t i, std::vector<int64_t> fallback) {
  return a.isNullish(i) ? fallback : a.ints(i);
}

// conv3d(x, weight, bias|null, stride, padding, dilation, groups)
// bf16 3x3x3 convolutions with a weight gradient: conv_bf16.cpp's weight-gradient kernel where it applies.
Napi::Value Conv3d(Args& a) {
  const at::Tensor x = a.tensor(0), weight = a.tensor(1);
  const auto bias = a.optTensor(2);
  const auto stride = IntsOr(a, 3, {1, 1, 1}), padding = IntsOr(a, 4, {0, 0, 0}), dilation = IntsOr(a, 5, {1, 1, 1});
  const int64_t groups = a.isNullish(6) ? 1 : a.i64(6);
  if (auto y = Conv3dBf16Kernel(x, weight, bias, stride, padding, dilation, groups)) return a.ret(*y);
  return a.ret(at::conv3d(x, weight, bias, stride, padding, dilation, groups));
}

// A transposed convolution whose kernel equals its stride (nnU-Net's up-sampling) has windows
// that do not overlap: each input voxel writes its own kz*ky*kx block of the output. That is one
// matrix product, weight^T [Cout*k, Cin] x input [B, Cin, D*H*W], and a permutation of the blocks
// into place. On the CPU libtorch 1.13 runs every 3D transposed convolution through
// slow_conv_transpose3d (col2vol, no oneDNN): 14% of a bf16 U-Net forward pass there, against
// ~3% for the product. Composed of differentiable ATen ops, so autograd and autocast (the product
// runs in bf16 under CPU autocast) apply as to the convolution it replaces. The product is a bmm of
// the weight expanded over the batch, whose result is contiguous [B, Cout*k, D*H*W]: at::matmul of
// the 2-D weight and the 3-D input folds the batch into rows (x transposed, [B*D*H*W, Cin]) and
// makes its transposed result contiguous, a copy of the whole output before the permutation's own.
at::Tensor ConvTransposeNonOverlapping(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias) {
  const int64_t batch = x.size(0), in = x.size(1), d = x.size(2), h = x.size(3), w = x.size(4);
  const int64_t out = weight.size(1), kd = weight.size(2), kh = weight.size(3), kw = weight.size(4);
  const at::Tensor wt = weight.reshape({in, out * kd * kh * kw}).t().unsqueeze(0).expand({batch, out * kd * kh * kw, in});
  at::Tensor columns = at::bmm(wt, x.reshape({batch, in, d * h * w}));
  at::Tensor y = columns.view({batch, out, kd, kh, kw, d, h, w})
                     .permute({0, 1, 5, 2, 6, 3, 7, 4})
                     .reshape({batch, out, d * kd, h * kh, w * kw});
  if (bias.has_value() && bias->defined()) y = y.add_(bias->to(y.scalar_type()).view({1, out, 1, 1, 1}));
  return y;
}

// convTranspose3d(x, weight, bias|null, stride, padding, outputPadding, groups, dilation)
Napi::Value ConvTranspose3d(Args& a) {
  const at::Tensor x = a.tensor(0);
  const at::Tensor weight = a.tensor(1);
  const auto stride = IntsOr(a, 3, {1, 1, 1});
  const auto padding = IntsOr(a, 4, {0, 0, 0});
  const auto outputPadding = IntsOr(a, 5, {0, 0, 0});
  const int64_t groups = a.isNullish(6) ? 1 : a.i64(6);
  const auto dilation = IntsOr(a, 7, {1, 1, 1});
  const std::vector<int64_t> zero{0, 0, 0}, one{1, 1, 1};
  const bool nonOverlapping = x.device().is_cpu() && x.dim() == 5 && weight.dim() == 5 && groups == 1 &&
                              weight.size(0) == x.size(1) && padding == zero && outputPadding == zero && dilation == one &&
                              stride == std::vector<int64_t>{weight.size(2), weight.size(3), weight.size(4)};
  if (nonOverlapping) return a.ret(ConvTransposeNonOverlapping(x, weight, a.optTensor(2)));
  return a.ret(at::conv_transpose3d(x, weight, a.optTensor(2), stride, padding, outputPadding, groups, dilation));
}

// instanceNorm(x, weight|null, bias|null, eps): statistics from the input, no running stats.
Napi::Value InstanceNorm(Args& a) {
  return a.ret(at::instance_norm(a.tensor(0), a.optTensor(1), a.optTensor(2), c10::nullopt, c10::nullopt,
                                 /*use_input_stats=*/true, /*momentum=*/0.1, a.f64(3),
                                 at::globalContext().userEnabledCuDNN()));
}

// layerNorm(x, normalizedShape, weight|null, bias|null, eps)
Napi::Value LayerNorm(Args& a) {
  return a.ret(at::layer_norm(a.tensor(0), a.ints(1), a.optTensor(2), a.optTensor(3), a.f64(4),
                              at::globalContext().userEnabledCuDNN()));
}

Napi::Value Linear(Args& a) { return a.ret(at::linear(a.tensor(0), a.tensor(1), a.optTensor(2))); }
Napi::Value Matmul(Args& a) { return a.ret(at::matmul(a.tensor(0), a.tensor(1))); }
Napi::Value Softmax(Args& a) { return a.ret(at::softmax(a.tensor(0), a.i64(1))); }
Napi::Value LogSoftmax(Args& a) { return a.ret(at::log_softmax(a.tensor(0), a.i64(1))); }

int64_t Reduction(const Args& a, size_t i) {
  std::string r = a.str(i);
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  if (r == "none") return at::Reduction::None;
  a.fail(i, "'mean', 'sum' or 'none'");
}

// crossEntropy(logits, target, weight|null, reduction, ignoreIndex, labelSmoothing)
Napi::Value CrossEntropy(Args& a) {
  return a.ret(at::cross_entropy_loss(a.tensor(0), a.tensor(1), a.optTensor(2), Reduction(a, 3), a.i64(4),
                                      a.isNullish(5) ? 0.0 : a.f64(5)));
}

// nllLoss(logProbabilities, target, weight|null, reduction, ignoreIndex)
Napi::Value NllLoss(Args& a) {
  return a.ret(at::nll_loss_nd(a.tensor(0), a.tensor(1), a.optTensor(2), Reduction(a, 3), a.i64(4)));
}

// interpolate(x, size, mode, alignCorners|null) with size covering the spatial dims.
Napi::Value Interpolate(Args& a) {
  const at::Tensor& x = a.tensor(0);
  std::vector<int64_t> size = a.ints(1);
  std::string mode = a.str(2);
  int64_t spatial = x.dim() - 2;
  if (spatial < 1 || spatial > 3) throw ArgError("input must have 1 to 3 spatial dims after [N, C]");
  if (static_cast<int64_t>(size.size()) != spatial) throw ArgError("size must have one entry per spatial dim");
  bool alignCorners = a.isNullish(3) ? false : a.boolean(3);
  const c10::optional<double> none;
  if (mode == "nearest") {
    if (spatial == 3) return a.ret(at::upsample_nearest3d(x, size, none, none, none));
    if (spatial == 2) return a.ret(at::upsample_nearest2d(x, size, none, none));
    return a.ret(at::upsample_nearest1d(x, size, none));
  }
  if (mode == "nearest-exact") {
    if (spatial == 3) return a.ret(at::_upsample_nearest_exact3d(x, size, none, none, none));
    if (spatial == 2) return a.ret(at::_upsample_nearest_exact2d(x, size, none, none));
    return a.ret(at::_upsample_nearest_exact1d(x, size, none));
  }
  if (mode == "area") {
    if (spatial == 3) return a.ret(at::adaptive_avg_pool3d(x, size));
    if (spatial == 2) return a.ret(at::adaptive_avg_pool2d(x, size));
    return a.ret(at::adaptive_avg_pool1d(x, size));
  }
  if (mode == "trilinear" && spatial == 3) return a.ret(at::upsample_trilinear3d(x, size, alignCorners, none, none, none));
  if (mode == "bilinear" && spatial == 2) return a.ret(at::upsample_bilinear2d(x, size, alignCorners, none, none));
  if (mode == "linear" && spatial == 1) return a.ret(at::upsample_linear1d(x, size, alignCorners, none));
  throw ArgError("mode '" + mode + "' does not fit an input with " + std::to_string(spatial) + " spatial dims");
}

// gridSample(x, grid, mode, paddingMode, alignCorners) like F.grid_sample.
Napi::Value GridSample(Args& a) {
  std::string mode = a.str(2), padding = a.str(3);
  int64_t modeCode = mode == "bilinear" ? 0 : mode == "nearest" ? 1 : mode == "bicubic" ? 2 : -1;
  int64_t paddingCode = padding == "zeros" ? 0 : padding == "border" ? 1 : padding == "reflection" ? 2 : -1;
  if (modeCode < 0) a.fail(2, "'bilinear', 'nearest' or 'bicubic'");
  if (paddingCode < 0) a.fail(3, "'zeros', 'border' or 'reflection'");
  return a.ret(at::grid_sampler(a.tensor(0), a.tensor(1), modeCode, paddingCode, a.boolean(4)));
}

// pad(x, pads (last dim first), mode, value)
Napi::Value Pad(Args& a) {
  std::string mode = a.str(2);
  if (mode != "constant" && mode != "reflect" && mode != "replicate" && mode != "circular") {
    a.fail(2, "'constant', 'reflect', 'replicate' or 'circular'");
  }
  c10::optional<double> value;
  if (mode == "constant") value = a.isNullish(3) ? 0.0 : a.f64(3);
  return a.ret(at::pad(a.tensor(0), a.ints(1), mode, value));
}

// avgPool3d(x, kernel, stride|null, padding|null)
Napi::Value AvgPool3d(Args& a) {
  std::vector<int64_t> kernel = a.ints(1);
  return a.ret(at::avg_pool3d(a.tensor(0), kernel, IntsOr(a, 2, kernel), IntsOr(a, 3, {0, 0, 0})));
}

Napi::Value MaxPool3d(Args& a) {
  std::vector<int64_t> kernel = a.ints(1);
  return a.ret(at::max_pool3d(a.tensor(0), kernel, IntsOr(a, 2, kernel), IntsOr(a, 3, {0, 0, 0})));
}

Napi::Value AdaptiveAvgPool3d(Args& a) { return a.ret(at::adaptive_avg_pool3d(a.tensor(0), a.ints(1))); }

// dropout(x, p, train)
Napi::Value Dropout(Args& a) { return a.ret(at::dropout(a.tensor(0), a.f64(1), a.boolean(2))); }

}  // namespace

const std::vector<OpDef>& NnOps() {
  static const std::vector<OpDef> ops = {
      {"conv3d", 2, 7, Conv3d},
      {"convTranspose3d", 2, 8, ConvTranspose3d},
      {"instanceNorm", 4, 4, InstanceNorm},
      {"layerNorm", 5, 5, LayerNorm},
      {"linear", 3, 3, Linear},
      {"matmul", 2, 2, Matmul},
      {"softmax", 2, 2, Softmax},
      {"logSoftmax", 2, 2, LogSoftmax},
      {"crossEntropy", 5, 6, CrossEntropy},
      {"nllLoss", 5, 5, NllLoss},
      {"interpolate", 3, 4, Interpolate},
      {"gridSample", 5, 5, GridSample},
      {"pad", 3, 4, Pad},
      {"avgPool3d", 2, 4, AvgPool3d},
      {"maxPool3d", 2, 4, MaxPool3d},
      {"adaptiveAvgPool3d", 2, 2, AdaptiveAvgPool3d},
      {"dropout", 3, 3, Dropout},
  };
  return ops;
}

}  // namespace ls
