// What the fused instance norm + leaky ReLU ops (ops_fused.cpp for float32, ops_fused_bf16.cpp for
// bfloat16) keep from their forward for their backward: the input, the affine weights, each
// plane's mean and reciprocal standard deviation (float32), and the leaky ReLU's slope.
#pragma once

#include <torch/csrc/autograd/custom_function.h>

namespace ls {

struct SavedNorm {
  at::Tensor x, weight, bias, mean, rstd;
  float slope;
};

inline void SaveNorm(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                     const at::Tensor& mean, const at::Tensor& rstd, double slope) {
  ctx->save_for_backward({x, weight, bias, mean, rstd});
  ctx->saved_data["slope"] = slope;
}

inline SavedNorm RestoreNorm(torch::autograd::AutogradContext* ctx) {
  const auto saved = ctx->get_saved_variables();
  return {saved[0], saved[1], saved[2], saved[3], saved[4], static_cast<float>(ctx->saved_data["slope"].toDouble())};
}

}  // namespace ls
